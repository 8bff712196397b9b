"""Group rng: the Threefry-2x32-20 generator and the uniform stream of SPEC §6, bit for bit.

The known answers of the SPEC table, the extra words and uniform streams of ``rng.json`` (seeds
up to 2**64 - 1, beyond JSON's exact integers: the file writes them as decimal strings), all
through the adapter's ``threefry2x32`` and ``uniforms``. Everything here must match exactly.
"""

from __future__ import annotations

import numpy as np
import pytest

from psu_conformance.cases import rng_vectors
from psu_conformance.compare import compare_exact
from psu_core.vectors import to_array

#: SPEC §6: (key, counter) -> output, from Random123.
KNOWN_ANSWERS = [
    ((0x00000000, 0x00000000), (0x00000000, 0x00000000), (0x6B200159, 0x99BA4EFE)),
    ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
    ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0)),
]
STREAMS = rng_vectors()["streams"]


def _u32(values: list[int]) -> np.ndarray:
    return np.asarray(values, dtype=np.uint32)


def _check(result):  # type: ignore[no-untyped-def]
    if not result.ok:
        raise AssertionError(result.message)


def _threefry(adapter, target, keys, counters):  # type: ignore[no-untyped-def]
    k0, k1 = (_u32([k[i] for k in keys]) for i in (0, 1))
    c0, c1 = (_u32([c[i] for c in counters]) for i in (0, 1))
    out = adapter.threefry2x32(k0, k1, c0, c1, device=target.device)
    assert isinstance(out, tuple) and len(out) == 2, f"threefry2x32 must return (out0, out1), got {type(out).__name__}"
    for i, word in enumerate(out):
        word = np.asarray(word)
        assert word.dtype == np.uint32, f"threefry2x32 output word {i} must be NumPy uint32, got {word.dtype}"
    return np.asarray(out[0]), np.asarray(out[1])


@pytest.mark.parametrize("known", KNOWN_ANSWERS, ids=["zeros", "ones", "pi"])
def test_threefry_known_answer(psu_rng_target, psu_adapter, known):  # type: ignore[no-untyped-def]
    key, counter, output = known
    out0, out1 = _threefry(psu_adapter, psu_rng_target, [key], [counter])
    where = f"key {tuple(hex(k) for k in key)} counter {tuple(hex(c) for c in counter)}"
    _check(compare_exact("threefry2x32 word 0", out0, [output[0]], case=where))
    _check(compare_exact("threefry2x32 word 1", out1, [output[1]], case=where))


def test_threefry_words(psu_rng_target, psu_adapter):  # type: ignore[no-untyped-def]
    """Every (key, counter) -> output of rng.json, in one vectorised call."""
    entries = rng_vectors()["known_answers"] + rng_vectors()["words"]
    out0, out1 = _threefry(psu_adapter, psu_rng_target, [e["key"] for e in entries], [e["counter"] for e in entries])
    _check(compare_exact("threefry2x32 word 0", out0, [e["output"][0] for e in entries], case="rng.json words"))
    _check(compare_exact("threefry2x32 word 1", out1, [e["output"][1] for e in entries], case="rng.json words"))


@pytest.mark.parametrize(
    "stream", STREAMS, ids=[f"seed{s['seed']}-shape{'x'.join(map(str, s['uniform']['shape']))}" for s in STREAMS]
)
def test_uniforms(psu_rng_target, psu_adapter, stream):  # type: ignore[no-untyped-def]
    expected = to_array(stream["uniform"])
    assert expected is not None
    u = psu_adapter.uniforms(stream["seed"], expected.shape, device=psu_rng_target.device)
    _check(compare_exact("uniforms", u, expected, case=f"seed {stream['seed']}"))
