"""The SPEC §6 stream through JAX's Threefry: known answers and equality with psu-core."""

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
