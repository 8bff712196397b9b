"""The online stepper: explicit state, same spikes as the parallel call, no look-ahead."""

from __future__ import annotations

import pytest
import torch

from psu_torch import functional as F
from psu_torch.nn import IPSU, PSU, RPSU
from psu_torch.online import OnlineStepper


@pytest.mark.parametrize("reset", ["expected", "sampled"])
def test_psu_stepper_equals_recurrence_bitwise(reset):
    torch.manual_seed(0)
    x = torch.randn(12, 3, 5) * 2
    seed = 2**63 + 5 if reset == "sampled" else None
    s, v, r = F.psu(x, threshold=0.5, reset=reset, seed=seed, impl="recurrence", return_membrane=True,
                    return_reset=True)
    stepper = OnlineStepper("psu", threshold=0.5, reset=reset, seed=seed)
    s2, v2, r2 = stepper.run(x)
    assert torch.equal(s, s2) and torch.equal(v, v2)
    if reset == "sampled":
        assert torch.equal(r, r2)


@pytest.mark.parametrize("cls", [IPSU, RPSU])
def test_learned_steppers_match_parallel(cls):
    torch.manual_seed(1)
    m = cls(6, threshold=0.5).double()
    x = torch.randn(6, 4, dtype=torch.float64) * 2
    s, v = (F.ipsu if cls is IPSU else F.rpsu)(x, m.weight, m.bias, threshold=0.5, return_membrane=True)
    stepper = m.stepper()
    state = stepper.initial_state((4,), dtype=torch.float64)
    for t in range(6):
        s_t, v_t, _, state = stepper.step(x[t], state)
        assert torch.equal(s_t, s[t])
        torch.testing.assert_close(v_t, v[t], rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="step"):
        stepper.step(x[0], state)


def test_state_is_explicit_and_reusable():
    stepper = PSU(threshold=0.3).stepper()
    x = torch.randn(5, 7)
    state0 = stepper.initial_state((7,))
    state = state0
    outs = []
    for t in range(5):
        s, _, _, state = stepper.step(x[t], state)
        outs.append(s)
    s_again, _, _, _ = stepper.step(x[0], state0)  # the old state is untouched
    assert torch.equal(s_again, outs[0])
    assert state.t == 5


def test_no_lookahead():
    # The output at step t does not depend on inputs after t.
    torch.manual_seed(2)
    x = torch.randn(8, 20)
    y = x.clone()
    y[5:] = torch.randn(3, 20)
    sx, sy = F.psu(x), F.psu(y)
    assert torch.equal(sx[:5], sy[:5])


def test_step_rejects_integer_input():
    with pytest.raises(TypeError, match="x"):
        OnlineStepper("psu").step(torch.arange(3))
