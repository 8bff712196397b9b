"""Threefry-2x32-20 in torch int64 arithmetic: known answers and the SPEC §6 stream."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from psu_core import rng as core_rng
from psu_torch import random as prandom

KNOWN = [
    ((0, 0), (0, 0), (0x6B200159, 0x99BA4EFE)),
    ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
    ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0)),
]


@pytest.mark.parametrize("key,counter,out", KNOWN)
def test_known_answers(key, counter, out):
    w0, w1 = prandom.threefry2x32(*key, *counter)
    assert (int(w0), int(w1)) == out


def test_vectorised_words_match_core():
    g = np.random.default_rng(0)
    k0, k1, c0, c1 = (g.integers(0, 2**32, size=257, dtype=np.uint64) for _ in range(4))
    w0, w1 = prandom.threefry2x32(*(torch.tensor(a.astype(np.int64)) for a in (k0, k1, c0, c1)))
    e0, e1 = core_rng.threefry2x32(k0, k1, c0, c1)
    assert np.array_equal(w0.numpy().astype(np.uint32), e0)
    assert np.array_equal(w1.numpy().astype(np.uint32), e1)


@pytest.mark.parametrize("seed", [0, 1, 2**32 + 7, 2**64 - 1])
def test_uniform_stream_matches_core(seed):
    shape = (5, 3, 7)
    u = prandom.uniforms(seed, shape)
    assert np.array_equal(u.numpy(), core_rng.uniforms(seed, shape))
    u32 = prandom.uniforms(seed, shape, dtype=torch.float32)
    assert np.array_equal(u32.double().numpy(), core_rng.uniforms(seed, shape))


def test_row_chunks_are_consistent(monkeypatch):
    monkeypatch.setattr(prandom, "_CHUNK_ELEMENTS", 8)  # forces one row per chunk
    assert torch.equal(
        prandom.uniform_rows(9, 2, 6, 5, dtype=torch.float64), torch.tensor(core_rng.uniforms(9, (6, 5))[2:6])
    )


def test_bad_seed():
    with pytest.raises(ValueError, match="seed"):
        prandom.uniforms(-1, (2, 2))
