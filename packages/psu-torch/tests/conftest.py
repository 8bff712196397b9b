"""Fixtures for psu-torch's unit tests (what is torch-specific; the conformance suite checks the
mathematics against the golden vectors). Helpers live in psu_torch_testlib.py."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
