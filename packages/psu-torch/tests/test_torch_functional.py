"""Functional API against the float64 reference of psu-core, for every method; method selection;
result types (SPEC §11); every backward form's final gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from psu_torch_testlib import case, params

from psu_core import reference
from psu_core.api import PSUOutput
from psu_torch import _learned, _methods
from psu_torch import functional as F
from psu_torch._psu_chunked import psu_backward_chunked, psu_forward_chunked
from psu_torch._psu_dense import psu_forward_dense
from psu_torch._psu_recurrence import psu_backward_recurrence, psu_forward_recurrence

PARAMS = dict(tau=1.7, threshold=0.6, surrogate_alpha=2.5)
COMBOS = [
    ("psu", "recurrence"),
    ("psu", "chunked"),
    ("psu", "dense"),
    ("ipsu", "dense"),
    ("rpsu", "dense"),
]


def _run(variant, method, x, w, b, g, dtype, **params):
    xt = torch.tensor(x, dtype=dtype, requires_grad=True)
    th = torch.tensor(params.pop("threshold"), dtype=torch.float64, requires_grad=True)
    al = torch.tensor(params.pop("surrogate_alpha"), dtype=torch.float64, requires_grad=True)
    kw = dict(params, threshold=th, surrogate_alpha=al, method=method, return_membrane=True, return_reset=True)
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
    (variant, method, reset)
    for variant, method in COMBOS
    for reset in ("expected", "sampled")
    if not (variant == "ipsu" and reset == "sampled")
]


@pytest.mark.parametrize("variant,method,reset", REFERENCE_CASES)
@pytest.mark.parametrize("reset_scale", [None, 0.8, 0.6])  # 0.6: fixed, equal to threshold
def test_matches_reference_float64(rng, variant, method, reset, reset_scale):
    x, w, b, g = case(rng, variant)
    params = dict(PARAMS, reset_scale=reset_scale, reset=reset, seed=987654321987 if reset == "sampled" else None)
    ref = reference.forward(variant, x, w, b, **params)
    grads = reference.vjp(variant, x, g, w, b, **params)
    s, v, r, dx, dth, dal, dlearned = _run(variant, method, x, w, b, g, torch.float64, **dict(params))
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


@pytest.mark.parametrize("variant,method", COMBOS)
def test_float32_close_to_float64(rng, variant, method):
    x, w, b, g = case(rng, variant, T=8, shape=(50,))
    out64 = _run(variant, method, x, w, b, g, torch.float64, **dict(PARAMS))
    out32 = _run(variant, method, x, w, b, g, torch.float32, **dict(PARAMS))
    assert out32[0].dtype == torch.float32
    np.testing.assert_allclose(out32[1].numpy(), out64[1].numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out32[3].numpy(), out64[3].numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("L", [1, 3, 16, 64])
def test_forms_agree_at_every_block_length(rng, L):
    # T = 40 is not a multiple of 3 or 16: partial last blocks; L = 64 > T: one block.
    x = torch.tensor(rng.normal(size=(40, 30)), dtype=torch.float64)
    g = torch.tensor(rng.normal(size=(40, 30)), dtype=torch.float64)
    p = params("psu", x, tau=2.0, threshold=0.9)
    _, v1, _ = psu_forward_recurrence(x, p, True)
    _, v2, _ = psu_forward_dense(x, p, True)
    _, v3, _ = psu_forward_chunked(x, p, True, L=L)
    torch.testing.assert_close(v2, v1, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(v3, v1, rtol=1e-12, atol=1e-12)
    d1 = psu_backward_recurrence(x, g, None, p, True)
    d3 = psu_backward_chunked(x, g, None, p, True, L=L)
    for a, b in zip(d3, d1, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def _form(variant: str, method: str):
    """``(forward, backward)`` of one form, with the learned forms' W and b bound."""
    if variant == "psu":
        fwd, bwd, _ = _methods.psu_form(method, torch.empty(1, 1))
        return lambda x, w, b, p: fwd(x, p, False), lambda x, g, w, b, p, R: bwd(x, g, R, p, True)
    if variant == "ipsu":
        return (lambda x, w, b, p: (*_learned.ipsu_forward(x, w, b, p, False), None),
                lambda x, g, w, b, p, R: _learned.ipsu_backward(x, g, w, b, p, True))  # fmt: skip
    return (lambda x, w, b, p: _learned.rpsu_forward(x, w, b, p, False),
            lambda x, g, w, b, p, R: _learned.rpsu_backward(x, g, R, w, b, p, True))  # fmt: skip


@pytest.mark.parametrize("variant,method,reset", REFERENCE_CASES)
@pytest.mark.parametrize("reset_scale", [None, 0.8])
def test_every_backward_form_returns_final_gradients(rng, variant, method, reset, reset_scale):
    # Called directly, each form's backward gives dL/dx, [dL/dW, dL/db,] dL/dtheta, dL/dalpha
    # themselves (not parts to combine), tied or not: the same meaning whatever the form.
    x, w, b, g = case(rng, variant, T=7, shape=(11,))
    kw = dict(PARAMS, reset_scale=reset_scale, reset=reset, seed=2**40 + 3 if reset == "sampled" else None)
    ref = reference.vjp(variant, x, g, w, b, **kw)
    X, G = torch.tensor(x), torch.tensor(g)
    W, B = (None, None) if w is None else (torch.tensor(w), torch.tensor(b))
    p = params(variant, X, **kw)
    fwd, bwd = _form(variant, method)
    R = fwd(X, W, B, p)[2]
    out = bwd(X, G, W, B, p, R)
    want = [ref.x] + ([] if variant == "psu" else [ref.weight, ref.bias]) + [ref.threshold, ref.surrogate_alpha]
    assert len(out) == len(want)
    for got, expected in zip(out, want, strict=True):
        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10, atol=1e-12)


def test_auto_choice():
    assert _methods.choose_psu_method(8, 2**20) == "recurrence"
    assert _methods.choose_psu_method(256, 2**15) == "recurrence"
    assert _methods.choose_psu_method(8, 64) == "dense"
    assert _methods.choose_psu_method(4096, 4) == "chunked"


def test_result_types(rng):
    # SPEC §11: spikes alone, else PSUOutput with None where not asked (reset: None in expected mode).
    x = torch.tensor(rng.normal(size=(6, 5)))
    assert isinstance(F.psu(x), torch.Tensor)
    out = F.psu(x, return_membrane=True)
    assert isinstance(out, PSUOutput) and out.membrane.shape == x.shape and out.reset is None
    out = F.psu(x, return_reset=True)
    assert out.membrane is None and out.reset is None  # expected mode: nothing drawn
    out = F.rpsu(x, torch.randn(6, 6, dtype=x.dtype), torch.zeros(6, dtype=x.dtype), reset="sampled", seed=3,
                 return_reset=True)  # fmt: skip
    assert out.membrane is None and set(out.reset.unique().tolist()) <= {0.0, 1.0}
    assert out.reset.dtype == x.dtype


def test_membrane_and_reset_carry_no_gradient(rng):
    # Gradients flow through the spikes only: the membrane and the draws are outputs to inspect.
    x = torch.tensor(rng.normal(size=(6, 5)), requires_grad=True)
    th = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    for variant in ("psu", "ipsu", "rpsu"):
        learned = [] if variant == "psu" else [torch.randn(6, 6, dtype=x.dtype, requires_grad=True),
                                               torch.zeros(6, dtype=x.dtype, requires_grad=True)]  # fmt: skip
        reset = "expected" if variant == "ipsu" else "sampled"
        out = getattr(F, variant)(x, *learned, threshold=th, reset=reset, seed=1, return_membrane=True,
                                  return_reset=True)  # fmt: skip
        assert out.spikes.requires_grad
        assert not out.membrane.requires_grad and out.membrane.grad_fn is None
        assert out.reset is None or not out.reset.requires_grad


def test_call_takes_the_variant_by_name(rng):
    x = torch.tensor(rng.normal(size=(5, 4)))
    w, b = torch.randn(5, 5, dtype=x.dtype), torch.randn(5, dtype=x.dtype)
    assert torch.equal(F.call("psu", x, threshold=0.5), F.psu(x, threshold=0.5))
    assert torch.equal(F.call("rpsu", x, w, b), F.rpsu(x, w, b))
    with pytest.raises(ValueError, match="weight"):
        F.call("psu", x, w)  # PSU has no learned matrix (SPEC §8)
    with pytest.raises(ValueError, match="variant"):
        F.call("lif", x)


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


def test_method_selection_errors():
    x = torch.randn(4, 3)
    with pytest.raises(ValueError, match="method"):
        F.psu(x, method="fast")
    with pytest.raises(ValueError, match="method"):
        F.rpsu(x, torch.randn(4, 4), torch.randn(4), method="recurrence")
    with pytest.raises(TypeError, match="impl"):
        F.psu(x, impl="dense")  # the old name is gone (no alias)


def test_triton_on_cpu_raises_without_interpreter(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(RuntimeError, match="CUDA tensor"):
        F.psu(torch.randn(4, 3), method="triton")


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
