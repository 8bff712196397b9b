"""PSU, IPSU and RPSU as pure JAX functions with ``jax.custom_vjp`` (SPEC §2, §4, §5, §6).

Inputs are time first, ``x: [T, *neuron_shape]``; every neuron is independent along time, so the
functions compose with ``vmap``, ``jit``, ``grad`` and sharding over the neuron axes. With
``a = 1 / tau``, ``A``, ``B``, ``M`` the fixed ``[T, T]`` matrices of SPEC §1:

    PSU:   H = A X,              P = sigmoid(H),              V = H - gamma * B Q
    IPSU:  H = (W ⊙ M) X + b,                                 V = H - gamma * B X
    RPSU:  H = A X,              P = sigmoid((W ⊙ M) X + b),  V = H - gamma * B Q
    all:   S = [V > theta]

``Q = P`` with ``reset="expected"``, ``Q = R = [u < P]`` with ``reset="sampled"`` (the Threefry
draws of SPEC §6). The backward pass is the arctan surrogate of SPEC §4 and the vector-Jacobian
products of SPEC §5; every floating argument (``x``, ``threshold``, ``surrogate_alpha``,
``weight``, ``bias``) gets its gradient.

Scalars that select the computation (``tau``, ``reset_scale``, ``reset``, ``method``) must be
concrete Python values: they are static under ``jit``. ``threshold`` and ``surrogate_alpha`` may
be traced arrays (learnable); their *values* can only be checked when they are concrete, so under
``jit`` only their shape (scalar) and dtype (floating) are checked.
"""

from __future__ import annotations

import dataclasses
import math
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import core as _jax_core

from psu_core import checks
from psu_jax import random as _random
from psu_jax.recurrence import METHODS, decay, decay_t, leaky, leaky_t, matmul

__all__ = ["psu", "ipsu", "rpsu", "PSUOutput", "METHODS", "choose_method"]


class PSUOutput(NamedTuple):
    """What a call returns with ``return_membrane=True`` (arrays ``[T, *neuron_shape]``)."""

    spikes: jax.Array
    membrane: jax.Array
    reset: jax.Array | None  # the drawn R in sampled mode (a constant: no gradient), else None


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
    g_s, g_v, _ = cotangents  # the drawn R is a constant: its cotangent is dropped
    dsdv, dsdalpha = _surrogate(v, threshold, alpha)
    gv_spike = g_s * dsdv
    gv = gv_spike + g_v  # dL/dV in total: through the spikes and through a returned membrane
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
    g_theta = -jnp.sum(gv_spike)
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
    """Reshape to ``[T, N]``, compute in float32 for half precision, call the custom_vjp core."""
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
    r = None if r is None else jax.lax.stop_gradient(r).astype(dtype).reshape(shape)
    return s.astype(dtype).reshape(shape), v.astype(dtype).reshape(shape), r


# ----------------------------------------------------------------------------- argument handling


try:  # moved to jax.extend.core in newer JAX
    from jax.extend.core import concrete_or_error as _concrete_or_error
except ImportError:  # pragma: no cover - older JAX
    from jax.core import concrete_or_error as _concrete_or_error

_ABSTRACT = object()


def _concrete(v: Any) -> Any:
    """The value of ``v``, or ``_ABSTRACT`` when it is traced without a value (under ``jit``).

    Tracers of eager ``grad``/``vjp`` carry a concrete primal and are checked like plain values.
    """
    if not isinstance(v, _jax_core.Tracer):
        return v
    try:
        return _concrete_or_error(None, v)
    except jax.errors.ConcretizationTypeError:
        return _ABSTRACT


def _is_traced(v: Any) -> bool:
    """True when ``v`` has no value now (abstract under ``jit``)."""
    return _concrete(v) is _ABSTRACT


def _static_number(name: str, value: Any) -> Any:
    """``tau`` and ``reset_scale`` select the computation: they must be concrete."""
    if value is None:
        return None
    if _is_traced(value):
        raise TypeError(
            f"{name} must be a concrete number (it is static under jit), got a traced value; "
            "pass it as a Python float, e.g. close over it or mark it static"
        )
    value = _concrete(value)
    if isinstance(value, (jax.Array, np.ndarray)):
        if value.shape != ():
            raise ValueError(f"{name} must be a finite number, got an array of shape {value.shape}")
        return float(value)
    return value


def _traceable_scalar(name: str, value: Any, placeholder: float) -> tuple[Any, Any]:
    """Returns ``(value for the checks, value for the computation)``.

    A traced (learnable) scalar cannot be checked by value: its shape and dtype are checked
    here and ``placeholder`` (a valid value) stands in for it in ``validate_call``.
    """
    if _is_traced(value):
        if value.shape != ():
            raise ValueError(f"{name} must be a scalar, got an array of shape {value.shape}")
        if not jnp.issubdtype(value.dtype, jnp.floating):
            raise ValueError(f"{name} must be a floating scalar, got dtype {value.dtype}")
        return placeholder, value
    concrete = _concrete(value)
    if isinstance(concrete, (jax.Array, np.ndarray)):
        if concrete.shape != ():
            raise ValueError(f"{name} must be a finite number, got an array of shape {concrete.shape}")
        return float(concrete), value
    return concrete, value


@jax.jit
def _all_finite(x: jax.Array) -> jax.Array:
    """``all(isfinite(x))``: one compiled program per shape rather than two eager ones."""
    return jnp.all(jnp.isfinite(x))


def _seed_for_checks(reset: Any, key_or_seed: Any) -> Any:
    if reset != "sampled" or key_or_seed is None:
        return key_or_seed
    if isinstance(key_or_seed, (int, np.integer)) and not isinstance(key_or_seed, (bool, np.bool_)):
        return int(key_or_seed)
    if isinstance(key_or_seed, (jax.Array, np.ndarray, _jax_core.Tracer)):
        return 0  # a JAX key: checked in psu_jax.random.seed_words
    return key_or_seed  # anything else: psu_core reports it


def choose_method(variant: str, num_steps: int, num_neurons: int, platform: str) -> str:
    """The time-axis method ``method="auto"`` picks.

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
    if num_steps <= 128:
        return "dense"
    if platform == "cpu":
        return "scan"
    return "associative" if variant == "psu" else "dense"


def _call(
    variant: str,
    x: Any,
    weight: Any,
    bias: Any,
    *,
    tau: Any,
    threshold: Any,
    reset_scale: Any,
    surrogate_alpha: Any,
    reset: Any,
    key_or_seed: Any,
    return_membrane: bool,
    validate: bool,
    method: str,
):
    if not isinstance(x, (jax.Array, np.ndarray, _jax_core.Tracer)):
        x = jnp.asarray(x)
    tau = _static_number("tau", tau)
    reset_scale = _static_number("reset_scale", reset_scale)
    thr_check, thr = _traceable_scalar("threshold", threshold, 1.0)
    alpha_check, alpha = _traceable_scalar("surrogate_alpha", surrogate_alpha, 2.0)
    x_dtype = jnp.dtype(x.dtype) if not isinstance(x.dtype, np.dtype) else x.dtype
    checks.validate_call(
        variant,
        x_shape=tuple(x.shape),
        x_dtype=str(x_dtype),
        x_is_floating=bool(jnp.issubdtype(x_dtype, jnp.floating)),
        tau=tau,
        threshold=thr_check,
        reset_scale=reset_scale,
        surrogate_alpha=alpha_check,
        weight_shape=None if weight is None else tuple(jnp.shape(weight)),
        bias_shape=None if bias is None else tuple(jnp.shape(bias)),
        reset=reset,
        seed=_seed_for_checks(reset, key_or_seed),
    )
    if validate:
        if _is_traced(x):
            raise ValueError(
                "validate=True scans x for NaN/inf and needs a concrete x; call it outside jit "
                "(under jit, use jax.experimental.checkify)"
            )
        checks.check_finite(bool(_all_finite(_concrete(x))), "x")
    sampled = reset == "sampled"
    words = _random.seed_words(key_or_seed) if sampled else None
    num_steps = int(x.shape[0])
    num_neurons = int(np.prod(x.shape[1:], dtype=np.int64))
    if sampled and num_neurons > 2**32:
        raise ValueError(f"x: sampled reset needs at most 2**32 neurons, got {num_neurons}")
    if method == "auto":
        method = choose_method(variant, num_steps, num_neurons, jax.default_backend())
    elif method not in METHODS:
        raise ValueError(f"method must be 'auto' or one of {METHODS}, got {method!r}")
    cfg = _Config(variant=variant, sampled=sampled, method=method)
    a = np.float64(1.0 / float(tau))
    gamma = np.float64(0.0 if reset_scale is None else float(reset_scale))
    tied = np.bool_(reset_scale is None)
    if weight is not None:
        weight = jnp.asarray(weight)
        bias = jnp.asarray(bias)
    s, v, r = _run(cfg, x, thr, alpha, weight, bias, words, a, gamma, tied)
    if return_membrane:
        return PSUOutput(s, v, r)
    return s


# ----------------------------------------------------------------------------- public API


def psu(
    x: Any,
    *,
    weight: Any = None,
    bias: Any = None,
    tau: float = 2.0,
    threshold: Any = 1.0,
    reset_scale: float | None = None,
    surrogate_alpha: Any = 2.0,
    reset: str = "expected",
    key_or_seed: Any = None,
    return_membrane: bool = False,
    validate: bool = False,
    method: str = "auto",
):
    """Parallel Spiking Unit: ``H = A X``, ``P = sigmoid(H)``, ``V = H - gamma B Q``, ``S = [V > theta]``.

    Args:
      x: input current ``[T, *neuron_shape]``, floating (float16/bfloat16 compute in float32).
      weight, bias: must be None (PSU has no learned matrix; they exist so that one call shape
        serves every variant, and passing one raises ``ValueError``).
      tau: membrane time constant ``> 1`` (static); ``a = 1 / tau``.
      threshold: firing threshold ``theta > 0``; a scalar, may be a traced (learnable) array.
      reset_scale: ``gamma``; ``None`` ties it to ``threshold`` (gradient flows through both),
        a number fixes it (static, no gradient).
      surrogate_alpha: arctan surrogate sharpness ``> 0``; may be traced (learnable).
      reset: ``"expected"`` (``Q = P``) or ``"sampled"`` (``Q = R``, Threefry draws of SPEC §6).
      key_or_seed: with ``"sampled"``: an integer seed in ``[0, 2**64)`` (bit-identical draws to
        psu-core) or a JAX PRNG key (64 seed bits drawn from it).
      return_membrane: return ``PSUOutput(spikes, membrane, reset)`` instead of the spikes.
      validate: scan ``x`` for NaN/inf first (a pass over the data; needs a concrete ``x``).
      method: ``"auto"``, ``"scan"``, ``"associative"`` or ``"dense"`` (the time-axis algorithm).

    Returns:
      spikes ``S`` ``[T, *neuron_shape]`` in ``x.dtype`` (or ``PSUOutput``).
    """
    return _call(
        "psu", x, weight, bias, tau=tau, threshold=threshold, reset_scale=reset_scale,
        surrogate_alpha=surrogate_alpha, reset=reset, key_or_seed=key_or_seed,
        return_membrane=return_membrane, validate=validate, method=method,
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
    key_or_seed: Any = None,
    return_membrane: bool = False,
    validate: bool = False,
    method: str = "auto",
):
    """Input-aware PSU: ``H = (W ⊙ M) X + b``, ``V = H - gamma B X``, ``S = [V > theta]``.

    ``weight`` is ``[T, T]`` (only the lower triangle, diagonal included, is used; the upper
    triangle gets a zero gradient), ``bias`` is ``[T]`` (broadcast over neurons). IPSU has no
    reset probability: ``reset="sampled"`` raises ``ValueError``. Other arguments as ``psu``.
    """
    return _call(
        "ipsu", x, weight, bias, tau=tau, threshold=threshold, reset_scale=reset_scale,
        surrogate_alpha=surrogate_alpha, reset=reset, key_or_seed=key_or_seed,
        return_membrane=return_membrane, validate=validate, method=method,
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
    key_or_seed: Any = None,
    return_membrane: bool = False,
    validate: bool = False,
    method: str = "auto",
):
    """Reset-aware PSU: ``H = A X``, ``P = sigmoid((W ⊙ M) X + b)``, ``V = H - gamma B Q``.

    ``weight`` ``[T, T]`` (lower triangle used), ``bias`` ``[T]``. Other arguments as ``psu``.
    """
    return _call(
        "rpsu", x, weight, bias, tau=tau, threshold=threshold, reset_scale=reset_scale,
        surrogate_alpha=surrogate_alpha, reset=reset, key_or_seed=key_or_seed,
        return_membrane=return_membrane, validate=validate, method=method,
    )  # fmt: skip
