"""IPSU and RPSU (SPEC §2, §5): the learned ``[T, T]`` matrix ``W ⊙ M`` mixes the whole input
history, so both are computed as GEMMs.

    IPSU:  V = ((W ⊙ M) - gamma B) X + b                                one GEMM with K = W ⊙ M - gamma B
    RPSU:  P = sigma((W ⊙ M) X + b),  V = A X - gamma B Q

Backward (``gV = G dS/dV``)::

    IPSU:  dX = K^T gV,  dW = (gV X^T) ⊙ M,  db = sum_n gV
    RPSU:  gZ = -gamma (B^T gV) sigma(Z) sigma(-Z),  dX = A^T gV + (W ⊙ M)^T gZ,  dW = (gZ X^T) ⊙ M,
           db = sum_n gZ

``W ⊙ M`` is ``tril(W)``, which selects (an upper-triangle NaN is not multiplied by 0); the
time-mixing products are causal whatever the values (:mod:`psu_torch._causal`); ``sigma(Z)
sigma(-Z)`` comes from the logit ``Z``, not from a rounded ``P`` (SPEC §5).

Functions take ``X [T, N]``, ``W``, ``b`` in the compute dtype and the checked call ``p``
(:class:`Params`); each backward returns the final ``(dL/dX, dL/dW, dL/db, dL/dtheta, dL/dalpha)``,
the scalars as 0-d tensors (``None`` unless ``need_scalars``).
"""

from __future__ import annotations

import torch

from psu_core.checks import Params
from psu_torch._causal import causal_addmm, causal_addmm_, causal_mm
from psu_torch._decay import decay_matrices
from psu_torch._surrogate import scalar_grads, scaled_surrogate
from psu_torch.random import draw_resets


# ------------------------------------------------------------------------------------------- IPSU
def _ipsu_matrix(W: torch.Tensor, p: Params) -> tuple[torch.Tensor, torch.Tensor]:
    _, B = decay_matrices(W.shape[0], p.decay, W.dtype, W.device)
    return torch.tril(W) - p.gamma * B, B


def ipsu_forward(
    X: torch.Tensor, W: torch.Tensor, b: torch.Tensor, p: Params, want_v: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``S [T, N]`` and ``V`` (if wanted)."""
    K, _ = _ipsu_matrix(W, p)
    V = causal_addmm(b[:, None], K, X)
    S = torch.gt(V, p.threshold, out=torch.empty_like(V)) if want_v else torch.gt(V, p.threshold, out=V)
    return S, (V if want_v else None)


def ipsu_backward(X: torch.Tensor, G: torch.Tensor, W: torch.Tensor, b: torch.Tensor, p: Params, need_scalars: bool):
    """Final gradients (module docstring). The tied-threshold term ``sum(gV * B X)`` is
    ``sum(B ⊙ (gV X^T))``: free once ``dW`` exists. Two ``[T, N]`` temporaries: ``V - theta``
    (then ``dL/dX``) and ``gV``."""
    s = 0.5 * p.surrogate_alpha
    K, B = _ipsu_matrix(W, p)
    D = causal_addmm(b[:, None], K, X).sub_(p.threshold)
    GV = scaled_surrogate(G, D, p.surrogate_alpha, out=torch.empty_like(X))  # gV / s
    sum_gvd = (GV * D).sum() if need_scalars else None
    dX = torch.mm(K.T, GV, out=D).mul_(s)
    GX = torch.mm(GV, X.T)  # gV X^T / s, [T, T]
    dW = torch.tril(GX).mul_(s)
    row = GV.sum(dim=1)
    db = row * s
    if not need_scalars:
        return dX, dW, db, None, None
    bq = (B * GX).sum() if p.tied else None
    return (dX, dW, db, *scalar_grads(p, sum_gvd, row.sum(), bq, s))


# ------------------------------------------------------------------------------------------- RPSU
def _rpsu_membrane(
    X: torch.Tensor, W: torch.Tensor, b: torch.Tensor, p: Params, R: torch.Tensor | None, neuron_offset: int = 0,
    complement: bool = False,
):  # fmt: skip
    """``(V, P, R, Q, A, B, Pc)``; ``Pc = sigma(-Z)`` with ``complement``, else ``None``."""
    # Separate [T, N] buffers (not one stacked [2T, N]) so that each can be reused or returned
    # on its own without pinning the other.
    A, B = decay_matrices(X.shape[0], p.decay, X.dtype, X.device)
    V = causal_mm(A, X)  # H
    Z = causal_addmm(b[:, None], torch.tril(W), X)
    Pc = torch.neg(Z).sigmoid_() if complement else None
    P = Z.sigmoid_()
    if p.sampled and R is None:
        R = draw_resets(p.seed, P, neuron_offset=neuron_offset)
    Q = P if R is None else R.to(X.dtype)
    causal_addmm_(V, B, Q, alpha=-p.gamma)
    return V, P, R, Q, A, B, Pc


def rpsu_forward(
    X: torch.Tensor, W: torch.Tensor, b: torch.Tensor, p: Params, want_v: bool, neuron_offset: int = 0
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """``S [T, N]``, ``V`` (if wanted) and ``R`` (bool, sampled mode; neurons ``neuron_offset ..``
    of the whole call)."""
    V, P, R, _, _, _, _ = _rpsu_membrane(X, W, b, p, None, neuron_offset)
    S = torch.gt(V, p.threshold, out=P)
    return S, (V if want_v else None), R


def rpsu_backward(
    X: torch.Tensor, G: torch.Tensor, R: torch.Tensor | None, W: torch.Tensor, b: torch.Tensor, p: Params,
    need_scalars: bool,
):  # fmt: skip
    """Final gradients (module docstring). Three ``[T, N]`` temporaries, each reused: ``V - theta``
    -> ``c = B^T gV`` -> ``dL/dX``; ``P`` -> ``gZ``; ``gV``."""
    s = 0.5 * p.surrogate_alpha
    V, P, R, Q, A, B, Pc = _rpsu_membrane(X, W, b, p, R, complement=True)
    D = V.sub_(p.threshold)
    GV = scaled_surrogate(G, D, p.surrogate_alpha, out=torch.empty_like(X))  # gV / s
    sums = ((GV * D).sum(), GV.sum()) if need_scalars else None
    C = torch.mm(B.T, GV, out=D)  # c = B^T gV / s
    bq = (C * Q).sum() if need_scalars and p.tied else None
    GZ = P.mul_(Pc).mul_(C).mul_(-p.gamma)  # gZ / s
    dX = torch.mm(A.T, GV, out=C)
    dX.addmm_(torch.tril(W).T, GZ).mul_(s)
    dW = torch.tril(torch.mm(GZ, X.T)).mul_(s)
    db = GZ.sum(dim=1).mul_(s)
    if sums is None:
        return dX, dW, db, None, None
    return (dX, dW, db, *scalar_grads(p, *sums, bq, s))
