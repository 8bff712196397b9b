"""Helpers for psu-torch's unit tests (a uniquely named module: the repository runs every
package's tests in one pytest session)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch


def require_cuda() -> None:
    """Skip without a CUDA device, or fail when PSU_REQUIRE_DEVICE=1 asks for one."""
    if torch.cuda.is_available():
        return
    if os.environ.get("PSU_REQUIRE_DEVICE") == "1":
        pytest.fail("PSU_REQUIRE_DEVICE=1 but no CUDA device is available")
    pytest.skip("no CUDA device")


def case(rng: np.random.Generator, variant: str, T: int = 6, shape: tuple[int, ...] = (3, 4)):
    """Inputs for one call: x [T, *shape], weight/bias (IPSU/RPSU, non-zero upper triangle), grad."""
    x = rng.normal(size=(T, *shape)) * 1.5
    g = rng.normal(size=x.shape)
    w = rng.normal(size=(T, T)) * 0.5 if variant != "psu" else None
    b = rng.normal(size=T) * 0.3 if variant != "psu" else None
    return x, w, b, g
