"""The SPEC §11 API, written once in psu_numba.api: the three target modules export the same names
with the same signatures, and they are SPEC §11's (checked here for the GPU targets too, which
the conformance suite can only reach on a GPU); result types; ``method``; a pure ``step``; the
stateful wrapper; gradients through the spikes only."""

from __future__ import annotations

import importlib
import inspect

import numpy as np
import pytest
from psu_numba_testlib import make_case

from psu_conformance.test_api import differences
from psu_core.api import PSUOutput, StepOutput
from psu_numba import api, cpu
from psu_numba.adapter import CupyAdapter, NumbaCpuAdapter, NumbaCudaAdapter

TARGETS = ("cpu", "numba_cuda", "cupy")


@pytest.mark.parametrize("target", TARGETS)
def test_targets_export_the_same_api(target):
    module = importlib.import_module(f"psu_numba.{target}")
    assert sorted(module.__all__) == sorted(api.NAMES)
    for name in api.NAMES:
        here, there = getattr(module, name), getattr(cpu, name)
        if callable(here) and not isinstance(here, type):
            assert inspect.signature(here) == inspect.signature(there), name
    assert differences(module) == {}, "differences from SPEC §11 (the api group's view)"
    assert module.METHODS == ("auto", "recurrence")


def test_adapters_name_their_public_api():
    for adapter, target in ((NumbaCpuAdapter(), "cpu"), (NumbaCudaAdapter(), "numba_cuda"), (CupyAdapter(), "cupy")):
        assert adapter.public_api() is importlib.import_module(f"psu_numba.{target}")
        assert adapter.api_idioms == {}  # no difference from SPEC §11 to declare


def test_result_types_and_method(mode):
    variant, reset = mode
    x, _, w, b, params = make_case(variant, 4, (2, 3), reset=reset)
    fn = getattr(cpu, variant)
    args = (x,) if variant == "psu" else (x, w, b)
    spikes = fn(*args, **params)
    assert isinstance(spikes, np.ndarray) and spikes.shape == x.shape
    full = fn(*args, **params, method="recurrence", return_membrane=True, return_reset=True)
    assert type(full) is PSUOutput
    np.testing.assert_array_equal(full.spikes, spikes)
    assert full.membrane.shape == x.shape
    assert (full.reset is not None) == (reset == "sampled")
    only_reset = fn(*args, **params, return_reset=True)
    assert type(only_reset) is PSUOutput and only_reset.membrane is None
    with pytest.raises(ValueError, match=r"method must be one of \('auto', 'recurrence'\).*'dense'"):
        fn(*args, **params, method="dense")
    with pytest.raises(ValueError, match="method"):
        cpu.vjp(variant, x, np.ones_like(x), w, b, **params, method="dense")


def test_step_is_pure_and_replayable(mode):
    variant, reset = mode
    x, _, w, b, params = make_case(variant, 4, (5,), reset=reset)
    state = cpu.init_state(variant, (5,), T=None if variant == "psu" else 4, dtype=np.float64)
    state, _ = cpu.step(state, x[0], w, b, **params)
    before = {k: None if getattr(state, k) is None else getattr(state, k).copy() for k in ("h", "r", "q", "history")}
    new, out = cpu.step(state, x[1], w, b, **params)
    assert type(out) is StepOutput and isinstance(new, cpu.OnlineState)
    assert state.t == 1 and new.t == 2
    for k, v in before.items():
        if v is not None:
            np.testing.assert_array_equal(getattr(state, k), v, err_msg=k)
            assert not np.shares_memory(getattr(state, k), getattr(new, k)), k
    # The kept state replays to the same step, and branches independently.
    again, out_again = cpu.step(state, x[1], w, b, **params)
    for a, c in zip(out, out_again, strict=True):
        if a is not None:
            np.testing.assert_array_equal(a, c)
    branch, _ = cpu.step(state, -x[1], w, b, **params)
    assert not np.array_equal(branch.h, again.h)
    np.testing.assert_array_equal(new.h, again.h)


def test_stepper_matches_step_and_stops():
    x, _, w, b, params = make_case("rpsu", 3, (4,), reset="sampled")
    stepper = cpu.OnlineStepper("rpsu", (4,), w, b, **params, dtype="float64")
    state = cpu.init_state("rpsu", (4,), T=3, dtype="float64")
    for t in range(3):
        state, want = cpu.step(state, x[t], w, b, **params)
        got = stepper.step(x[t])
        assert type(got) is StepOutput
        for a, c in zip(got, want, strict=True):
            np.testing.assert_array_equal(a, c)
    assert stepper.state.t == 3 and stepper.state.T == 3
    with pytest.raises(ValueError, match="step 3 is past the end"):
        stepper.step(x[0])


def test_old_names_are_gone():
    # No aliases (they would be undeclared differences): T, not steps; step(state, ...), not
    # step(variant, state, ...); the shared result types, not ForwardResult/Step.
    assert "steps" not in inspect.signature(cpu.init_state).parameters
    assert list(inspect.signature(cpu.step).parameters)[:2] == ["state", "x_t"]
    import psu_numba

    for old in ("ForwardResult", "Step"):
        assert not hasattr(psu_numba, old) and not hasattr(cpu, old)


def test_gradients_flow_through_the_spikes_only():
    # SPEC §11: the membrane and the draws are outputs to inspect. vjp takes the spikes'
    # cotangent and nothing else, and with a zero one every gradient is zero (nothing else leaks in).
    cotangents = [p for p in inspect.signature(cpu.vjp).parameters if p.startswith("grad")]
    assert cotangents == ["grad_spikes"]
    x, g, w, b, params = make_case("rpsu", 4, (6,), reset="sampled")
    zero = cpu.vjp("rpsu", x, np.zeros_like(g), w, b, **params)
    assert not np.any(zero.x) and not np.any(zero.weight) and not np.any(zero.bias)
    assert zero.threshold == 0.0 and zero.surrogate_alpha == 0.0
