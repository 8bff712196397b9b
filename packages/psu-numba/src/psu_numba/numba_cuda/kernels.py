"""Numba CUDA kernels of the PSU family: one thread per neuron, looping over time.

``x`` is ``[T, N]`` C order, so at each step the threads of a warp read consecutive neurons of
one row: coalesced loads and stores along the neuron axis. The per-neuron recurrences of
SPEC §3/§5 run in registers; the backward pass keeps ``gV`` and ``P' = sigmoid(z) sigmoid(-z)`` (later ``gZ``) in
``[T, N]`` global scratch between its forward and reverse sweeps.

Reductions over neurons (dL/dW, dL/db, dL/dtheta, dL/dalpha) never use atomics: each is a
fixed-order strided sum per thread followed by a fixed shared-memory tree per block, so the same
call gives the same bits every time. Scalars arrive in the dtype of ``x`` and constants are made
with ``x.dtype.type(...)``, so float32 kernels contain no float64 arithmetic (except the float64
accumulators of the reductions).

Under ``NUMBA_ENABLE_CUDASIM=1`` these kernels run in Numba's CUDA simulator (one Python thread
per CUDA thread); the block sizes shrink there, since the simulator pays per thread.
"""

from __future__ import annotations

import math
from types import FunctionType
from typing import Any

import numpy as np
from numba import config, cuda
from numba.core.registry import CPUDispatcher

# Numba compiles a CPU function called from a CUDA kernel as a device function from the same
# Python source: the per-neuron pieces are written once, in the CPU kernels' file.
from psu_numba.common import IPSU, PSU
from psu_numba.cpu.kernels import decay, exp_neg, mix, sigmoid, sigmoid_slope, step_neuron, threefry, uniform_bits

SIMULATED = bool(config.ENABLE_CUDASIM)
#: Threads per block of the element-wise kernels and of the reductions (a power of two). The
#: simulator runs every CUDA thread as a Python thread and every barrier as a Python barrier, so
#: there the reductions use one thread per block (the tree is then empty) and fewer blocks.
THREADS = 32 if SIMULATED else 256
RED_THREADS = 1 if SIMULATED else 256


def _as_python(fn: Any, done: dict[Any, Any] | None = None) -> Any:
    """The Python function behind the CPU dispatcher ``fn``, calling the Python functions behind
    the dispatchers it calls: for the simulator, whose kernels pass its own array type, which
    compiled CPU code cannot take (the kernels' own calls of scalar functions stay compiled)."""
    done = {} if done is None else done
    if fn not in done:
        py = fn.py_func
        glb = dict(py.__globals__)
        done[fn] = FunctionType(py.__code__, glb, py.__name__, py.__defaults__, py.__closure__)
        for name in py.__code__.co_names:
            if isinstance(glb.get(name), CPUDispatcher):
                glb[name] = _as_python(glb[name], done)
    return done[fn]


if SIMULATED:
    mix, step_neuron = _as_python(mix), _as_python(step_neuron)
else:
    from numba.cuda.extending import overload

    @overload(exp_neg, target="cuda")
    def _exp_neg_cuda(z):  # type: ignore[no-untyped-def]
        # The CPU's exp is a polynomial that vectorises; on the GPU libdevice's exp is as cheap.
        return lambda z: math.exp(z)

    @overload(decay, target="cuda")
    def _decay_cuda(v, a_hi, a_lo):  # type: ignore[no-untyped-def]
        # v (a_hi + a_lo) with one rounding, in the dtype of v: no float64 on a float32 kernel.
        return lambda v, a_hi, a_lo: cuda.fma(v, a_hi, v * a_lo)


@cuda.jit
def forward_kernel(
    code, x, w, b, a_hi, a_lo, gamma, theta, sampled, k0, k1, spikes, membrane, resets, want_membrane, want_resets
):
    """Forward of SPEC §3 for neuron ``n`` (one thread): see psu_numba.cpu.kernels.forward_kernel."""
    n = cuda.grid(1)
    T = x.shape[0]
    if n >= x.shape[1]:
        return
    one = x.dtype.type(1)
    zero = x.dtype.type(0)
    scale = x.dtype.type(5.9604644775390625e-08)
    h = zero
    r = zero
    q = zero
    for t in range(T):
        r = decay(r + q, a_hi, a_lo)
        xv = x[t, n]
        if code == IPSU:
            hv = mix(w, b, x, t, n)
            q = xv
        else:
            hv = decay(h + xv, a_hi, a_lo)
            h = hv
            p = sigmoid(hv if code == PSU else mix(w, b, x, t, n), one)
            if sampled:
                p = one if x.dtype.type(uniform_bits(k0, k1, n, t)) * scale < p else zero
                if want_resets:
                    resets[t, n] = p
            q = p
        v = hv - gamma * r
        spikes[t, n] = one if v > theta else zero
        if want_membrane:
            membrane[t, n] = v


@cuda.jit
def vjp_kernel(code, x, g, w, b, a_hi, a_lo, gamma, theta, alpha, tied, sampled, k0, k1, dx, gv, pp, partial):
    """Backward of SPEC §5 for neuron ``n`` (one thread), forward recomputed.

    Forward sweep: ``gv[t, n] = G dS/dV``, ``pp[t, n] = P' = sigmoid(z) sigmoid(-z)`` (from the
    logit, not from a rounded ``P``), and the neuron's terms of
    dL/dtheta (``sum gV (1 + tied r)``, negated by the caller) and dL/dalpha into
    ``partial[0, n]``, ``partial[1, n]`` (float64). Reverse sweep: ``c = Bᵀ gV`` and dL/dX; for
    RPSU ``pp[t, n]`` is overwritten with ``gZ`` for the dL/dW, dL/db reductions.
    """
    n = cuda.grid(1)
    T = x.shape[0]
    if n >= x.shape[1]:
        return
    one = x.dtype.type(1)
    zero = x.dtype.type(0)
    two = x.dtype.type(2)
    scale = x.dtype.type(5.9604644775390625e-08)
    half_pi_alpha = x.dtype.type(math.pi / 2) * alpha
    h = zero
    r = zero
    q = zero
    acc_theta = 0.0
    acc_alpha = 0.0
    for t in range(T):
        r = decay(r + q, a_hi, a_lo)
        xv = x[t, n]
        if code == IPSU:
            hv = mix(w, b, x, t, n)
            q = xv
        else:
            hv = decay(h + xv, a_hi, a_lo)
            h = hv
            p, slope = sigmoid_slope(hv if code == PSU else mix(w, b, x, t, n), one)
            pp[t, n] = slope
            if sampled:
                q = one if x.dtype.type(uniform_bits(k0, k1, n, t)) * scale < p else zero
            else:
                q = p
        d = (hv - gamma * r) - theta
        qa = half_pi_alpha * d
        den = two * (one + qa * qa)
        gt = g[t, n]
        gvv = gt * (alpha / den)
        gv[t, n] = gvv
        acc_alpha += np.float64(gt * (d / den))
        acc_theta += np.float64(gvv)
        if tied:
            acc_theta += np.float64(gvv * r)
    partial[0, n] = acc_theta
    partial[1, n] = acc_alpha
    c = zero
    e = zero
    for t in range(T - 1, -1, -1):
        gvt = gv[t, n]
        if code == PSU:
            e = decay((gvt - gamma * c * pp[t, n]) + e, a_hi, a_lo)
            dx[t, n] = e
        elif code == IPSU:
            dx[t, n] = -gamma * c
        else:
            e = decay(gvt + e, a_hi, a_lo)
            dx[t, n] = e
            pp[t, n] = -gamma * c * pp[t, n]
        c = decay(c + gvt, a_hi, a_lo)
    if code != PSU:
        for j in range(T):
            acc = zero
            for t in range(j, T):
                acc += w[t, j] * (gv[t, n] if code == IPSU else pp[t, n])
            dx[j, n] += acc


@cuda.jit
def rowdot_kernel(A, B, out, lower):
    """``out[i, j] = sum_n A[i, n] B[j, n]`` (summed in float64), block ``(i, y)`` handling
    ``j = y, y + gridDim.y, ...``; with ``lower`` only ``j <= i`` is summed and the rest is 0 (the
    causal mask of dL/dW). Each sum's order depends on ``RED_THREADS`` only, not on the grid."""
    i = cuda.blockIdx.x
    tid = cuda.threadIdx.x
    buf = cuda.shared.array(RED_THREADS, np.float64)
    for j in range(cuda.blockIdx.y, B.shape[0], cuda.gridDim.y):
        acc = 0.0
        if not lower or j <= i:
            for n in range(tid, A.shape[1], RED_THREADS):
                acc += np.float64(A[i, n] * B[j, n])
        buf[tid] = acc
        cuda.syncthreads()
        s = RED_THREADS // 2
        while s > 0:
            if tid < s:
                buf[tid] += buf[tid + s]
            cuda.syncthreads()
            s //= 2
        if tid == 0:
            out[i, j] = buf[0]
        cuda.syncthreads()


@cuda.jit
def rowsum_kernel(A, out):
    """``out[i] = sum_n A[i, n]`` (float64), one block per row, fixed-order tree."""
    i = cuda.blockIdx.x
    tid = cuda.threadIdx.x
    buf = cuda.shared.array(RED_THREADS, np.float64)
    acc = 0.0
    for n in range(tid, A.shape[1], RED_THREADS):
        acc += np.float64(A[i, n])
    buf[tid] = acc
    cuda.syncthreads()
    s = RED_THREADS // 2
    while s > 0:
        if tid < s:
            buf[tid] += buf[tid + s]
        cuda.syncthreads()
        s //= 2
    if tid == 0:
        out[i] = buf[0]


@cuda.jit
def step_kernel(code, t, x_t, history, w, b, a_hi, a_lo, gamma, theta, sampled, k0, k1, h, r, q, spikes, membrane,
                resets):  # fmt: skip
    """:func:`psu_numba.cpu.kernels.step_neuron` for neuron ``n`` (one thread)."""
    n = cuda.grid(1)
    if n < x_t.shape[0]:
        step_neuron(code, t, n, x_t, history, w, b, a_hi, a_lo, gamma, theta, sampled, k0, k1, h, r, q, spikes,
                    membrane, resets)  # fmt: skip


@cuda.jit
def threefry_kernel(k0, k1, c0, c1, out0, out1):
    i = cuda.grid(1)
    if i < c0.shape[0]:
        w0, w1 = threefry(np.uint64(k0[i]), np.uint64(k1[i]), np.uint64(c0[i]), np.uint64(c1[i]))
        out0[i] = np.uint32(w0)
        out1[i] = np.uint32(w1)


@cuda.jit
def uniforms_kernel(k0, k1, out):
    """``out[t, n] = u`` of SPEC §6, float64; thread per flat element."""
    i = cuda.grid(1)
    T = out.shape[0]
    N = out.shape[1]
    if i < T * N:
        t = i // N
        n = i - t * N
        out[t, n] = np.float64(uniform_bits(k0, k1, n, t)) * 5.9604644775390625e-08
