"""Numba CPU kernels of the PSU family (SPEC §3, §5, §6).

Every jitted function of the CPU path lives in this one file, on purpose: Numba's on-disk cache
(``cache=True``) is invalidated by the timestamp of the file that *defines* a function, not of the
files a function calls, so a helper kept in another module could be edited without the cached
kernels that inlined it noticing. One file, one stamp, no stale kernel.

Layout: ``x`` is ``[T, N]``, C order, so a time step is a contiguous row of neurons. Kernels loop
over blocks of neurons in parallel (``prange``) and, inside a block, over time, with the
recurrence state ``h``, ``r``, ``q`` in small per-block arrays; the innermost loop runs along the
contiguous neuron axis, so it vectorises and every load is a unit-stride stream. A loop over time
per single neuron would stride by ``N`` and waste every cache line.

Each kernel is compiled once per dtype (float32, float64): the variant, reset mode and output
choices are run-time arguments, so there are no other specialisations. Scalars arrive in the
dtype of ``x`` (the wrappers convert them), so float32 work stays in float32.

The scalar pieces (``sigmoid``, ``threefry``/``uniform_bits``, ``mix``, ``step_neuron``) are also
the GPU's: Numba compiles a CPU function called from a CUDA kernel as a device function from the
same Python source, so :mod:`psu_numba.numba_cuda.kernels` calls them and they are written once,
here (where the CPU cache sees them). On the GPU ``exp_neg`` is libdevice's ``exp`` (an overload
for the CUDA target in that module).
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic, overload

PSU, IPSU, RPSU = 0, 1, 2  # kept equal to psu_numba.common.VARIANT_CODES

_OPTS = dict(cache=True, error_model="numpy", nogil=True)

# ------------------------------------------------------------------------------------ exp
#
# libm's exp is a scalar call, and the whole forward pass is otherwise a few flops per byte:
# without a vector exp the sigmoid alone costs more than the memory traffic. These exp(z) for
# z <= 0 vectorise (range reduction, polynomial, exponent built from integer bits); their error
# is a few ulp, far inside SPEC §9's tolerances.


@intrinsic
def _f64_from_bits(typingctx, bits):
    sig = types.float64(types.int64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return sig, codegen


@intrinsic
def _f32_from_bits(typingctx, bits):
    sig = types.float32(types.int32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return sig, codegen


def exp_neg(z):  # pragma: no cover - replaced by the overload below inside jitted code
    """exp(z) for z <= 0."""
    return math.exp(z)


@overload(exp_neg)
def _exp_neg_impl(z):
    if z == types.float32:

        def exp32(z):
            # Clamp where 2^k would leave the normal range; exp(-87) ~ 1.6e-38 is as good as 0
            # for a sigmoid.
            z = max(z, np.float32(-87.0))
            k = np.floor(z * np.float32(1.4426950408889634) + np.float32(0.5))
            r = z - k * np.float32(0.693145751953125)
            r = r - k * np.float32(1.428606765330187e-06)
            p = np.float32(1.0 / 5040.0)
            p = p * r + np.float32(1.0 / 720.0)
            p = p * r + np.float32(1.0 / 120.0)
            p = p * r + np.float32(1.0 / 24.0)
            p = p * r + np.float32(1.0 / 6.0)
            p = p * r + np.float32(0.5)
            p = p * r + np.float32(1.0)
            p = p * r + np.float32(1.0)
            scale = _f32_from_bits(np.int32((np.int32(k) + np.int32(127)) << np.int32(23)))
            return p * scale

        return exp32
    if z == types.float64:

        def exp64(z):
            z = max(z, -708.0)
            k = np.floor(z * 1.4426950408889634 + 0.5)
            r = z - k * 0.6931471803691238
            r = r - k * 1.9082149292705877e-10
            p = 1.0 / 479001600.0
            p = p * r + 1.0 / 39916800.0
            p = p * r + 1.0 / 3628800.0
            p = p * r + 1.0 / 362880.0
            p = p * r + 1.0 / 40320.0
            p = p * r + 1.0 / 5040.0
            p = p * r + 1.0 / 720.0
            p = p * r + 1.0 / 120.0
            p = p * r + 1.0 / 24.0
            p = p * r + 1.0 / 6.0
            p = p * r + 0.5
            p = p * r + 1.0
            p = p * r + 1.0
            scale = _f64_from_bits(np.int64((np.int64(k) + np.int64(1023)) << np.int64(52)))
            return p * scale

        return exp64
    return None


@njit(inline="always", **_OPTS)
def sigmoid(z, one):
    """Stable logistic: ``e = exp(-|z|)``; ``1/(1+e)`` for ``z >= 0``, ``e/(1+e)`` below 0.
    ``one`` is 1 in the dtype of ``z`` (a Python literal would promote float32 to float64)."""
    e = exp_neg(-abs(z))
    s = one / (one + e)
    return s if z >= 0 else e * s


@njit(inline="always", **_OPTS)
def sigmoid_slope(z, one):
    """``(sigmoid(z), sigmoid(z) sigmoid(-z))`` from one ``e = exp(-|z|)``: the slope is
    ``e / (1 + e)^2``, accurate where ``P (1 - P)`` of a rounded ``P`` near 1 is not (SPEC §5)."""
    e = exp_neg(-abs(z))
    s = one / (one + e)
    return (s if z >= 0 else e * s), e * s * s


# ------------------------------------------------------------------------------------ decay
#
# A float32 a = 1/tau is off by up to 2^-25 relative, and a recurrence applies it T times: the
# error would grow with T (SPEC §9). The decay is carried as a_hi = float32(a), a_lo =
# float32(a - a_hi) and applied with one rounding: here as a float64 product (exact enough:
# a_hi + a_lo is a to 2^-48), on the GPU as fma(v, a_hi, v a_lo) (no float64 units needed).


def decay(v, a_hi, a_lo):  # pragma: no cover - replaced by the overload below inside jitted code
    """``v (a_hi + a_lo)`` rounded once to the dtype of ``v``."""
    return type(v)(np.float64(v) * (np.float64(a_hi) + np.float64(a_lo)))


@overload(decay)
def _decay_impl(v, a_hi, a_lo):
    if v == types.float32:

        def decay32(v, a_hi, a_lo):
            return np.float32(np.float64(v) * (np.float64(a_hi) + np.float64(a_lo)))

        return decay32
    if v == types.float64:
        return lambda v, a_hi, a_lo: v * a_hi  # a_lo is 0 in float64
    return None


# ------------------------------------------------------------------------------------ Threefry
#
# Words are held in uint64 and masked to 32 bits after each add: Numba widens uint32 arithmetic
# to 64 bits anyway, and mixing signed and unsigned integers would promote to float.

_M32 = np.uint64(0xFFFFFFFF)
_PARITY = np.uint64(0x1BD11BDA)


@njit(inline="always", **_OPTS)
def _rotl(v, r):
    return ((v << r) | (v >> (np.uint64(32) - r))) & _M32


@njit(inline="always", **_OPTS)
def _round(x0, x1, r):
    x0 = (x0 + x1) & _M32
    x1 = _rotl(x1, r) ^ x0
    return x0, x1


@njit(inline="always", **_OPTS)
def threefry(k0, k1, c0, c1):
    """Threefry-2x32-20 (SPEC §6) on 32-bit words held in uint64; returns ``(w0, w1)``."""
    k2 = k0 ^ k1 ^ _PARITY
    x0 = (c0 + k0) & _M32
    x1 = (c1 + k1) & _M32
    for s in range(1, 6):
        if s % 2 == 1:
            x0, x1 = _round(x0, x1, np.uint64(13))
            x0, x1 = _round(x0, x1, np.uint64(15))
            x0, x1 = _round(x0, x1, np.uint64(26))
            x0, x1 = _round(x0, x1, np.uint64(6))
        else:
            x0, x1 = _round(x0, x1, np.uint64(17))
            x0, x1 = _round(x0, x1, np.uint64(29))
            x0, x1 = _round(x0, x1, np.uint64(16))
            x0, x1 = _round(x0, x1, np.uint64(24))
        m = s % 3
        ka = k0 if m == 0 else (k1 if m == 1 else k2)
        kb = k1 if m == 0 else (k2 if m == 1 else k0)
        x0 = (x0 + ka) & _M32
        x1 = (x1 + kb + np.uint64(s)) & _M32
    return x0, x1


@njit(inline="always", **_OPTS)
def uniform_bits(k0, k1, n, t):
    """``w0 >> 8`` for counter ``(n, t)``: the uniform is this integer times ``2**-24``."""
    w0, _ = threefry(k0, k1, np.uint64(n), np.uint64(t))
    return w0 >> np.uint64(8)


@njit(parallel=True, **_OPTS)
def threefry_kernel(k0, k1, c0, c1, out0, out1):
    """Element-wise Threefry over flat uint32 arrays (all the same length)."""
    for i in prange(c0.size):
        w0, w1 = threefry(np.uint64(k0[i]), np.uint64(k1[i]), np.uint64(c0[i]), np.uint64(c1[i]))
        out0[i] = np.uint32(w0)
        out1[i] = np.uint32(w1)


@njit(parallel=True, **_OPTS)
def uniforms_kernel(k0, k1, out):
    """``out[t, n] = u`` of SPEC §6 (float64 ``[T, N]``)."""
    T, N = out.shape
    for t in prange(T):
        for n in range(N):
            out[t, n] = np.float64(uniform_bits(k0, k1, n, t)) * 5.9604644775390625e-08


# ------------------------------------------------------------------------------------ helpers


@njit(inline="always", **_OPTS)
def _mix_row(w, b, x, mixed, premixed, t, n0, m, out):
    """``out[i] = b[t] + sum_{j<=t} W[t, j] x[j, n0 + i]`` for the block's neurons: from
    ``mixed[t] = ((W ⊙ M) X)[t]`` when ``premixed`` (a BLAS product made by the caller), else as
    axpys over the block's rows ``j <= t`` (the upper triangle of ``W`` is never read)."""
    bt = b[t]
    if premixed:
        mr = mixed[t, n0 : n0 + m]
        for i in range(m):
            out[i] = mr[i] + bt
    else:
        for i in range(m):
            out[i] = bt
        for j in range(t + 1):
            wv = w[t, j]
            xr = x[j, n0 : n0 + m]
            for i in range(m):
                out[i] += wv * xr[i]


@njit(fastmath={"reassoc", "contract"}, **_OPTS)
def _dot_rows(a, ta, x, tx, n0, m):
    """``sum_i a[ta, i] * x[tx, n0 + i]`` in the dtype of the inputs (reassociated so that it
    vectorises; the caller adds it into a float64 partial)."""
    acc = a[ta, 0] - a[ta, 0]
    for i in range(m):
        acc += a[ta, i] * x[tx, n0 + i]
    return acc


@njit(fastmath={"reassoc", "contract"}, **_OPTS)
def _sum_row(a, t, m):
    acc = a[t, 0] - a[t, 0]
    for i in range(m):
        acc += a[t, i]
    return acc


@njit(parallel=True, **_OPTS)
def all_finite(x):
    """True when no element of ``x [T, N]`` is NaN or infinite (``x * 0`` is 0 or NaN), in one
    vectorised pass."""
    T, N = x.shape
    bad = np.zeros(T, np.bool_)
    for t in prange(T):
        acc = x.dtype.type(0)
        for n in range(N):
            acc += x[t, n] * x.dtype.type(0)
        bad[t] = acc != acc
    return not bad.any()


# ------------------------------------------------------------------------------------ forward


@njit(parallel=True, **_OPTS)
def forward_kernel(code, x, w, b, mixed, premixed, a_hi, a_lo, gamma, theta, sampled, k0, k1, block, spikes, membrane,
                   resets, want_membrane, want_resets):  # fmt: skip
    """Forward pass of SPEC §3 for every neuron of ``x [T, N]``.

    ``h_t = a (h_{t-1} + x_t)``; ``r_t = a (r_{t-1} + q_{t-1})``; ``v_t = h_t - gamma r_t``;
    ``s_t = [v_t > theta]``; ``q`` is ``p_t = sigmoid(h_t)`` (PSU), ``sigmoid(mix_t)`` (RPSU),
    the draw ``[u_t < p_t]`` (sampled) or ``x_t`` (IPSU, whose ``h_t = mix_t``), with
    ``mix_t = b_t + sum_{j<=t} W[t, j] x_j`` (see :func:`_mix_row`; ``mixed [T, N]`` when
    ``premixed``). ``a`` is applied as :func:`decay` of ``a_hi``, ``a_lo``. ``membrane``/``resets``
    are written when asked.

    Each inner loop writes one array: LLVM vectorises a loop only when it can rule out overlap
    between what it writes and what it reads, and with one written array the run-time overlap
    checks stay few enough. The extra passes touch L1-resident block state only.
    """
    T, N = x.shape
    n_blocks = (N + block - 1) // block
    zero = x.dtype.type(0)
    one = x.dtype.type(1)
    scale = x.dtype.type(5.9604644775390625e-08)
    for bi in prange(n_blocks):
        n0 = bi * block
        m = min(block, N - n0)
        h = np.zeros(m, x.dtype)
        r = np.zeros(m, x.dtype)
        q = np.zeros(m, x.dtype)
        v = np.empty(m, x.dtype)
        z = np.empty(m, x.dtype)
        for t in range(T):
            xr = x[t, n0 : n0 + m]
            for i in range(m):
                r[i] = decay(r[i] + q[i], a_hi, a_lo)
            if code != PSU:
                _mix_row(w, b, x, mixed, premixed, t, n0, m, z)
            if code == IPSU:
                for i in range(m):
                    v[i] = z[i] - gamma * r[i]
                for i in range(m):
                    q[i] = xr[i]
            else:
                for i in range(m):
                    h[i] = decay(h[i] + xr[i], a_hi, a_lo)
                zz = h if code == PSU else z
                for i in range(m):
                    q[i] = sigmoid(zz[i], one)
                if sampled:
                    for i in range(m):
                        u = x.dtype.type(uniform_bits(k0, k1, n0 + i, t)) * scale
                        q[i] = one if u < q[i] else zero
                    if want_resets:
                        rr = resets[t, n0 : n0 + m]
                        for i in range(m):
                            rr[i] = q[i]
            sr = spikes[t, n0 : n0 + m]
            vr = membrane[t, n0 : n0 + m] if want_membrane else v
            if code == IPSU:
                for i in range(m):
                    sr[i] = one if v[i] > theta else zero
                if want_membrane:
                    for i in range(m):
                        vr[i] = v[i]
            else:
                # v = h - gamma r, straight into the outputs (no pass through a buffer)
                for i in range(m):
                    sr[i] = one if h[i] - gamma * r[i] > theta else zero
                if want_membrane:
                    for i in range(m):
                        vr[i] = h[i] - gamma * r[i]


# ------------------------------------------------------------------------------------ backward


@njit(parallel=True, **_OPTS)
def vjp_kernel(code, x, g, w, b, mixed, premixed, a_hi, a_lo, gamma, theta, alpha, tied, sampled, k0, k1, block,
               n_chunks, dx, src_out, dw_part, db_part, scalar_part):  # fmt: skip
    """Vector-Jacobian product of SPEC §5, forward recomputed in the same pass.

    Per block of neurons: a forward sweep stores ``gV = G dS/dV`` and ``P' = sigmoid(z)
    sigmoid(-z)`` (from the logit ``z``, never ``P (1 - P)``) in the block's scratch and adds the
    neuron's terms of dL/dalpha and dL/dtheta into per-neuron float64 accumulators; a reverse
    sweep runs ``c_j = a (c_{j+1} + gV_{j+1})`` (c = Bᵀ gV) and

    * PSU:  ``gH = gV - gamma c P'``, ``e_j = a (gH_j + e_{j+1})`` = dL/dX;
    * IPSU: dL/dX = ``(W ⊙ M)ᵀ gV - gamma c``; dW, db from ``gV``;
    * RPSU: ``gZ = -gamma c P'``, dL/dX = ``Aᵀ gV + (W ⊙ M)ᵀ gZ``; dW, db from ``gZ``.

    ``mixed``/``premixed`` as in :func:`forward_kernel`. When ``premixed``, the ``(W ⊙ M)ᵀ`` term
    and dW are left to the caller's BLAS products: ``gV`` (IPSU) or ``gZ`` (RPSU) go to
    ``src_out [T, N]``. Otherwise chunk ``k`` writes ``dw_part[k]`` (``sum_n g_t x_j``, lower
    triangle). Always ``db_part[k]`` and ``scalar_part[k] = (sum gV (1 + tied r), sum G
    dS/dalpha)``; the caller adds the chunks in order. ``dw_part``/``db_part`` are ignored for
    PSU. Inner loops write one array each (see :func:`forward_kernel`).
    """
    T, N = x.shape
    n_blocks = (N + block - 1) // block
    per_chunk = (n_blocks + n_chunks - 1) // n_chunks
    one = x.dtype.type(1)
    zero = x.dtype.type(0)
    two = x.dtype.type(2)
    scale = x.dtype.type(5.9604644775390625e-08)
    half_pi_alpha = x.dtype.type(math.pi / 2) * alpha
    tied64 = 1.0 if tied else 0.0
    for k in prange(n_chunks):
        h = np.zeros(block, x.dtype)
        r = np.zeros(block, x.dtype)
        q = np.zeros(block, x.dtype)
        c = np.zeros(block, x.dtype)
        e = np.zeros(block, x.dtype)
        dd = np.zeros(block, x.dtype)
        z = np.zeros(block, x.dtype)
        acc_theta = np.zeros(block, np.float64)
        acc_alpha = np.zeros(block, np.float64)
        gv = np.empty((T, block), x.dtype)
        pp = np.empty((T if code != IPSU else 0, block), x.dtype)
        for bi in range(k * per_chunk, min(n_blocks, (k + 1) * per_chunk)):
            n0 = bi * block
            m = min(block, N - n0)
            for i in range(m):
                h[i] = zero
            for i in range(m):
                r[i] = zero
            for i in range(m):
                q[i] = zero
            # forward sweep
            for t in range(T):
                xr = x[t, n0 : n0 + m]
                gr = g[t, n0 : n0 + m]
                gvr = gv[t]
                for i in range(m):
                    r[i] = decay(r[i] + q[i], a_hi, a_lo)
                if code != PSU:
                    _mix_row(w, b, x, mixed, premixed, t, n0, m, z)
                if code == IPSU:
                    hr = z
                    for i in range(m):
                        q[i] = xr[i]
                else:
                    for i in range(m):
                        h[i] = decay(h[i] + xr[i], a_hi, a_lo)
                    hr = h
                    zz = h if code == PSU else z
                    ppr = pp[t]
                    for i in range(m):
                        q[i], ppr[i] = sigmoid_slope(zz[i], one)
                    if sampled:
                        for i in range(m):
                            u = x.dtype.type(uniform_bits(k0, k1, n0 + i, t)) * scale
                            q[i] = one if u < q[i] else zero
                for i in range(m):
                    dd[i] = (hr[i] - gamma * r[i]) - theta
                for i in range(m):
                    qa = half_pi_alpha * dd[i]
                    gvr[i] = gr[i] * (alpha / (two * (one + qa * qa)))
                for i in range(m):
                    qa = half_pi_alpha * dd[i]
                    acc_alpha[i] += np.float64(gr[i] * (dd[i] / (two * (one + qa * qa))))
                for i in range(m):
                    acc_theta[i] += np.float64(gvr[i]) + tied64 * np.float64(gvr[i] * r[i])
            # reverse sweep
            for i in range(m):
                c[i] = zero
            for i in range(m):
                e[i] = zero
            for t in range(T - 1, -1, -1):
                gvr = gv[t]
                dxr = dx[t, n0 : n0 + m]
                if code == PSU:
                    ppr = pp[t]
                    for i in range(m):
                        e[i] = decay((gvr[i] - gamma * c[i] * ppr[i]) + e[i], a_hi, a_lo)
                    for i in range(m):
                        dxr[i] = e[i]
                elif code == IPSU:
                    for i in range(m):
                        dxr[i] = -gamma * c[i]
                else:
                    ppr = pp[t]
                    for i in range(m):
                        e[i] = decay(gvr[i] + e[i], a_hi, a_lo)
                    for i in range(m):
                        dxr[i] = e[i]
                    for i in range(m):
                        ppr[i] = -gamma * c[i] * ppr[i]  # P' of step t is spent: keep gZ
                for i in range(m):
                    c[i] = decay(c[i] + gvr[i], a_hi, a_lo)
            if code != PSU:
                src = gv if code == IPSU else pp
                for t in range(T):
                    db_part[k, t] += np.float64(_sum_row(src, t, m))
                if premixed:
                    for t in range(T):
                        so = src_out[t, n0 : n0 + m]
                        sr = src[t]
                        for i in range(m):
                            so[i] = sr[i]
                else:
                    for j in range(T):
                        dxr = dx[j, n0 : n0 + m]
                        for t in range(j, T):
                            wv = w[t, j]
                            sr = src[t]
                            for i in range(m):
                                dxr[i] += wv * sr[i]
                    for t in range(T):
                        for j in range(t + 1):
                            dw_part[k, t, j] += np.float64(_dot_rows(src, t, x, j, n0, m))
        s_theta = 0.0
        s_alpha = 0.0
        for i in range(block):
            s_theta += acc_theta[i]
            s_alpha += acc_alpha[i]
        scalar_part[k, 0] = s_theta
        scalar_part[k, 1] = s_alpha


# ------------------------------------------------------------------------------------ online


@njit(inline="always", **_OPTS)
def mix(w, b, x, t, n):
    """``b[t] + sum_{j<=t} W[t, j] x[j, n]``: the masked product for one neuron (upper triangle
    of ``W`` ignored)."""
    acc = b[t]
    for j in range(t + 1):
        acc += w[t, j] * x[j, n]
    return acc


@njit(inline="always", **_OPTS)
def step_neuron(code, t, n, x_t, history, w, b, a_hi, a_lo, gamma, theta, sampled, k0, k1, h, r, q, spikes, membrane,
                resets):  # fmt: skip
    """Online step ``t`` (SPEC §3) of neuron ``n``: ``r_t = a (r_{t-1} + q_{t-1})``; ``h_t =
    a (h_{t-1} + x_t)`` (PSU, RPSU) or ``mix_t`` (IPSU, whose ``q_t = x_t``); ``p_t =
    sigmoid(h_t)`` (PSU) or ``sigmoid(mix_t)`` (RPSU), replaced by the draw ``[u < p_t]`` when
    sampled (written to ``resets``); ``v_t = h_t - gamma r_t``; ``s_t = [v_t > theta]``. ``a`` is
    applied as :func:`decay` of ``a_hi``, ``a_lo``, as in :func:`forward_kernel`. ``h``, ``r``,
    ``q`` and ``history[t]`` are updated in place."""
    one = x_t.dtype.type(1)
    zero = x_t.dtype.type(0)
    xv = x_t[n]
    rv = decay(r[n] + q[n], a_hi, a_lo)
    r[n] = rv
    mv = zero
    if code != PSU:
        history[t, n] = xv
        mv = mix(w, b, history, t, n)
    if code == IPSU:
        hv = mv
        q[n] = xv
    else:
        hv = decay(h[n] + xv, a_hi, a_lo)
        p = sigmoid(hv if code == PSU else mv, one)
        if sampled:
            u = x_t.dtype.type(uniform_bits(k0, k1, n, t)) * x_t.dtype.type(5.9604644775390625e-08)
            p = one if u < p else zero
            resets[n] = p
        q[n] = p
    h[n] = hv
    v = hv - gamma * rv
    spikes[n] = one if v > theta else zero
    membrane[n] = v


@njit(parallel=True, **_OPTS)
def step_kernel(code, t, x_t, history, w, b, a_hi, a_lo, gamma, theta, sampled, k0, k1, h, r, q, spikes, membrane,
                resets):  # fmt: skip
    """:func:`step_neuron` for every neuron of ``x_t [N]``."""
    for n in prange(x_t.shape[0]):
        step_neuron(code, t, n, x_t, history, w, b, a_hi, a_lo, gamma, theta, sampled, k0, k1, h, r, q, spikes,
                    membrane, resets)  # fmt: skip
