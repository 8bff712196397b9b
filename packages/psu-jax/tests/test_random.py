"""The SPEC §6 stream: known answers, the bits of JAX's own Threefry, equality with psu-core."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from psu_core import rng as core_rng
from psu_jax import random as prandom

KNOWN = [
    ((0x00000000, 0x00000000), (0x00000000, 0x00000000), (0x6B200159, 0x99BA4EFE)),
    ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
    ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0)),
]


@pytest.mark.parametrize("key,counter,out", KNOWN)
def test_known_answers(key, counter, out):
    w0, w1 = prandom.threefry2x32(key[0], key[1], np.uint32(counter[0]), np.uint32(counter[1]))
    assert (int(w0), int(w1)) == out


def test_equals_jax_threefry_2x32():
    """psu_jax's element-wise Threefry gives the bits of ``jax.extend.random.threefry_2x32``."""
    from jax.extend.random import threefry_2x32

    rng = np.random.default_rng(5)
    for _ in range(4):
        key = rng.integers(0, 2**32, size=2, dtype=np.uint64).astype(np.uint32)
        c0, c1 = rng.integers(0, 2**32, size=(2, 3, 1000), dtype=np.uint64).astype(np.uint32)
        w0, w1 = prandom.threefry2x32(key[0], key[1], c0, c1)
        want = threefry_2x32(jnp.asarray(key), jnp.stack([jnp.asarray(c0), jnp.asarray(c1)]))
        np.testing.assert_array_equal(np.asarray(w0), np.asarray(want[0]))
        np.testing.assert_array_equal(np.asarray(w1), np.asarray(want[1]))


def test_neuron_index_is_the_flat_c_order_index_plus_offset():
    shape = (3, 4, 5)
    np.testing.assert_array_equal(np.asarray(prandom.neuron_index(shape, 7)), np.arange(60).reshape(shape) + 7)
    assert prandom.neuron_index((), 9).shape == () and int(prandom.neuron_index((), 9)) == 9


@pytest.mark.parametrize("seed", [0, 7, 2**32 + 5, 2**64 - 1])
def test_uniforms_equal_psu_core(seed):
    shape = (5, 3, 4)
    u = np.asarray(prandom.uniforms(seed, shape, jnp.float64))
    np.testing.assert_array_equal(u, core_rng.uniforms(seed, shape))
    u32 = np.asarray(prandom.uniforms(seed, shape, jnp.float32))
    np.testing.assert_array_equal(u32.astype(np.float64), u)  # multiples of 2^-24: exact


def test_draw_resets_equal_psu_core():
    p = np.random.default_rng(1).uniform(size=(6, 10))
    np.testing.assert_array_equal(np.asarray(prandom.draw_resets(jnp.asarray(p), 99)), core_rng.draw_resets(p, 99))


def test_key_gives_traceable_seed():
    key = jax.random.key(3)
    w = jax.jit(prandom.seed_words)(key)
    assert w.dtype == jnp.uint32 and w.shape == (2,)
    np.testing.assert_array_equal(np.asarray(w), np.asarray(prandom.seed_words(jax.random.PRNGKey(3))))
    with pytest.raises(ValueError, match=r"seed must be an integer in \[0, 2\*\*64\) or a JAX PRNG key"):
        prandom.seed_words(jnp.zeros(3, jnp.uint32))
