"""The CPU target's edges: NumPy arrays, the Numba CPU kernels, and how work is split in blocks.

Inputs are anything :func:`numpy.asarray` takes (CUDA device arrays are refused rather than
copied to the host behind the caller's back). float32 and float64 run natively; float16 and
``ml_dtypes.bfloat16`` run in float32 and their results are cast back. Operands are converted
(cast, made contiguous) as needed.

IPSU/RPSU's learned mix ``(W ⊙ M) X`` and its gradient products are BLAS GEMMs
(:mod:`psu_numba.cpu.causal`) from ``GEMM_MIN_T`` steps on, fed to and from the recurrence
kernels; below that the kernels compute it in their neuron blocks (in cache, no ``[T, N]``
intermediate).
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from psu_core import checks
from psu_numba.common import Launch, is_floating
from psu_numba.cpu import causal, kernels
from psu_numba.device import Device

KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

#: Neurons per block of the forward kernel: its state rows (h, r, q, v) stay in L1 for any T.
FORWARD_BLOCK = 1024

#: From this horizon on, IPSU/RPSU's ``(W ⊙ M) X`` (O(T^2 N)) runs as BLAS GEMMs; below it the
#: product is small and the kernels' in-cache loops beat a ``[T, N]`` round trip through memory
#: (measured on 2 cores, T * N = 2^23: the loops were faster up to T = 64, even at T = 128).
GEMM_MIN_T = 128


def block_size(T: int) -> int:
    """Neurons per backward block: the block's state rows stay in L1 and its ``[T, block]``
    scratch within L2."""
    b = 32768 // max(T, 1)
    return int(max(16, min(1024, b - b % 16)))


def chunk_count(n_blocks: int, T: int, learned: bool) -> int:
    """Parallel chunks for the backward kernel; depends on the problem only, never on the thread
    count, so reductions add in the same order on every machine (same bits for any
    ``NUMBA_NUM_THREADS``). IPSU/RPSU keep one float64 ``[T, T]`` partial per chunk, so fewer."""
    cap = 64
    if learned:
        cap = max(1, min(cap, (1 << 21) // max(T * T, 1)))
    return max(1, min(n_blocks, cap))


class CpuDevice(Device):
    module = "psu_numba.cpu"

    def available(self) -> bool:
        return True

    def view(self, name: str, obj: Any) -> Any:
        if obj is None or isinstance(obj, np.ndarray):
            return obj
        if hasattr(obj, "__cuda_array_interface__"):
            raise TypeError(
                f"{name} is a CUDA device array; psu_numba.cpu takes NumPy arrays "
                "(use psu_numba.numba_cuda or psu_numba.cupy for device arrays)"
            )
        return np.asarray(obj)

    def kernel_dtype(self, name: str, dtype: Any) -> np.dtype:
        d = np.dtype(dtype)
        if not is_floating(d):
            raise TypeError(f"{name} must be a floating dtype (float16, bfloat16, float32, float64), got {d}")
        return checks.numpy_compute_dtype(d)

    def operand(self, name: str, a: Any, dtype: np.dtype, shape: tuple[int, ...]) -> Any:
        if a.size != int(np.prod(shape)):
            a = np.broadcast_to(a, shape)
        return np.ascontiguousarray(a, dtype=dtype).reshape(shape)

    def buffer(self, name: str, out: Any) -> Any:
        if not isinstance(out, np.ndarray):
            raise TypeError(f"{name} must be a NumPy array, got {type(out).__name__}")
        if not out.flags.writeable:
            raise ValueError(f"{name} must be writeable")
        return out

    def contiguous(self, a: Any) -> bool:
        return bool(a.flags.c_contiguous)

    def empty(self, shape: tuple[int, ...], dtype: Any) -> Any:
        return np.empty(shape, dtype)

    def zeros(self, shape: tuple[int, ...], dtype: Any) -> Any:
        return np.zeros(shape, dtype)

    def copy(self, a: Any) -> Any:
        return a.copy()

    def result(self, a: Any, shape: tuple[int, ...], dtype: np.dtype) -> Any:
        return a.reshape(shape).astype(dtype, copy=False)

    def all_finite(self, x: Any) -> bool:
        return bool(np.isfinite(x).all())

    def placement(self, device: Any) -> contextlib.AbstractContextManager[None]:
        if device not in (None, "cpu"):
            raise ValueError(f"device must be None or 'cpu' for psu_numba.cpu, got {device!r}")
        return contextlib.nullcontext()

    def forward(self, k: Launch, spikes: Any, membrane: Any, resets: Any, want_membrane: bool,
                want_resets: bool) -> None:  # fmt: skip
        a_hi, a_lo, gamma, theta, _, k0, k1 = k.scalars
        lw, mixed = self._mixed(k)
        kernels.forward_kernel(k.params.code, k.x, k.w, k.b, mixed, lw is not None, a_hi, a_lo, gamma,
                               theta, k.params.sampled, k0, k1, FORWARD_BLOCK, spikes, membrane, resets,
                               want_membrane, want_resets)  # fmt: skip

    @staticmethod
    def _mixed(k: Launch) -> tuple[Any, Any]:
        """``(W ⊙ M, (W ⊙ M) X)`` by BLAS for IPSU/RPSU from ``GEMM_MIN_T`` steps; else ``None``
        and a ``[1, 1]`` placeholder (the kernels mix in their blocks)."""
        if not k.learned or k.T < GEMM_MIN_T:
            return None, np.zeros((1, 1), k.dtype)
        lw = causal.lower(k.w)
        return lw, causal.mix(lw, k.x)

    def vjp(self, k: Launch, g: Any, dx: Any) -> tuple[Any, Any, float, float]:
        T, n = k.T, k.n
        block = block_size(T)
        lw, mixed = self._mixed(k)
        premixed = lw is not None
        n_chunks = chunk_count((n + block - 1) // block, T, k.learned and not premixed)
        dw_part = np.zeros((n_chunks, T, T) if k.learned and not premixed else (1, 1, 1), np.float64)
        db_part = np.zeros((n_chunks, T) if k.learned else (1, 1), np.float64)
        scalar_part = np.zeros((n_chunks, 2), np.float64)
        src = np.empty((T, n) if premixed else (1, 1), k.dtype)
        a_hi, a_lo, gamma, theta, alpha, k0, k1 = k.scalars
        p = k.params
        kernels.vjp_kernel(p.code, k.x, g, k.w, k.b, mixed, premixed, a_hi, a_lo, gamma, theta, alpha, p.tied,
                           p.sampled, k0, k1, block, n_chunks, dx, src, dw_part, db_part, scalar_part)  # fmt: skip
        sums = scalar_part.sum(axis=0)  # chunk order is fixed: same bits on every run
        if not k.learned:
            return None, None, float(sums[0]), float(sums[1])
        if premixed:
            causal.mix_transposed_add(lw, src, dx)
            dw = causal.masked_outer(src, k.x)
        else:
            dw = dw_part.sum(axis=0)
        return dw, db_part.sum(axis=0), float(sums[0]), float(sums[1])

    def step(self, k: Launch, t: int, history: Any, h: Any, r: Any, q: Any, spikes: Any, membrane: Any,
             resets: Any) -> None:  # fmt: skip
        a_hi, a_lo, gamma, theta, _, k0, k1 = k.scalars
        kernels.step_kernel(k.params.code, t, k.x, history, k.w, k.b, a_hi, a_lo, gamma, theta, k.params.sampled,
                            k0, k1, h, r, q, spikes, membrane, resets)  # fmt: skip

    def threefry(self, k0: Any, k1: Any, c0: Any, c1: Any, out0: Any, out1: Any) -> None:
        kernels.threefry_kernel(k0, k1, c0, c1, out0, out1)

    def uniforms(self, k0: int, k1: int, out: Any) -> None:
        kernels.uniforms_kernel(np.uint64(k0), np.uint64(k1), out)
