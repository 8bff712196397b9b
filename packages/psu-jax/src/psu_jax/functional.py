"""PSU, IPSU and RPSU as pure JAX functions with ``jax.custom_vjp`` (SPEC §2, §4, §5, §6, §11).

Inputs are time first, ``x: [T, *neuron_shape]``; every neuron is independent along time, so the
functions compose with ``vmap``, ``jit``, ``grad`` and sharding over the neuron axes. With
``a = 1 / tau``, ``A``, ``B``, ``M`` the fixed ``[T, T]`` matrices of SPEC §1:

    PSU:   H = A X,              P = sigmoid(H),              V = H - gamma * B Q
    IPSU:  H = (W ⊙ M) X + b,                                 V = H - gamma * B X
    RPSU:  H = A X,              P = sigmoid((W ⊙ M) X + b),  V = H - gamma * B Q
    all:   S = [V > theta]

``Q = P`` with ``reset="expected"``, ``Q = R = [u < P]`` with ``reset="sampled"`` (the Threefry
draws of SPEC §6). The backward pass is the arctan surrogate of SPEC §4 and the vector-Jacobian
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
from psu_jax.recurrence import METHODS, decay, decay_t, leaky, leaky_t, matmul

__all__ = ["psu", "ipsu", "rpsu", "PSUOutput", "METHODS", "choose_method"]


@dataclasses.dataclass(frozen=True)
class _Config:
    """What selects the computation (static). ``a``, a fixed ``gamma`` and ``tied`` (gamma tied
    to the threshold, the gradient flowing through both) are traced arguments, so that calls
    differing only in ``tau`` or ``reset_scale`` share one compiled program."""

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


def _draw(p: jax.Array, words: jax.Array, t0: Any = 0) -> jax.Array:
    """``R = [u < P]`` in ``p``'s (float32 or float64) dtype; ``p`` is ``[T, N]``."""
    u = _random.uniforms_from_words(words, p.shape[0], p.shape[1], p.dtype, t0)
    return (u < p).astype(p.dtype)


def _gamma(tied: jax.Array, threshold: jax.Array, gamma: jax.Array) -> jax.Array:
    return jnp.where(tied, threshold, gamma)


# ----------------------------------------------------------------------------- PSU, fused scan
# One pass over time forward and one backward: the memory-traffic floor for the recurrence form.


def _psu_scan_forward(cfg, x, words, a, gamma):
    u = _random.uniforms_from_words(words, x.shape[0], x.shape[1], x.dtype) if cfg.sampled else None

    def body(carry, inp):
        h, r, q_prev = carry
        h = a * (h + inp[0])
        r = a * (r + q_prev)
        p = jax.nn.sigmoid(h)
        q = (inp[1] < p).astype(p.dtype) if cfg.sampled else p
        v = h - gamma * r
        return (h, r, q), (v, p, q) if cfg.sampled else (v, p)

    zero = jnp.zeros_like(x[0])
    xs = (x, u) if cfg.sampled else (x,)
    _, outs = jax.lax.scan(body, (zero, zero, zero), xs, unroll=1)
    if cfg.sampled:
        return outs
    v, p = outs
    return v, p, p


def _psu_scan_backward(gv, p, q, a, gamma):
    """Returns ``dL/dX`` and ``sum(c ⊙ Q)`` with ``c = Bᵀ gV`` (the tied-threshold term)."""

    def body(carry, inp):
        c, e, gv_next, cq = carry
        gv_j, p_j, q_j = inp
        c = a * (c + gv_next)
        gh = gv_j - gamma * c * p_j * (1.0 - p_j)
        e = a * (gh + e)
        return (c, e, gv_j, cq + c * q_j), e

    zero = jnp.zeros_like(gv[0])
    (_, _, _, cq), gx = jax.lax.scan(body, (zero, zero, zero, zero), (gv, p, q), reverse=True, unroll=1)
    return gx, jnp.sum(cq)


# ----------------------------------------------------------------------------- forward / backward


def _forward(cfg: _Config, x, weight, bias, words, a, gamma):
    """``x`` is ``[T, N]`` in the compute dtype, ``gamma`` the reset scale in effect. Returns
    ``(v, p, q)``; ``p`` is None for IPSU."""
    m = cfg.method
    if cfg.variant == "psu":
        if m == "scan":
            return _psu_scan_forward(cfg, x, words, a, gamma)
        h = leaky(x, a, m)
        p = jax.nn.sigmoid(h)
    elif cfg.variant == "rpsu":
        h = leaky(x, a, m)
        p = jax.nn.sigmoid(matmul(jnp.tril(weight), x) + bias[:, None])
    else:  # ipsu: the reset term decays the input itself
        h = matmul(jnp.tril(weight), x) + bias[:, None]
        return h - gamma * decay(x, a, m), None, x
    q = _draw(p, words) if cfg.sampled else p
    return h - gamma * decay(q, a, m), p, q


def _core_fwd(cfg: _Config, x, threshold, alpha, weight, bias, words, a, gamma, tied):
    v, p, q = _forward(cfg, x, weight, bias, words, a, _gamma(tied, threshold, gamma))
    s = (v > threshold).astype(x.dtype)
    r = q if cfg.sampled else None
    return (s, v, r), (x, v, p, q, threshold, alpha, weight, bias, a, gamma, tied)


@partial(jax.custom_vjp, nondiff_argnums=(0,))
def _core(cfg: _Config, x, threshold, alpha, weight, bias, words, a, gamma, tied):
    return _core_fwd(cfg, x, threshold, alpha, weight, bias, words, a, gamma, tied)[0]


def _core_bwd(cfg: _Config, res, cotangents):
    x, v, p, q, threshold, alpha, weight, bias, a, gamma, tied = res
    gamma = _gamma(tied, threshold, gamma)
    g_s, _, _ = cotangents  # the membrane and the draws are returned under stop_gradient
    dsdv, dsdalpha = _surrogate(v, threshold, alpha)
    gv = g_s * dsdv
    m = cfg.method
    g_w = g_b = None
    if cfg.variant == "psu" and m == "scan":
        g_x, cq = _psu_scan_backward(gv, p, q, a, gamma)
    else:
        c = decay_t(gv, a, m)
        cq = jnp.sum(c * q)
        if cfg.variant == "psu":
            g_x = leaky_t(gv - gamma * c * p * (1.0 - p), a, m)
        elif cfg.variant == "rpsu":
            g_z = -gamma * c * p * (1.0 - p)
            wm = jnp.tril(weight)
            g_x = leaky_t(gv, a, m) + matmul(wm.T, g_z)
            g_w = jnp.tril(jnp.einsum("tn,jn->tj", g_z, x, precision=jax.lax.Precision.HIGHEST))
            g_b = jnp.sum(g_z, axis=1)
        else:
            wm = jnp.tril(weight)
            g_x = matmul(wm.T, gv) - gamma * c
            g_w = jnp.tril(jnp.einsum("tn,jn->tj", gv, x, precision=jax.lax.Precision.HIGHEST))
            g_b = jnp.sum(gv, axis=1)
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
    )


_core.defvjp(_core_fwd, _core_bwd)


@partial(jax.jit, static_argnums=(0,))
def _run(cfg: _Config, x, threshold, alpha, weight, bias, words, a, gamma, tied):
    """Reshape to ``[T, N]``, compute in float32 for half precision, call the custom_vjp core.
    Returns ``(S, V, R)`` in ``x``'s shape and dtype; ``V`` and ``R`` carry no gradient."""
    shape, dtype = x.shape, x.dtype
    cdt = jnp.promote_types(dtype, jnp.float32)
    x2 = x.reshape(shape[0], -1).astype(cdt)
    thr = jnp.asarray(threshold).astype(cdt)
    alp = jnp.asarray(alpha).astype(cdt)
    w = None if weight is None else weight.astype(cdt)
    b = None if bias is None else bias.astype(cdt)
    a = jnp.asarray(a, cdt)
    gamma = jnp.asarray(gamma, cdt)
    s, v, r = _core(cfg, x2, thr, alp, w, b, words, a, gamma, jnp.asarray(tied, bool))
    v, r = jax.lax.stop_gradient((v, r))
    r = None if r is None else r.astype(dtype).reshape(shape)
    return s.astype(dtype).reshape(shape), v.astype(dtype).reshape(shape), r


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

    GPU (H200, T*N = 2^24, float32): PSU's O(log T)-depth ``associative_scan`` runs in
    0.5 / 0.9 ms forward / forward+backward at T = 256 - 1024. IPSU and RPSU with it took
    12 - 15 s on their first call from T = 256 (the compilation; the same programs compile in
    about 1 s on a CPU), while ``dense`` ran them at T <= 64 in under 1 ms; they already multiply
    by a learned ``[T, T]`` matrix, so the dense decay adds work of the same order. They take
    ``dense`` at every T on a GPU (not yet measured there beyond T = 64).
    """
    if T <= 128:
        return "dense"
    if platform == "cpu":
        return "scan"
    return "associative" if variant == "psu" else "dense"


def _call(variant: str, x: Any, weight: Any, bias: Any, *, method: Any, return_membrane: bool, return_reset: bool,
          validate: bool, **neuron: Any) -> Any:  # fmt: skip
    x = arguments.as_array(x)
    c = arguments.check(variant, x, weight, bias, **neuron)
    p = c.params
    if validate:
        if arguments.is_traced(x):
            raise ValueError(
                "validate=True scans x for NaN/inf and needs a concrete x; call it outside jit "
                "(under jit, use jax.experimental.checkify)"
            )
        checks.check_finite(bool(_all_finite(arguments.concrete(x))), "x")
    if p.sampled and p.n > 2**32:
        raise ValueError(f"x: sampled reset needs at most 2**32 neurons, got {p.n}")
    if method == "auto":
        method = choose_method(variant, p.T, p.n, jax.default_backend())
    elif method not in METHODS:
        raise ValueError(f"method must be 'auto' or one of {METHODS}, got {method!r}")
    if weight is not None:
        weight, bias = jnp.asarray(weight), jnp.asarray(bias)
    cfg = _Config(variant=variant, sampled=p.sampled, method=method)
    s, v, r = _run(cfg, x, c.threshold, c.surrogate_alpha, weight, bias, c.words, *c.scalars())
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

    Returns:
      the spikes ``S [T, *neuron_shape]`` in ``x.dtype``; with ``return_membrane`` or
      ``return_reset``, ``psu_core.api.PSUOutput(spikes, membrane, reset)`` (a pytree) with
      ``None`` for what was not asked. ``membrane`` and ``reset`` are under ``stop_gradient``:
      gradients flow through the spikes only (SPEC §11).
    """
    return _call(
        "psu", x, None, None, tau=tau, threshold=threshold, reset_scale=reset_scale, surrogate_alpha=surrogate_alpha,
        reset=reset, seed=seed, method=method, return_membrane=return_membrane, return_reset=return_reset,
        validate=validate,
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
        validate=validate,
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
) -> Any:
    """Reset-aware PSU: ``H = A X``, ``P = sigmoid((W ⊙ M) X + b)``, ``V = H - gamma B Q``, ``S = [V > theta]``.

    ``weight [T, T]`` (lower triangle used), ``bias [T]``. Other arguments and the result as :func:`psu`.
    """
    return _call(
        "rpsu", x, weight, bias, tau=tau, threshold=threshold, reset_scale=reset_scale, surrogate_alpha=surrogate_alpha,
        reset=reset, seed=seed, method=method, return_membrane=return_membrane, return_reset=return_reset,
        validate=validate,
    )  # fmt: skip
