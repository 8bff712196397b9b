"""Forward and backward passes of PSU, IPSU and RPSU in eager PyTorch operations.

Every function here works on a ``[T, N]`` matrix ``X`` (time first, neurons flattened) in the
compute dtype (float32 or float64), and is device-agnostic. Nothing here records autograd history:
the custom operators in :mod:`psu_torch._autograd` call these and define the autograd rules.

Three forms of PSU (SPEC §2 and §3), equal in exact arithmetic:

* recurrence — one pass over time of element-wise work on ``[N]`` rows::

      h_t = a (h_{t-1} + x_t),  p_t = sigma(h_t),  r_t = a (r_{t-1} + q_{t-1}),  v_t = h_t - gamma r_t

  with ``q = p`` (expected reset) or ``q = R`` (sampled). Each row stays in cache between the
  operations that use it, and nothing of size ``[T, N]`` is allocated beyond the outputs.
* dense — ``H = A X``, ``V = H - gamma B Q`` as two GEMMs with a ``[T, T]`` matrix. Fewer, larger
  operations: it wins when ``N`` is too small for the per-row operations to amortise Python
  overhead (measured, see :func:`choose_psu_impl`).
* chunked — the dense form on blocks of ``L`` steps with carries between blocks: ``O(T L N)``
  work in a few operations per block.

The backward passes follow SPEC §5. They recompute ``H``, ``P`` and ``V`` from ``X`` rather than
saving them (only ``X`` and, in sampled mode, the drawn ``R`` as ``bool`` are kept), and compute
``G * dS/dV`` without the constant ``alpha / 2``, which is folded into the final recurrence or GEMM.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

from psu_torch import random as prandom

_HALF_PI = math.pi / 2
#: Block length of the chunked form (measured: 8-32 alike at T = 256, 64 slower).
CHUNK = 32


# --------------------------------------------------------------------------------------------
# Fixed matrices
# --------------------------------------------------------------------------------------------
@lru_cache(maxsize=64)
def _decay_matrices_cpu(T: int, a: float, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    # Built in float64 from integer powers, then cast: A[t, j] = a^(t-j+1) (j <= t), B[t, j] = a^(t-j) (j < t).
    t = torch.arange(T, dtype=torch.float64)
    d = t[:, None] - t[None, :]
    a64 = torch.tensor(a, dtype=torch.float64)
    zero = torch.zeros((), dtype=torch.float64)
    A = torch.where(d >= 0, a64 ** (d + 1), zero)
    B = torch.where(d > 0, a64**d, zero)
    # Entries below the dtype's smallest normal number (a^k for large k) are flushed to 0: they are
    # far below rounding next to the diagonal terms, and subnormal operands slow a CPU GEMM several
    # times over (measured: RPSU at T = 256, N = 2^15 forward 1.43 s with them).
    tiny = torch.finfo(dtype).tiny
    A, B = (torch.where(m.abs() < tiny, zero, m).to(dtype) for m in (A, B))
    return A, B


def decay_matrices(T: int, a: float, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The fixed ``A`` (leaky integration) and ``B`` (reset decay) ``[T, T]`` matrices of SPEC §1."""
    A, B = _decay_matrices_cpu(T, float(a), dtype)
    if device.type != "cpu":
        A, B = A.to(device), B.to(device)
    return A, B


# --------------------------------------------------------------------------------------------
# Surrogate
# --------------------------------------------------------------------------------------------
def _surrogate_core(G: torch.Tensor, D: torch.Tensor, alpha: float, out: torch.Tensor) -> torch.Tensor:
    """``out = G / (1 + (pi/2 alpha D)^2)`` where ``D = V - theta``; ``gV = alpha/2 * out``."""
    k = _HALF_PI * alpha
    one = torch.ones((), dtype=D.dtype, device=D.device)
    torch.addcmul(one, D, D, value=k * k, out=out)
    return torch.div(G, out, out=out)


class _UniformStream:
    """Rows ``u[t, :]`` of the SPEC §6 stream, generated a block of rows at a time."""

    def __init__(self, seed: int, T: int, N: int, dtype: torch.dtype, device: torch.device) -> None:
        self.seed, self.T, self.N, self.dtype, self.device = seed, T, N, dtype, device
        self.rows = max(1, (1 << 20) // max(N, 1))
        self.start, self.block = 0, None

    def row(self, t: int) -> torch.Tensor:
        if self.block is None or not (self.start <= t < self.start + self.block.shape[0]):
            self.start = t
            stop = min(self.T, t + self.rows)
            self.block = prandom.uniform_rows(self.seed, t, stop, self.N, device=self.device, dtype=self.dtype)
        return self.block[t - self.start]


def draw_resets(seed: int, P: torch.Tensor, t0: int = 0) -> torch.Tensor:
    """``R = (u < P)`` as ``bool``, for rows ``t0 .. t0 + P.shape[0]`` of the stream; ``P`` is ``[T, N]``."""
    T, N = P.shape
    R = torch.empty((T, N), dtype=torch.bool, device=P.device)
    stream = _UniformStream(seed, t0 + T, N, P.dtype, P.device)
    for t in range(T):
        torch.lt(stream.row(t0 + t), P[t], out=R[t])
    return R


# --------------------------------------------------------------------------------------------
# PSU, recurrence form
# --------------------------------------------------------------------------------------------
# The recurrences run on states scaled by 1/a, so that each update is one fused operation
# ``torch.add(u, state, alpha=a)`` instead of an add and a multiply:
#
#     h'_t = h_t / a = a h'_{t-1} + x_t            r'_t = r_t / a = a r'_{t-1} + q_{t-1}
#     w_t  = v_t / a = h'_t - gamma r'_t           s_t  = [w_t > theta / a]
#
# (a > 0, so the comparison is the same one, up to rounding of theta/a.) The online stepper runs
# the same operations, so it reproduces these spikes and membranes bit for bit.


def psu_forward_recurrence(
    X: torch.Tensor,
    a: float,
    gamma: float,
    theta: float,
    seed: int | None,
    want_v: bool,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """PSU forward as one pass over time. Returns ``S [T, N]``, ``V`` (if wanted), ``R`` (bool, sampled).

    Six row operations per step: h', p = sigma(a h'), r', w, s (plus v = a w when wanted).
    """
    T, N = X.shape
    S = torch.empty_like(X)
    V = torch.empty_like(X) if want_v else None
    R = torch.empty((T, N), dtype=torch.bool, device=X.device) if seed is not None else None
    stream = _UniformStream(seed, T, N, X.dtype, X.device) if seed is not None else None
    h = torch.zeros(N, dtype=X.dtype, device=X.device)
    r = torch.zeros(N, dtype=X.dtype, device=X.device)
    p = torch.empty(N, dtype=X.dtype, device=X.device)
    w = torch.empty(N, dtype=X.dtype, device=X.device)
    limit = theta / a
    for t in range(T):
        if t:
            torch.add(p if R is None else R[t - 1], r, alpha=a, out=r)
        torch.add(X[t], h, alpha=a, out=h)
        torch.mul(h, a, out=p).sigmoid_()
        if R is not None:
            torch.lt(stream.row(t), p, out=R[t])
        torch.add(h, r, alpha=-gamma, out=w)
        torch.gt(w, limit, out=S[t])
        if V is not None:
            torch.mul(w, a, out=V[t])
    return S, V, R


def psu_backward_recurrence(
    X: torch.Tensor,
    G: torch.Tensor,
    R: torch.Tensor | None,
    a: float,
    gamma: float,
    theta: float,
    alpha: float,
    need_scalars: bool,
    tied: bool,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """PSU vector-Jacobian product by the recurrences of SPEC §5 (forward recompute, reverse sweep).

    Returns ``dL/dX``, and when ``need_scalars``: ``sum(gV (V - theta))`` (``dL/dalpha`` times
    ``alpha``), ``sum(gV)`` and ``sum(gV B Q)`` (the parts of ``dL/dtheta``), as 0-d tensors; when
    ``tied`` (``gamma`` is the threshold) the last two may come back already added together.

    Internally ``g = a gV`` is formed directly (the constant folded into the surrogate's
    denominator), which makes every reverse update one fused operation::

        c_j  = a c_{j+1} + g_{j+1}                       (= B^T gV, unscaled)
        k_j  = g_j - gamma a c_j p_j (1 - p_j)           (= a gH_j)
        e_j  = k_j + a e_{j+1}                           (= A^T gH = dL/dX_j)
    """
    T, N = X.shape
    s = 0.5 * alpha
    k2 = (_HALF_PI * alpha * a) ** 2  # (pi/2 alpha (v - theta))^2 = k2 d'^2 with d' = (v - theta) / a
    GV = torch.empty_like(X)  # g = a gV; overwritten by dL/dX in the reverse sweep
    PP = torch.empty_like(X)  # p_t
    h = torch.zeros(N, dtype=X.dtype, device=X.device)
    r = torch.zeros(N, dtype=X.dtype, device=X.device)
    d = torch.empty(N, dtype=X.dtype, device=X.device)
    rr = torch.empty(N, dtype=X.dtype, device=X.device)
    # 1 / (a s) as a tensor: den' = (1 + k2 d'^2) / (a s), so G / den' = a s G / (1 + q^2) = a gV
    inv_as = torch.full((), 1.0 / (a * s), dtype=X.dtype, device=X.device)
    k2s = k2 / (a * s)
    # Per-neuron running sums, reduced once at the end: element-wise updates, no BLAS dot per step
    # (threaded BLAS level-1 calls cost milliseconds each on a busy machine).
    acc = torch.zeros((2, N), dtype=X.dtype, device=X.device) if need_scalars else None
    # gamma == theta (tied, or a fixed reset scale equal to it) lets d' = h' - theta (r' + 1/a)
    fold = tied or gamma == theta
    limit = theta / a
    for t in range(T):
        if t:
            torch.add(PP[t - 1] if R is None else R[t - 1], r, alpha=a, out=r)
        torch.add(X[t], h, alpha=a, out=h)
        torch.mul(h, a, out=PP[t]).sigmoid_()
        if fold:
            torch.add(r, 1.0 / a, out=rr)  # r' + 1/a
            torch.add(h, rr, alpha=-theta, out=d)  # d' = (v - theta) / a
        else:
            torch.add(h, r, alpha=-gamma, out=d).sub_(limit)
        torch.addcmul(inv_as, d, d, value=k2s, out=GV[t])
        g = torch.div(G[t], GV[t], out=GV[t])
        if acc is not None:
            # sum(gV (v - theta)) = sum(g d');  sum(gV) = sum(g) / a;
            # tied: sum(gV) + sum(gV B Q) = sum(g (r' + 1/a)) in one reduction
            acc[0].addcmul_(g, d)
            if tied:
                acc[1].addcmul_(g, rr)
            else:
                acc[1].add_(g)
    c = torch.zeros(N, dtype=X.dtype, device=X.device)
    tmp = d
    for j in range(T - 1, -1, -1):
        p = PP[j]
        torch.addcmul(p, p, p, value=-1, out=tmp)  # p (1 - p)
        tmp.mul_(c)
        torch.add(GV[j], tmp, alpha=-gamma * a, out=tmp)  # k_j
        if j:
            torch.add(GV[j], c, alpha=a, out=c)  # c_{j-1}
        if j == T - 1:
            GV[j].copy_(tmp)
        else:
            torch.add(tmp, GV[j + 1], alpha=a, out=GV[j])
    if acc is None:
        return GV, None, None, None
    sums = acc.sum(dim=1)
    zero = torch.zeros((), dtype=X.dtype, device=X.device)
    if tied:
        return GV, sums[0], sums[1], zero  # the caller only adds the last two
    return GV, sums[0], sums[1] / a, zero


# --------------------------------------------------------------------------------------------
# PSU, dense form
# --------------------------------------------------------------------------------------------
def _psu_dense_v(
    X: torch.Tensor, a: float, gamma: float, seed: int | None, R: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor]:
    T = X.shape[0]
    A, B = decay_matrices(T, a, X.dtype, X.device)
    V = A @ X
    P = torch.sigmoid(V)
    if seed is not None and R is None:
        R = draw_resets(seed, P)
    Q = P if R is None else R.to(X.dtype)
    V.addmm_(B, Q, alpha=-gamma)
    return V, P, R, Q, B


def psu_forward_dense(
    X: torch.Tensor, a: float, gamma: float, theta: float, seed: int | None, want_v: bool
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """PSU forward as ``V = A X - gamma B Q`` (two GEMMs)."""
    V, P, R, _, _ = _psu_dense_v(X, a, gamma, seed)
    S = torch.gt(V, theta, out=P)
    return S, (V if want_v else None), R


def psu_backward_dense(
    X: torch.Tensor,
    G: torch.Tensor,
    R: torch.Tensor | None,
    a: float,
    gamma: float,
    theta: float,
    alpha: float,
    need_scalars: bool,
    tied: bool,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """PSU vector-Jacobian product in matrix form: ``dL/dX = A^T (gV - gamma (B^T gV) P (1 - P))``."""
    T = X.shape[0]
    s = 0.5 * alpha
    V, P, R, Q, B = _psu_dense_v(X, a, gamma, None, R)
    A, _ = decay_matrices(T, a, X.dtype, X.device)
    D = V.sub_(theta)
    GV = _surrogate_core(G, D, alpha, out=torch.empty_like(X))
    C = B.T @ GV
    scalars: tuple[torch.Tensor | None, ...] = (None, None, None)
    if need_scalars:
        # sum(gV * B Q) = sum((B^T gV) * Q)
        scalars = (
            s * torch.dot(GV.view(-1), D.view(-1)),
            s * GV.sum(),
            s * torch.dot(C.view(-1), Q.reshape(-1)),
        )
    P.addcmul_(P, P, value=-1).mul_(C)
    GV.add_(P, alpha=-gamma)
    dX = torch.mm(A.T, GV).mul_(s) if s != 1.0 else A.T @ GV
    return dX, scalars[0], scalars[1], scalars[2]


# --------------------------------------------------------------------------------------------
# PSU, chunked form: the dense form on blocks of L steps, carries between blocks
# --------------------------------------------------------------------------------------------
# For a block of steps t0 <= t < t1 (n_t = t1 - t0), with A_l, B_l the l x l matrices:
#
#     H_blk = A_l X_blk + a^(i+1) h_{t0-1}                     (i = t - t0)
#     V_blk = H_blk - gamma (B_l Q_blk + a^i rho_{t0})          rho_t = sum_{j<t} a^(t-j) q_j
#     rho_{t1} = a^l rho_{t0} + sum_i a^(l-i) q_{t0+i}
#
# and in reverse for the backward pass (c = B^T gV, e = A^T gH):
#
#     c_blk = B_l^T gV_blk + a^(l-i) kappa_{t1}                kappa_t = sum_{i>=t} a^(i-t) gV_i
#     e_blk = A_l^T gH_blk + a^(l-i+1) eps_{t1}                eps_t = sum_{i>=t} a^(i-t) gH_i
#
# O(T L N) work in about ten operations per block instead of per step: fewer, larger operations
# than the recurrence (less dispatch and thread synchronisation), far less work than the dense
# form at large T.


def _chunk_vectors(L: int, a: float, dtype: torch.dtype, device: torch.device):
    A, B = decay_matrices(L, a, dtype, device)
    i = torch.arange(L, dtype=torch.float64)
    a64 = torch.tensor(a, dtype=torch.float64)
    vec = {
        "up1": a64 ** (i + 1),  # a^(i+1)
        "up0": a64**i,  # a^i
    }
    return A, B, {k: v.to(dtype=dtype, device=device) for k, v in vec.items()}


def _down(a: float, n_t: int, shift: int, dtype, device) -> torch.Tensor:
    # a^(n_t - i + shift) for i = 0 .. n_t-1
    i = torch.arange(n_t, dtype=torch.float64)
    return (torch.tensor(a, dtype=torch.float64) ** (n_t - i + shift)).to(dtype=dtype, device=device)


def psu_forward_chunked(
    X: torch.Tensor, a: float, gamma: float, theta: float, seed: int | None, want_v: bool, L: int = CHUNK
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """PSU forward in blocks of ``L`` steps (see the block equations above)."""
    T, N = X.shape
    L = max(1, min(L, T))
    dt, dev = X.dtype, X.device
    A, B, vec = _chunk_vectors(L, a, dt, dev)
    S = torch.empty_like(X)
    V = torch.empty_like(X) if want_v else None
    R = torch.empty((T, N), dtype=torch.bool, device=dev) if seed is not None else None
    stream = _UniformStream(seed, T, N, dt, dev) if seed is not None else None
    pbuf = torch.empty((L, N), dtype=dt, device=dev)
    h_prev = torch.zeros(N, dtype=dt, device=dev)
    rho = torch.zeros(N, dtype=dt, device=dev)
    for t0 in range(0, T, L):
        t1 = min(T, t0 + L)
        n_t = t1 - t0
        # The block is built in the output rows themselves (V, else S), then compared in place.
        Hb = V[t0:t1] if V is not None else S[t0:t1]
        torch.mm(A[:n_t, :n_t], X[t0:t1], out=Hb)
        if t0:
            Hb.addr_(vec["up1"][:n_t], h_prev)
        if t1 < T:
            h_prev.copy_(Hb[n_t - 1])
        Pb = torch.sigmoid(Hb, out=pbuf[:n_t])
        if R is not None:
            for t in range(t0, t1):
                torch.lt(stream.row(t), Pb[t - t0], out=R[t])
            Qb = R[t0:t1].to(dt)
        else:
            Qb = Pb
        Hb.addmm_(B[:n_t, :n_t], Qb, alpha=-gamma)  # now V_blk
        if t0:
            Hb.addr_(vec["up0"][:n_t], rho, alpha=-gamma)
        if t1 < T:
            torch.addmv(rho, Qb.T, _down(a, n_t, 0, dt, dev), beta=a**n_t, out=rho)
        torch.gt(Hb, theta, out=S[t0:t1])
    return S, V, R


def psu_backward_chunked(
    X: torch.Tensor,
    G: torch.Tensor,
    R: torch.Tensor | None,
    a: float,
    gamma: float,
    theta: float,
    alpha: float,
    need_scalars: bool,
    tied: bool,
    L: int = CHUNK,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """PSU vector-Jacobian product in blocks of ``L`` steps (forward recompute, reverse blocks)."""
    T, N = X.shape
    L = max(1, min(L, T))
    dt, dev = X.dtype, X.device
    A, B, vec = _chunk_vectors(L, a, dt, dev)
    s = 0.5 * alpha
    k2 = (_HALF_PI * alpha) ** 2
    inv_s = torch.full((), 1.0 / s, dtype=dt, device=dev)
    GV = torch.empty_like(X)  # gV, then gH
    PP = torch.empty_like(X)  # p, then p (1 - p) c, then dL/dX
    work = torch.empty((L, N), dtype=dt, device=dev)
    h_prev = torch.zeros(N, dtype=dt, device=dev)
    rho = torch.zeros(N, dtype=dt, device=dev)
    acc = torch.zeros((3,), dtype=dt, device=dev) if need_scalars else None
    for t0 in range(0, T, L):
        t1 = min(T, t0 + L)
        n_t = t1 - t0
        Hb = work[:n_t]
        torch.mm(A[:n_t, :n_t], X[t0:t1], out=Hb)
        if t0:
            Hb.addr_(vec["up1"][:n_t], h_prev)
        if t1 < T:
            h_prev.copy_(Hb[n_t - 1])
        Pb = torch.sigmoid(Hb, out=PP[t0:t1])
        Qb = Pb if R is None else R[t0:t1].to(dt)
        Hb.addmm_(B[:n_t, :n_t], Qb, alpha=-gamma)
        if t0:
            Hb.addr_(vec["up0"][:n_t], rho, alpha=-gamma)
        if t1 < T:
            torch.addmv(rho, Qb.T, _down(a, n_t, 0, dt, dev), beta=a**n_t, out=rho)
        D = Hb.sub_(theta)
        GVb = GV[t0:t1]
        torch.addcmul(inv_s, D, D, value=k2 / s, out=GVb)
        torch.div(G[t0:t1], GVb, out=GVb)  # gV
        if acc is not None:
            torch.add(acc[0], torch.dot(GVb.reshape(-1), D.reshape(-1)), out=acc[0])
            torch.add(acc[1], GVb.sum(), out=acc[1])
    kappa = torch.zeros(N, dtype=dt, device=dev)
    eps = torch.zeros(N, dtype=dt, device=dev)
    last = (T - 1) // L * L
    for t0 in range(last, -1, -L):
        t1 = min(T, t0 + L)
        n_t = t1 - t0
        GVb, PPb = GV[t0:t1], PP[t0:t1]
        cb = torch.mm(B[:n_t, :n_t].T, GVb, out=work[:n_t])
        if t1 < T:
            cb.addr_(_down(a, n_t, 0, dt, dev), kappa)
        if acc is not None and tied:
            Qb = PPb if R is None else R[t0:t1].to(dt)
            torch.add(acc[2], torch.dot(cb.reshape(-1), Qb.reshape(-1)), out=acc[2])
        if t0:
            torch.addmv(kappa, GVb.T, vec["up0"][:n_t], beta=a**n_t, out=kappa)
        PPb.addcmul_(PPb, PPb, value=-1).mul_(cb)
        GVb.add_(PPb, alpha=-gamma)  # gH
        torch.mm(A[:n_t, :n_t].T, GVb, out=PPb)  # dL/dX_blk, inside the block
        if t1 < T:
            PPb.addr_(_down(a, n_t, 1, dt, dev), eps)
        if t0:
            torch.addmv(eps, GVb.T, vec["up0"][:n_t], beta=a**n_t, out=eps)
    if acc is None:
        return PP, None, None, None
    return PP, acc[0], acc[1], acc[2]


# The choice of impl="auto" on CPU, from measurements on a 2-core Xeon shared with other jobs
# (float32, forward+backward; see README "Speed"):
#
# * Small problems (T * N < 2^18) are overhead-bound: the dense form's dozen operations win.
# * The recurrence issues ~25 operations per step. While a row fits in one thread's share of work
#   (N <= 32768, PyTorch's grain size, or one intra-op thread) that costs only dispatch, and the
#   recurrence is fastest: 4-6x the dense formulation at T = 256, N = 2^15.
# * Rows longer than the grain size are split across threads, and every operation then ends in a
#   thread barrier; on a busy machine each barrier can wait for a descheduled thread (measured:
#   ~5 ms per 1M-element add with 2 threads under load, against 1 ms with one). The chunked form
#   does the same work in ~20 operations per 32 steps, so it is chosen there (2.2x the dense
#   formulation at T = 8, N = 2^20 with 2 threads under load, where the recurrence fell to 0.8x).
_RECURRENCE_MIN_ELEMENTS = 1 << 18
_DENSE_MAX_T = 512
_GRAIN_SIZE = 32768


def choose_psu_impl(T: int, N: int, threads: int | None = None) -> str:
    """The PSU form ``impl="auto"`` runs on CPU: ``"recurrence"``, ``"dense"`` or ``"chunked"``."""
    threads = torch.get_num_threads() if threads is None else threads
    if T * N < _RECURRENCE_MIN_ELEMENTS:
        return "dense" if T <= _DENSE_MAX_T else "chunked"
    if threads == 1 or N <= _GRAIN_SIZE:
        return "recurrence"
    return "chunked"


# --------------------------------------------------------------------------------------------
# IPSU (one GEMM with (W ⊙ M) - gamma B)
# --------------------------------------------------------------------------------------------
def _ipsu_matrix(W: torch.Tensor, a: float, gamma: float) -> tuple[torch.Tensor, torch.Tensor]:
    T = W.shape[0]
    _, B = decay_matrices(T, a, W.dtype, W.device)
    return torch.tril(W) - gamma * B, B


def ipsu_forward(
    X: torch.Tensor, W: torch.Tensor, b: torch.Tensor, a: float, gamma: float, theta: float, want_v: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """IPSU: ``V = ((W ⊙ M) - gamma B) X + b`` in one GEMM, ``S = [V > theta]``."""
    K, _ = _ipsu_matrix(W, a, gamma)
    V = torch.addmm(b[:, None], K, X)
    S = torch.gt(V, theta, out=torch.empty_like(V)) if want_v else torch.gt(V, theta, out=V)
    return S, (V if want_v else None)


def ipsu_backward(
    X: torch.Tensor,
    G: torch.Tensor,
    W: torch.Tensor,
    b: torch.Tensor,
    a: float,
    gamma: float,
    theta: float,
    alpha: float,
    need_scalars: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """IPSU VJP: ``dX = K^T gV``, ``dW = (gV X^T) ⊙ M``, ``db = sum_n gV``; ``K = W⊙M - gamma B``.

    The tied-threshold term ``sum(gV * B X)`` is ``sum(B ⊙ (gV X^T))``: free once ``dW`` exists.
    Two ``[T, N]`` temporaries: ``V - theta`` (then ``dL/dX``) and ``gV``.
    """
    s = 0.5 * alpha
    K, B = _ipsu_matrix(W, a, gamma)
    D = torch.addmm(b[:, None], K, X).sub_(theta)
    GV = _surrogate_core(G, D, alpha, out=torch.empty_like(X))  # gV / s
    s_gvd = s * (GV * D).sum() if need_scalars else None
    dX = torch.mm(K.T, GV, out=D).mul_(s)
    GX = torch.mm(GV, X.T).mul_(s)  # gV X^T, [T, T]
    dW = torch.tril(GX)
    db = GV.sum(dim=1).mul_(s)
    if not need_scalars:
        return dX, dW, db, None, None, None
    return dX, dW, db, s_gvd, db.sum(), (B * GX).sum()


# --------------------------------------------------------------------------------------------
# RPSU (GEMMs with A and W ⊙ M; the reset probability needs the whole input history)
# --------------------------------------------------------------------------------------------
def _rpsu_v(
    X: torch.Tensor, W: torch.Tensor, b: torch.Tensor, a: float, gamma: float, seed: int | None, R: torch.Tensor | None
):
    # Separate [T, N] buffers (not one stacked [2T, N]) so that each can be reused or returned
    # on its own without pinning the other.
    T = X.shape[0]
    A, B = decay_matrices(T, a, X.dtype, X.device)
    V = torch.mm(A, X)  # H
    P = torch.addmm(b[:, None], torch.tril(W), X).sigmoid_()
    if seed is not None and R is None:
        R = draw_resets(seed, P)
    Q = P if R is None else R.to(X.dtype)
    V.addmm_(B, Q, alpha=-gamma)
    return V, P, R, Q, A, B


def rpsu_forward(
    X: torch.Tensor, W: torch.Tensor, b: torch.Tensor, a: float, gamma: float, theta: float, seed: int | None, want_v: bool
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """RPSU: ``P = sigma((W ⊙ M) X + b)``, ``V = A X - gamma B Q``, ``S = [V > theta]``."""
    V, P, R, _, _, _ = _rpsu_v(X, W, b, a, gamma, seed, None)
    S = torch.gt(V, theta, out=P)
    return S, (V if want_v else None), R


def rpsu_backward(
    X: torch.Tensor,
    G: torch.Tensor,
    R: torch.Tensor | None,
    W: torch.Tensor,
    b: torch.Tensor,
    a: float,
    gamma: float,
    theta: float,
    alpha: float,
    need_scalars: bool,
):
    """RPSU VJP: ``gZ = -gamma (B^T gV) P (1-P)``; ``dX = A^T gV + (W⊙M)^T gZ``; ``dW = (gZ X^T) ⊙ M``.

    Three ``[T, N]`` temporaries, each reused: ``V - theta`` -> ``c = B^T gV`` -> ``dL/dX``;
    ``P`` -> ``gZ``; ``gV``.
    """
    s = 0.5 * alpha
    V, P, R, Q, A, B = _rpsu_v(X, W, b, a, gamma, None, R)
    D = V.sub_(theta)
    GV = _surrogate_core(G, D, alpha, out=torch.empty_like(X))  # gV / s
    scalars: tuple = (None, None, None)
    if need_scalars:
        scalars = (s * (GV * D).sum(), s * GV.sum(), None)
    C = torch.mm(B.T, GV, out=D)  # c = B^T gV / s
    if need_scalars:
        scalars = (scalars[0], scalars[1], s * (C * Q).sum())
    GZ = P.addcmul_(P, P, value=-1).mul_(C).mul_(-gamma)  # gZ / s
    dX = torch.mm(A.T, GV, out=C)
    dX.addmm_(torch.tril(W).T, GZ).mul_(s)
    dW = torch.tril(torch.mm(GZ, X.T)).mul_(s)
    db = GZ.sum(dim=1).mul_(s)
    return (dX, dW, db) + scalars
