"""The learned mix of IPSU/RPSU and its two gradient products as BLAS GEMMs (SPEC §2, §5).

``L = W ⊙ M`` is lower triangular (``M[t, j] = 1`` for ``j <= t``), taken as ``where(M, W, 0)``
(:func:`lower`: a NaN above the diagonal never enters, SPEC §1). For ``X``, ``G`` ``[T, N]``:

* :func:`mix`: ``Y = L X`` (the forward's ``(W ⊙ M) X``);
* :func:`mix_transposed_add`: ``D += Lᵀ G`` (dL/dX's ``(W ⊙ M)ᵀ gV`` / ``(W ⊙ M)ᵀ gZ``);
* :func:`masked_outer`: ``(G Xᵀ) ⊙ M`` (dL/dW).

Each is done by row blocks of ``BLOCK`` steps that skip the zero blocks of the triangle, so
``K`` blocks cost ``(K + 1) / 2K`` of the dense product's flops; the products run in the
operands' dtype (float32 stays float32, no reduced-precision modes) on NumPy's BLAS, which
releases the GIL and uses every core.

Causality whatever the values (SPEC §1): a non-finite ``x[j]`` would reach earlier rows through
``0 * NaN`` of the zero blocks, so :func:`mix` multiplies ``Xf = where(isfinite(X), X, 0)`` and
adds ``cumsum_t(X - Xf)``: zero before a neuron's first non-finite step, non-finite from it on.
Only computed when :func:`psu_numba.cpu.kernels.all_finite` finds one (one vectorised pass).
"""

from __future__ import annotations

import numpy as np

from psu_numba.cpu import kernels

#: Steps per row block: large enough for BLAS to run at speed, small enough that the skipped
#: blocks above the diagonal save most of the upper half (T = 1024: 8 blocks, 56% of the flops).
BLOCK = 128


def lower(w: np.ndarray) -> np.ndarray:
    """``W ⊙ M`` as ``where(M, W, 0)`` (``np.tril`` selects; it never multiplies by the mask)."""
    return np.tril(w)


def _blocks(T: int) -> range:
    return range(0, T, BLOCK)


def mix(lw: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``Y = L X`` for lower-triangular ``lw [T, T]`` and ``x [T, N]``; causal for any values."""
    T = x.shape[0]
    finite = bool(kernels.all_finite(x))
    xf = x if finite else np.where(np.isfinite(x), x, x.dtype.type(0))
    out = np.empty_like(x)
    with np.errstate(all="ignore"):  # a non-finite weight or input is allowed (SPEC §1): no warning
        for i0 in _blocks(T):
            i1 = min(T, i0 + BLOCK)
            np.matmul(lw[i0:i1, :i1], xf[:i1], out=out[i0:i1])
        if not finite:
            out += np.cumsum(x - xf, axis=0)
    return out


def mix_transposed_add(lw: np.ndarray, g: np.ndarray, out: np.ndarray) -> None:
    """``out += Lᵀ G``: row block ``[j0, j1)`` of ``Lᵀ G`` only needs ``G``'s rows ``t >= j0``."""
    T = g.shape[0]
    with np.errstate(all="ignore"):
        for j0 in _blocks(T):
            j1 = min(T, j0 + BLOCK)
            out[j0:j1] += lw[j0:, j0:j1].T @ g[j0:]


def masked_outer(g: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``(G Xᵀ) ⊙ M`` ``[T, T]``: row block ``[i0, i1)`` only needs ``X``'s rows ``j < i1``."""
    T = g.shape[0]
    out = np.zeros((T, T), g.dtype)
    with np.errstate(all="ignore"):
        for i0 in _blocks(T):
            i1 = min(T, i0 + BLOCK)
            out[i0:i1, :i1] = g[i0:i1] @ x[:i1].T
    return np.tril(out)
