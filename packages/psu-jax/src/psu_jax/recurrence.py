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
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

__all__ = ["METHODS", "leaky", "leaky_t", "decay", "decay_t", "leaky_matrix", "decay_matrix", "matmul"]

METHODS = ("scan", "associative", "dense")

_HIGHEST = lax.Precision.HIGHEST


def matmul(m: jax.Array, x: jax.Array) -> jax.Array:
    """``m @ x`` along time for a ``[T, T]`` matrix and ``[T, *neuron_shape]`` data, at full
    precision (no TF32); the neuron axes are kept, so that a sharded one stays sharded."""
    return jnp.einsum("tj,j...->t...", m, x, precision=_HIGHEST)


def leaky_matrix(T: int, a: Any, dtype: Any, offset: int = 1) -> jax.Array:
    """``A[t, j] = a^(t - j + offset)`` for ``j <= t``, else 0 (offset 1: SPEC's ``A``). ``a`` may be traced."""
    idx = np.arange(T)
    e = idx[:, None] - idx[None, :]
    powers = jnp.power(jnp.asarray(a, dtype), jnp.asarray(np.maximum(e, 0) + offset, dtype))
    return jnp.where(jnp.asarray(e >= 0), powers, jnp.zeros((), dtype))


def _scan(x: jax.Array, a: Any, reverse: bool) -> jax.Array:
    ac = jnp.asarray(a, x.dtype)

    def body(y, xt):
        y = ac * (y + xt)
        return y, y

    _, ys = lax.scan(body, jnp.zeros_like(x[0]), x, reverse=reverse, unroll=1)
    return ys


def _associative(x: jax.Array, a: Any, reverse: bool) -> jax.Array:
    # Elements (d, v) mean "y -> d * y + v"; composing two steps is again such a map.
    ac = jnp.asarray(a, x.dtype)
    d = jnp.full((x.shape[0],) + (1,) * (x.ndim - 1), ac, dtype=x.dtype)

    def combine(first, second):
        d1, v1 = first
        d2, v2 = second
        return d1 * d2, d2 * v1 + v2

    _, ys = lax.associative_scan(combine, (d, ac * x), reverse=reverse, axis=0)
    return ys


def leaky(x: jax.Array, a: Any, method: str) -> jax.Array:
    """``A x`` along axis 0."""
    if method == "scan":
        return _scan(x, a, reverse=False)
    if method == "associative":
        return _associative(x, a, reverse=False)
    if method == "dense":
        return matmul(leaky_matrix(x.shape[0], a, x.dtype), x)
    raise ValueError(f"method must be one of {METHODS}, got {method!r}")


def leaky_t(g: jax.Array, a: Any, method: str) -> jax.Array:
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


def decay_matrix(T: int, a: Any, dtype: Any) -> jax.Array:
    """``B[t, j] = a^(t - j)`` for ``j < t``, else 0."""
    return shift_down(leaky_matrix(T, a, dtype))


def decay(q: jax.Array, a: Any, method: str) -> jax.Array:
    """``B q``: a reset at step ``j`` first acts at ``j + 1``."""
    if method == "dense":
        return matmul(decay_matrix(q.shape[0], a, q.dtype), q)
    return shift_down(leaky(q, a, method))


def decay_t(g: jax.Array, a: Any, method: str) -> jax.Array:
    """``Bᵀ g``."""
    if method == "dense":
        return matmul(decay_matrix(g.shape[0], a, g.dtype).T, g)
    return shift_up(leaky_t(g, a, method))
