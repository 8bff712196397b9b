"""The SPEC §6 Threefry-2x32-20 stream computed by the CUDA C kernels (CuPy)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from psu_core import checks
from psu_numba.cupy import arrays, kernels

__all__ = ["threefry2x32", "uniforms"]


def threefry2x32(key0: Any, key1: Any, counter0: Any, counter1: Any) -> tuple[Any, Any]:
    """Threefry-2x32-20 element-wise over four equal-shaped uint32 CUDA arrays; returns two CuPy
    uint32 arrays of that shape."""
    cupy = kernels.require()
    names = ("key0", "key1", "counter0", "counter1")
    ds = [arrays.as_device(nm, v) for nm, v in zip(names, (key0, key1, counter0, counter1), strict=True)]
    shape = tuple(ds[0].shape)
    for nm, d in zip(names, ds, strict=True):
        if np.dtype(d.dtype) != np.uint32 or tuple(d.shape) != shape:
            raise TypeError(f"{nm} must be a uint32 device array of shape {list(shape)}, got {d.dtype} {list(d.shape)}")
        arrays.contiguous(nm, d)
    size = int(np.prod(shape, dtype=np.int64))
    with arrays.device_of(ds[0]):
        out0 = cupy.empty(shape, np.uint32)
        out1 = cupy.empty(shape, np.uint32)
        kernels.launch("psu_threefry", size, (*ds, out0, out1, np.int64(size)))
    return out0, out1


def uniforms(seed: int, shape: Sequence[int]) -> Any:
    """``u[t, n]`` of SPEC §6 for ``shape = (T, *neuron_shape)``: a float64 CuPy array."""
    cupy = kernels.require()
    seed = checks.check_seed(seed)
    shape = tuple(int(d) for d in shape)
    n = int(np.prod(shape[1:], dtype=np.int64))
    if n > 2**32:
        raise ValueError(f"shape must have at most 2**32 neurons, got {n}")
    out = cupy.empty(shape, np.float64)
    kernels.launch("psu_uniforms", shape[0] * n, (np.uint32(seed & 0xFFFFFFFF), np.uint32(seed >> 32),
                                                  np.int32(shape[0]), np.int64(n), out))
    return out
