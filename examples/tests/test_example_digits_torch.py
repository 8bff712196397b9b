"""The torch digits example learns with every neuron, reproducibly; its LIF baseline is right."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("psu_torch")

import digits  # noqa: E402
import snn_torch  # noqa: E402

SHORT = digits.Config(epochs=2)


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread, as the demo runs (tiny layers; fixed threads, fixed numbers), restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("neuron", digits.NEURONS)
def test_learns_well_above_chance(neuron, digits_data):
    h = snn_torch.train_digits(neuron, SHORT, digits_data, show_progress=False)
    assert len(h.epochs) == SHORT.epochs
    assert h.final.test_accuracy > 0.5, f"{neuron}: test accuracy {h.final.test_accuracy} (chance is 0.1)"
    assert 0.0 < h.final.firing_rate < 1.0
    assert h.epochs[-1].train_loss < h.epochs[0].train_loss


def test_same_seed_same_numbers(digits_data):
    cfg = replace(SHORT, epochs=1, train_limit=256)
    a, b = (snn_torch.train_digits("psu", cfg, digits_data, show_progress=False) for _ in range(2))
    key = lambda h: [(e.train_loss, e.train_accuracy, e.test_accuracy, e.firing_rate) for e in h.epochs]
    assert key(a) == key(b)
    c = snn_torch.train_digits("psu", replace(cfg, seed=1), digits_data, show_progress=False)
    assert key(c) != key(a)


def test_lif_by_hand():
    # tau = 2, theta = 1: h = v + (x - v) / 2; fire when h > 1, then v = 0.
    x = torch.tensor([[1.5], [1.5], [0.0], [3.0], [2.0]])
    s = snn_torch.LIF(tau=2.0, threshold=1.0)(x)
    # h: 0.75 -> 1.125 (fire) -> 0 -> 1.5 (fire) -> 1.0 (not > 1)
    assert s.flatten().tolist() == [0.0, 1.0, 0.0, 1.0, 0.0]


def test_lif_surrogate_is_arctan():
    d = torch.tensor([-0.3, 0.0, 0.2], requires_grad=True)
    alpha = 2.0
    snn_torch.ArctanSpike.apply(d, alpha).sum().backward()
    want = [alpha / (2 * (1 + (math.pi / 2 * alpha * v) ** 2)) for v in (-0.3, 0.0, 0.2)]
    assert d.grad.tolist() == pytest.approx(want, rel=1e-6)


@pytest.mark.parametrize("name", ["psu", "ipsu", "rpsu"])
def test_published_preset_neurons(name):
    # reference_compat=True: the published setup (SPEC §7), fed the folded layout by run_neuron.
    T, B = 4, 3
    neuron = snn_torch.make_neuron(name, T, tau=2.0, threshold=0.5, surrogate_alpha=2.0, reference_compat=True)
    assert neuron.reference_compat and isinstance(neuron.surrogate_alpha, torch.nn.Parameter)
    assert neuron.reset_scale == (None if name == "psu" else 1.0)
    y = torch.randn(T, B, 5) * 2
    expected = snn_torch.make_neuron(name, T, tau=2.0, threshold=0.5, surrogate_alpha=2.0)
    expected.load_state_dict(neuron.state_dict())
    expected.reset_scale = neuron.reset_scale
    assert torch.equal(snn_torch.run_neuron(neuron, y), snn_torch.run_neuron(expected, y))


def test_unknown_neuron_is_refused():
    with pytest.raises(ValueError, match="neuron must be one of"):
        snn_torch.make_neuron("izhikevich", 4, tau=2.0, threshold=1.0, surrogate_alpha=2.0)
