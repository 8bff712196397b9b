"""nn.Modules: parameters, presets, layouts, state_dict, a small conv net, sampled-mode seeding."""

from __future__ import annotations

import io
import math

import pytest
import torch
from torch import nn

import psu_torch
from psu_torch import functional as F
from psu_torch.nn import IPSU, PSU, RPSU, TimeFolded, merge_time, split_time


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
    assert PSU(threshold=0.5, reference_compat=True).reset_scale == 0.5
    assert IPSU(4, threshold=0.5, reference_compat=True).reset_scale == 1.0
    r = RPSU(4, threshold=0.5, reference_compat=True, learn_alpha=False)
    assert r.reset_scale == 1.0 and isinstance(r.surrogate_alpha, nn.Parameter)
    with pytest.raises(ValueError, match="reset_scale"):
        PSU(reset_scale=0.3, reference_compat=True)


def test_learned_threshold_reaches_reset_only_when_tied():
    torch.manual_seed(1)
    x = torch.randn(8, 40) * 2
    grads = {}
    for compat in (False, True):
        m = PSU(threshold=0.5, learn_threshold=True, reference_compat=compat)
        m(x).sum().backward()
        grads[compat] = m.threshold.grad.item()
    th = torch.tensor(0.5, requires_grad=True)
    F.psu(x, threshold=th, reset_scale=0.5).sum().backward()
    assert grads[True] == pytest.approx(th.grad.item())  # preset: gamma frozen, no reset path
    assert grads[False] != pytest.approx(grads[True])


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
    assert torch.equal(merge_time(y), x)
    with pytest.raises(ValueError, match="divisible"):
        split_time(x, 4)


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
