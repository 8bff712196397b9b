"""nn.Modules: parameters, presets, layouts, state_dict, published checkpoints, a small conv net,
sampled-mode seeding."""

from __future__ import annotations

import io
import math

import pytest
import torch
from torch import nn

import psu_torch
from psu_core.api import PSUOutput
from psu_torch import functional as F
from psu_torch.nn import IPSU, PSU, RPSU, TimeFolded, load_published_state_dict, merge_time, split_time


def test_parameters_registered():
    m = RPSU(8, learn_threshold=True)
    names = dict(m.named_parameters())
    assert set(names) == {"weight", "bias", "threshold", "surrogate_alpha"}
    assert names["weight"].shape == (8, 8) and names["bias"].shape == (8,)
    p = PSU(learn_alpha=False)
    assert dict(p.named_parameters()) == {}
    assert set(dict(p.named_buffers())) == {"threshold", "surrogate_alpha"}


def test_initialisation_kaiming_fan_out():
    torch.manual_seed(0)
    m = IPSU(64)
    assert torch.all(m.bias == 0)
    std = m.weight.detach().std().item()
    assert std == pytest.approx(math.sqrt(2 / 64), rel=0.05)
    assert torch.triu(m.weight, 1).abs().sum() > 0  # all entries drawn; the mask is applied on use


def test_reference_compat_preset():
    # SPEC §7: PSU's reset scale tied to the threshold, IPSU/RPSU's fixed at 1; alpha learnable.
    p = PSU(T=4, threshold=0.5, reference_compat=True)
    assert p.reset_scale is None and isinstance(p.surrogate_alpha, nn.Parameter)
    assert IPSU(4, threshold=0.5, reference_compat=True).reset_scale == 1.0
    r = RPSU(4, threshold=0.5, reference_compat=True)
    assert r.reset_scale == 1.0 and isinstance(r.surrogate_alpha, nn.Parameter)
    with pytest.raises(ValueError, match="reset_scale"):
        PSU(T=4, reset_scale=0.3, reference_compat=True)
    with pytest.raises(ValueError, match="learn_alpha"):
        RPSU(4, reference_compat=True, learn_alpha=False)
    with pytest.raises(ValueError, match="batch_first"):
        IPSU(4, reference_compat=True, batch_first=True)


def test_psu_preset_needs_T():
    # The preset reads the published layout [(T*B), ...]: without T it would misread it.
    with pytest.raises(ValueError, match=r"T must be given with reference_compat=True"):
        PSU(reference_compat=True)
    with pytest.raises(ValueError, match="T must be an integer"):
        PSU(T=0, reference_compat=True)


@pytest.mark.parametrize("cls", [PSU, IPSU, RPSU])
def test_preset_reads_the_folded_layout(cls):
    torch.manual_seed(0)
    T, B = 4, 3
    m = cls(T=T, threshold=0.5, reference_compat=True) if cls is PSU else cls(T, threshold=0.5, reference_compat=True)
    x = torch.randn(T * B, 5, 2) * 2  # [(T*B), C, W], time-major blocks
    s = m(x)
    assert s.shape == x.shape
    # the same as the time-first call on the unfolded input, folded back
    kw = dict(threshold=m.threshold, reset_scale=m.reset_scale, surrogate_alpha=m.surrogate_alpha)
    xt = x.view(T, B, 5, 2)
    expected = F.psu(xt, **kw) if cls is PSU else F.call(m.variant, xt, m.weight, m.bias, **kw)
    assert torch.equal(s, expected.reshape(x.shape))
    with pytest.raises(ValueError, match="divisible by T=4"):
        m(torch.randn(T * B + 1, 5))


def test_psu_T_without_preset_checks_the_steps():
    m = PSU(T=4)
    assert m(torch.randn(4, 3)).shape == (4, 3)
    with pytest.raises(ValueError, match="T=4 time steps"):
        m(torch.randn(5, 3))


def test_return_membrane():
    torch.manual_seed(6)
    x = torch.randn(4, 4, 3)  # [T, B, C], or [B, T, C] for batch_first
    for m in (PSU(return_membrane=True), RPSU(4, return_membrane=True, batch_first=True)):
        out = m(x)
        assert isinstance(out, PSUOutput) and out.reset is None
        assert out.spikes.shape == out.membrane.shape == x.shape and not out.membrane.requires_grad
        m.return_membrane = False
        assert torch.equal(m(x), out.spikes)
    folded = RPSU(4, reference_compat=True, return_membrane=True)
    out = TimeFolded(PSU(return_membrane=True), 4)(torch.randn(8, 3))
    assert out.membrane.shape == (8, 3)
    assert folded(torch.randn(8, 3)).membrane.shape == (8, 3)


def test_module_matches_functional():
    torch.manual_seed(2)
    m = RPSU(6, threshold=0.7, tau=3.0)
    x = torch.randn(6, 2, 5)
    expected = F.rpsu(x, m.weight, m.bias, threshold=0.7, tau=3.0, surrogate_alpha=2.0)
    torch.testing.assert_close(m(x), expected)


@pytest.mark.parametrize("cls", [PSU, IPSU, RPSU])
def test_batch_first(cls):
    torch.manual_seed(3)
    m = cls(5) if cls is not PSU else cls()
    mb = cls(5, batch_first=True) if cls is not PSU else cls(batch_first=True)
    mb.load_state_dict(m.state_dict())
    x = torch.randn(5, 3, 4)
    torch.testing.assert_close(mb(x.transpose(0, 1)), m(x).transpose(0, 1))


def test_state_dict_round_trip():
    torch.manual_seed(4)
    m = RPSU(6, threshold=0.6, learn_threshold=True)
    with torch.no_grad():
        m.threshold.fill_(0.9)
        m.surrogate_alpha.fill_(3.0)
    buf = io.BytesIO()
    torch.save(m.state_dict(), buf)
    buf.seek(0)
    m2 = RPSU(6, learn_threshold=True)
    m2.load_state_dict(torch.load(buf))
    x = torch.randn(6, 10)
    torch.testing.assert_close(m2(x), m(x))
    assert m2.threshold.item() == pytest.approx(0.9)


def test_extra_repr():
    text = repr(RPSU(4, threshold=0.5, learn_threshold=True, reset="sampled", method="dense"))
    assert "T=4" in text and "threshold=0.5 (learned)" in text and "reset='sampled'" in text
    assert "method='dense'" in text
    assert "reset_scale=tied to threshold" in repr(PSU())
    assert "T=2" in repr(PSU(T=2, reference_compat=True)) and "reference_compat=True" in repr(
        PSU(T=2, reference_compat=True)
    )


def test_conv_net_trains_with_folded_time():
    torch.manual_seed(5)
    T, B = 4, 2
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        TimeFolded(PSU(threshold=0.5), T),
        nn.Conv2d(8, 8, 3, padding=1),
        TimeFolded(RPSU(T, threshold=0.5)),
        nn.Flatten(),
        nn.Linear(8 * 6 * 6, 5),
    )
    x = torch.randn(T * B, 3, 6, 6)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    before = [p.detach().clone() for p in net.parameters()]
    loss = net(x).view(T, B, 5).mean(0).logsumexp(1).mean()
    loss.backward()
    assert all(p.grad is not None for p in net.parameters())
    opt.step()
    assert any(not torch.equal(a, p) for a, p in zip(before, net.parameters(), strict=False))


def test_split_merge_time():
    x = torch.arange(24.0).view(6, 4)
    y = split_time(x, 3)
    assert y.shape == (3, 2, 4) and torch.equal(y[1, 0], x[2])
    assert y.data_ptr() == x.data_ptr()  # a view
    assert torch.equal(merge_time(y), x)
    with pytest.raises(ValueError, match="divisible"):
        split_time(x, 4)


def test_time_folded_refuses_a_preset_neuron():
    with pytest.raises(ValueError, match="already reads the folded layout"):
        TimeFolded(RPSU(4, threshold=0.5, reference_compat=True))


def test_sampled_mode_reproducible_with_manual_seed():
    m = PSU(reset="sampled")
    x = torch.randn(8, 100)
    torch.manual_seed(11)
    a = m(x)
    torch.manual_seed(11)
    b = m(x)
    c = m(x)
    assert torch.equal(a, b)
    assert not torch.equal(b, c)
    gen = torch.Generator().manual_seed(3)
    mg = PSU(reset="sampled", generator=gen)
    first = mg(x)
    gen.manual_seed(3)
    assert torch.equal(mg(x), first)


def test_invalid_constructor_arguments():
    with pytest.raises(ValueError, match="tau"):
        PSU(tau=1.0)
    with pytest.raises(ValueError, match="reset"):
        IPSU(4, reset="sampled")
    with pytest.raises(ValueError, match="T"):
        RPSU(0)
    with pytest.raises(ValueError, match="method"):
        PSU(method="fast")
    with pytest.raises(TypeError, match="impl"):
        PSU(impl="dense")  # the old name is gone (no alias)


def test_package_exports():
    assert psu_torch.PSU is PSU and psu_torch.psu is F.psu
    assert psu_torch.load_published_state_dict is load_published_state_dict


# ------------------------------------------------------------------------------------------------
# Checkpoints of the published code (Brain-Cog-Lab PSU, braincog/base/node/node.py)
# ------------------------------------------------------------------------------------------------
def _published_net_state(T: int) -> dict[str, torch.Tensor]:
    """The state dict the published code saves for conv -> PSU -> conv -> RPSU -> conv -> IPSU: each
    neuron is a braincog BaseNode (its ``threshold`` a float32 0-d Parameter), its surrogate
    ``act_fun`` holds the learnable ``alpha`` (float32 0-d), IPSU/RPSU hold ``fc = nn.Linear(T, T)``."""
    g = torch.Generator().manual_seed(0)
    state = {}
    for i, channels in ((0, 8), (2, 8), (4, 8)):
        state[f"{i}.weight"] = torch.randn(channels, 3 if i == 0 else 8, 3, 3, generator=g)
        state[f"{i}.bias"] = torch.randn(channels, generator=g)
    for i, learned in ((1, False), (3, True), (5, True)):
        state[f"{i}.threshold"] = torch.tensor(0.5)
        if learned:
            state[f"{i}.fc.weight"] = torch.randn(T, T, generator=g)
            state[f"{i}.fc.bias"] = torch.randn(T, generator=g)
        state[f"{i}.act_fun.alpha"] = torch.tensor(2.0 + i / 10)
    return state


def _our_net(T: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), PSU(T=T, threshold=0.5, reference_compat=True),
        nn.Conv2d(8, 8, 3, padding=1), RPSU(T, threshold=0.5, reference_compat=True),
        nn.Conv2d(8, 8, 3, padding=1), IPSU(T, threshold=0.5, reference_compat=True),
    )  # fmt: skip


def test_published_state_dict_loads():
    T = 4
    state = _published_net_state(T)
    assert all(v.dtype == torch.float32 for v in state.values())
    assert state["3.fc.weight"].shape == (T, T) and state["3.fc.bias"].shape == (T,)
    assert state["1.act_fun.alpha"].shape == () and state["1.threshold"].shape == ()
    net = _our_net(T)
    load_published_state_dict(net, state)
    assert torch.equal(net[3].weight, state["3.fc.weight"]) and torch.equal(net[5].bias, state["5.fc.bias"])
    assert net[1].surrogate_alpha.item() == pytest.approx(2.1) and net[5].surrogate_alpha.item() == pytest.approx(2.5)
    assert torch.equal(net[0].weight, state["0.weight"])
    assert net(torch.randn(T * 2, 3, 6, 6)).shape == (T * 2, 8, 6, 6)  # runs on the published layout


def test_published_state_dict_loads_into_a_bare_neuron():
    neuron = RPSU(4, reference_compat=True)
    w = torch.randn(4, 4)
    load_published_state_dict(
        neuron, {"fc.weight": w, "fc.bias": torch.zeros(4), "act_fun.alpha": torch.tensor(3.0), "threshold": torch.tensor(0.5)}
    )  # fmt: skip
    assert torch.equal(neuron.weight, w) and neuron.threshold.item() == 0.5


def test_published_state_dict_unknown_and_missing_keys_raise():
    T = 4
    state = _published_net_state(T)
    net = _our_net(T)
    before = net[3].weight.detach().clone()
    with pytest.raises(ValueError, match=r"unknown keys \['3.fc.scale'\]"):
        load_published_state_dict(net, {**state, "3.fc.scale": torch.ones(1)})
    missing = {k: v for k, v in state.items() if k != "5.fc.weight"}
    with pytest.raises(ValueError, match=r"missing keys \['5.fc.weight'\]"):
        load_published_state_dict(net, missing)
    with pytest.raises(ValueError, match=r"unknown keys \['3.weight'\]"):
        load_published_state_dict(net, {**missing, "3.weight": state["5.fc.weight"]})  # our name, not theirs
    assert torch.equal(net[3].weight, before)  # nothing loaded on failure
    result = load_published_state_dict(net, missing, strict=False)
    assert result.missing_keys == ["5.weight"] and torch.equal(net[3].weight, state["3.fc.weight"])


def test_published_state_dict_needs_the_preset():
    T = 4
    net = _our_net(T)
    net[3] = RPSU(T, threshold=0.5)
    with pytest.raises(ValueError, match=r"neurons \['3'\] were not built with reference_compat=True"):
        load_published_state_dict(net, _published_net_state(T))
