"""PSU in matrix form (SPEC §2, §5): ``V = A X - gamma B Q`` as two GEMMs with ``[T, T]`` matrices.

Fewer, larger operations than the recurrence: it wins when ``N`` is too small for per-row operations
to amortise Python overhead (measured, see :func:`psu_torch._methods.choose_psu_method`).

Backward::

    gV = G dS/dV,   C = B^T gV,   dL/dX = A^T (gV - gamma C sigma(H) sigma(-H))

(``sigma(H) sigma(-H)`` from the logit, not ``P (1 - P)`` from a rounded ``P``: SPEC §5). The
time-mixing products are causal whatever the values (:mod:`psu_torch._causal`).

Functions take ``X [T, N]`` in the compute dtype and the checked call ``p`` (:class:`Params`).
"""

from __future__ import annotations

import torch

from psu_core.checks import Params
from psu_torch._causal import causal_addmm_, causal_mm
from psu_torch._decay import decay_matrices
from psu_torch._sums import total
from psu_torch._surrogate import scalar_grads, scaled_surrogate
from psu_torch.random import draw_resets


def _membrane(X: torch.Tensor, p: Params, R: torch.Tensor | None, neuron_offset: int = 0, complement: bool = False):
    """``(V, P, R, Q, B, Pc)``: the membrane, the probabilities, the draws (drawn here in sampled mode
    when ``R`` is not given, for neurons ``neuron_offset ..`` of the whole call), the reset input
    ``Q``, the matrix ``B`` and, with ``complement``, ``sigma(-H)`` (else ``None``)."""
    A, B = decay_matrices(X.shape[0], p.decay, X.dtype, X.device)
    V = causal_mm(A, X)
    P = torch.sigmoid(V)
    Pc = torch.neg(V).sigmoid_() if complement else None
    if p.sampled and R is None:
        R = draw_resets(p.seed, P, neuron_offset=neuron_offset)
    Q = P if R is None else R.to(X.dtype)
    causal_addmm_(V, B, Q, alpha=-p.gamma)
    return V, P, R, Q, B, Pc


def psu_forward_dense(
    X: torch.Tensor, p: Params, want_v: bool, neuron_offset: int = 0
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """``S [T, N]``, ``V`` (if wanted) and ``R`` (bool, sampled mode; neurons ``neuron_offset ..``
    of the whole call)."""
    V, P, R, _, _, _ = _membrane(X, p, None, neuron_offset)
    S = torch.gt(V, p.threshold, out=P)
    return S, (V if want_v else None), R


def psu_forward_dense_saving(
    X: torch.Tensor, p: Params, want_v: bool, neuron_offset: int = 0
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None, tuple[torch.Tensor, ...]]:
    """:func:`psu_forward_dense` plus what :func:`psu_backward_dense_saved` reads, ``(D, P', Q)``
    with ``D = V - theta`` and ``P' = sigma(H) sigma(-H)``: for small inputs, where the backward's
    recompute (two GEMMs, two causality checks, a sigmoid) costs more than keeping three ``[T, N]``
    arrays."""
    V, P, R, Q, _, Pc = _membrane(X, p, None, neuron_offset, complement=True)
    S = torch.gt(V, p.threshold, out=torch.empty_like(X))
    D = torch.sub(V, p.threshold)
    return S, (V if want_v else None), R, (D, Pc.mul_(P), Q)


def psu_backward_dense_saved(
    saved: tuple[torch.Tensor, ...], G: torch.Tensor, p: Params, need_scalars: bool
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """:func:`psu_backward_dense` from the intermediates of :func:`psu_forward_dense_saving` (read,
    never written: a graph kept with ``retain_graph`` may run its backward again)."""
    D, PPc, Q = saved
    A, B = decay_matrices(D.shape[0], p.decay, D.dtype, D.device)
    return _backward(A, B, D, PPc, Q, G, p, need_scalars)


def psu_backward_dense(
    X: torch.Tensor, G: torch.Tensor, R: torch.Tensor | None, p: Params, need_scalars: bool
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """``(dL/dX, dL/dtheta, dL/dalpha)``; the scalars are 0-d tensors, ``None`` unless ``need_scalars``."""
    V, P, R, Q, B, Pc = _membrane(X, p, R, complement=True)
    A, _ = decay_matrices(X.shape[0], p.decay, X.dtype, X.device)
    return _backward(A, B, V.sub_(p.threshold), Pc.mul_(P), Q, G, p, need_scalars)


def _backward(A, B, D, PPc, Q, G, p: Params, need_scalars: bool):
    """``gV = G dS/dV``, ``C = B^T gV``, ``dL/dX = A^T (gV - gamma C P')`` and the scalars, from
    ``D = V - theta``, ``P' = sigma(H) sigma(-H)`` and ``Q`` (none of them written)."""
    s = 0.5 * p.surrogate_alpha
    GV = scaled_surrogate(G, D, p.surrogate_alpha, out=torch.empty_like(D))  # gV / s
    C = B.T @ GV
    d_theta = d_alpha = None
    if need_scalars:
        # sum(gV * B Q) = sum((B^T gV) * Q)
        bq = total(C, Q) if p.tied else None
        d_theta, d_alpha = scalar_grads(p, total(GV, D), total(GV), bq, s)
    GV.add_(C.mul_(PPc), alpha=-p.gamma)
    dX = torch.mm(A.T, GV).mul_(s) if s != 1.0 else A.T @ GV
    return dX, d_theta, d_alpha
