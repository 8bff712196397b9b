"""The sampled-reset stream of SPEC §6, computed with JAX's own Threefry-2x32-20.

For a seed ``0 <= seed < 2**64``, time step ``t`` and flat neuron index ``n`` (C order over the
neuron shape)::

    key      = (seed & 0xFFFFFFFF, seed >> 32)
    (w0, w1) = threefry2x32(key, counter=(n, t))
    u[t, n]  = (w0 >> 8) * 2**-24
    R[t, n]  = u[t, n] < P[t, n]

``jax.extend.random.threefry_2x32(keypair, count)`` pairs the first half of the flattened
``count`` with its second half, so ``count = stack([n, t])`` (shape ``[2, ...]``) gives the
counter ``(n, t)`` element-wise and ``out[0]`` is ``w0``.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend.random import threefry_2x32

__all__ = [
    "threefry2x32",
    "seed_words",
    "uniforms",
    "uniform_bits",
    "draw_resets",
]

_TWO_POW_M24 = 2.0**-24


def threefry2x32(key0: Any, key1: Any, counter0: Any, counter1: Any) -> tuple[jax.Array, jax.Array]:
    """Threefry-2x32 with 20 rounds, element-wise over broadcast uint32 counters.

    ``key0``, ``key1`` are uint32 scalars; ``counter0``, ``counter1`` uint32 arrays of one shape.
    Returns ``(w0, w1)``, uint32 arrays of that shape. One compiled program per shape.
    """
    # Converted before jit: a Python int above 2**31 is not a valid traced argument without x64.
    return _threefry2x32(*(jnp.asarray(v, jnp.uint32) for v in (key0, key1, counter0, counter1)))


@jax.jit
def _threefry2x32(key0: jax.Array, key1: jax.Array, counter0: jax.Array, counter1: jax.Array):
    key = jnp.stack([key0, key1])
    c0, c1 = jnp.broadcast_arrays(counter0, counter1)
    out = threefry_2x32(key, jnp.stack([c0, c1]))
    return out[0], out[1]


def seed_words(seed: Any) -> jax.Array:
    """The key ``(k0, k1)`` of SPEC §6 as a ``uint32[2]`` array.

    An integer seed in ``[0, 2**64)`` gives ``(seed & 0xFFFFFFFF, seed >> 32)`` (bit-identical to
    psu-core). A JAX PRNG key (typed ``jax.random.key`` or a raw ``uint32[2]`` ``PRNGKey``) gives
    64 bits drawn from it with ``jax.random.bits``: traceable, so a module can draw a fresh seed
    per call inside ``jit``. The caller validates integer seeds (``psu_core.checks``).
    """
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, (bool, np.bool_)):
        seed = int(seed)
        return jnp.asarray(np.array([seed & 0xFFFFFFFF, seed >> 32], dtype=np.uint32))
    key = seed
    if _is_typed_key(key):
        if key.shape != ():
            raise ValueError(f"seed must be a single JAX PRNG key, got a key array of shape {key.shape}")
    else:
        arr = jnp.asarray(key)
        if arr.dtype != jnp.uint32 or arr.shape != (2,):
            raise ValueError(
                "seed must be an integer in [0, 2**64) or a JAX PRNG key, "
                f"got an array of dtype {arr.dtype} and shape {arr.shape}"
            )
        key = jax.random.wrap_key_data(arr, impl="threefry2x32")
    return jax.random.bits(key, (2,), jnp.uint32)


def _is_typed_key(x: Any) -> bool:
    return hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jax.dtypes.prng_key)


def uniform_bits(words: jax.Array, T: int, num_neurons: int, t0: Any = 0) -> jax.Array:
    """``w0 >> 8`` for counters ``(n, t)``, ``t`` in ``t0 .. t0 + T - 1``: uint32 ``[T, N]``."""
    if num_neurons > 2**32:
        raise ValueError(f"sampled reset needs at most 2**32 neurons per time step, got {num_neurons}")
    n = jax.lax.broadcasted_iota(jnp.uint32, (T, num_neurons), 1)
    t = jax.lax.broadcasted_iota(jnp.uint32, (T, num_neurons), 0) + jnp.asarray(t0, jnp.uint32)
    out = threefry_2x32(words, jnp.stack([n, t]))
    return out[0] >> 8


def uniforms_from_words(words: jax.Array, T: int, num_neurons: int, dtype: Any, t0: Any = 0) -> jax.Array:
    """The uniforms ``u[t, n]`` of SPEC §6 in ``dtype`` (float32 or float64: exact in both)."""
    return uniform_bits(words, T, num_neurons, t0).astype(dtype) * jnp.asarray(_TWO_POW_M24, dtype)


def uniforms(seed: Any, shape: tuple[int, ...], dtype: Any = jnp.float32) -> jax.Array:
    """The uniforms ``u[t, n]`` of SPEC §6 for an array of ``shape = (T, *neuron_shape)``; ``seed`` as
    in :func:`seed_words`."""
    shape = tuple(int(d) for d in shape)
    if len(shape) < 1:
        raise ValueError(f"shape must have a time axis, got {shape}")
    return _uniforms(seed_words(seed), shape, jnp.dtype(dtype))


@partial(jax.jit, static_argnums=(1, 2))
def _uniforms(words: jax.Array, shape: tuple[int, ...], dtype: Any) -> jax.Array:
    """One compiled program per (shape, dtype) instead of one eager op after another."""
    n = int(np.prod(shape[1:], dtype=np.int64))
    return uniforms_from_words(words, shape[0], n, dtype).reshape(shape)


def draw_resets(p: jax.Array, seed: Any) -> jax.Array:
    """``R = (u < P)`` in ``p``'s dtype; the comparison is made in float32 for half precision."""
    p = jnp.asarray(p)
    cdt = jnp.promote_types(p.dtype, jnp.float32)
    u = uniforms(seed, p.shape, cdt)
    return (u < p.astype(cdt)).astype(p.dtype)
