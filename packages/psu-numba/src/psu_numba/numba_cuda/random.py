"""The SPEC §6 Threefry-2x32-20 stream computed by the Numba CUDA kernels (the device function
the sampled reset uses)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numba import cuda

from psu_core import checks
from psu_numba.numba_cuda import arrays, kernels

__all__ = ["threefry2x32", "uniforms"]


def threefry2x32(key0: Any, key1: Any, counter0: Any, counter1: Any) -> tuple[Any, Any]:
    """Threefry-2x32-20 element-wise over four equal-shaped uint32 CUDA arrays; returns two
    uint32 device arrays of that shape."""
    arrays.require()
    ds = [arrays.as_device(nm, v) for nm, v in zip(("key0", "key1", "counter0", "counter1"),
                                                   (key0, key1, counter0, counter1), strict=True)]
    shape = tuple(ds[0].shape)
    for nm, d in zip(("key0", "key1", "counter0", "counter1"), ds, strict=True):
        if np.dtype(d.dtype) != np.uint32 or tuple(d.shape) != shape:
            raise TypeError(f"{nm} must be a uint32 device array of shape {list(shape)}, got {d.dtype} {list(d.shape)}")
        arrays.contiguous(nm, d)
    size = int(np.prod(shape, dtype=np.int64))
    flat = [d.reshape(size) for d in ds]
    with arrays.device_of(key0):
        out0 = cuda.device_array(size, np.uint32)
        out1 = cuda.device_array(size, np.uint32)
        arrays.launch(kernels.threefry_kernel, size, kernels.THREADS, *flat, out0, out1)
    return out0.reshape(*shape), out1.reshape(*shape)


def uniforms(seed: int, shape: Sequence[int]) -> Any:
    """``u[t, n]`` of SPEC §6 for ``shape = (T, *neuron_shape)``: a float64 device array."""
    arrays.require()
    seed = checks.check_seed(seed)
    shape = tuple(int(d) for d in shape)
    n = int(np.prod(shape[1:], dtype=np.int64))
    if n > 2**32:
        raise ValueError(f"shape must have at most 2**32 neurons, got {n}")
    out = cuda.device_array((shape[0], n), np.float64)
    arrays.launch(kernels.uniforms_kernel, shape[0] * n, kernels.THREADS,
                  np.uint64(seed & 0xFFFFFFFF), np.uint64(seed >> 32), out)
    return out.reshape(*shape)
