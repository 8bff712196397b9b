"""Fused Triton kernels for PSU (the CUDA path of ``method="triton"``).

One program owns ``BLOCK`` neurons (one per thread) and walks time in registers. Time runs in
chunks of ``CHUNK`` steps, unrolled: a chunk's loads are issued together, and its per-step values
stay in registers. The recurrences are those of :mod:`psu_torch._psu_recurrence` (states scaled by
``1/a``)::

    forward:   r' = a r' + q_{t-1};  h' = a h' + x_t;  p = sigma(a h');  w = h' - gamma r';
               s = [w > theta / a];  v = a w
    backward:  g = G / ((1 + k2 d'^2) / (a s))  (= a gV),  d' = w - theta / a
               c = a c + g_{j+1};  k = g - gamma a c p';  e = k + a e  (= dL/dX)

Memory traffic per call, in units of ``T N`` elements of ``X``'s size (the floor: forward 2,
forward and backward 5):

* forward: reads ``X`` once, writes ``S`` (and ``V`` when asked, the draws ``R`` as int8 when
  sampled): 2.
* backward, ``T`` up to one chunk (32 steps, 16 in float64): reads ``X`` and ``G`` once, writes
  ``dL/dX`` once (3, the floor): the chunk's forward recompute keeps ``g`` and ``p'`` of every step
  in registers for its reverse sweep.
* backward, longer ``T``: a first sweep saves the states ``(h', r')`` entering each chunk but the
  first (``2 N`` values of the compute dtype per chunk); then chunks last to first each restart
  from their saved states, recompute into registers and sweep back, carrying ``c`` and ``e`` to
  the chunk before: ``X`` read twice, ``G`` once, ``dL/dX`` written once, plus ``4 / CHUNK`` of
  saved states (``8 / CHUNK`` for half-precision ``X``, whose states are float32): 4.125 in
  float32 and 4.25 in float64 and half precision. Sampled resets also read the int8 ``R`` once
  per sweep.

Triton before 3.3 cannot compile the tuples that hold a chunk's values; there (``CHUNKED`` false)
the loop kernels run instead: the forward steps one load at a time, and the backward keeps ``g``
and ``p'`` in two ``[T, N]`` scratch arrays (7 units; 11 for half-precision ``X``).

A ``T`` that is not a multiple of the chunk is padded at its end (steps past ``T`` load 0, store
nothing, and feed zeros to the reverse sweep); :func:`_chunk` sizes the chunks so that the padding
is under one step per chunk.

Every state update ``u + a y`` applies ``a`` as ``fma(a_hi, y, u + a_lo y)`` (``a_lo = 0`` in
float64; :func:`psu_torch._decay.split`), so neither the rounding of ``a`` nor that of the product
is multiplied into the states at every step (SPEC §9). ``p' = sigma(z) sigma(-z) = e / (1 + e)^2``
with ``e = exp(-|z|)``, from the logit ``z = a h'`` (SPEC §5: not ``p (1 - p)`` from a rounded
``p``).

Sampled resets draw Threefry-2x32-20 in-kernel in ``uint32`` (counter ``(n + neuron_offset, t)``,
``n`` the neuron's index in ``X``), bit-identical to :mod:`psu_torch.random`. Scalars travel in a
small tensor of the compute dtype (:func:`psu_torch._precision.compute_dtype`), so float64 runs keep float64 constants and every
arithmetic operation takes that dtype: half-precision ``X`` and ``G`` are loaded as they are and
converted in registers, the states (the saved ones too) and the per-block partial sums of
``dL/dtheta`` and ``dL/dalpha`` are float32, and only ``S``, ``V`` and ``dL/dX`` are rounded to the
input's dtype when stored. The scalars are cached on the device per parameter set, so a call makes
no host-to-device copy after the first with the same parameters.

The number of steps ``T`` and the chunk length are compile-time constants: each sequence length
compiles its own kernels (once, then from Triton's cache), and the loops over time have bounds
that Triton's interpreter can index on every 3.x release (3.6 wraps a runtime integer argument in
a one-element array that ``range`` cannot take under NumPy >= 2.4). A chunk's values are tuples
indexed by the unrolled loop's constant index.

Under ``TRITON_INTERPRET=1`` the same kernels run on CPU tensors, which is how they are tested on
machines without a GPU.
"""

# No "from __future__ import annotations" here: Triton 3.0's interpreter recognises a constexpr
# parameter only by an evaluated annotation (tl.constexpr), not by the string "tl.constexpr".
from functools import lru_cache

import torch
import triton
import triton.language as tl

from psu_core.checks import Params
from psu_torch._decay import split
from psu_torch._precision import compute_dtype
from psu_torch._surrogate import HALF_PI

# One neuron per thread (128 = 4 warps of 32): a chunk's per-step values (x and G loaded ahead, then
# g and p') live in registers, 2-4 values per step and thread, under the 255 a thread can hold.
_BLOCK = 128
_NUM_WARPS = 4
# Steps per unrolled chunk, halved for float64 (two registers per value). Measured with sm_90 AOT
# compiles (cuobjdump -res-usage), float32, every flag on: the backward at 32 takes 128-165
# registers and no local memory; the sampled forward at 32 takes 255 (its Threefry rounds are
# scheduled across the chunk), at 16 about half. The forward needs no more steps in flight than
# it has loads to overlap, so it unrolls 16.
_BWD_CHUNK = 32
_FWD_CHUNK = 16
# The chunked kernels hold a chunk's values in tuples, which Triton compiles from 3.3 on; before,
# the loop kernels (below the chunked ones) run instead, 512 neurons to a program.
CHUNKED = tuple(int(v) for v in triton.__version__.split(".")[:2]) >= (3, 3)
_LOOP_BLOCK = 512


@triton.jit
def _rotl(x, r: tl.constexpr):
    return (x << r) | (x >> (32 - r))


# fmt: off
@triton.jit
def _threefry_w0(k0, k1, c0, c1):
    """First output word of Threefry-2x32-20 (uint32 in, uint32 out)."""
    ks2 = k0 ^ k1 ^ 0x1BD11BDA
    x0 = c0 + k0
    x1 = c1 + k1
    # rounds 0-3, key injection 1
    x0 += x1; x1 = _rotl(x1, 13); x1 ^= x0  # noqa: E702
    x0 += x1; x1 = _rotl(x1, 15); x1 ^= x0  # noqa: E702
    x0 += x1; x1 = _rotl(x1, 26); x1 ^= x0  # noqa: E702
    x0 += x1; x1 = _rotl(x1, 6); x1 ^= x0  # noqa: E702
    x0 += k1
    x1 += ks2 + 1
    # rounds 4-7, key injection 2
    x0 += x1; x1 = _rotl(x1, 17); x1 ^= x0  # noqa: E702
    x0 += x1; x1 = _rotl(x1, 29); x1 ^= x0  # noqa: E702
    x0 += x1; x1 = _rotl(x1, 16); x1 ^= x0  # noqa: E702
    x0 += x1; x1 = _rotl(x1, 24); x1 ^= x0  # noqa: E702
    x0 += ks2
    x1 += k0 + 2
    # rounds 8-11, key injection 3
    x0 += x1; x1 = _rotl(x1, 13); x1 ^= x0  # noqa: E702
    x0 += x1; x1 = _rotl(x1, 15); x1 ^= x0  # noqa: E702
    x0 += x1; x1 = _rotl(x1, 26); x1 ^= x0  # noqa: E702
    x0 += x1; x1 = _rotl(x1, 6); x1 ^= x0  # noqa: E702
    x0 += k0
    x1 += k1 + 3
    # rounds 12-15, key injection 4
    x0 += x1; x1 = _rotl(x1, 17); x1 ^= x0  # noqa: E702
    x0 += x1; x1 = _rotl(x1, 29); x1 ^= x0  # noqa: E702
    x0 += x1; x1 = _rotl(x1, 16); x1 ^= x0  # noqa: E702
    x0 += x1; x1 = _rotl(x1, 24); x1 ^= x0  # noqa: E702
    x0 += k1
    x1 += ks2 + 4
    # rounds 16-19, key injection 5
    x0 += x1; x1 = _rotl(x1, 13); x1 ^= x0  # noqa: E702
    x0 += x1; x1 = _rotl(x1, 15); x1 ^= x0  # noqa: E702
    x0 += x1; x1 = _rotl(x1, 26); x1 ^= x0  # noqa: E702
    x0 += x1; x1 = _rotl(x1, 6); x1 ^= x0  # noqa: E702
    x0 += ks2
    return x0
# fmt: on


@triton.jit
def _sigmoid(z):
    # stable: exp of a non-positive number only
    e = tl.exp(-tl.abs(z))
    return tl.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


@triton.jit
def _sigmoid_and_slope(z):
    """``(sigma(z), sigma(z) sigma(-z))``, both from ``e = exp(-|z|)``."""
    e = tl.exp(-tl.abs(z))
    den = 1.0 + e
    return tl.where(z >= 0, 1.0 / den, e / den), e / (den * den)


@triton.jit
def _psu_fwd_kernel(
    X,
    S,
    V,
    R,
    PARAMS,
    KEY,
    N,
    T: tl.constexpr,
    CHUNK: tl.constexpr,
    WANT_V: tl.constexpr,
    SAMPLED: tl.constexpr,
    BLOCK: tl.constexpr,
):
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    a = tl.load(PARAMS + 0)  # the compute dtype: float32 for half-precision X
    gamma = tl.load(PARAMS + 1)
    limit = tl.load(PARAMS + 2)
    a_lo = tl.load(PARAMS + 3)
    zero = tl.zeros([BLOCK], dtype=a.dtype)
    now = tl.zeros([BLOCK], dtype=tl.int32)  # a step's index as a tensor: the interpreter's loop indices are ints
    h = zero
    r = zero
    q = zero
    if SAMPLED:
        k0 = tl.load(KEY + 0).to(tl.uint32)
        k1 = tl.load(KEY + 1).to(tl.uint32)
        # the neuron's index in the whole call; < 2**32 (checked by the caller), so no wrap
        c0 = offs.to(tl.uint32) + tl.load(KEY + 2).to(tl.uint32)
    for kc in range(0, (T + CHUNK - 1) // CHUNK):
        t0 = kc * CHUNK
        # The chunk's loads first, newest at the front: a store may alias X, so the compiler could
        # not move a later load above it, and each step would wait out a load's latency.
        xs = (zero,)
        for i in tl.static_range(CHUNK):
            live = mask & (now + (t0 + i) < T)
            xs = (tl.load(X + tl.cast(t0 + i, tl.int64) * N + offs, mask=live, other=0.0).to(a.dtype),) + xs
        for i in tl.static_range(CHUNK):
            t = t0 + i
            base = tl.cast(t, tl.int64) * N
            live = mask & (now + t < T)
            r = tl.fma(a, r, q + a_lo * r)
            h = tl.fma(a, h, xs[CHUNK - 1 - i] + a_lo * h)
            p = _sigmoid(a * h)
            if SAMPLED:
                w0 = _threefry_w0(k0, k1, c0, tl.zeros([BLOCK], dtype=tl.uint32) + tl.cast(t, tl.uint32))
                u = (w0 >> 8).to(a.dtype) * 5.9604644775390625e-08  # 2**-24
                drawn = u < p
                tl.store(R + base + offs, drawn.to(tl.int8), mask=live)
                q = drawn.to(a.dtype)
            else:
                q = p
            w = h - gamma * r
            # (bool -> compute dtype -> output dtype: Triton's interpreter cannot cast bool to bfloat16)
            tl.store(S + base + offs, (w > limit).to(a.dtype).to(S.dtype.element_ty), mask=live)
            if WANT_V:
                tl.store(V + base + offs, (a * w).to(V.dtype.element_ty), mask=live)


@triton.jit
def _psu_bwd_kernel(
    X,
    G,
    R,
    BND,
    DX,
    PARTIAL,
    PARAMS,
    N,
    T: tl.constexpr,
    CHUNK: tl.constexpr,
    SAMPLED: tl.constexpr,
    TIED: tl.constexpr,
    NEED_SCALARS: tl.constexpr,
    BLOCK: tl.constexpr,
):
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    a = tl.load(PARAMS + 0)
    gamma = tl.load(PARAMS + 1)
    limit = tl.load(PARAMS + 2)
    inv_as = tl.load(PARAMS + 3)  # 1 / (a s)
    k2s = tl.load(PARAMS + 4)  # (pi/2 alpha a)^2 / (a s)
    inv_a = tl.load(PARAMS + 5)
    a_lo = tl.load(PARAMS + 6)
    zero = tl.zeros([BLOCK], dtype=a.dtype)
    now = tl.zeros([BLOCK], dtype=tl.int32)  # a step's index as a tensor: the interpreter's loop indices are ints
    # (chunk counts written out where used: triton 3.6's interpreter turns a constexpr assigned to a
    # local into a one-element array that range() cannot take)
    # Sweep 1 (more than one chunk): the states (h', r') after each chunk but the last, to BND.
    h = zero
    r = zero
    q = zero
    for kc in range(0, (T + CHUNK - 1) // CHUNK - 1):
        t0 = kc * CHUNK
        xs = (zero,)
        for i in tl.static_range(CHUNK):
            xs = (tl.load(X + tl.cast(t0 + i, tl.int64) * N + offs, mask=mask, other=0.0).to(a.dtype),) + xs
        for i in tl.static_range(CHUNK):
            r = tl.fma(a, r, q + a_lo * r)
            h = tl.fma(a, h, xs[CHUNK - 1 - i] + a_lo * h)
            if SAMPLED:
                q = tl.load(R + tl.cast(t0 + i, tl.int64) * N + offs, mask=mask, other=0).to(a.dtype)
            else:
                q = _sigmoid(a * h)
        bnd = tl.cast(kc, tl.int64) * (2 * N)
        tl.store(BND + bnd + offs, h, mask=mask)
        tl.store(BND + bnd + N + offs, r, mask=mask)
    # Sweep 2, chunks last to first: the chunk's forward recompute from its saved states, with g and
    # p' of each step held in registers, then its reverse sweep; c and e carry to the chunk before.
    c = zero
    e = zero
    acc0 = zero
    acc1 = zero
    for kk in range(0, (T + CHUNK - 1) // CHUNK):
        kc = (T + CHUNK - 1) // CHUNK - 1 - kk
        t0 = kc * CHUNK
        saved = mask & (now + kc > 0)
        bnd = tl.cast(kc - 1, tl.int64) * (2 * N)
        h = tl.load(BND + bnd + offs, mask=saved, other=0.0)
        r = tl.load(BND + bnd + N + offs, mask=saved, other=0.0)
        if SAMPLED:
            q = tl.load(R + tl.cast(t0 - 1, tl.int64) * N + offs, mask=saved, other=0).to(a.dtype)
        else:
            q = tl.where(saved, _sigmoid(a * h), 0.0)
        xs = (zero,)
        gss = (zero,)
        for i in tl.static_range(CHUNK):
            base = tl.cast(t0 + i, tl.int64) * N
            live = mask & (now + (t0 + i) < T)
            xs = (tl.load(X + base + offs, mask=live, other=0.0).to(a.dtype),) + xs
            gss = (tl.load(G + base + offs, mask=live, other=0.0).to(a.dtype),) + gss
        gs = (zero,)
        ps = (zero,)
        for i in tl.static_range(CHUNK):
            live = mask & (now + (t0 + i) < T)
            r = tl.fma(a, r, q + a_lo * r)
            h = tl.fma(a, h, xs[CHUNK - 1 - i] + a_lo * h)
            p, slope = _sigmoid_and_slope(a * h)
            if SAMPLED:
                q = tl.load(R + tl.cast(t0 + i, tl.int64) * N + offs, mask=live, other=0).to(a.dtype)
            else:
                q = p
            d = h - gamma * r - limit  # (v - theta) / a
            # zero past T and past N: a non-finite state there must not reach c, e or the sums
            g = tl.where(live, gss[CHUNK - 1 - i] / (inv_as + k2s * d * d), 0.0)  # a gV
            if NEED_SCALARS:
                acc0 += g * d
                if TIED:
                    acc1 += g * (r + inv_a)
                else:
                    acc1 += g
            gs = (g,) + gs
            ps = (tl.where(live, slope, 0.0),) + ps
        for i in tl.static_range(CHUNK):
            g = gs[i]
            k = g - gamma * a * (c * ps[i])
            c = tl.fma(a, c, g + a_lo * c)
            e = tl.fma(a, e, k + a_lo * e)
            j = t0 + CHUNK - 1 - i
            tl.store(DX + tl.cast(j, tl.int64) * N + offs, e.to(DX.dtype.element_ty), mask=mask & (now + j < T))
    if NEED_SCALARS:
        tl.store(PARTIAL + pid * 2 + 0, tl.sum(acc0, axis=0))
        tl.store(PARTIAL + pid * 2 + 1, tl.sum(acc1, axis=0))


# The kernels for triton < 3.3, whose compiler has no tuples to hold a chunk's values: the forward
# steps one load at a time, and the backward keeps g and p' in two [T, N] scratch arrays between its
# forward recompute and its reverse sweep (forward 2, backward 7 in units of T N elements of X's
# size; 11 for half-precision X, whose scratch is float32).
@triton.jit
def _psu_fwd_loop_kernel(
    X,
    S,
    V,
    R,
    PARAMS,
    KEY,
    N,
    T: tl.constexpr,
    WANT_V: tl.constexpr,
    SAMPLED: tl.constexpr,
    BLOCK: tl.constexpr,
):
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    a = tl.load(PARAMS + 0)  # the compute dtype: float32 for half-precision X
    gamma = tl.load(PARAMS + 1)
    limit = tl.load(PARAMS + 2)
    a_lo = tl.load(PARAMS + 3)
    zero = tl.zeros([BLOCK], dtype=a.dtype)
    h = zero
    r = zero
    q = zero
    if SAMPLED:
        k0 = tl.load(KEY + 0).to(tl.uint32)
        k1 = tl.load(KEY + 1).to(tl.uint32)
        # the neuron's index in the whole call; < 2**32 (checked by the caller), so no wrap
        c0 = offs.to(tl.uint32) + tl.load(KEY + 2).to(tl.uint32)
    for t in range(0, T):
        base = tl.cast(t, tl.int64) * N
        x = tl.load(X + base + offs, mask=mask, other=0.0).to(a.dtype)
        r = tl.fma(a, r, q + a_lo * r)
        h = tl.fma(a, h, x + a_lo * h)
        p = _sigmoid(a * h)
        if SAMPLED:
            w0 = _threefry_w0(k0, k1, c0, tl.zeros([BLOCK], dtype=tl.uint32) + tl.cast(t, tl.uint32))
            u = (w0 >> 8).to(a.dtype) * 5.9604644775390625e-08  # 2**-24
            drawn = u < p
            tl.store(R + base + offs, drawn.to(tl.int8), mask=mask)
            q = drawn.to(a.dtype)
        else:
            q = p
        w = h - gamma * r
        # (bool -> compute dtype -> output dtype: Triton's interpreter cannot cast bool to bfloat16)
        tl.store(S + base + offs, (w > limit).to(a.dtype).to(S.dtype.element_ty), mask=mask)
        if WANT_V:
            tl.store(V + base + offs, (a * w).to(V.dtype.element_ty), mask=mask)


@triton.jit
def _psu_bwd_scratch_kernel(
    X,
    G,
    R,
    GV,
    PP,
    DX,
    PARTIAL,
    PARAMS,
    N,
    T: tl.constexpr,
    SAMPLED: tl.constexpr,
    TIED: tl.constexpr,
    NEED_SCALARS: tl.constexpr,
    BLOCK: tl.constexpr,
):
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    a = tl.load(PARAMS + 0)
    gamma = tl.load(PARAMS + 1)
    limit = tl.load(PARAMS + 2)
    inv_as = tl.load(PARAMS + 3)  # 1 / (a s)
    k2s = tl.load(PARAMS + 4)  # (pi/2 alpha a)^2 / (a s)
    inv_a = tl.load(PARAMS + 5)
    a_lo = tl.load(PARAMS + 6)
    zero = tl.zeros([BLOCK], dtype=a.dtype)
    h = zero
    r = zero
    q = zero
    acc0 = zero
    acc1 = zero
    for t in range(0, T):
        base = tl.cast(t, tl.int64) * N
        x = tl.load(X + base + offs, mask=mask, other=0.0).to(a.dtype)
        gs = tl.load(G + base + offs, mask=mask, other=0.0).to(a.dtype)
        r = tl.fma(a, r, q + a_lo * r)
        h = tl.fma(a, h, x + a_lo * h)
        p, slope = _sigmoid_and_slope(a * h)
        tl.store(PP + base + offs, slope, mask=mask)
        if SAMPLED:
            q = tl.load(R + base + offs, mask=mask, other=0).to(a.dtype)
        else:
            q = p
        d = h - gamma * r - limit  # (v - theta) / a
        g = gs / (inv_as + k2s * d * d)  # a gV
        g = tl.where(mask, g, 0.0)
        tl.store(GV + base + offs, g, mask=mask)
        if NEED_SCALARS:
            acc0 += g * d
            if TIED:
                acc1 += g * (r + inv_a)
            else:
                acc1 += g
    c = zero
    e = zero
    for jj in range(0, T):
        j = T - 1 - jj
        base = tl.cast(j, tl.int64) * N
        slope = tl.load(PP + base + offs, mask=mask, other=0.0)
        g = tl.load(GV + base + offs, mask=mask, other=0.0)
        k = g - gamma * a * (c * slope)
        c = tl.fma(a, c, g + a_lo * c)
        e = tl.fma(a, e, k + a_lo * e)
        tl.store(DX + base + offs, e.to(DX.dtype.element_ty), mask=mask)
    if NEED_SCALARS:
        tl.store(PARTIAL + pid * 2 + 0, tl.sum(acc0, axis=0))
        tl.store(PARTIAL + pid * 2 + 1, tl.sum(acc1, axis=0))


_DTYPES = (torch.float64, torch.float32, torch.float16, torch.bfloat16)


def _chunk(T: int, dtype: torch.dtype, most: int) -> int:
    """Steps per unrolled chunk: all ``T`` up to ``most`` (halved for float64), else ``ceil(T / n)``
    for the fewest chunks ``n`` under it (the last chunk's padding is then under ``n`` steps)."""
    most = most // 2 if compute_dtype(dtype) == torch.float64 else most
    n = -(-T // most)
    return -(-T // n)


@lru_cache(maxsize=256)
def _scalars(values: tuple[float, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    return torch.tensor(values, dtype=dtype, device=device)


def _device_scalars(values: tuple[float, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``values`` as a tensor on ``device``, cached: one host-to-device copy per distinct parameter
    set, not one per call (a traced call builds its own: the tracer's tensors must not be cached)."""
    if torch.compiler.is_compiling():
        return _scalars.__wrapped__(values, dtype, device)
    return _scalars(values, dtype, device)


def _params(values: list[float], X: torch.Tensor, a: float) -> torch.Tensor:
    """The kernel's scalars in the compute dtype; the first is ``a_hi`` and the last ``a_lo``
    (:func:`psu_torch._decay.split`)."""
    cd = compute_dtype(X.dtype)
    values[0], values[-1] = split(a, cd, fused=True)
    return _device_scalars(tuple(values), cd, X.device)


def _check(X: torch.Tensor) -> None:
    if X.dtype not in _DTYPES:
        raise ValueError(f"the Triton kernels take float64, float32, float16 or bfloat16, got {X.dtype}")
    if not X.is_contiguous():
        raise ValueError("the Triton kernels need a contiguous [T, N] input")


def psu_forward(
    X: torch.Tensor, p: Params, want_v: bool, neuron_offset: int = 0
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """PSU forward in one fused kernel: ``(S, V or None, R as bool or None)`` for ``X [T, N]`` and the
    checked call ``p`` (sampled draws for neurons ``neuron_offset .. neuron_offset + N`` of the whole
    call). ``S`` and ``V`` come in ``X.dtype``; half-precision ``X`` is computed in float32 in-kernel."""
    _check(X)
    T, N = X.shape
    a = p.decay
    S = torch.empty_like(X)
    V = torch.empty_like(X) if want_v else None
    R8 = torch.empty((T, N), dtype=torch.int8, device=X.device) if p.sampled else None
    if N == 0:
        return S, V, None if R8 is None else R8.bool()
    # The key words and the neuron offset travel as int64 in a tensor: as kernel integer arguments
    # Triton would specialise or sign-type them by value.
    key_t = _device_scalars((*p.key, neuron_offset), torch.int64, X.device)
    args = (
        X,
        S,
        V if V is not None else S,
        R8 if R8 is not None else S,
        _params([a, p.gamma, p.threshold / a, 0.0], X, a),
        key_t,
        N,
        T,
    )
    if CHUNKED:
        chunk = _chunk(T, X.dtype, _FWD_CHUNK)
        _psu_fwd_kernel[(triton.cdiv(N, _BLOCK),)](
            *args, CHUNK=chunk, WANT_V=want_v, SAMPLED=p.sampled, BLOCK=_BLOCK, num_warps=_NUM_WARPS
        )
    else:
        _psu_fwd_loop_kernel[(triton.cdiv(N, _LOOP_BLOCK),)](*args, WANT_V=want_v, SAMPLED=p.sampled, BLOCK=_LOOP_BLOCK)
    return S, V, None if R8 is None else R8.view(torch.bool)


def psu_backward(
    X: torch.Tensor, G: torch.Tensor, R: torch.Tensor | None, p: Params, need_scalars: bool
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """``(dL/dX, dL/dtheta, dL/dalpha)`` in one fused kernel with no ``[T, N]`` scratch (see the
    module docstring; ``[chunks - 1, 2, N]`` saved states past one chunk): ``dL/dX`` in
    ``X.dtype``, the scalars as 0-d tensors in the compute dtype (``None`` unless ``need_scalars``).

    The kernel's per-block partial sums are those of the eager recurrence
    (:func:`psu_torch._psu_recurrence.psu_backward_recurrence`): ``sum(g d')`` and, tied,
    ``sum(g (r' + 1/a))``, else ``sum(g)``, with ``g = a gV``."""
    _check(X)
    T, N = X.shape
    a, alpha = p.decay, p.surrogate_alpha
    s = 0.5 * alpha
    cd = compute_dtype(X.dtype)
    if N == 0:
        z = torch.zeros((), dtype=cd, device=X.device) if need_scalars else None
        return torch.empty_like(X), z, z
    k2s = (HALF_PI * alpha * a) ** 2 / (a * s)
    scalars = _params([a, p.gamma, p.threshold / a, 1.0 / (a * s), k2s, 1.0 / a, 0.0], X, a)
    R8 = R.view(torch.int8) if R is not None else X
    flags = dict(SAMPLED=R is not None, TIED=p.tied, NEED_SCALARS=need_scalars)
    if CHUNKED:
        chunk = _chunk(T, X.dtype, _BWD_CHUNK)
        # the states (h', r') entering every chunk but the first, in the compute dtype
        n_saved = -(-T // chunk) - 1
        BND = torch.empty((n_saved, 2, N), dtype=cd, device=X.device) if n_saved else X
        DX = torch.empty_like(X)
        n_blocks = triton.cdiv(N, _BLOCK)
        partial = torch.empty((n_blocks, 2), dtype=cd, device=X.device) if need_scalars else X
        _psu_bwd_kernel[(n_blocks,)](
            X, G.contiguous(), R8, BND, DX, partial, scalars, N, T,
            CHUNK=chunk, **flags, BLOCK=_BLOCK, num_warps=_NUM_WARPS,
        )  # fmt: skip
    else:
        # scratch in the compute dtype: g = a gV (overwritten by dL/dX in place unless X is half) and p'
        GV = torch.empty(X.shape, dtype=cd, device=X.device)
        PP = torch.empty(X.shape, dtype=cd, device=X.device)
        DX = GV if cd == X.dtype else torch.empty_like(X)
        n_blocks = triton.cdiv(N, _LOOP_BLOCK)
        partial = torch.empty((n_blocks, 2), dtype=cd, device=X.device) if need_scalars else X
        _psu_bwd_scratch_kernel[(n_blocks,)](
            X, G.contiguous(), R8, GV, PP, DX, partial, scalars, N, T, **flags, BLOCK=_LOOP_BLOCK
        )  # fmt: skip
    if not need_scalars:
        return DX, None, None
    sums = partial.sum(dim=0)
    d_theta = -sums[1] if p.tied else sums[1] * (-1.0 / a)
    return DX, d_theta, sums[0] / alpha
