"""The SPEC §6 Threefry-2x32-20 stream, computed by the CPU kernels (the same code the sampled
reset uses, so checking these functions checks the draws)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from psu_core import checks
from psu_numba.cpu import kernels

__all__ = ["threefry2x32", "uniforms"]


def threefry2x32(key0: Any, key1: Any, counter0: Any, counter1: Any) -> tuple[np.ndarray, np.ndarray]:
    """Threefry-2x32 with 20 rounds (Random123); arguments are broadcast uint32-valued arrays,
    returns two ``uint32`` arrays of the broadcast shape."""
    arrs = [np.asarray(v) for v in (key0, key1, counter0, counter1)]
    for name, v in zip(("key0", "key1", "counter0", "counter1"), arrs, strict=True):
        if not np.issubdtype(v.dtype, np.integer):
            raise TypeError(f"{name} must be an integer array, got {v.dtype}")
    k0, k1, c0, c1 = (np.ascontiguousarray(v, dtype=np.uint32).ravel()
                      for v in np.broadcast_arrays(*arrs))
    shape = np.broadcast_shapes(*(v.shape for v in arrs))
    out0 = np.empty(k0.size, np.uint32)
    out1 = np.empty(k0.size, np.uint32)
    kernels.threefry_kernel(k0, k1, c0, c1, out0, out1)
    return out0.reshape(shape), out1.reshape(shape)


def uniforms(seed: int, shape: Sequence[int]) -> np.ndarray:
    """``u[t, n] = (w0 >> 8) * 2**-24`` for ``shape = (T, *neuron_shape)`` (float64, SPEC §6)."""
    seed = checks.check_seed(seed)
    shape = tuple(int(d) for d in shape)
    T = shape[0]
    n = int(np.prod(shape[1:], dtype=np.int64))
    if n > 2**32:
        raise ValueError(f"shape must have at most 2**32 neurons, got {n}")
    out = np.empty((T, n), np.float64)
    kernels.uniforms_kernel(np.uint64(seed & 0xFFFFFFFF), np.uint64(seed >> 32), out)
    return out.reshape(shape)
