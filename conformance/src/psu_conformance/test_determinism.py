"""Group determinism: the same forward and vjp call made twice returns the same bits (no
order-dependent atomics, no hidden state), on generated cases large enough (T=16, N=2048) for a
nondeterministic reduction to show."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from psu_conformance.cases import MODES, generated_case

CASES = [generated_case(v, r, T=16, N=2048, seed=97) for v, r in MODES]


def _same_bits(what: str, case_id: str, a: Any, b: Any) -> None:
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype, (
        f"{what}, case {case_id}: first call gave {a.dtype}{list(a.shape)}, second {b.dtype}{list(b.shape)}"
    )
    if a.tobytes() != b.tobytes():
        differ = a.view(np.uint8).reshape(*a.shape, -1) != b.view(np.uint8).reshape(*b.shape, -1) if a.ndim else None
        where = ""
        if differ is not None:
            index = tuple(int(i) for i in np.argwhere(differ.any(axis=-1))[0])
            where = f" first at index {index}: {a[index]!r} then {b[index]!r};"
        raise AssertionError(
            f"{what}, case {case_id}: two identical calls gave different bits;{where} not deterministic"
        )


@pytest.mark.parametrize("gen", CASES, ids=[g.id for g in CASES])
def test_forward_twice(psu_target, psu_adapter, gen):  # type: ignore[no-untyped-def]
    dev, dt = psu_target.device, psu_target.dtype
    first = psu_adapter.forward(gen.fresh(), device=dev, dtype=dt)
    second = psu_adapter.forward(gen.fresh(), device=dev, dtype=dt)
    assert sorted(first) == sorted(second), f"forward returned keys {sorted(first)} then {sorted(second)}"
    for key in sorted(first):
        _same_bits(f"forward {key}", gen.id, first[key], second[key])


@pytest.mark.parametrize("gen", CASES, ids=[g.id for g in CASES])
def test_vjp_twice(psu_target, psu_adapter, gen):  # type: ignore[no-untyped-def]
    dev, dt = psu_target.device, psu_target.dtype
    first = psu_adapter.vjp(gen.fresh(), gen.grad_spikes.copy(), device=dev, dtype=dt)
    second = psu_adapter.vjp(gen.fresh(), gen.grad_spikes.copy(), device=dev, dtype=dt)
    assert sorted(first) == sorted(second), f"vjp returned keys {sorted(first)} then {sorted(second)}"
    for key in sorted(first):
        _same_bits(f"vjp {key}", gen.id, first[key], second[key])
