"""PSU, IPSU and RPSU as pure JAX functions with ``jax.custom_vjp`` (SPEC §2, §4, §5, §6, §11).

Inputs are time first, ``x: [T, *neuron_shape]``; every neuron is independent along time, so the
functions compose with ``vmap``, ``jit``, ``grad`` and sharding over the neuron axes (computed in
the shape of ``x``, never flattened, so that a sharded neuron axis needs no communication). With
``a = 1 / tau``, ``A``, ``B``, ``M`` the fixed ``[T, T]`` matrices of SPEC §1:

    PSU:   H = A X,              P = sigmoid(H),              V = H - gamma * B Q
    IPSU:  H = (W ⊙ M) X + b,                                 V = H - gamma * B X
    RPSU:  H = A X,              P = sigmoid((W ⊙ M) X + b),  V = H - gamma * B Q
    all:   S = [V > theta]

``Q = P`` with ``reset="expected"``, ``Q = R = [u < P]`` with ``reset="sampled"`` (the Threefry
draws of SPEC §6, neuron ``i`` of the call drawing with counter ``n = neuron_offset + i``; under
``jax.vmap`` mapped pieces are numbered as one call, see :mod:`psu_jax.random`). The backward pass is the arctan surrogate of SPEC §4 and the vector-Jacobian
products of SPEC §5 through the spikes; every floating argument (``x``, ``threshold``,
``surrogate_alpha``, ``weight``, ``bias``) gets its gradient. The membrane ``V`` and the draws
``R`` are returned under ``stop_gradient`` (SPEC §11): outputs to inspect, not to train on.

Scalars that select the computation (``tau``, ``reset_scale``, ``reset``, ``method``) must be
concrete Python values: they are static under ``jit``. ``threshold`` and ``surrogate_alpha`` may
be traced arrays (learnable); see :mod:`psu_jax.arguments` for what is checked then.
"""

from __future__ import annotations

import dataclasses
import math
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp

from psu_core import checks
from psu_core.api import PSUOutput
from psu_jax import arguments
from psu_jax import random as _random
from psu_jax.recurrence import METHODS, causal_matmul, decay, decay_t, leaky, leaky_t, matmul, scale

__all__ = ["psu", "ipsu", "rpsu", "PSUOutput", "METHODS", "choose_method"]


@dataclasses.dataclass(frozen=True)
class _Config:
    """What selects the computation (static). ``a`` (a :class:`psu_jax.recurrence.Decay`), a fixed
    ``gamma`` and ``tied`` (gamma tied to the threshold, the gradient flowing through both) are
    traced arguments, so that calls differing only in ``tau`` or ``reset_scale`` share one
    compiled program."""

    variant: str
    sampled: bool
    method: str


# ----------------------------------------------------------------------------- numerics


def _surrogate(v: jax.Array, threshold: jax.Array, alpha: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``dS/dV = alpha / (2 (1 + q^2))``, ``dS/dalpha = (V - theta) / (2 (1 + q^2))``, ``q = pi/2 alpha (V - theta)``."""
    d = v - threshold
    q = (0.5 * math.pi) * alpha * d
    den = 2.0 * (1.0 + q * q)
    return alpha / den, d / den


def _sigmoid_derivative(z: jax.Array) -> jax.Array:
    """``dP/dz = sigmoid(z) sigmoid(-z) = e / (1 + e)^2`` with ``e = exp(-|z|)`` (SPEC §5), from the
    logit: ``P (1 - P)`` from a rounded ``P`` near 1 keeps few digits of ``1 - P`` (z = 12 in
    float32: 1% off). One ``exp`` that never overflows, where two sigmoids took two (and compiled
    0.1 s slower into every backward program on the CPU)."""
    e = jnp.exp(-jnp.abs(z))
    return e / jnp.square(1.0 + e)


def _masked(weight: jax.Array) -> jax.Array:
    """``W ⊙ M`` as a selection (``jnp.tril`` selects): the upper triangle is 0 even where it is NaN."""
    return jnp.tril(weight)


def _uniforms(x: jax.Array, words: jax.Array, offset: jax.Array) -> jax.Array:
    """The uniforms of SPEC §6 for the neurons of ``x [T, *neuron_shape]``, in ``x``'s dtype."""
    return _random.uniforms_like(x, words, _random.neuron_index(x.shape[1:], offset), x.dtype)


def _over_time(v: jax.Array, ndim: int) -> jax.Array:
    """A ``[T]`` vector (the bias) shaped to broadcast over ``[T, *neuron_shape]``."""
    return v.reshape(v.shape + (1,) * (ndim - 1))


def _neuron_sum(v: jax.Array) -> jax.Array:
    """``[T, *neuron_shape] -> [T]``: the sum over the neurons."""
    return jnp.sum(v, axis=tuple(range(1, v.ndim)))


def _outer(g: jax.Array, x: jax.Array) -> jax.Array:
    """``[T, T]``: ``sum_n g[t, n] x[j, n]``, at full precision."""
    return jnp.einsum("t...,j...->tj", g, x, precision=jax.lax.Precision.HIGHEST)


def _gamma(tied: jax.Array, threshold: jax.Array, gamma: jax.Array) -> jax.Array:
    return jnp.where(tied, threshold, gamma)


# ----------------------------------------------------------------------------- PSU, fused scan
# One pass over time forward and one backward: the memory-traffic floor for the recurrence form.


def _psu_scan_forward(cfg, x, words, offset, a, gamma):
    u = _uniforms(x, words, offset) if cfg.sampled else None

    def body(carry, inp):
        h, r, q_prev = carry
        h = scale(h + inp[0], a)
        r = scale(r + q_prev, a)
        p = jax.nn.sigmoid(h)
        q = (inp[1] < p).astype(p.dtype) if cfg.sampled else p
        v = h - gamma * r
        return (h, r, q), (v, h, q) if cfg.sampled else (v, h)

    zero = jnp.zeros_like(x[0])
    xs = (x, u) if cfg.sampled else (x,)
    _, outs = jax.lax.scan(body, (zero, zero, zero), xs, unroll=1)
    if cfg.sampled:
        return outs
    v, h = outs
    return v, h, None


def _psu_scan_backward(gv, z, q, a, gamma):
    """Returns ``dL/dX`` and ``sum(c ⊙ Q)`` with ``c = Bᵀ gV`` (the tied-threshold term); ``z`` is
    ``H``, ``q`` the draws (sampled) or None (``Q = P = sigmoid(H)``)."""

    def body(carry, inp):
        c, e, gv_next, cq = carry
        gv_j, z_j = inp[:2]
        q_j = inp[2] if q is not None else jax.nn.sigmoid(z_j)
        c = scale(c + gv_next, a)
        gh = gv_j - gamma * c * _sigmoid_derivative(z_j)
        e = scale(gh + e, a)
        return (c, e, gv_j, cq + c * q_j), e

    zero = jnp.zeros_like(gv[0])
    xs = (gv, z) if q is None else (gv, z, q)
    (_, _, _, cq), gx = jax.lax.scan(body, (zero, zero, zero, zero), xs, reverse=True, unroll=1)
    return gx, jnp.sum(cq)


# ----------------------------------------------------------------------------- forward / backward


def _forward(cfg: _Config, x, weight, bias, words, offset, a, gamma):
    """``x`` is ``[T, *neuron_shape]`` in the compute dtype, ``gamma`` the reset scale in effect.
    Returns ``(v, z, r)``: ``z`` the logit of ``P`` (``H`` for PSU, ``(W ⊙ M) X + b`` for RPSU,
    None for IPSU), ``r`` the draws in sampled mode, else None."""
    m = cfg.method
    if cfg.variant == "psu":
        if m == "scan":
            return _psu_scan_forward(cfg, x, words, offset, a, gamma)
        h = z = leaky(x, a, m)
    elif cfg.variant == "rpsu":
        h = leaky(x, a, m)
        z = causal_matmul(_masked(weight), x) + _over_time(bias, x.ndim)
    else:  # ipsu: the reset term decays the input itself
        h = causal_matmul(_masked(weight), x) + _over_time(bias, x.ndim)
        return h - gamma * decay(x, a, m), None, None
    p = jax.nn.sigmoid(z)
    r = (_uniforms(x, words, offset) < p).astype(p.dtype) if cfg.sampled else None
    return h - gamma * decay(p if r is None else r, a, m), z, r


def _core_fwd(cfg: _Config, x, threshold, alpha, weight, bias, words, offset, a, gamma, tied):
    v, z, r = _forward(cfg, x, weight, bias, words, offset, a, _gamma(tied, threshold, gamma))
    s = (v > threshold).astype(x.dtype)
    return (s, v, r), (x, v, z, r, threshold, alpha, weight, bias, a, gamma, tied)


@partial(jax.custom_vjp, nondiff_argnums=(0,))
def _core(cfg: _Config, x, threshold, alpha, weight, bias, words, offset, a, gamma, tied):
    return _core_fwd(cfg, x, threshold, alpha, weight, bias, words, offset, a, gamma, tied)[0]


def _core_bwd(cfg: _Config, res, cotangents):
    x, v, z, r, threshold, alpha, weight, bias, a, gamma, tied = res
    gamma = _gamma(tied, threshold, gamma)
    g_s, _, _ = cotangents  # the membrane and the draws are returned under stop_gradient
    dsdv, dsdalpha = _surrogate(v, threshold, alpha)
    gv = g_s * dsdv
    m = cfg.method
    g_w = g_b = None
    if cfg.variant == "psu" and m == "scan":
        g_x, cq = _psu_scan_backward(gv, z, r, a, gamma)
    else:
        c = decay_t(gv, a, m)
        # Q: what the reset term decayed (the input for IPSU, the draws, else P = sigmoid(z))
        q = x if cfg.variant == "ipsu" else jax.nn.sigmoid(z) if r is None else r
        cq = jnp.sum(c * q)
        if cfg.variant == "psu":
            g_x = leaky_t(gv - gamma * c * _sigmoid_derivative(z), a, m)
        elif cfg.variant == "rpsu":
            g_z = -gamma * c * _sigmoid_derivative(z)
            wm = _masked(weight)
            g_x = leaky_t(gv, a, m) + matmul(wm.T, g_z)
            g_w = jnp.tril(_outer(g_z, x))
            g_b = _neuron_sum(g_z)
        else:
            wm = _masked(weight)
            g_x = matmul(wm.T, gv) - gamma * c
            g_w = jnp.tril(_outer(gv, x))
            g_b = _neuron_sum(gv)
    g_theta = -jnp.sum(gv)
    g_theta = jnp.where(tied, g_theta - cq, g_theta)  # tied: theta is also the reset scale
    g_alpha = jnp.sum(g_s * dsdalpha)
    g_w = None if weight is None or g_w is None else g_w.astype(weight.dtype)
    g_b = None if bias is None or g_b is None else g_b.astype(bias.dtype)
    return (
        g_x,
        g_theta.astype(threshold.dtype).reshape(threshold.shape),
        g_alpha.astype(alpha.dtype).reshape(alpha.shape),
        g_w,
        g_b,
        None,
        None,
        None,
        None,
        None,
    )


_core.defvjp(_core_fwd, _core_bwd)


def _varying_alike(*arrays: Any) -> tuple[Any, ...]:
    """Under ``shard_map``, each array cast to every manual axis along which any of them varies
    (elsewhere, and on a JAX without these types, unchanged).

    The core's cotangents of ``threshold``, ``alpha``, ``weight`` and ``bias`` are sums over this
    shard's neurons, so they vary along the shard's axes, and JAX requires a custom_vjp cotangent
    to have its input's type. The cast is free in the compiled program; its transpose is the
    ``psum`` that adds the shards' parts, as for JAX's own operations on a replicated value.
    """
    vary = _cast_to_varying()
    if vary is None:
        return arrays
    vma = [None if a is None else _varying_axes(a) for a in arrays]
    axes = frozenset().union(*(v for v in vma if v is not None))
    return tuple(
        a if v is None or v == axes else vary(a, tuple(sorted(axes - v))) for a, v in zip(arrays, vma, strict=True)
    )


def _varying_axes(a: Any) -> frozenset[str]:
    """The manual axes along which ``a`` varies (``aval.manual_axis_type.varying`` in JAX 0.10,
    ``aval.vma`` before)."""
    aval = jax.typeof(a)
    mat = getattr(aval, "manual_axis_type", None)
    return frozenset(mat.varying) if mat is not None else frozenset(getattr(aval, "vma", ()))


def _cast_to_varying() -> Any:
    """``(x, axes) -> x`` varying along ``axes``: ``lax.pcast(..., to="varying")``, or
    ``lax.pvary`` on older JAX; None where JAX has neither (no varying types to match)."""
    if not hasattr(jax, "typeof"):
        return None
    if hasattr(jax.lax, "pcast"):
        return lambda x, axes: jax.lax.pcast(x, axes, to="varying")
    if hasattr(jax.lax, "pvary"):
        return jax.lax.pvary
    return None


@partial(jax.jit, static_argnums=(0,))
def _run(cfg: _Config, x, threshold, alpha, weight, bias, words, offset, a, gamma, tied):
    """Compute in float32 for half precision, call the custom_vjp core. Returns ``(S, V, R)`` in
    ``x``'s shape and dtype; ``V`` and ``R`` carry no gradient. ``offset`` (uint32, sampled mode)
    is traced: every ``neuron_offset`` shares one program."""
    dtype = x.dtype
    cdt = jnp.promote_types(dtype, jnp.float32)
    xc = x.astype(cdt)
    thr = jnp.asarray(threshold).astype(cdt)
    alp = jnp.asarray(alpha).astype(cdt)
    w = None if weight is None else weight.astype(cdt)
    b = None if bias is None else bias.astype(cdt)
    a = type(a)(*(jnp.asarray(v, cdt) for v in a))
    gamma = jnp.asarray(gamma, cdt)
    xc, thr, alp, w, b = _varying_alike(xc, thr, alp, w, b)
    s, v, r = _core(cfg, xc, thr, alp, w, b, words, offset, a, gamma, jnp.asarray(tied, bool))
    v, r = jax.lax.stop_gradient((v, r))
    r = None if r is None else r.astype(dtype)
    return s.astype(dtype), v.astype(dtype), r


# ----------------------------------------------------------------------------- method and call


@jax.jit
def _all_finite(x: jax.Array) -> jax.Array:
    """``all(isfinite(x))``: one compiled program per shape rather than two eager ones."""
    return jnp.all(jnp.isfinite(x))


def choose_method(variant: str, T: int, num_neurons: int, platform: str) -> str:
    """The time-axis method ``method="auto"`` picks for ``T`` steps of ``num_neurons`` neurons.

    CPU, measured on 2 cores, float32, PSU forward+backward (README "Speed"): the ``[T, T]``
    matrix product wins up to T = 64 (x2.3 over ``lax.scan`` at T = 8, N = 2^20; x1.3 at T = 64)
    and compiles fastest, because XLA's CPU matmul is vectorised and multithreaded while a scan
    runs T sequential loop steps; its work grows as T^2 and at T = 256 ``lax.scan`` wins (x1.2 -
    x1.8). The crossover is put at T = 128, for every variant (IPSU/RPSU at T = 1024,
    N = 2^14: scan 0.69 s, dense 0.99 s forward+backward).

    GPU (H200, T*N = 2^24, float32): PSU's O(log T)-depth ``associative_scan`` ran in 0.5 / 0.9 ms
    forward / forward+backward at T = 256 - 1024. IPSU and RPSU with it were dropped by the
    benchmark at "12 - 15 s per call" from T = 256: the harness drops a callable whose FIRST call
    (compilation included) exceeds 5x its 2 s budget, so that figure is the first call. An
    ``associative_scan`` lowers to O(log T) levels of strided slices, pads and adds (RPSU at
    T = 1024: 1896 HLO instructions with it, 180 dense, on the CPU, where it compiles in 3.8 s
    against 2.0 s), one GPU kernel per fusion, and IPSU/RPSU put a GEMM (autotuned on a GPU) in the
    same program; their run time on the CPU is that of the other methods (3.6 s against 3.2 - 4.5 s
    at T = 1024, N = 2^14, 2 loaded cores). So on a GPU they take ``dense`` at every T: a few
    GEMMs, a small program; above T of about 50 its decay products are compute-bound (``2 T``
    flops per 4-byte element moved, against the H200's ~12 flops per byte), costing about
    T / 50 passes over the data each. ``lax.scan`` is not an option there (T sequential kernel
    launches). Not yet measured on a GPU beyond T = 64: the rule is by design, to be replaced by
    measurement (issue 10); a chunked form (``[C, C]`` products within chunks, carries between
    them) would bound both the work and the program.
    """
    if T <= 128:
        return "dense"
    if platform == "cpu":
        return "scan"
    return "associative" if variant == "psu" else "dense"


def _call(variant: str, x: Any, weight: Any, bias: Any, *, method: Any, return_membrane: bool, return_reset: bool,
          validate: bool, neuron_offset: Any, **neuron: Any) -> Any:  # fmt: skip
    x = arguments.as_array(x)
    c = arguments.check(variant, x, weight, bias, neuron_offset=neuron_offset, **neuron)
    p = c.params
    if validate:
        if arguments.is_traced(x):
            raise ValueError(
                "validate=True scans x for NaN/inf and needs a concrete x; call it outside jit "
                "(under jit, use jax.experimental.checkify)"
            )
        checks.check_finite(bool(_all_finite(arguments.concrete(x))), "x")
    if method == "auto":
        method = choose_method(variant, p.T, p.n, jax.default_backend())
    elif method not in METHODS:
        raise ValueError(f"method must be 'auto' or one of {METHODS}, got {method!r}")
    if weight is not None:
        weight, bias = jnp.asarray(weight), jnp.asarray(bias)
    cfg = _Config(variant=variant, sampled=p.sampled, method=method)
    cdt = jax.dtypes.canonicalize_dtype(jnp.promote_types(x.dtype, jnp.float32))  # what _run computes in
    s, v, r = _run(cfg, x, c.threshold, c.surrogate_alpha, weight, bias, c.words, c.offset, *c.scalars(cdt))
    if not (return_membrane or return_reset):
        return s
    return PSUOutput(s, v if return_membrane else None, r if return_reset else None)


# ----------------------------------------------------------------------------- public API (SPEC §11)


def psu(
    x: Any,
    *,
    tau: float = 2.0,
    threshold: Any = 1.0,
    reset_scale: float | None = None,
    surrogate_alpha: Any = 2.0,
    reset: str = "expected",
    seed: Any = None,
    method: str = "auto",
    return_membrane: bool = False,
    return_reset: bool = False,
    validate: bool = False,
    neuron_offset: Any = 0,
) -> Any:
    """Parallel Spiking Unit: ``H = A X``, ``P = sigmoid(H)``, ``V = H - gamma B Q``, ``S = [V > theta]``.

    Args:
      x: input current ``[T, *neuron_shape]``, floating (float16/bfloat16 compute in float32).
      tau: membrane time constant ``> 1`` (static); ``a = 1 / tau``.
      threshold: firing threshold ``theta > 0``; a scalar, may be a traced (learnable) array.
      reset_scale: ``gamma``; ``None`` ties it to ``threshold`` (gradient flows through both),
        a number fixes it (static, no gradient).
      surrogate_alpha: arctan surrogate sharpness ``> 0``; may be traced (learnable).
      reset: ``"expected"`` (``Q = P``) or ``"sampled"`` (``Q = R``, Threefry draws of SPEC §6).
      seed: with ``"sampled"``: an integer in ``[0, 2**64)`` (the draws of psu-core bit for bit),
        or, the JAX way, a ``jax.random`` key (typed or raw ``uint32[2]``) from which 64 seed bits
        are drawn, traceable inside ``jit``. Ignored in expected mode.
      method: ``"auto"`` (:func:`choose_method`), ``"scan"``, ``"associative"`` or ``"dense"``
        (the time-axis algorithm; all give the same results within SPEC §9).
      return_membrane: also return the membrane ``V``.
      return_reset: also return the drawn ``R`` (sampled mode; ``None`` in expected mode).
      validate: scan ``x`` for NaN/inf first (a pass over the data; needs a concrete ``x``).
      neuron_offset: the flat index, in the whole call, of this call's first neuron: neuron ``i``
        draws with the counter ``n = neuron_offset + i`` (SPEC §6), so a call on the part of a
        batch that starts at flat index ``k`` draws what the whole call draws there. An integer
        ``>= 0`` with ``neuron_offset + N <= 2**32``, or a traced integer scalar (one compiled
        program for every value): under ``shard_map`` over the first neuron axis, pass
        ``lax.axis_index(axis) * local_neurons``. Not needed under ``jax.vmap`` (mapped pieces
        number themselves as one call) nor under ``jit`` with shardings (global shapes).
        Expected mode checks it and draws nothing.

    Returns:
      the spikes ``S [T, *neuron_shape]`` in ``x.dtype``; with ``return_membrane`` or
      ``return_reset``, ``psu_core.api.PSUOutput(spikes, membrane, reset)`` (a pytree) with
      ``None`` for what was not asked. ``membrane`` and ``reset`` are under ``stop_gradient``:
      gradients flow through the spikes only (SPEC §11).
    """
    return _call(
        "psu", x, None, None, tau=tau, threshold=threshold, reset_scale=reset_scale, surrogate_alpha=surrogate_alpha,
        reset=reset, seed=seed, method=method, return_membrane=return_membrane, return_reset=return_reset,
        validate=validate, neuron_offset=neuron_offset,
    )  # fmt: skip


def ipsu(
    x: Any,
    weight: Any,
    bias: Any,
    *,
    tau: float = 2.0,
    threshold: Any = 1.0,
    reset_scale: float | None = None,
    surrogate_alpha: Any = 2.0,
    reset: str = "expected",
    seed: Any = None,
    method: str = "auto",
    return_membrane: bool = False,
    return_reset: bool = False,
    validate: bool = False,
    neuron_offset: Any = 0,
) -> Any:
    """Input-aware PSU: ``H = (W ⊙ M) X + b``, ``V = H - gamma B X``, ``S = [V > theta]``.

    ``weight [T, T]``: only the lower triangle, diagonal included, is used (the upper triangle
    gets a zero gradient); ``bias [T]`` is broadcast over the neurons. IPSU has no reset
    probability: ``reset="sampled"`` raises ``ValueError`` (SPEC §6). Other arguments and the
    result as :func:`psu`.
    """
    return _call(
        "ipsu", x, weight, bias, tau=tau, threshold=threshold, reset_scale=reset_scale, surrogate_alpha=surrogate_alpha,
        reset=reset, seed=seed, method=method, return_membrane=return_membrane, return_reset=return_reset,
        validate=validate, neuron_offset=neuron_offset,
    )  # fmt: skip


def rpsu(
    x: Any,
    weight: Any,
    bias: Any,
    *,
    tau: float = 2.0,
    threshold: Any = 1.0,
    reset_scale: float | None = None,
    surrogate_alpha: Any = 2.0,
    reset: str = "expected",
    seed: Any = None,
    method: str = "auto",
    return_membrane: bool = False,
    return_reset: bool = False,
    validate: bool = False,
    neuron_offset: Any = 0,
) -> Any:
    """Reset-aware PSU: ``H = A X``, ``P = sigmoid((W ⊙ M) X + b)``, ``V = H - gamma B Q``, ``S = [V > theta]``.

    ``weight [T, T]`` (lower triangle used), ``bias [T]``. Other arguments and the result as :func:`psu`.
    """
    return _call(
        "rpsu", x, weight, bias, tau=tau, threshold=threshold, reset_scale=reset_scale, surrogate_alpha=surrogate_alpha,
        reset=reset, seed=seed, method=method, return_membrane=return_membrane, return_reset=return_reset,
        validate=validate, neuron_offset=neuron_offset,
    )  # fmt: skip
