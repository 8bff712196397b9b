"""PSU as one pass over time of element-wise work on ``[N]`` rows (SPEC §3, §5).

Forward, per step::

    h_t = a (h_{t-1} + x_t),  p_t = sigma(h_t),  r_t = a (r_{t-1} + q_{t-1}),  v_t = h_t - gamma r_t

with ``q = p`` (expected reset) or ``q = R = [u_t < p_t]`` (sampled). Each row stays in cache between
the operations that use it, and nothing of size ``[T, N]`` is allocated beyond the outputs.

The recurrences run on states scaled by ``1/a``, so that each update is one fused operation
``torch.add(u, state, alpha=a)`` instead of an add and a multiply::

    h'_t = h_t / a = a h'_{t-1} + x_t            r'_t = r_t / a = a r'_{t-1} + q_{t-1}
    w_t  = v_t / a = h'_t - gamma r'_t           s_t  = [w_t > theta / a]

(``a > 0``, so the comparison is the same one, up to rounding of ``theta / a``.) Each update
``u + a state`` applies ``a`` as ``a_hi + a_lo`` in float32 (:func:`psu_torch._decay.decay_add`), so
the rounding of ``a`` is not multiplied into the state at every step (SPEC §9). The online step
(:mod:`psu_torch.online`) runs these operations, so it reproduces this form's spikes and membranes
bit for bit; the Triton kernels run the same recurrences.

Functions take ``X [T, N]`` in the compute dtype and the checked call ``p`` (:class:`Params`).
"""

from __future__ import annotations

import torch

from psu_core.checks import Params
from psu_torch._decay import decay_add, split
from psu_torch._surrogate import HALF_PI
from psu_torch.random import UniformRows

# Neurons per column slice: PyTorch's grain size, so that every row operation runs on one thread
# (rows longer than it are split across threads, and each operation then ends in a thread barrier,
# which waits milliseconds for a descheduled thread on a busy machine) and a row stays in cache.
SLICE = 32768


def _slices(N: int) -> list[tuple[int, int]]:
    """``(n0, n1)`` column ranges of at most :data:`SLICE` neurons covering ``0 .. N`` (the neurons
    are independent: each slice runs the whole recurrence on its own)."""
    return [(n0, min(N, n0 + SLICE)) for n0 in range(0, max(N, 1), SLICE)]


def psu_forward_recurrence(
    X: torch.Tensor, p: Params, want_v: bool, neuron_offset: int = 0
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """``S [T, N]``, ``V`` (if wanted) and ``R`` (bool, sampled mode, drawn for neurons
    ``neuron_offset .. neuron_offset + N`` of the whole call) in one pass over time.

    Six row operations per step: h', p = sigma(a h'), r', w, s (plus v = a w when wanted; plus
    one per state update when ``a`` is split: float32 with ``a`` not exact, :func:`~psu_torch._decay.split`).
    """
    T, N = X.shape
    S = torch.empty_like(X)
    V = torch.empty_like(X) if want_v else None
    R = torch.empty((T, N), dtype=torch.bool, device=X.device) if p.sampled else None
    for n0, n1 in _slices(N):
        _forward_slice(
            X[:, n0:n1], p, S[:, n0:n1], None if V is None else V[:, n0:n1], None if R is None else R[:, n0:n1],
            neuron_offset + n0,
        )  # fmt: skip
    return S, V, R


def _forward_slice(X, p: Params, S, V, R, neuron_offset: int) -> None:
    """The forward recurrence on the neurons of ``X [T, n]`` (a column slice), into ``S``, ``V``, ``R``."""
    T, N = X.shape
    a, gamma = p.decay, p.gamma
    a2 = split(a, X.dtype)
    stream = UniformRows(p.seed, T, N, X.dtype, X.device, neuron_offset) if p.sampled else None
    h = torch.zeros(N, dtype=X.dtype, device=X.device)
    r = torch.zeros(N, dtype=X.dtype, device=X.device)
    prob = torch.empty(N, dtype=X.dtype, device=X.device)
    w = torch.empty(N, dtype=X.dtype, device=X.device)
    limit = p.threshold / a
    for t in range(T):
        if t:
            decay_add(prob if R is None else R[t - 1], r, a2, out=r, tmp=w)
        decay_add(X[t], h, a2, out=h, tmp=w)
        torch.mul(h, a, out=prob).sigmoid_()
        if R is not None:
            torch.lt(stream.row(t), prob, out=R[t])
        torch.add(h, r, alpha=-gamma, out=w)
        torch.gt(w, limit, out=S[t])
        if V is not None:
            torch.mul(w, a, out=V[t])


def psu_backward_recurrence(
    X: torch.Tensor, G: torch.Tensor, R: torch.Tensor | None, p: Params, need_scalars: bool
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """``(dL/dX, dL/dtheta, dL/dalpha)`` by the recurrences of SPEC §5 (forward recompute, reverse
    sweep); the two scalars are 0-d tensors, ``None`` unless ``need_scalars``.

    ``g = a gV`` is formed directly (the constant folded into the surrogate's denominator), which
    makes every reverse update one fused operation::

        c_j  = a c_{j+1} + g_{j+1}                       (= B^T gV, unscaled)
        k_j  = g_j - gamma a c_j p'_j                    (= a gH_j)
        e_j  = k_j + a e_{j+1}                           (= A^T gH = dL/dX_j)

    with ``p'_j = sigma(z_j) sigma(-z_j)`` from the logit ``z_j = a h'_j`` (SPEC §5: not
    ``p (1 - p)`` from a rounded ``p``, which loses the digits of a saturated ``p``).

    The scalar sums accumulate per neuron in the forward recompute: ``sum(g d') = sum(gV (v -
    theta))`` with ``d' = (v - theta) / a``, and ``sum(g (r' + 1/a)) = sum(gV) + sum(gV B Q)`` when
    tied (one reduction for both terms of ``dL/dtheta``), else ``sum(g) = a sum(gV)``.
    """
    T, N = X.shape
    dX = torch.empty_like(X)
    # Per-neuron running sums, reduced once at the end: element-wise updates, no BLAS dot per step
    # (threaded BLAS level-1 calls cost milliseconds each on a busy machine).
    acc = torch.zeros((2, N), dtype=X.dtype, device=X.device) if need_scalars else None
    PP = None
    for n0, n1 in _slices(N):
        if PP is None or PP.shape[1] != n1 - n0:
            PP = X.new_empty((T, n1 - n0))  # p'_t = sigma(z_t) sigma(-z_t), reused by every slice
        _backward_slice(
            X[:, n0:n1], G[:, n0:n1], None if R is None else R[:, n0:n1], p, dX[:, n0:n1], PP,
            None if acc is None else acc[:, n0:n1],
        )  # fmt: skip
    if acc is None:
        return dX, None, None
    sums = acc.sum(dim=1)
    d_theta = -sums[1] if p.tied else sums[1] * (-1.0 / p.decay)
    return dX, d_theta, sums[0] / p.surrogate_alpha


def _backward_slice(X, G, R, p: Params, GV, PP, acc) -> None:
    """The backward recurrences on the neurons of a column slice: ``dL/dX`` into ``GV`` (which holds
    ``g = a gV`` until the reverse sweep), ``p'`` in ``PP``, the per-neuron sums added to ``acc``."""
    T, N = X.shape
    a, gamma, theta, alpha = p.decay, p.gamma, p.threshold, p.surrogate_alpha
    s = 0.5 * alpha
    k2 = (HALF_PI * alpha * a) ** 2  # (pi/2 alpha (v - theta))^2 = k2 d'^2
    a2 = split(a, X.dtype)
    h = torch.zeros(N, dtype=X.dtype, device=X.device)
    r = torch.zeros(N, dtype=X.dtype, device=X.device)
    prob = torch.empty(N, dtype=X.dtype, device=X.device)
    d = torch.empty(N, dtype=X.dtype, device=X.device)
    rr = torch.empty(N, dtype=X.dtype, device=X.device)
    # 1 / (a s) as a tensor: den' = (1 + k2 d'^2) / (a s), so G / den' = a s G / (1 + q^2) = a gV
    inv_as = torch.full((), 1.0 / (a * s), dtype=X.dtype, device=X.device)
    k2s = k2 / (a * s)
    # gamma == theta (tied, or a fixed reset scale equal to it) lets d' = h' - theta (r' + 1/a)
    fold = p.tied or gamma == theta
    limit = theta / a
    for t in range(T):
        if t:
            decay_add(prob if R is None else R[t - 1], r, a2, out=r, tmp=d)
        decay_add(X[t], h, a2, out=h, tmp=d)
        torch.mul(h, a, out=prob).sigmoid_()
        torch.mul(h, -a, out=PP[t]).sigmoid_().mul_(prob)
        if fold:
            torch.add(r, 1.0 / a, out=rr)  # r' + 1/a
            torch.add(h, rr, alpha=-theta, out=d)  # d' = (v - theta) / a
        else:
            torch.add(h, r, alpha=-gamma, out=d).sub_(limit)
        torch.addcmul(inv_as, d, d, value=k2s, out=GV[t])
        g = torch.div(G[t], GV[t], out=GV[t])
        if acc is not None:
            acc[0].addcmul_(g, d)
            if p.tied:
                acc[1].addcmul_(g, rr)
            else:
                acc[1].add_(g)
    c = torch.zeros(N, dtype=X.dtype, device=X.device)
    tmp, tmp2 = d, prob
    for j in range(T - 1, -1, -1):
        torch.mul(PP[j], c, out=tmp)
        torch.add(GV[j], tmp, alpha=-gamma * a, out=tmp)  # k_j
        if j:
            decay_add(GV[j], c, a2, out=c, tmp=tmp2)  # c_{j-1}
        if j == T - 1:
            GV[j].copy_(tmp)
        else:
            decay_add(tmp, GV[j + 1], a2, out=GV[j], tmp=tmp2)
