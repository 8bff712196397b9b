"""PSU in chunks: the dense form on blocks of ``L`` steps, with carries between blocks.

For a block of steps ``t0 <= t < t1`` (``n = t1 - t0``, ``i = t - t0``), with ``A_l``, ``B_l`` the
``l x l`` decay matrices::

    H_blk = A_l X_blk + a^(i+1) h_{t0-1}
    V_blk = H_blk - gamma (B_l Q_blk + a^i rho_{t0})          rho_t = sum_{j<t} a^(t-j) q_j
    rho_{t1} = a^n rho_{t0} + sum_i a^(n-i) q_{t0+i}

and in reverse for the backward pass (``c = B^T gV``, ``e = A^T gH``)::

    c_blk = B_l^T gV_blk + a^(n-i) kappa_{t1}                 kappa_t = sum_{i>=t} a^(i-t) gV_i
    e_blk = A_l^T gH_blk + a^(n-i+1) eps_{t1}                 eps_t = sum_{i>=t} a^(i-t) gH_i

``O(T L N)`` work in about ten operations per block instead of per step: fewer, larger operations
than the recurrence (less dispatch and thread synchronisation), far less work than the dense form
at large ``T``.

The products inside a block are causal whatever the values (:mod:`psu_torch._causal`). The carries
``h``, ``rho``, ``kappa``, ``eps`` are multiplied by ``a^L`` at every block; in float32 that power is
applied as ``hi + lo`` (:func:`psu_torch._decay.decay_add`), so its rounding is not multiplied into
them ``T / L`` times (SPEC §9). The backward pass keeps the logit ``H`` and forms
``sigma(H) sigma(-H)`` from it (SPEC §5), not ``p (1 - p)`` from a rounded ``p``.

Functions take ``X [T, N]`` in the compute dtype and the checked call ``p`` (:class:`Params`).
"""

from __future__ import annotations

import torch

from psu_core.checks import Params
from psu_torch._causal import causal_addmm_, causal_mm
from psu_torch._decay import decay_add, decay_matrices, decay_powers, power_split
from psu_torch._surrogate import HALF_PI, scalar_grads
from psu_torch.random import UniformRows

#: Block length (measured: 8-32 alike at T = 256, 64 slower).
CHUNK = 32


class _Block:
    """The decay matrices and powers of one block length ``L``."""

    def __init__(self, L: int, a: float, dtype: torch.dtype, device: torch.device) -> None:
        self.a, self.dtype, self.device = a, dtype, device
        self.A, self.B = decay_matrices(L, a, dtype, device)
        i = torch.arange(L, dtype=torch.float64)
        self.up1 = decay_powers(a, i + 1, dtype, device)  # a^(i+1)
        self.up0 = decay_powers(a, i, dtype, device)  # a^i

    def down(self, n: int, shift: int) -> torch.Tensor:
        """``a^(n - i + shift)`` for ``i = 0 .. n-1``."""
        return decay_powers(self.a, n - torch.arange(n, dtype=torch.float64) + shift, self.dtype, self.device)

    def carry_h(self, Hb: torch.Tensor, h: torch.Tensor, t0: int, more: bool, tmp, tmp2) -> None:
        """Add ``a^(i+1) h`` to the block ``Hb`` (``n`` rows); when ``more`` blocks follow, make ``h``
        the block's last row as ``Hb_own[n-1] + a^n h`` with ``a^n`` split (module docstring)."""
        n = Hb.shape[0]
        if more:
            tmp.copy_(Hb[n - 1])
        if t0:
            Hb.addr_(self.up1[:n], h)
        if more:
            if t0:
                decay_add(tmp, h, power_split(self.a, n, self.dtype), out=h, tmp=tmp2)
            else:
                h.copy_(tmp)

    def carry_sum(self, acc: torch.Tensor, M: torch.Tensor, w: torch.Tensor, n: int, tmp, tmp2) -> None:
        """``acc = a^n acc + M^T w`` (``M [n, N]``, ``w [n]``), ``a^n`` split."""
        torch.mv(M.T, w, out=tmp)
        decay_add(tmp, acc, power_split(self.a, n, self.dtype), out=acc, tmp=tmp2)


def psu_forward_chunked(
    X: torch.Tensor, p: Params, want_v: bool, neuron_offset: int = 0, L: int = CHUNK
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """``S [T, N]``, ``V`` (if wanted) and ``R`` (bool, sampled mode, drawn for neurons
    ``neuron_offset .. neuron_offset + N`` of the whole call), a block of ``L`` steps at a time."""
    T, N = X.shape
    L = max(1, min(L, T))
    a, gamma = p.decay, p.gamma
    dt, dev = X.dtype, X.device
    blk = _Block(L, a, dt, dev)
    S = torch.empty_like(X)
    V = torch.empty_like(X) if want_v else None
    R = torch.empty((T, N), dtype=torch.bool, device=dev) if p.sampled else None
    stream = UniformRows(p.seed, T, N, dt, dev, neuron_offset) if p.sampled else None
    pbuf = torch.empty((L, N), dtype=dt, device=dev)
    h_prev, rho, tmp, tmp2 = torch.zeros((4, N), dtype=dt, device=dev)
    for t0 in range(0, T, L):
        t1 = min(T, t0 + L)
        n = t1 - t0
        # The block is built in the output rows themselves (V, else S), then compared in place.
        Hb = V[t0:t1] if V is not None else S[t0:t1]
        causal_mm(blk.A[:n, :n], X[t0:t1], out=Hb)
        blk.carry_h(Hb, h_prev, t0, t1 < T, tmp, tmp2)
        Pb = torch.sigmoid(Hb, out=pbuf[:n])
        if R is not None:
            for t in range(t0, t1):
                torch.lt(stream.row(t), Pb[t - t0], out=R[t])
            Qb = R[t0:t1].to(dt)
        else:
            Qb = Pb
        causal_addmm_(Hb, blk.B[:n, :n], Qb, alpha=-gamma)  # now V_blk
        if t0:
            Hb.addr_(blk.up0[:n], rho, alpha=-gamma)
        if t1 < T:
            blk.carry_sum(rho, Qb, blk.down(n, 0), n, tmp, tmp2)
        torch.gt(Hb, p.threshold, out=S[t0:t1])
    return S, V, R


def psu_backward_chunked(
    X: torch.Tensor, G: torch.Tensor, R: torch.Tensor | None, p: Params, need_scalars: bool, L: int = CHUNK
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """``(dL/dX, dL/dtheta, dL/dalpha)`` a block at a time (forward recompute, reverse blocks); the
    scalars are 0-d tensors, ``None`` unless ``need_scalars``."""
    T, N = X.shape
    L = max(1, min(L, T))
    a, gamma, alpha = p.decay, p.gamma, p.surrogate_alpha
    dt, dev = X.dtype, X.device
    blk = _Block(L, a, dt, dev)
    s = 0.5 * alpha
    k2 = (HALF_PI * alpha) ** 2
    inv_s = torch.full((), 1.0 / s, dtype=dt, device=dev)
    GV = torch.empty_like(X)  # gV, then gH
    PP = torch.empty_like(X)  # H, then dL/dX
    work, work2, work3 = torch.empty((3, L, N), dtype=dt, device=dev)
    h_prev, rho, tmp, tmp2 = torch.zeros((4, N), dtype=dt, device=dev)
    acc = torch.zeros((3,), dtype=dt, device=dev) if need_scalars else None  # sum(gV D), sum(gV), sum(gV B Q)
    for t0 in range(0, T, L):
        t1 = min(T, t0 + L)
        n = t1 - t0
        Hb = PP[t0:t1]
        causal_mm(blk.A[:n, :n], X[t0:t1], out=Hb)
        blk.carry_h(Hb, h_prev, t0, t1 < T, tmp, tmp2)
        Pb = torch.sigmoid(Hb, out=work[:n])
        Qb = Pb if R is None else R[t0:t1].to(dt)
        Vb = torch.addmm(Hb, blk.B[:n, :n], Qb, alpha=-gamma, out=work2[:n])
        if t0:
            Vb.addr_(blk.up0[:n], rho, alpha=-gamma)
        if t1 < T:
            blk.carry_sum(rho, Qb, blk.down(n, 0), n, tmp, tmp2)
        D = Vb.sub_(p.threshold)
        GVb = GV[t0:t1]
        torch.addcmul(inv_s, D, D, value=k2 / s, out=GVb)
        torch.div(G[t0:t1], GVb, out=GVb)  # gV
        if acc is not None:
            torch.add(acc[0], torch.dot(GVb.reshape(-1), D.reshape(-1)), out=acc[0])
            torch.add(acc[1], GVb.sum(), out=acc[1])
    kappa, eps = torch.zeros((2, N), dtype=dt, device=dev)
    last = (T - 1) // L * L
    for t0 in range(last, -1, -L):
        t1 = min(T, t0 + L)
        n = t1 - t0
        GVb, PPb = GV[t0:t1], PP[t0:t1]
        cb = torch.mm(blk.B[:n, :n].T, GVb, out=work[:n])
        if t1 < T:
            cb.addr_(blk.down(n, 0), kappa)
        Pb = torch.sigmoid(PPb, out=work2[:n])
        if acc is not None and p.tied:
            Qb = Pb if R is None else R[t0:t1].to(dt)
            torch.add(acc[2], torch.dot(cb.reshape(-1), Qb.reshape(-1)), out=acc[2])
        if t0:
            blk.carry_sum(kappa, GVb, blk.up0[:n], n, tmp, tmp2)
        dP = torch.neg(PPb, out=work3[:n]).sigmoid_().mul_(Pb).mul_(cb)  # sigma(H) sigma(-H) c
        GVb.add_(dP, alpha=-gamma)  # gH
        torch.mm(blk.A[:n, :n].T, GVb, out=PPb)  # dL/dX_blk, inside the block
        if t1 < T:
            PPb.addr_(blk.down(n, 1), eps)
        if t0:
            blk.carry_sum(eps, GVb, blk.up0[:n], n, tmp, tmp2)
    if acc is None:
        return PP, None, None
    return (PP, *scalar_grads(p, acc[0], acc[1], acc[2], 1.0))
