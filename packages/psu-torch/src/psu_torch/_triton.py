"""Fused Triton kernels for PSU (the CUDA path of ``method="triton"``).

One program owns ``BLOCK`` neurons and walks time in registers, so the forward pass reads ``X``
once and writes ``S`` once (the memory-bandwidth floor), and the backward pass reads ``X`` and
``G`` once, writes ``dL/dX`` once, with two ``[T, N]`` scratch passes (``g`` and ``p'``) between its
forward recompute and its reverse sweep. The recurrences are those of
:mod:`psu_torch._psu_recurrence` (states scaled by ``1/a``)::

    forward:   r' = a r' + q_{t-1};  h' = a h' + x_t;  p = sigma(a h');  w = h' - gamma r';
               s = [w > theta / a];  v = a w
    backward:  g = G / ((1 + k2 d'^2) / (a s))  (= a gV),  d' = w - theta / a
               c = a c + g_{j+1};  k = g - gamma a c p';  e = k + a e  (= dL/dX)

Every state update ``u + a y`` applies ``a`` as ``fma(a_hi, y, u + a_lo y)`` (``a_lo = 0`` in
float64; :func:`psu_torch._decay.split`), so neither the rounding of ``a`` nor that of the product
is multiplied into the states at every step (SPEC §9). ``p' = sigma(z) sigma(-z) = e / (1 + e)^2`` with ``e = exp(-|z|)``, from the logit
``z = a h'`` (SPEC §5: not ``p (1 - p)`` from a rounded ``p``).

Sampled resets draw Threefry-2x32-20 in-kernel in ``uint32`` (counter ``(n + neuron_offset, t)``,
``n`` the neuron's index in ``X``), bit-identical to :mod:`psu_torch.random`. Scalars travel in a small tensor of the compute dtype
(:func:`psu_torch._precision.compute_dtype`), so float64 runs keep float64 constants and every
arithmetic operation takes that dtype: half-precision ``X`` and ``G`` are loaded as they are and
converted in registers, the states, the scratch passes (``g``, ``p'``) and the partial sums are
float32, and only ``S``, ``V`` and ``dL/dX`` are rounded to the input's dtype when stored.

The number of steps ``T`` is a compile-time constant: each sequence length compiles its own
kernels (once, then from Triton's cache), and the loops over time have bounds that Triton's
interpreter can index on every 3.x release (3.6 wraps a runtime integer argument in a
one-element array that ``range`` cannot take under NumPy >= 2.4).

Under ``TRITON_INTERPRET=1`` the same kernels run on CPU tensors, which is how they are tested on
machines without a GPU.
"""

# No "from __future__ import annotations" here: Triton 3.0's interpreter recognises a constexpr
# parameter only by an evaluated annotation (tl.constexpr), not by the string "tl.constexpr".
import torch
import triton
import triton.language as tl

from psu_core.checks import Params
from psu_torch._decay import split
from psu_torch._precision import compute_dtype
from psu_torch._surrogate import HALF_PI

_BLOCK = 512


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
def _psu_bwd_kernel(
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


def _params(values: list[float], X: torch.Tensor, a: float) -> torch.Tensor:
    """The kernel's scalars in the compute dtype; the first is ``a_hi`` and the last ``a_lo``
    (:func:`psu_torch._decay.split`)."""
    cd = compute_dtype(X.dtype)
    values[0], values[-1] = split(a, cd, fused=True)
    return torch.tensor(values, dtype=cd, device=X.device)


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
    key_t = torch.tensor([*p.key, neuron_offset], dtype=torch.int64, device=X.device)
    grid = (triton.cdiv(N, _BLOCK),)
    _psu_fwd_kernel[grid](
        X,
        S,
        V if V is not None else S,
        R8 if R8 is not None else S,
        _params([a, p.gamma, p.threshold / a, 0.0], X, a),
        key_t,
        N,
        T,
        WANT_V=want_v,
        SAMPLED=p.sampled,
        BLOCK=_BLOCK,
    )
    return S, V, None if R8 is None else R8.view(torch.bool)


def psu_backward(
    X: torch.Tensor, G: torch.Tensor, R: torch.Tensor | None, p: Params, need_scalars: bool
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """``(dL/dX, dL/dtheta, dL/dalpha)`` in one fused kernel (see the module docstring): ``dL/dX`` in
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
    # Scratch in the compute dtype: g = a gV (for float32/float64 overwritten by dL/dX in place) and p' = sigma(z) sigma(-z).
    GV = torch.empty(X.shape, dtype=cd, device=X.device)
    PP = torch.empty(X.shape, dtype=cd, device=X.device)
    DX = GV if cd == X.dtype else torch.empty_like(X)
    n_blocks = triton.cdiv(N, _BLOCK)
    partial = torch.zeros((n_blocks, 2), dtype=cd, device=X.device)
    k2s = (HALF_PI * alpha * a) ** 2 / (a * s)
    R8 = R.view(torch.int8) if R is not None else None
    _psu_bwd_kernel[(n_blocks,)](
        X,
        G.contiguous(),
        R8 if R8 is not None else X,
        GV,
        PP,
        DX,
        partial,
        _params([a, p.gamma, p.threshold / a, 1.0 / (a * s), k2s, 1.0 / a, 0.0], X, a),
        N,
        T,
        SAMPLED=R is not None,
        TIED=p.tied,
        NEED_SCALARS=need_scalars,
        BLOCK=_BLOCK,
    )
    if not need_scalars:
        return DX, None, None
    sums = partial.sum(dim=0)
    d_theta = -sums[1] if p.tied else sums[1] * (-1.0 / a)
    return DX, d_theta, sums[0] / alpha
