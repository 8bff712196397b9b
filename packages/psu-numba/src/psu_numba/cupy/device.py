"""The CuPy target's edges: CUDA arrays in (``__cuda_array_interface__`` or DLPack, no copy), CuPy
arrays out, and the ``kernels.cu`` entry points with their C argument types."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from psu_numba.common import IPSU, Launch
from psu_numba.cupy import kernels
from psu_numba.device import CudaDevice

_I32, _I64, _U32 = np.int32, np.int64, np.uint32


def _suffix(dt: np.dtype) -> str:
    return "f32" if dt == np.float32 else "f64"


class CupyDevice(CudaDevice):
    module = "psu_numba.cupy"

    def available(self) -> bool:
        return kernels.available()

    def require(self) -> None:
        kernels.require()

    def view(self, name: str, obj: Any) -> Any:
        if obj is None:
            return None
        cupy = kernels.import_cupy()
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

    def contiguous(self, a: Any) -> bool:
        return bool(a.flags.c_contiguous)

    def empty(self, shape: tuple[int, ...], dtype: Any) -> Any:
        return kernels.import_cupy().empty(shape, dtype)

    def zeros(self, shape: tuple[int, ...], dtype: Any) -> Any:
        return kernels.import_cupy().zeros(shape, dtype)

    def copy(self, a: Any) -> Any:
        return a.copy()

    def all_finite(self, x: Any) -> bool:
        return bool(kernels.import_cupy().isfinite(x).all())

    def to_target(self, a: np.ndarray) -> Any:
        return kernels.import_cupy().asarray(a)

    def to_host(self, a: Any) -> np.ndarray:
        return kernels.import_cupy().asnumpy(a)

    def synchronize(self) -> None:
        kernels.import_cupy().cuda.get_current_stream().synchronize()

    @contextlib.contextmanager
    def scope(self, a: Any) -> Iterator[None]:
        # CuPy's Device context restores the caller's current device on exit.
        with kernels.import_cupy().cuda.Device(a.device.id):
            yield

    def placement(self, device: Any) -> contextlib.AbstractContextManager[None]:
        if device is None:
            return contextlib.nullcontext()
        if isinstance(device, bool) or not isinstance(device, int) or device < 0:
            raise ValueError(f"device must be None (the current device) or a CUDA device ordinal, got {device!r}")
        return kernels.import_cupy().cuda.Device(device)

    def forward(self, k: Launch, spikes: Any, membrane: Any, resets: Any, want_membrane: bool,
                want_resets: bool) -> None:  # fmt: skip
        p, c = k.params, k.dtype.type
        k0, k1 = p.key
        kernels.launch(f"psu_forward_{_suffix(k.dtype)}", k.n, (
            _I32(p.code), k.x, k.w, k.b, _I32(k.T), _I64(k.n), *k.scalars[:2], c(p.gamma), c(p.threshold),
            _I32(p.sampled), _U32(k0), _U32(k1), spikes, membrane, resets, _I32(want_membrane), _I32(want_resets),
        ))  # fmt: skip

    def vjp(self, k: Launch, g: Any, dx: Any) -> tuple[Any, Any, float, float]:
        p, c, T, n, sfx = k.params, k.dtype.type, k.T, k.n, _suffix(k.dtype)
        k0, k1 = p.key
        gv = self.empty((T, n), k.dtype)
        pp = self.empty((T, n) if p.code != IPSU else (1,), k.dtype)
        partial = self.empty((2, n), np.float64)
        kernels.launch(f"psu_vjp_{sfx}", n, (
            _I32(p.code), k.x, g, k.w, k.b, _I32(T), _I64(n), *k.scalars[:2], c(p.gamma), c(p.threshold),
            c(p.surrogate_alpha), _I32(p.tied), _I32(p.sampled), _U32(k0), _U32(k1), dx, gv, pp, partial,
        ))  # fmt: skip
        sums = self.zeros((2,), np.float64)
        dW = db = None
        if k.learned:
            dW, db = self.zeros((T, T), k.dtype), self.zeros((T,), k.dtype)
        if n > 0:
            kernels.launch_grid("psu_rowsum_partial", (2,), (partial, _I64(n), sums))
            if k.learned:
                src = gv if p.code == IPSU else pp
                kernels.launch_grid(f"psu_rowdot_{sfx}", (T, T), (src, k.x, _I32(T), _I64(n), dW, _I32(1)))
                kernels.launch_grid(f"psu_rowsum_{sfx}", (T,), (src, _I64(n), db))
        host = kernels.import_cupy().asnumpy(sums)
        return dW, db, float(host[0]), float(host[1])

    def step(self, k: Launch, t: int, history: Any, h: Any, r: Any, q: Any, spikes: Any, membrane: Any,
             resets: Any) -> None:  # fmt: skip
        p, c = k.params, k.dtype.type
        k0, k1 = p.key
        kernels.launch(f"psu_step_{_suffix(k.dtype)}", k.n, (
            _I32(p.code), _I32(t), _I32(k.T), _I64(k.n), k.x, history, k.w, k.b, *k.scalars[:2], c(p.gamma),
            c(p.threshold), _I32(p.sampled), _U32(k0), _U32(k1), h, r, q, spikes, membrane, resets,
        ))  # fmt: skip

    def threefry(self, k0: Any, k1: Any, c0: Any, c1: Any, out0: Any, out1: Any) -> None:
        size = int(c0.shape[0])
        kernels.launch("psu_threefry", size, (k0, k1, c0, c1, out0, out1, _I64(size)))

    def uniforms(self, k0: int, k1: int, out: Any) -> None:
        T, n = (int(d) for d in out.shape)
        kernels.launch("psu_uniforms", T * n, (_U32(k0), _U32(k1), _I32(T), _I64(n), out))
