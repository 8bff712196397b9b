"""The Numba CUDA target's edges: zero-copy views of any CUDA array, the device a call runs on,
kernel launches, and errors that say what is missing when CUDA is.

Inputs are anything with ``__cuda_array_interface__`` (Numba, CuPy, PyTorch, JAX), read without a
copy; results are Numba device arrays (``torch.as_tensor(a, device="cuda")`` and
``cupy.asarray(a)`` view them without a copy). Host arrays are refused: no hidden transfers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from numba import config, cuda

from psu_numba.common import IPSU, Launch
from psu_numba.device import CudaDevice
from psu_numba.numba_cuda import kernels

_HOW_TO_FIX = (
    "install an NVIDIA driver and `pip install psu-numba[cuda]` (numba-cuda with the CUDA 13 "
    "NVRTC and libNVVM; `psu-numba[cuda12]` for a CUDA 12 driver), or set NUMBA_ENABLE_CUDASIM=1 "
    "before Numba is imported to run the kernels in Numba's CUDA simulator (slow; for testing)"
)
_TOOLCHAIN_ERRORS = {"NvvmSupportError", "NvvmError", "CudaSupportError", "CudaDriverError", "NvrtcError",
                     "NvrtcSupportError", "LinkerError"}  # fmt: skip


def _launch(kernel: Any, grid: Any, threads: int, *args: Any) -> None:
    """Launch ``kernel[grid, threads](*args)``, turning toolchain errors (no libNVVM, unsupported
    architecture, driver failures) into a ``RuntimeError`` that says how to fix them."""
    try:
        kernel[grid, threads](*args)
    except Exception as exc:
        if {c.__name__ for c in type(exc).__mro__} & _TOOLCHAIN_ERRORS:
            raise RuntimeError(
                f"psu_numba.numba_cuda could not compile or launch its kernel: {type(exc).__name__}: {exc}. "
                f"To fix: {_HOW_TO_FIX}."
            ) from exc
        raise


def _per_element(kernel: Any, n_threads: int, *args: Any) -> None:
    """One thread per element (nothing when there are none)."""
    if n_threads <= 0:
        return
    threads = min(kernels.THREADS, n_threads) if config.ENABLE_CUDASIM else kernels.THREADS
    _launch(kernel, (n_threads + threads - 1) // threads, threads, *args)


def _ordinal(obj: Any) -> int | None:
    """The CUDA device holding ``obj``: from ``__dlpack_device__`` (PyTorch, CuPy, JAX), a Numba
    array's context, or ``None`` when it cannot be told (then the current device is used)."""
    dl = getattr(obj, "__dlpack_device__", None)
    if callable(dl):
        try:
            kind, index = dl()
            if int(kind) in (2, 13):  # kDLCUDA, kDLCUDAManaged
                return int(index)
        except Exception:
            pass
    dev = getattr(getattr(getattr(obj, "gpu_data", None), "context", None), "device", None)
    return int(dev.id) if dev is not None and hasattr(dev, "id") else None


class NumbaCudaDevice(CudaDevice):
    module = "psu_numba.numba_cuda"

    def available(self) -> bool:
        """True on a usable GPU, or under the simulator (``NUMBA_ENABLE_CUDASIM=1``)."""
        try:
            return bool(cuda.is_available())
        except Exception:  # a broken driver install raises instead of answering False
            return False

    def require(self) -> None:
        if self.available():
            return
        reason = "no CUDA driver or GPU found"
        err: Callable[[], Any] | None = getattr(cuda, "cuda_error", None)
        if callable(err):
            try:
                e = err()
                if e is not None:
                    reason = f"{type(e).__name__}: {e}"
            except Exception as exc:  # pragma: no cover - depends on the driver
                reason = f"{type(exc).__name__}: {exc}"
        raise RuntimeError(f"psu_numba.numba_cuda cannot run: Numba reports {reason}. To fix: {_HOW_TO_FIX}.")

    def view(self, name: str, obj: Any) -> Any:
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
                f"{name} is a NumPy (host) array; psu_numba.numba_cuda takes CUDA device arrays: move it "
                f"with numba.cuda.to_device({name}) (or use psu_numba.cpu for host arrays)"
            )
        if hasattr(obj, "__dlpack__"):
            raise TypeError(
                f"{name} ({type(obj).__name__}) offers DLPack but not __cuda_array_interface__, which "
                "Numba needs; pass it through cupy.from_dlpack(...) or use psu_numba.cupy, which reads DLPack"
            )
        raise TypeError(f"{name} must be a CUDA device array, got {type(obj).__name__}")

    def contiguous(self, a: Any) -> bool:
        return bool(a.is_c_contiguous())

    def empty(self, shape: tuple[int, ...], dtype: Any) -> Any:
        return cuda.device_array(shape, np.dtype(dtype))

    def zeros(self, shape: tuple[int, ...], dtype: Any) -> Any:
        return cuda.to_device(np.zeros(shape, dtype))

    def copy(self, a: Any) -> Any:
        new = cuda.device_array(a.shape, a.dtype)
        new.copy_to_device(a)
        return new

    def all_finite(self, x: Any) -> bool:
        return bool(np.isfinite(x.copy_to_host()).all())

    def to_target(self, a: np.ndarray) -> Any:
        return cuda.to_device(a)

    def to_host(self, a: Any) -> np.ndarray:
        return a.copy_to_host()

    def synchronize(self) -> None:
        cuda.synchronize()

    @contextlib.contextmanager
    def scope(self, a: Any) -> Iterator[None]:
        # cuda.gpus[i] pushes that device's context and pops it on exit.
        ordinal = None if config.ENABLE_CUDASIM else _ordinal(a)
        if ordinal is None:
            yield
            return
        with cuda.gpus[ordinal]:
            yield

    def placement(self, device: Any) -> contextlib.AbstractContextManager[None]:
        if device is None or config.ENABLE_CUDASIM:
            return contextlib.nullcontext()
        if isinstance(device, bool) or not isinstance(device, int) or device < 0:
            raise ValueError(f"device must be None (the current device) or a CUDA device ordinal, got {device!r}")
        return cuda.gpus[device]

    def forward(self, k: Launch, spikes: Any, membrane: Any, resets: Any, want_membrane: bool,
                want_resets: bool) -> None:  # fmt: skip
        a_hi, a_lo, gamma, theta, _, k0, k1 = k.scalars
        _per_element(kernels.forward_kernel, k.n, k.params.code, k.x, k.w, k.b, a_hi, a_lo, gamma, theta, k.params.sampled,
                     k0, k1, spikes, membrane, resets, want_membrane, want_resets)  # fmt: skip

    def vjp(self, k: Launch, g: Any, dx: Any) -> tuple[Any, Any, float, float]:
        T, n, dt, p = k.T, k.n, k.dtype, k.params
        gv = cuda.device_array((T, n), dt)
        pp = cuda.device_array((T, n) if p.code != IPSU else (1, 1), dt)
        partial = cuda.device_array((2, n), np.float64)
        a_hi, a_lo, gamma, theta, alpha, k0, k1 = k.scalars
        _per_element(kernels.vjp_kernel, n, p.code, k.x, g, k.w, k.b, a_hi, a_lo, gamma, theta, alpha, p.tied, p.sampled,
                     k0, k1, dx, gv, pp, partial)  # fmt: skip
        sums = self.zeros((2,), np.float64)
        dW = db = None
        if k.learned:
            dW, db = self.zeros((T, T), dt), self.zeros((T,), dt)
        if n > 0:
            red = kernels.RED_THREADS
            _launch(kernels.rowsum_kernel, (2,), red, partial, sums)
            if k.learned:
                src = gv if p.code == IPSU else pp
                _launch(kernels.rowdot_kernel, (T, 1) if kernels.SIMULATED else (T, T), red, src, k.x, dW, True)
                _launch(kernels.rowsum_kernel, (T,), red, src, db)
        host = sums.copy_to_host()
        return dW, db, float(host[0]), float(host[1])

    def step(self, k: Launch, t: int, history: Any, h: Any, r: Any, q: Any, spikes: Any, membrane: Any,
             resets: Any) -> None:  # fmt: skip
        a_hi, a_lo, gamma, theta, _, k0, k1 = k.scalars
        _per_element(kernels.step_kernel, k.n, k.params.code, t, k.x, history, k.w, k.b, a_hi, a_lo, gamma, theta,
                     k.params.sampled, k0, k1, h, r, q, spikes, membrane, resets)  # fmt: skip

    def threefry(self, k0: Any, k1: Any, c0: Any, c1: Any, out0: Any, out1: Any) -> None:
        _per_element(kernels.threefry_kernel, int(c0.shape[0]), k0, k1, c0, c1, out0, out1)

    def uniforms(self, k0: int, k1: int, out: Any) -> None:
        _per_element(kernels.uniforms_kernel, int(out.size), np.uint64(k0), np.uint64(k1), out)
