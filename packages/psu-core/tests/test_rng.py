import numpy as np
import pytest

from psu_core import rng

KNOWN = [
    ((0x00000000, 0x00000000), (0x00000000, 0x00000000), (0x6B200159, 0x99BA4EFE)),
    ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
    ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0)),
]


def scalar_threefry(k0, k1, c0, c1):
    """A second, deliberately plain implementation on Python ints (Random123's threefry2x32_R)."""
    mask = 0xFFFFFFFF
    ks = [k0, k1, k0 ^ k1 ^ 0x1BD11BDA]
    x0, x1 = (c0 + k0) & mask, (c1 + k1) & mask
    rot = [13, 15, 26, 6, 17, 29, 16, 24]
    for i in range(20):
        x0 = (x0 + x1) & mask
        x1 = ((x1 << rot[i % 8]) | (x1 >> (32 - rot[i % 8]))) & mask
        x1 ^= x0
        if i % 4 == 3:
            s = (i + 1) // 4
            x0 = (x0 + ks[s % 3]) & mask
            x1 = (x1 + ks[(s + 1) % 3] + s) & mask
    return x0, x1


@pytest.mark.parametrize("key,counter,expected", KNOWN)
def test_known_answers(key, counter, expected):
    out = rng.threefry2x32(*key, *counter)
    assert (int(out[0]), int(out[1])) == expected
    assert scalar_threefry(*key, *counter) == expected


def test_vectorised_matches_scalar_on_random_words():
    g = np.random.default_rng(7)
    words = g.integers(0, 2**32, size=(200, 4), dtype=np.uint64)
    o0, o1 = rng.threefry2x32(words[:, 0], words[:, 1], words[:, 2], words[:, 3])
    for row, a, b in zip(words.tolist(), o0.tolist(), o1.tolist(), strict=True):
        assert scalar_threefry(*row) == (a, b), row


def test_outputs_are_uint32_and_broadcast():
    o0, o1 = rng.threefry2x32(1, 2, np.arange(5, dtype=np.uint64)[:, None], np.arange(3, dtype=np.uint64)[None, :])
    assert o0.dtype == np.uint32 and o0.shape == (5, 3) and o1.shape == (5, 3)


def test_seed_key_splits_low_word_first():
    assert rng.seed_key(0x0123456789ABCDEF) == (0x89ABCDEF, 0x01234567)
    assert rng.seed_key(7) == (7, 0)


@pytest.mark.parametrize("seed", [-1, 2**64, 1.5, None, True])
def test_seed_out_of_range_raises(seed):
    with pytest.raises(ValueError, match="seed"):
        rng.seed_key(seed)


def test_uniforms_follow_the_mapping():
    seed, shape = 2**32 + 9, (3, 2, 2)
    u = rng.uniforms(seed, shape)
    assert u.shape == shape and u.dtype == np.float64
    k0, k1 = rng.seed_key(seed)
    for t in range(3):
        for n in range(4):
            w0, _ = scalar_threefry(k0, k1, n, t)
            assert u[t].ravel()[n] == (w0 >> 8) / 2**24


def test_uniforms_are_exact_in_float32_and_in_unit_interval():
    u = rng.uniforms(3, (16, 64))
    assert np.all((u >= 0) & (u < 1))
    assert np.array_equal(u.astype(np.float32).astype(np.float64), u)
    assert np.array_equal(u * 2**24, np.floor(u * 2**24))


def test_uniforms_look_uniform():
    u = rng.uniforms(11, (8, 4096)).ravel()
    # mean of 32768 U(0,1): sd = 1/sqrt(12 * 32768) ~ 0.0016; 5 sd bound
    assert abs(u.mean() - 0.5) < 0.008
    counts, _ = np.histogram(u, bins=16, range=(0, 1))
    expected = u.size / 16
    assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected))


def test_draw_resets_is_strictly_less():
    shape = (2, 3)
    u = rng.uniforms(5, shape)
    assert np.array_equal(rng.draw_resets(u, 5), np.zeros(shape))  # u < u is false
    assert np.array_equal(rng.draw_resets(np.nextafter(u, 2.0), 5), np.ones(shape))
