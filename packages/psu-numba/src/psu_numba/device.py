"""The edges of a target: what :mod:`psu_numba.api` asks of the CPU, Numba CUDA and CuPy targets.

Each target is a small :class:`Device` subclass (``psu_numba/<target>/device.py``): array creation,
taking the caller's arrays (views, or refusals that say how to fix the call), dtype rules, the
device a call runs on, and its kernel launches. Everything else (argument checks, buffers,
result packing, the online state) is written once in :mod:`psu_numba.api` against this class.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from psu_numba.common import Launch


class Device:
    """One target's edges. ``module`` names its public module in messages; ``methods`` are the
    algorithms it has for ``method=`` (``"auto"`` picks the first)."""

    module = ""
    methods: tuple[str, ...] = ("recurrence",)

    # -------------------------------------------------------------------- availability

    def available(self) -> bool:
        """True when calls can run now."""
        raise NotImplementedError

    def require(self) -> None:
        """Raise ``RuntimeError`` saying what is missing and how to fix it, unless available."""

    # -------------------------------------------------------------------- arrays

    def view(self, name: str, obj: Any) -> Any:
        """The caller's array as this target's array, without a copy where one can be avoided;
        ``TypeError`` saying how to fix the call for an array that lives elsewhere."""
        raise NotImplementedError

    def kernel_dtype(self, name: str, dtype: Any) -> np.dtype:
        """The dtype the kernels run in for an input of ``dtype`` (``TypeError`` if none)."""
        raise NotImplementedError

    def operand(self, name: str, a: Any, dtype: np.dtype, shape: tuple[int, ...]) -> Any:
        """``a`` as a C-contiguous array of ``dtype`` and ``shape`` (same element count) for a kernel."""
        raise NotImplementedError

    def buffer(self, name: str, out: Any) -> Any:
        """The caller's output array ``out`` as this target's array (never a copy: the kernel
        writes into it)."""
        return self.view(name, out)

    def contiguous(self, a: Any) -> bool:
        raise NotImplementedError

    def empty(self, shape: tuple[int, ...], dtype: Any) -> Any:
        raise NotImplementedError

    def zeros(self, shape: tuple[int, ...], dtype: Any) -> Any:
        raise NotImplementedError

    def copy(self, a: Any) -> Any:
        raise NotImplementedError

    def result(self, a: Any, shape: tuple[int, ...], dtype: np.dtype) -> Any:
        """A kernel output handed back: viewed as ``shape``, in the caller's ``dtype``."""
        return a.reshape(shape)

    def all_finite(self, x: Any) -> bool:
        raise NotImplementedError

    # -------------------------------------------------------------------- host transfers (adapters, tests)

    def to_target(self, a: np.ndarray) -> Any:
        """A host array copied to this target (the public API never does this implicitly)."""
        return a

    def to_host(self, a: Any) -> np.ndarray:
        return np.asarray(a)

    def synchronize(self) -> None:
        """Wait for the kernels launched so far."""

    # -------------------------------------------------------------------- placement

    @contextlib.contextmanager
    def scope(self, a: Any) -> Iterator[None]:
        """Run on the device holding ``a``; the caller's current device is restored after."""
        yield

    def placement(self, device: Any) -> contextlib.AbstractContextManager[None]:
        """The scope for ``init_state(device=...)``; ``None`` is the current device."""
        raise NotImplementedError

    # -------------------------------------------------------------------- kernels (SPEC §3, §5, §6)

    def forward(self, k: Launch, spikes: Any, membrane: Any, resets: Any, want_membrane: bool,
                want_resets: bool) -> None:  # fmt: skip
        """Spikes into ``spikes [T, N]``; ``membrane``/``resets`` ``[T, N]`` when asked (else any
        placeholder of the dtype)."""
        raise NotImplementedError

    def vjp(self, k: Launch, g: Any, dx: Any) -> tuple[Any, Any, float, float]:
        """dL/dX into ``dx [T, N]`` for ``G = g [T, N]``; returns ``(dW, db, sum_theta, sum_alpha)``:
        dL/dW ``[T, T]`` and dL/db ``[T]`` (``None`` for PSU) and the two float64 sums of SPEC §5
        (dL/dtheta is ``-sum_theta``)."""
        raise NotImplementedError

    def step(self, k: Launch, t: int, history: Any, h: Any, r: Any, q: Any, spikes: Any, membrane: Any,
             resets: Any) -> None:  # fmt: skip
        """Online step ``t`` for every neuron of ``k.x = x_t [N]``: ``h, r, q`` ``[N]`` (and row ``t``
        of ``history [T, N]``, IPSU/RPSU) updated in place; ``spikes``, ``membrane`` ``[N]`` and,
        when sampled, ``resets [N]`` written."""
        raise NotImplementedError

    def threefry(self, k0: Any, k1: Any, c0: Any, c1: Any, out0: Any, out1: Any) -> None:
        """Threefry-2x32-20 over flat uint32 arrays."""
        raise NotImplementedError

    def uniforms(self, k0: int, k1: int, out: Any) -> None:
        """``out[t, n] = u`` of SPEC §6 (float64 ``[T, N]``)."""
        raise NotImplementedError


class CudaDevice(Device):
    """What the two GPU targets share: device arrays are taken as they are (no hidden copies or
    casts), float32/float64 only, C-contiguous."""

    SUPPORTED = (np.dtype(np.float32), np.dtype(np.float64))

    def kernel_dtype(self, name: str, dtype: Any) -> np.dtype:
        d = np.dtype(dtype)
        if d not in self.SUPPORTED:
            raise TypeError(f"{name} must be float32 or float64 for the CUDA kernels, got {d}")
        return d

    def operand(self, name: str, a: Any, dtype: np.dtype, shape: tuple[int, ...]) -> Any:
        if np.dtype(a.dtype) != dtype:
            what = "the dtype of x" if dtype.kind == "f" else "dtype"
            raise TypeError(f"{name} must have {what} ({dtype}), got {np.dtype(a.dtype)}")
        if not self.contiguous(a):
            raise ValueError(f"{name} must be C-contiguous (make a contiguous copy on the device first)")
        return a.reshape(shape)
