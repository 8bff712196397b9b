"""torch.compile: the neurons are opaque custom operators, so graphs do not break on them."""

from __future__ import annotations

import torch
from torch import nn

from psu_torch.nn import IPSU, PSU, RPSU


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 6), PSU(threshold=0.5), nn.Linear(6, 6), RPSU(4), nn.Linear(6, 6), IPSU(4))


def test_no_graph_breaks():
    net = _net()
    x = torch.randn(4, 3, 6)
    explanation = torch._dynamo.explain(net)(x)
    assert explanation.graph_break_count == 0, explanation.break_reasons


def test_compiled_matches_eager_forward_and_backward():
    net = _net()
    x = torch.randn(4, 3, 6)
    eager = net(x)
    eager.sum().backward()
    grads = [p.grad.clone() for p in net.parameters()]
    net.zero_grad()
    compiled = torch.compile(net, backend="aot_eager", fullgraph=True)
    out = compiled(x)
    out.sum().backward()
    assert torch.equal(out, eager)
    for g, p in zip(grads, net.parameters(), strict=False):
        torch.testing.assert_close(p.grad, g)


def test_preset_and_membrane_compile_without_graph_breaks():
    # The folded layout of the preset and a PSUOutput result are plain tensor code around the ops.
    torch.manual_seed(1)
    net = nn.Sequential(
        nn.Linear(6, 6), PSU(T=4, reference_compat=True), nn.Linear(6, 6), RPSU(4, return_membrane=True)
    )
    x = torch.randn(4 * 3, 6)
    explanation = torch._dynamo.explain(lambda x: net[3](net[2](net[1](net[0](x))).view(4, 3, 6)))(x)
    assert explanation.graph_break_count == 0, explanation.break_reasons
