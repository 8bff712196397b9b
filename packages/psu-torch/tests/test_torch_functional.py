"""Functional API against the float64 reference of psu-core, for every impl; impl selection."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from psu_torch_testlib import case

from psu_core import reference
from psu_torch import _eager
from psu_torch import functional as F

PARAMS = dict(tau=1.7, threshold=0.6, surrogate_alpha=2.5)
COMBOS = [
    ("psu", "recurrence"),
    ("psu", "chunked"),
    ("psu", "dense"),
    ("ipsu", "dense"),
    ("rpsu", "dense"),
]


def _run(variant, impl, x, w, b, g, dtype, **params):
    xt = torch.tensor(x, dtype=dtype, requires_grad=True)
    th = torch.tensor(params.pop("threshold"), dtype=torch.float64, requires_grad=True)
    al = torch.tensor(params.pop("surrogate_alpha"), dtype=torch.float64, requires_grad=True)
    kw = dict(params, threshold=th, surrogate_alpha=al, impl=impl, return_membrane=True, return_reset=True)
    learned = []
    if variant == "psu":
        s, v, r = F.psu(xt, **kw)
    else:
        learned = [torch.tensor(a, dtype=dtype, requires_grad=True) for a in (w, b)]
        s, v, r = getattr(F, variant)(xt, *learned, **kw)
    s.backward(torch.tensor(g, dtype=dtype))
    return s, v, r, xt.grad, th.grad, al.grad, [t.grad for t in learned]


# Sampled reset is not defined for IPSU (test_ipsu_sampled_raises checks that it raises).
REFERENCE_CASES = [
    (variant, impl, reset)
    for variant, impl in COMBOS
    for reset in ("expected", "sampled")
    if not (variant == "ipsu" and reset == "sampled")
]


@pytest.mark.parametrize("variant,impl,reset", REFERENCE_CASES)
@pytest.mark.parametrize("reset_scale", [None, 0.8, 0.6])  # 0.6: fixed, equal to threshold
def test_matches_reference_float64(rng, variant, impl, reset, reset_scale):
    x, w, b, g = case(rng, variant)
    params = dict(PARAMS, reset_scale=reset_scale, reset=reset, seed=987654321987 if reset == "sampled" else None)
    ref = reference.forward(variant, x, w, b, **params)
    grads = reference.vjp(variant, x, g, w, b, **params)
    s, v, r, dx, dth, dal, dlearned = _run(variant, impl, x, w, b, g, torch.float64, **dict(params))
    np.testing.assert_array_equal(s.detach().numpy(), ref.spikes)
    np.testing.assert_allclose(v.numpy(), ref.membrane, rtol=1e-12, atol=1e-12)
    if reset == "sampled":
        np.testing.assert_array_equal(r.numpy(), ref.reset)
    else:
        assert r is None
    np.testing.assert_allclose(dx.numpy(), grads.x, rtol=1e-10, atol=1e-12)
    assert dth.item() == pytest.approx(grads.threshold, rel=1e-10, abs=1e-12)
    assert dal.item() == pytest.approx(grads.surrogate_alpha, rel=1e-10, abs=1e-12)
    if variant != "psu":
        np.testing.assert_allclose(dlearned[0].numpy(), grads.weight, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(dlearned[1].numpy(), grads.bias, rtol=1e-10, atol=1e-12)
        assert np.all(np.triu(dlearned[0].numpy(), 1) == 0), "upper triangle of W must get a zero gradient"


@pytest.mark.parametrize("variant,impl", COMBOS)
def test_float32_close_to_float64(rng, variant, impl):
    x, w, b, g = case(rng, variant, T=8, shape=(50,))
    out64 = _run(variant, impl, x, w, b, g, torch.float64, **dict(PARAMS))
    out32 = _run(variant, impl, x, w, b, g, torch.float32, **dict(PARAMS))
    assert out32[0].dtype == torch.float32
    np.testing.assert_allclose(out32[1].numpy(), out64[1].numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out32[3].numpy(), out64[3].numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("L", [1, 3, 16, 64])
def test_forms_agree_at_every_block_length(rng, L):
    # T = 40 is not a multiple of 3 or 16: partial last blocks; L = 64 > T: one block.
    x = torch.tensor(rng.normal(size=(40, 30)), dtype=torch.float64)
    g = torch.tensor(rng.normal(size=(40, 30)), dtype=torch.float64)
    a, th = 0.5, 0.9
    _, v1, _ = _eager.psu_forward_recurrence(x, a, th, th, None, True)
    _, v2, _ = _eager.psu_forward_dense(x, a, th, th, None, True)
    _, v3, _ = _eager.psu_forward_chunked(x, a, th, th, None, True, L=L)
    torch.testing.assert_close(v2, v1, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(v3, v1, rtol=1e-12, atol=1e-12)
    d1 = _eager.psu_backward_recurrence(x, g, None, a, th, th, 2.0, True, True)
    d3 = _eager.psu_backward_chunked(x, g, None, a, th, th, 2.0, True, True, L=L)
    torch.testing.assert_close(d3[0], d1[0], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(d3[1], d1[1], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(d3[2] + d3[3], d1[2] + d1[3], rtol=1e-10, atol=1e-12)


def test_auto_choice():
    assert _eager.choose_psu_impl(8, 2**20, threads=1) == "recurrence"
    assert _eager.choose_psu_impl(8, 2**20, threads=2) == "chunked"
    assert _eager.choose_psu_impl(256, 2**15) == "recurrence"
    assert _eager.choose_psu_impl(8, 64) == "dense"
    assert _eager.choose_psu_impl(4096, 4) == "chunked"


def test_shapes_and_empty_neurons():
    x = torch.randn(5, 2, 3, 4)
    assert F.psu(x).shape == x.shape
    assert F.psu(torch.randn(5)).shape == (5,)
    assert F.psu(torch.randn(5, 0)).shape == (5, 0)


def test_non_contiguous_input(rng):
    x = torch.tensor(rng.normal(size=(6, 8, 5)))
    xt = x.transpose(1, 2)  # non-contiguous view
    torch.testing.assert_close(F.psu(xt), F.psu(xt.contiguous()))


def test_threshold_tied_gradient_reaches_reset(rng):
    # With gamma tied to theta the threshold gradient has a reset-term part; a fixed reset scale
    # equal to theta gives the same forward but a different threshold gradient.
    x = torch.tensor(rng.normal(size=(8, 30)) * 2)
    grads = []
    for reset_scale in (None, 0.7):
        th = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
        F.psu(x, threshold=th, reset_scale=reset_scale).sum().backward()
        grads.append(th.grad.item())
    assert grads[0] != pytest.approx(grads[1])


def test_ipsu_sampled_raises():
    with pytest.raises(ValueError, match="reset"):
        F.ipsu(torch.randn(4, 3), torch.randn(4, 4), torch.randn(4), reset="sampled", seed=1)


def test_impl_selection_errors():
    x = torch.randn(4, 3)
    with pytest.raises(ValueError, match="impl"):
        F.psu(x, impl="fast")
    with pytest.raises(ValueError, match="impl"):
        F.rpsu(x, torch.randn(4, 4), torch.randn(4), impl="recurrence")


def test_triton_on_cpu_raises_without_interpreter(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(RuntimeError, match="CUDA tensor"):
        F.psu(torch.randn(4, 3), impl="triton")


def test_tensor_parameter_must_be_scalar():
    with pytest.raises(ValueError, match="threshold"):
        F.psu(torch.randn(4, 3), threshold=torch.ones(2))


def test_bad_input_messages():
    with pytest.raises(TypeError, match="x"):
        F.psu(torch.arange(6).reshape(2, 3))
    with pytest.raises(ValueError, match="tau"):
        F.psu(torch.randn(2, 3), tau=0.5)
    with pytest.raises(ValueError, match="x"):
        F.psu(torch.tensor([[1.0, float("nan")]]), validate=True)
    F.psu(torch.tensor([[1.0, float("nan")]]))  # no scan without validate=True


def test_no_grad_saves_nothing(rng):
    x = torch.tensor(rng.normal(size=(4, 10)), requires_grad=True)
    with torch.no_grad():
        s = F.psu(x)
    assert s.grad_fn is None
