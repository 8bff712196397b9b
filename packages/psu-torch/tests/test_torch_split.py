"""A call on part of a batch draws as the whole call (SPEC §6): ``neuron_offset`` of the functional
API, on every method, and the modules' ``batch_shard`` (a DDP rank's share)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from psu_core import reference
from psu_core import rng as core_rng
from psu_torch import functional as F
from psu_torch import random as prandom
from psu_torch.nn import IPSU, PSU, RPSU, set_batch_shard

PARAMS = dict(tau=1.7, threshold=0.6, surrogate_alpha=2.5, reset="sampled", seed=2**40 + 17)
SAMPLED = [("psu", "recurrence"), ("psu", "chunked"), ("psu", "dense"), ("rpsu", "dense")]


def test_uniforms_with_offset_are_the_whole_streams_columns():
    whole = core_rng.uniforms(5, (4, 30))
    assert np.array_equal(prandom.uniforms(5, (4, 12), neuron_offset=18).numpy(), whole[:, 18:])
    rows = prandom.uniform_rows(5, 1, 3, 7, neuron_offset=10, dtype=torch.float64)
    assert np.array_equal(rows.numpy(), whole[1:3, 10:17])


@pytest.mark.parametrize("variant,method", SAMPLED)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
def test_pieces_with_offsets_are_the_whole_call(rng, variant, method, dtype):
    T, B, C = 9, 6, 5
    x = torch.tensor(rng.normal(size=(T, B, C)) * 1.5, dtype=dtype, requires_grad=True)
    g = torch.tensor(rng.normal(size=(T, B, C)), dtype=dtype)
    learned = [] if variant == "psu" else [torch.tensor(rng.normal(size=s) * 0.5, dtype=dtype) for s in ((T, T), (T,))]
    kw = dict(PARAMS, method=method, return_membrane=True, return_reset=True)
    whole = F.call(variant, x, *learned, **kw)
    whole.spikes.backward(g)
    ref = reference.forward(variant, x.detach().double().numpy(), *(t.double().numpy() for t in learned), **PARAMS)
    assert np.array_equal(whole.reset.numpy(), ref.reset)
    # three pieces of two batch rows each: neurons 0.., 10.., 20.. of the whole call
    pieces = []
    for i in range(3):
        xi = x.detach()[:, 2 * i : 2 * i + 2].clone().requires_grad_(True)
        out = F.call(variant, xi, *learned, **kw, neuron_offset=i * 2 * C)
        out.spikes.backward(g[:, 2 * i : 2 * i + 2])
        pieces.append((out, xi.grad))
    for field in ("spikes", "reset"):
        joined = torch.cat([getattr(out, field) for out, _ in pieces], dim=1)
        assert torch.equal(joined, getattr(whole, field).detach()), field
    # the GEMM forms may block a narrower input differently: the same numbers up to rounding
    torch.testing.assert_close(torch.cat([out.membrane for out, _ in pieces], dim=1), whole.membrane)
    torch.testing.assert_close(torch.cat([dx for _, dx in pieces], dim=1), x.grad)
    # without the offsets every piece would draw the first piece's numbers
    first = F.call(variant, x.detach()[:, 2:4], *learned, **kw)
    assert not torch.equal(first.reset, whole.reset[:, 2:4])


@pytest.mark.parametrize("reset", ["expected", "sampled"])
@pytest.mark.parametrize("bad", [-1, 1.5, True, "3", 2**32 - 5])
def test_bad_offset_raises_naming_it(reset, bad):
    seed = 1 if reset == "sampled" else None
    with pytest.raises(ValueError, match="neuron_offset"):
        F.psu(torch.randn(3, 2, 3), reset=reset, seed=seed, neuron_offset=bad)  # N = 6


def test_offset_up_to_the_counter_limit():
    # the last neuron's counter word is 2**32 - 1: allowed, and drawn as psu-core draws it
    x = torch.randn(3, 6, dtype=torch.float64)
    out = F.psu(x, reset="sampled", seed=9, return_reset=True, neuron_offset=2**32 - 6)
    u = prandom.uniforms(9, (3, 6), neuron_offset=2**32 - 6)
    k0, k1 = prandom.seed_key(9)
    w0, _ = core_rng.threefry2x32(np.uint32(k0), np.uint32(k1), np.uint32(2**32 - 1), np.uint32(2))
    assert float(u[2, 5]) == float(w0 >> 8) * 2.0**-24
    assert out.reset.shape == (3, 6)


def test_offset_is_ignored_in_expected_mode():
    x = torch.randn(4, 3, 2)
    assert torch.equal(F.psu(x, neuron_offset=12), F.psu(x))


# ------------------------------------------------------------------------------------------------
# Modules: batch_shard
# ------------------------------------------------------------------------------------------------
class _Net(nn.Module):
    """Two sampled layers (PSU, RPSU) around an IPSU; returns both sampled layers' spikes."""

    def __init__(self, T: int) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a, self.b, self.c = nn.Linear(3, 8), nn.Linear(8, 8), nn.Linear(8, 8)
        self.psu, self.ipsu = PSU(T, reset="sampled", threshold=0.1), IPSU(T, threshold=0.1)
        self.rpsu = RPSU(T, reset="sampled", threshold=0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s1 = self.psu(self.a(x))
        return torch.cat([s1, self.rpsu(self.c(self.ipsu(self.b(s1))))], dim=-1)


def _shards(net: nn.Module, x: torch.Tensor, count: int, shard: bool) -> torch.Tensor:
    """Each shard of ``x``'s batch through ``net`` with the same seeds, as DDP ranks run it."""
    outs = []
    for index, piece in enumerate(x.chunk(count, dim=1)):
        set_batch_shard(net, index if shard else 0, count if shard else 1)
        torch.manual_seed(7)
        outs.append(net(piece))
    set_batch_shard(net, 0, 1)
    return torch.cat(outs, dim=1)


def test_shards_draw_as_the_whole_batch():
    net = _Net(5)
    x = torch.randn(5, 6, 3) * 2
    torch.manual_seed(7)
    whole = net(x)
    rates = whole[..., :8].mean().item(), whole[..., 8:].mean().item()
    assert min(rates) > 0.05 and max(rates) < 0.95, rates  # both layers spike: the comparison means something
    assert torch.equal(_shards(net, x, 3, shard=True), whole)
    # the default (0, 1): every shard numbers its neurons from 0, so identical inputs draw alike
    same = x[:, :2].repeat(1, 3, 1)
    alike = _shards(net, same, 3, shard=False).chunk(3, dim=1)
    assert torch.equal(alike[0], alike[1]) and torch.equal(alike[0], alike[2])
    apart = _shards(net, same, 3, shard=True).chunk(3, dim=1)
    assert not torch.equal(apart[0], apart[1])


def test_batch_shard_in_the_preset_and_batch_first_layouts():
    T = 4
    x = torch.randn(T * 6, 5)  # the published layout [(T*B), ...]
    m = RPSU(T, reference_compat=True, reset="sampled")
    torch.manual_seed(3)
    whole = m(x).reshape(T, 6, 5)
    pieces = x.reshape(T, 6, 5).chunk(2, dim=1)
    outs = []
    for i, piece in enumerate(pieces):
        m.batch_shard = (i, 2)
        torch.manual_seed(3)
        outs.append(m(piece.reshape(T * 3, 5)).reshape(T, 3, 5))
    assert torch.equal(torch.cat(outs, dim=1), whole)
    bf = PSU(T, batch_first=True, reset="sampled")
    xb = torch.randn(6, T, 5)
    torch.manual_seed(4)
    whole = bf(xb)
    outs = []
    for i, piece in enumerate(xb.chunk(3, dim=0)):
        bf.batch_shard = (i, 3)
        torch.manual_seed(4)
        outs.append(bf(piece))
    assert torch.equal(torch.cat(outs, dim=0), whole)


def test_batch_shard_checks_and_repr():
    m = PSU(reset="sampled")
    assert m.batch_shard == (0, 1) and "batch_shard" not in repr(m)
    for bad in [(1, 1), (-1, 2), (0, 0), (0.0, 1), (True, 2), (0, 1, 2), 3]:
        with pytest.raises(ValueError, match="batch_shard"):
            m.batch_shard = bad
    with pytest.raises(ValueError, match="batch_shard"):
        set_batch_shard(m, 2, 2)
    with pytest.raises(ValueError, match="no PSU"):
        set_batch_shard(nn.Linear(2, 2), 0, 2)
    assert set_batch_shard(nn.Sequential(m), 1, 4)[0].batch_shard == (1, 4)
    assert "batch_shard=(1, 4)" in repr(m)
