"""CUDA arrays in (``__cuda_array_interface__`` or DLPack, no copy), CuPy arrays out."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from psu_numba.cupy.kernels import import_cupy

SUPPORTED = (np.dtype(np.float32), np.dtype(np.float64))


def as_device(name: str, obj: Any) -> Any:
    """A zero-copy CuPy view of a CUDA array (CuPy, PyTorch, JAX, Numba), or ``None``."""
    if obj is None:
        return None
    cupy = import_cupy()
    if isinstance(obj, cupy.ndarray):
        return obj
    if isinstance(obj, np.ndarray):
        raise TypeError(
            f"{name} is a NumPy (host) array; psu_numba.cupy takes CUDA device arrays: move it with "
            f"cupy.asarray({name}) (or use psu_numba.cpu for host arrays)"
        )
    if hasattr(obj, "__cuda_array_interface__"):
        return cupy.asarray(obj)
    if hasattr(obj, "__dlpack__"):
        return cupy.from_dlpack(obj)
    raise TypeError(f"{name} must be a CUDA device array, got {type(obj).__name__}")


def check_kernel_dtype(name: str, arr: Any, dtype: np.dtype | None = None) -> np.dtype:
    d = np.dtype(arr.dtype)
    if dtype is None:
        if d not in SUPPORTED:
            raise TypeError(f"{name} must be float32 or float64 for the CUDA kernels, got {d}")
        return d
    if d != dtype:
        raise TypeError(f"{name} must have the dtype of x ({dtype}), got {d}")
    return d


def contiguous(name: str, arr: Any) -> Any:
    if not arr.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous (make a contiguous copy on the device first)")
    return arr


@contextlib.contextmanager
def device_of(arr: Any) -> Iterator[None]:
    """Run on the device holding ``arr`` (a CuPy array); CuPy's ``Device`` context restores the
    caller's current device on exit."""
    cupy = import_cupy()
    with cupy.cuda.Device(arr.device.id):
        yield
