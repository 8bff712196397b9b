"""The fixed causal operators of SPEC §1 applied along time, three ways.

For ``x`` of shape ``[T, *neuron_shape]`` (time first) and decay ``a = 1 / tau``:

    leaky(x)    = A x,   A[t, j] = a^(t - j + 1) for j <= t      y_t = a * (y_{t-1} + x_t)
    leaky_t(g)  = Aᵀ g                                           e_j = a * (g_j + e_{j+1})
    decay(q)    = B q,   B[t, j] = a^(t - j) for j < t           (B q)_t = (A q)_{t-1}, (B q)_0 = 0
    decay_t(g)  = Bᵀ g                                           (Bᵀ g)_j = (Aᵀ g)_{j+1}, last = 0

Methods: ``"scan"`` (``lax.scan``, O(T N) work, T sequential steps), ``"associative"``
(``lax.associative_scan``, O(T N) work, O(log T) depth) and ``"dense"`` (a ``[T, T]`` matrix
product, O(T^2 N) work). All three are equal in exact arithmetic. ``"dense"`` multiplies by ``B``
itself (``B`` is ``A`` shifted down a row) rather than shifting ``A q``: on the CPU the shift's
slice and pad fused with the ``[T, N]`` product's output made the backward pass of a rank-3
``x [8, 1024, 1024]`` 25% slower than of the same data flattened (47 vs 38 ms; 38 ms with ``B``).

Decay accuracy (SPEC §9): ``a`` is a :class:`Decay`, not one rounded number. A recurrence that
multiplied by ``a`` rounded to float32 would apply its rounding error ``T`` times (``tau =
1.00011508``, ``T = 1000``: V off by 1.5x the float32 tolerance). It multiplies by ``hi + lo``
instead, ``y * hi + y * lo``, with ``hi = 1`` for ``a >= 1/2`` (then ``lo = a - 1``, rounded once
from float64: ``y + y * lo`` needs no fused multiply-add, since ``lo``'s rounding error is relative
to ``1 - a``, and the drift it could accumulate over the ``~1 / (1 - a)`` steps a value lives is
one rounding) and ``hi = a`` rounded for ``a < 1/2`` (a value decays within a few steps, so ``a``'s
rounding cannot pile up; ``lo`` then only helps where XLA contracts the sum into an fma). Powers
``a^k`` (the dense matrices, the associative scan's segments) are ``hi^k exp(k log(1 + lo / hi))``,
the correction's logarithm computed in float64 on the host and rounded once: within a few ulps of
the float64 power for every ``k`` (measured up to ``k = 4096`` for ``tau`` in {1.0001, 1.7, 37}).
``lo = 0`` for ``a = 1/2`` and ``hi = a``, ``lo = 0`` in float64.

Causality (SPEC §1): every dense product is :func:`causal_matmul`, so that a NaN or infinity at a
later step never reaches an earlier row through ``0 * NaN``. The scans are causal by construction.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

__all__ = [
    "METHODS", "Decay", "decay_scalars", "scale", "power", "leaky", "leaky_t", "decay", "decay_t", "leaky_matrix",
    "decay_matrix", "matmul", "causal_matmul",
]  # fmt: skip

METHODS = ("scan", "associative", "dense")

_HIGHEST = lax.Precision.HIGHEST


class Decay(NamedTuple):
    """``a = 1 / tau`` as scalars of the compute dtype (a pytree: traced arguments of the compiled
    programs, so that calls differing only in ``tau`` share one): ``hi + lo`` is ``a`` to about
    twice the dtype's precision (``lo = 0`` in float64), ``lo_log = log(1 + lo / hi)``."""

    hi: Any
    lo: Any
    lo_log: Any


def decay_scalars(a: float, dtype: Any) -> Decay:
    """The :class:`Decay` of ``a`` (a float64 number) in the compute ``dtype``, on the host."""
    cast = np.dtype(dtype).type
    hi = cast(a) if (a < 0.5 or np.dtype(dtype) == np.float64) else cast(1.0)
    lo = a - float(hi)
    return Decay(hi, cast(lo), cast(math.log1p(lo / float(hi))))


def scale(y: jax.Array, a: Decay) -> jax.Array:
    """``a * y`` with ``a = hi + lo`` (:func:`decay_scalars`): no rounding of ``a`` for a
    recurrence to accumulate, with or without a fused multiply-add (SPEC §9)."""
    return y * a.hi + y * a.lo


def power(a: Decay, k: jax.Array) -> jax.Array:
    """``a^k`` for integer-valued ``k`` (an array of the compute dtype), a few ulps whatever ``k``."""
    return jnp.power(a.hi, k) * jnp.exp(k * a.lo_log)


def matmul(m: jax.Array, x: jax.Array) -> jax.Array:
    """``m @ x`` along time for a ``[T, T]`` matrix and ``[T, *neuron_shape]`` data, at full
    precision (no TF32); the neuron axes are kept, so that a sharded one stays sharded."""
    return jnp.einsum("tj,j...->t...", m, x, precision=_HIGHEST)


def causal_matmul(m: jax.Array, x: jax.Array, strict: bool = False) -> jax.Array:
    """``m @ x`` for a lower-triangular ``m [T, T]`` (``strict``: zero diagonal too), causal
    whatever ``x`` holds (SPEC §1): row ``t`` depends on rows ``0..t`` (``0..t-1``) of ``x`` only.

    A plain product gives ``0 * NaN = NaN`` above the diagonal. The product is taken of ``x`` with
    its non-finite values set to 0, and each neuron's rows from its first non-finite one on
    (``strict``: the row after it) are set to NaN; rows before it are the product's, bit for bit.
    This is the running sum of ``psu_core.reference.causal_matmul`` (0 before the first
    non-finite row, non-finite after) found with one reduction over time: XLA lowers ``cumsum``
    on the CPU to a windowed reduction, 3-5x the time of the whole dense PSU at T = 8 - 64.
    """
    T = x.shape[0]
    bad = ~jnp.isfinite(x)
    step = lax.broadcasted_iota(jnp.int32, x.shape, 0)
    first = jnp.min(jnp.where(bad, step, T), axis=0) + (1 if strict else 0)  # [*neuron_shape]
    y = matmul(m, jnp.where(bad, jnp.zeros((), x.dtype), x))
    return jnp.where(step >= first, jnp.asarray(jnp.nan, x.dtype), y)


def leaky_matrix(T: int, a: Decay, dtype: Any, offset: int = 1) -> jax.Array:
    """``A[t, j] = a^(t - j + offset)`` for ``j <= t``, else 0 (offset 1: SPEC's ``A``). ``a`` may be traced."""
    idx = np.arange(T)
    e = idx[:, None] - idx[None, :]
    powers = power(a, jnp.asarray(np.maximum(e, 0) + offset, dtype))
    return jnp.where(jnp.asarray(e >= 0), powers, jnp.zeros((), dtype))


def _scan(x: jax.Array, a: Decay, reverse: bool) -> jax.Array:
    def body(y, xt):
        y = scale(y + xt, a)
        return y, y

    _, ys = lax.scan(body, jnp.zeros_like(x[0]), x, reverse=reverse, unroll=1)
    return ys


def _associative(x: jax.Array, a: Decay, reverse: bool) -> jax.Array:
    # Elements (k, v) mean "y -> a^k y + v" (k steps); composing two is again such a map. a^k is
    # power(a, k), never a product of rounded powers. k has no neuron axes: its work is O(T).
    k = jnp.ones((x.shape[0],) + (1,) * (x.ndim - 1), dtype=x.dtype)

    def combine(first, second):
        k1, v1 = first
        k2, v2 = second
        return k1 + k2, power(a, k2) * v1 + v2

    _, ys = lax.associative_scan(combine, (k, scale(x, a)), reverse=reverse, axis=0)
    return ys


def leaky(x: jax.Array, a: Decay, method: str) -> jax.Array:
    """``A x`` along axis 0."""
    if method == "scan":
        return _scan(x, a, reverse=False)
    if method == "associative":
        return _associative(x, a, reverse=False)
    if method == "dense":
        return causal_matmul(leaky_matrix(x.shape[0], a, x.dtype), x)
    raise ValueError(f"method must be one of {METHODS}, got {method!r}")


def leaky_t(g: jax.Array, a: Decay, method: str) -> jax.Array:
    """``Aᵀ g`` along axis 0 (the same recurrence in reverse time)."""
    if method == "scan":
        return _scan(g, a, reverse=True)
    if method == "associative":
        return _associative(g, a, reverse=True)
    if method == "dense":
        return matmul(leaky_matrix(g.shape[0], a, g.dtype).T, g)
    raise ValueError(f"method must be one of {METHODS}, got {method!r}")


def shift_down(y: jax.Array) -> jax.Array:
    """``out[0] = 0``, ``out[t] = y[t - 1]``."""
    return jnp.concatenate([jnp.zeros_like(y[:1]), y[:-1]], axis=0)


def shift_up(y: jax.Array) -> jax.Array:
    """``out[T - 1] = 0``, ``out[j] = y[j + 1]``."""
    return jnp.concatenate([y[1:], jnp.zeros_like(y[:1])], axis=0)


def decay_matrix(T: int, a: Decay, dtype: Any) -> jax.Array:
    """``B[t, j] = a^(t - j)`` for ``j < t``, else 0."""
    return shift_down(leaky_matrix(T, a, dtype))


def decay(q: jax.Array, a: Decay, method: str) -> jax.Array:
    """``B q``: a reset at step ``j`` first acts at ``j + 1``."""
    if method == "dense":
        return causal_matmul(decay_matrix(q.shape[0], a, q.dtype), q, strict=True)
    return shift_down(leaky(q, a, method))


def decay_t(g: jax.Array, a: Decay, method: str) -> jax.Array:
    """``Bᵀ g``."""
    if method == "dense":
        return matmul(decay_matrix(g.shape[0], a, g.dtype).T, g)
    return shift_up(leaky_t(g, a, method))
