"""Threefry-2x32-20 and the sampled-reset stream of SPEC §6, vectorised over NumPy ``uint32``.

key     = (seed & 0xFFFFFFFF, seed >> 32)
counter = (n, t)                    n: flat neuron index (C order), t: time step
u       = (w0 >> 8) * 2**-24        w0: first output word of threefry2x32(key, counter)
R       = 1 if u < P else 0
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from psu_core.checks import check_seed

ROTATIONS = (13, 15, 26, 6, 17, 29, 16, 24)
KS_PARITY = np.uint32(0x1BD11BDA)
UNIFORM_SCALE = 2.0**-24


def _rotl(v: np.ndarray, r: int) -> np.ndarray:
    return (v << np.uint32(r)) | (v >> np.uint32(32 - r))


def threefry2x32(key0, key1, counter0, counter1) -> tuple[np.ndarray, np.ndarray]:
    """Threefry-2x32 with 20 rounds (Random123); arguments broadcast, returns two ``uint32`` arrays."""
    k0, k1, x0, x1 = (np.asarray(v, dtype=np.uint64).astype(np.uint32) for v in (key0, key1, counter0, counter1))
    k0, k1, x0, x1 = np.broadcast_arrays(k0, k1, x0, x1)
    ks = (k0, k1, k0 ^ k1 ^ KS_PARITY)
    # uint32 arithmetic wraps modulo 2**32, which is what Threefry specifies.
    with np.errstate(over="ignore"):
        x0 = x0 + ks[0]
        x1 = x1 + ks[1]
        for i in range(20):
            x0 = x0 + x1
            x1 = _rotl(x1, ROTATIONS[i % 8])
            x1 = x1 ^ x0
            if i % 4 == 3:
                s = (i + 1) // 4
                x0 = x0 + ks[s % 3]
                x1 = x1 + ks[(s + 1) % 3] + np.uint32(s)
    return x0, x1


def seed_key(seed: int) -> tuple[int, int]:
    """Split a 64-bit seed into the Threefry key ``(low word, high word)``."""
    seed = check_seed(seed)
    return seed & 0xFFFFFFFF, seed >> 32


def bits_to_uniform(w0: np.ndarray) -> np.ndarray:
    """Top 24 bits of a word, times 2**-24: a float64 in [0, 1), exact in float32 too."""
    return (np.asarray(w0, dtype=np.uint32) >> np.uint32(8)).astype(np.float64) * UNIFORM_SCALE


def uniforms(seed: int, shape: Sequence[int]) -> np.ndarray:
    """The uniforms ``u[t, ...]`` for an array of ``shape = (T, *neuron_shape)``, float64."""
    shape = tuple(int(d) for d in shape)
    T, N = shape[0], int(np.prod(shape[1:], dtype=np.int64))
    if N > 2**32:
        raise ValueError(f"x must have at most 2**32 neurons for sampled reset, got {N}")
    k0, k1 = seed_key(seed)
    t = np.arange(T, dtype=np.uint64)[:, None]
    n = np.arange(N, dtype=np.uint64)[None, :]
    w0, _ = threefry2x32(k0, k1, n, t)
    return bits_to_uniform(w0).reshape(shape)


def draw_resets(p: np.ndarray, seed: int) -> np.ndarray:
    """``R = (u < p)`` in ``p``'s dtype, ``p`` of shape ``[T, ...]``."""
    p = np.asarray(p)
    return (uniforms(seed, p.shape) < p).astype(p.dtype)
