"""The online form (SPEC §3, §11): the pure ``step`` on an explicit state, the ``OnlineStepper``
wrapper, the same spikes as the parallel call, no look-ahead."""

from __future__ import annotations

import pytest
import torch
from psu_torch_testlib import run_stepper

import psu_torch
from psu_core.api import StepOutput
from psu_torch import functional as F
from psu_torch.nn import IPSU, PSU, RPSU
from psu_torch.online import OnlineStepper, init_state, step


@pytest.mark.parametrize("reset", ["expected", "sampled"])
def test_psu_stepper_equals_recurrence_bitwise(reset):
    torch.manual_seed(0)
    x = torch.randn(12, 3, 5) * 2
    seed = 2**63 + 5 if reset == "sampled" else None
    s, v, r = F.psu(x, threshold=0.5, reset=reset, seed=seed, method="recurrence", return_membrane=True,
                    return_reset=True)  # fmt: skip
    s2, v2, r2 = run_stepper(OnlineStepper("psu", (3, 5), threshold=0.5, reset=reset, seed=seed), x)
    assert torch.equal(s, s2) and torch.equal(v, v2)
    if reset == "sampled":
        assert torch.equal(r, r2)
    else:
        assert r is None and r2 is None


@pytest.mark.parametrize("cls", [IPSU, RPSU])
def test_learned_steppers_match_parallel(cls):
    torch.manual_seed(1)
    m = cls(6, threshold=0.5).double()
    x = torch.randn(6, 4, dtype=torch.float64) * 2
    s, v, _ = (F.ipsu if cls is IPSU else F.rpsu)(x, m.weight, m.bias, threshold=0.5, return_membrane=True)
    stepper = m.stepper((4,))
    assert stepper.state.h.dtype == torch.float64  # the module's dtype
    for t in range(6):
        s_t, v_t, _ = stepper.step(x[t])
        assert torch.equal(s_t, s[t])
        torch.testing.assert_close(v_t, v[t], rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="step 6 is past the end"):
        stepper.step(x[0])


def test_step_is_pure():
    # The state given to step is never changed: it can be kept, branched or replayed.
    x = torch.randn(5, 7)
    state0 = init_state("rpsu", (7,), T=5)
    w, b = torch.randn(5, 5), torch.randn(5)
    snapshot = [t.clone() for t in (state0.h, state0.r, state0.q, state0.history)]
    state, outs = state0, []
    for t in range(5):
        state, out = step(state, x[t], w, b, threshold=0.3)
        assert isinstance(out, StepOutput) and out.reset is None
        outs.append(out.spikes)
    assert state.t == 5 and state0.t == 0
    for before, after in zip(snapshot, (state0.h, state0.r, state0.q, state0.history), strict=True):
        assert torch.equal(before, after)
    _, again = step(state0, x[0], w, b, threshold=0.3)  # replay from the kept state
    assert torch.equal(again.spikes, outs[0])


def test_stepper_wraps_the_pure_step():
    x = torch.randn(4, 3)
    stepper = OnlineStepper("psu", (3,), threshold=0.4)
    state = init_state("psu", (3,))
    for t in range(4):
        state, out = step(state, x[t], threshold=0.4)
        assert torch.equal(stepper.step(x[t]).spikes, out.spikes)
    assert stepper.state.t == 4
    stepper.reset_state()
    assert stepper.state.t == 0
    _, first = step(init_state("psu", (3,)), x[0], threshold=0.4)
    assert torch.equal(stepper.step(x[0]).membrane, first.membrane)


def test_outputs_carry_no_gradient():
    x = torch.randn(3, requires_grad=True)
    _, out = step(init_state("psu", (3,)), x)
    assert not out.membrane.requires_grad and not out.spikes.requires_grad


def test_init_state_placement_and_horizon():
    s = init_state("ipsu", (2, 3), T=4, dtype="float64")
    assert s.h.dtype == torch.float64 and s.history.shape == (4, 6) and s.T == 4
    assert init_state("psu", (3,), dtype=torch.bfloat16).h.dtype == torch.float32  # half: float32 state
    assert init_state("psu", (3,), T=9).T is None  # PSU has no end
    with pytest.raises(ValueError, match="T"):
        init_state("rpsu", (3,))
    with pytest.raises(ValueError, match="dtype"):
        init_state("psu", (3,), dtype="int32")


def test_step_checks_its_arguments():
    state = init_state("psu", (3,))
    with pytest.raises(ValueError, match="x_t must have shape"):
        step(state, torch.zeros(4))
    with pytest.raises(TypeError, match="x_t"):
        step(state, torch.arange(3))
    with pytest.raises(ValueError, match="tau"):
        step(state, torch.zeros(3), tau=1.0)
    with pytest.raises(ValueError, match="seed"):
        OnlineStepper("psu", (3,), reset="sampled")


def test_no_lookahead():
    # The output at step t does not depend on inputs after t.
    torch.manual_seed(2)
    x = torch.randn(8, 20)
    y = x.clone()
    y[5:] = torch.randn(3, 20)
    sx, sy = F.psu(x), F.psu(y)
    assert torch.equal(sx[:5], sy[:5])


def test_module_stepper_copies_current_parameters():
    m = PSU(threshold=0.3)
    stepper = m.stepper((7,))
    with torch.no_grad():
        m.threshold.fill_(5.0)  # later changes to the module do not reach the stepper
    x = torch.ones(7) * 2
    assert stepper.step(x).spikes.sum() > 0


def test_top_level_names():
    for name in ("psu", "ipsu", "rpsu", "init_state", "step", "OnlineStepper", "PSUOutput", "StepOutput"):
        assert hasattr(psu_torch, name), name
