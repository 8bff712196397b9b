"""The learned mix of IPSU/RPSU and its two gradient products as BLAS GEMMs (SPEC §2, §5).

``L = W ⊙ M`` is lower triangular (``M[t, j] = 1`` for ``j <= t``), taken as ``where(M, W, 0)``
(:func:`lower`: a NaN above the diagonal never enters, SPEC §1). For ``X``, ``G`` ``[T, N]``:

* :func:`mix`: ``Y = L X`` (the forward's ``(W ⊙ M) X``);
* :func:`mix_transposed_add`: ``D += Lᵀ G`` (dL/dX's ``(W ⊙ M)ᵀ gV`` / ``(W ⊙ M)ᵀ gZ``);
* :func:`masked_outer`: ``(G Xᵀ) ⊙ M`` (dL/dW).

Each is done by row blocks of ``BLOCK`` steps that skip the zero blocks of the triangle, so
``K`` blocks cost ``(K + 1) / 2K`` of the dense product's flops; the products run in the
operands' dtype (float32 stays float32, no reduced-precision modes) on NumPy's BLAS, in
``PARTS`` slices of neurons run by as many Python threads (matmul releases the GIL) with BLAS
limited to one thread (:func:`one_blas_thread`): interleaved with the Numba kernels' threads, a
multi-threaded OpenBLAS stalled (2 cores, T = 1024, IPSU forward+backward: 360-3100 ms from call
to call; one BLAS thread: 320-350 ms). ``PARTS`` is fixed, so the sums (dL/dW adds its slices'
partial products in order) have the same bits for any thread count.

Causality whatever the values (SPEC §1): a non-finite ``x[j]`` would reach earlier rows through
``0 * NaN`` of the zero blocks, so :func:`mix` multiplies ``Xf = where(isfinite(X), X, 0)`` and
adds ``cumsum_t(X - Xf)``: zero before a neuron's first non-finite step, non-finite from it on.
Only computed when :func:`psu_numba.cpu.kernels.all_finite` finds one (one vectorised pass).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from threadpoolctl import ThreadpoolController

from psu_numba.cpu import kernels

#: Steps per row block: large enough for BLAS to run at speed, small enough that the skipped
#: blocks above the diagonal save most of the upper half (T = 1024: 8 blocks, 56% of the flops).
BLOCK = 128
#: Slices of neurons the products are split in, one Python thread (one BLAS thread) each.
PARTS = 2


@functools.cache
def _controller() -> ThreadpoolController:
    return ThreadpoolController()  # scans the loaded libraries once


@functools.cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(PARTS, thread_name_prefix="psu-numba-blas")


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """The BLAS libraries of this process run on one thread inside (restored on exit)."""
    with _controller().limit(limits=1, user_api="blas"):
        yield


def _by_parts(fn: Callable[[int, int], Any], n: int) -> list[Any]:
    """``[fn(c0, c1) for each of the PARTS slices [c0, c1) of n neurons]``, in parallel."""

    def run(k: int) -> Any:
        with np.errstate(all="ignore"):  # per thread; a non-finite input is allowed (SPEC §1)
            return fn(n * k // PARTS, n * (k + 1) // PARTS)

    with one_blas_thread():
        return list(_pool().map(run, range(PARTS)))


def lower(w: np.ndarray) -> np.ndarray:
    """``W ⊙ M`` as ``where(M, W, 0)`` (``np.tril`` selects; it never multiplies by the mask)."""
    return np.tril(w)


def _blocks(T: int) -> range:
    return range(0, T, BLOCK)


def mix(lw: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``Y = L X`` for lower-triangular ``lw [T, T]`` and ``x [T, N]``; causal for any values."""
    T, n = x.shape
    finite = bool(kernels.all_finite(x))
    with np.errstate(all="ignore"):
        xf = x if finite else np.where(np.isfinite(x), x, x.dtype.type(0))
    out = np.empty_like(x)

    def part(c0: int, c1: int) -> None:
        for i0 in _blocks(T):
            i1 = min(T, i0 + BLOCK)
            np.matmul(lw[i0:i1, :i1], xf[:i1, c0:c1], out=out[i0:i1, c0:c1])
        if not finite:
            out[:, c0:c1] += np.cumsum(x[:, c0:c1] - xf[:, c0:c1], axis=0)

    _by_parts(part, n)
    return out


def mix_transposed_add(lw: np.ndarray, g: np.ndarray, out: np.ndarray) -> None:
    """``out += Lᵀ G``: row block ``[j0, j1)`` of ``Lᵀ G`` only needs ``G``'s rows ``t >= j0``."""
    T, n = g.shape

    def part(c0: int, c1: int) -> None:
        for j0 in _blocks(T):
            j1 = min(T, j0 + BLOCK)
            out[j0:j1, c0:c1] += lw[j0:, j0:j1].T @ g[j0:, c0:c1]

    _by_parts(part, n)


def masked_outer(g: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``(G Xᵀ) ⊙ M`` ``[T, T]``: row block ``[i0, i1)`` only needs ``X``'s rows ``j < i1``."""
    T, n = g.shape

    def part(c0: int, c1: int) -> np.ndarray:
        acc = np.zeros((T, T), g.dtype)
        for i0 in _blocks(T):
            i1 = min(T, i0 + BLOCK)
            acc[i0:i1, :i1] = g[i0:i1, c0:c1] @ x[:i1, c0:c1].T
        return acc

    partial = _by_parts(part, n)
    out = partial[0]
    for p in partial[1:]:
        out += p
    return np.tril(out)
