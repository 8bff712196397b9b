"""Device arrays in, device arrays out: zero-copy views of any CUDA array, the device scope, and
errors that say what is missing when CUDA is."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from numba import config, cuda

SUPPORTED = (np.dtype(np.float32), np.dtype(np.float64))

_HOW_TO_FIX = (
    "install an NVIDIA driver and `pip install psu-numba[cuda]` (numba-cuda with the CUDA 13 "
    "NVRTC and libNVVM; `psu-numba[cuda12]` for a CUDA 12 driver), or set NUMBA_ENABLE_CUDASIM=1 before Numba is imported to run the kernels in "
    "Numba's CUDA simulator (slow; for testing)"
)


def available() -> bool:
    """True when Numba can run CUDA kernels now: a usable GPU, or the simulator
    (``NUMBA_ENABLE_CUDASIM=1``)."""
    try:
        return bool(cuda.is_available())
    except Exception:  # a broken driver install raises instead of answering False
        return False


def require() -> None:
    """Raise ``RuntimeError`` naming what is missing when Numba cannot run CUDA kernels."""
    if available():
        return
    reason = "no CUDA driver or GPU found"
    err = getattr(cuda, "cuda_error", None)
    if callable(err):
        try:
            e = err()
            if e is not None:
                reason = f"{type(e).__name__}: {e}"
        except Exception as exc:  # pragma: no cover - depends on the driver
            reason = f"{type(exc).__name__}: {exc}"
    raise RuntimeError(f"psu_numba.numba_cuda cannot run: Numba reports {reason}. To fix: {_HOW_TO_FIX}.")


def launch(kernel: Any, n_threads: int, threads: int, *args: Any) -> None:
    """Launch ``kernel`` over ``n_threads`` threads (nothing when 0), turning toolchain errors
    (no libNVVM, unsupported architecture, driver failures) into a ``RuntimeError`` that says how
    to fix them."""
    if n_threads <= 0:
        return
    if config.ENABLE_CUDASIM:
        threads = min(threads, n_threads)  # the simulator pays for every thread, even idle ones
    blocks = (n_threads + threads - 1) // threads
    _guard(lambda: kernel[blocks, threads](*args))


def launch_grid(kernel: Any, grid: tuple[int, ...], threads: int, *args: Any) -> None:
    if min(grid) <= 0:
        return
    _guard(lambda: kernel[grid, threads](*args))


def _guard(fn: Callable[[], Any]) -> None:
    try:
        fn()
    except Exception as exc:
        names = {c.__name__ for c in type(exc).__mro__}
        toolchain = {"NvvmSupportError", "NvvmError", "CudaSupportError", "CudaDriverError",
                     "NvrtcError", "NvrtcSupportError", "LinkerError"}
        if names & toolchain:
            raise RuntimeError(
                f"psu_numba.numba_cuda could not compile or launch its kernel: {type(exc).__name__}: {exc}. "
                f"To fix: {_HOW_TO_FIX}."
            ) from exc
        raise


def as_device(name: str, obj: Any) -> Any:
    """A zero-copy Numba view of a CUDA array (anything with ``__cuda_array_interface__``:
    Numba, CuPy, PyTorch and JAX device arrays), or ``None`` for ``None``."""
    if obj is None:
        return None
    if config.ENABLE_CUDASIM:
        # The simulator's device arrays are host arrays in disguise, without the interface.
        from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray

        if isinstance(obj, FakeCUDAArray):
            return obj
    elif hasattr(obj, "__cuda_array_interface__"):
        return cuda.as_cuda_array(obj)
    if isinstance(obj, np.ndarray):
        raise TypeError(
            f"{name} is a NumPy (host) array; psu_numba.numba_cuda takes CUDA device arrays: move it with "
            f"numba.cuda.to_device({name}) (or use psu_numba.cpu for host arrays)"
        )
    if hasattr(obj, "__dlpack__"):
        raise TypeError(
            f"{name} ({type(obj).__name__}) offers DLPack but not __cuda_array_interface__, which "
            "Numba needs; pass it through cupy.from_dlpack(...) or use psu_numba.cupy, which reads DLPack"
        )
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
    if not arr.is_c_contiguous():
        raise ValueError(f"{name} must be C-contiguous (make a contiguous copy on the device first)")
    return arr


def _ordinal(obj: Any) -> int | None:
    """The CUDA device holding ``obj``: from ``__dlpack_device__`` (PyTorch, CuPy, JAX), a
    Numba array's context, or ``None`` when it cannot be told (then the current device is used)."""
    dl = getattr(obj, "__dlpack_device__", None)
    if callable(dl):
        try:
            kind, index = dl()
            if int(kind) in (2, 13):  # kDLCUDA, kDLCUDAManaged
                return int(index)
        except Exception:
            pass
    data = getattr(obj, "gpu_data", None)
    ctx = getattr(data, "context", None)
    dev = getattr(ctx, "device", None)
    if dev is not None and hasattr(dev, "id"):
        return int(dev.id)
    return None


@contextlib.contextmanager
def device_of(obj: Any) -> Iterator[None]:
    """Run on the device that holds ``obj`` and restore the caller's current device afterwards
    (Numba's ``cuda.gpus[i]`` context pushes and pops the device's context)."""
    if config.ENABLE_CUDASIM:
        yield
        return
    ordinal = _ordinal(obj)
    if ordinal is None:
        yield
        return
    with cuda.gpus[ordinal]:
        yield
