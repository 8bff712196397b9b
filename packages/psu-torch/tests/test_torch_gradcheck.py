"""``torch.autograd.gradcheck`` of the fused operators' backward, surrogate included.

The spikes are a step function, so finite differences of the operators themselves see zero. The
check therefore gives gradcheck a smooth twin: its value is the primitive of the arctan surrogate
evaluated at the operator's own membrane, ``f(V) = arctan(pi/2 alpha (V - theta)) / pi + 1/2``,
whose exact derivatives are the surrogate's ``dS/dV``, ``dS/dalpha`` and ``dS/dtheta``; its gradient
is routed, unchanged, into the operator's backward through the spikes. Finite differences of
``f(V(X, theta, alpha, W, b))`` thus test every gradient the backward returns, including the
tied-threshold path through the reset scale and the masked ``W``.
"""

from __future__ import annotations

import math

import pytest
import torch

from psu_torch import functional as F


class _Twin(torch.autograd.Function):
    """Forward: f(V) of the operator's own V. Backward: the operator's own backward (via spikes)."""

    @staticmethod
    def forward(ctx, value, spikes):
        return value

    @staticmethod
    def backward(ctx, g):
        return None, g


def _smooth_output(variant, method, x, theta, alpha, learned, reset_scale):
    s, v, _ = F.call(variant, x, *learned, threshold=theta, surrogate_alpha=alpha, reset_scale=reset_scale,
                     method=method, return_membrane=True)  # fmt: skip
    f = torch.atan(math.pi / 2 * alpha.detach() * (v - theta.detach())) / math.pi + 0.5
    # value f(V) (for the finite differences), gradient routed into the operator's backward via s
    return _Twin.apply(f.detach(), s)


@pytest.mark.parametrize(
    "variant,method",
    [("psu", "recurrence"), ("psu", "chunked"), ("psu", "dense"), ("ipsu", "dense"), ("rpsu", "dense")],
)
@pytest.mark.parametrize("reset_scale", [None, 0.6])
def test_gradcheck(variant, method, reset_scale):
    gen = torch.Generator().manual_seed(7)
    T = 5
    x = (torch.randn(T, 3, generator=gen, dtype=torch.float64) * 1.5).requires_grad_()
    theta = torch.tensor(0.8, dtype=torch.float64, requires_grad=True)
    alpha = torch.tensor(1.7, dtype=torch.float64, requires_grad=True)
    learned = []
    if variant != "psu":
        learned = [
            (torch.randn(T, T, generator=gen, dtype=torch.float64) * 0.5).requires_grad_(),
            (torch.randn(T, generator=gen, dtype=torch.float64) * 0.3).requires_grad_(),
        ]

    def fn(x, theta, alpha, *learned):
        return _smooth_output(variant, method, x, theta, alpha, learned, reset_scale)

    assert torch.autograd.gradcheck(fn, (x, theta, alpha, *learned), eps=1e-6, atol=1e-7, rtol=1e-5)
