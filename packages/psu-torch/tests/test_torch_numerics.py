"""Numerical robustness (issue 11): causality whatever the values (SPEC §1/§2), decay precision that
does not grow with T (SPEC §9), the slope of a saturated reset probability (SPEC §5), online
against parallel (SPEC §3) and the one scalar rule (SPEC §8)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from psu_torch_testlib import run_stepper

from psu_core import reference
from psu_core.tolerances import error_ratio, for_dtype
from psu_torch import functional as F
from psu_torch.nn import IPSU, PSU, RPSU
from psu_torch.online import OnlineStepper, init_state, step

NAN, INF = float("nan"), float("inf")
PSU_METHODS = ["auto", "dense", "chunked", "recurrence"]
CALLS = [("psu", m) for m in PSU_METHODS] + [("ipsu", "dense"), ("rpsu", "dense")]


# ------------------------------------------------------------------------------------------------
# R1: outputs before step t0 never depend on values at t0 or later
# ------------------------------------------------------------------------------------------------
def _causal_case(variant: str, dtype: torch.dtype, T: int = 40, N: int = 6):
    rs = np.random.default_rng(11)
    x = torch.tensor(rs.normal(size=(T, N)) + 0.4, dtype=dtype)
    w = torch.tensor(rs.normal(size=(T, T)) * 0.3, dtype=dtype) if variant != "psu" else None
    b = torch.tensor(rs.normal(size=T) * 0.2, dtype=dtype) if variant != "psu" else None
    return x, w, b


def _call(variant, method, x, w, b, sampled, **kw):
    seed = 2**40 + 7 if sampled else None
    reset = "sampled" if sampled else "expected"
    args = (x,) if variant == "psu" else (x, w, b)
    return getattr(F, variant)(
        *args, tau=1.7, threshold=0.3, reset=reset, seed=seed, method=method, return_membrane=True,
        return_reset=sampled, **kw,
    )  # fmt: skip


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return np.array_equal(a.numpy(), b.numpy(), equal_nan=True)


def _perturbations(variant: str, t0: int):
    """(input, index) pairs at step t0: x, and for IPSU/RPSU W's row t0 (lower triangle) and b_t0."""
    yield "x", (t0, 1)
    if variant != "psu":
        yield "weight", (t0, t0 // 2)
        yield "weight", (t0, t0)
        yield "bias", (t0,)


@pytest.mark.parametrize("value", [NAN, INF, -INF, 1e30, -3.0])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
@pytest.mark.parametrize(("variant", "method"), CALLS)
def test_later_values_leave_earlier_outputs_identical(variant, method, dtype, value):
    x, w, b = _causal_case(variant, dtype)
    t0 = 23  # inside the second block of the chunked form (32 steps), with rows before it in that block
    for sampled in [False] if variant == "ipsu" else [False, True]:
        base = _call(variant, method, x, w, b, sampled)
        for name, index in _perturbations(variant, t0):
            args = {
                "x": x.clone(),
                "weight": None if w is None else w.clone(),
                "bias": None if b is None else b.clone(),
            }
            args[name][index] = value
            out = _call(variant, method, args["x"], args["weight"], args["bias"], sampled)
            for got, want in zip(out, base, strict=True):
                if want is not None:
                    assert _same(got[:t0], want[:t0]), (name, index, sampled)
            assert set(out.spikes.unique().tolist()) <= {0.0, 1.0}
            if name == "x" and not np.isfinite(value):
                # the perturbed neuron's membrane at t0 is not finite (PSU/RPSU: through A X;
                # IPSU: through its own row of W ⊙ M)
                assert not torch.isfinite(out.membrane[t0, index[1]])
            if variant == "ipsu" and name != "x" and not np.isfinite(value):
                assert not torch.isfinite(out.membrane[t0]).any()


@pytest.mark.parametrize("variant", ["ipsu", "rpsu"])
def test_upper_triangle_of_W_never_matters_even_nan(variant):
    method = "dense"
    x, w, b = _causal_case(variant, torch.float64)
    w2 = w.clone()
    w2[torch.triu(torch.ones_like(w, dtype=torch.bool), diagonal=1)] = NAN
    for got, want in zip(_call(variant, method, x, w2, b, False), _call(variant, method, x, w, b, False), strict=True):
        if want is not None:
            assert torch.equal(got, want)
    # and the gradients stay finite (the upper triangle's is zero)
    xg, wg, bg = (t.clone().requires_grad_(True) for t in (x, w2, b))
    _call(variant, method, xg, wg, bg, False).spikes.sum().backward()
    assert torch.isfinite(xg.grad).all() and torch.isfinite(bg.grad).all()
    assert torch.isfinite(torch.tril(wg.grad)).all()


@pytest.mark.parametrize("variant", ["psu", "ipsu", "rpsu"])
def test_online_steps_are_causal_under_nan(variant):
    x, w, b = _causal_case(variant, torch.float32, T=10, N=3)
    t0 = 6
    x2 = x.clone()
    x2[t0, 0] = NAN
    outs = [run_stepper(OnlineStepper(variant, (3,), w, b, tau=1.7, threshold=0.3), xs) for xs in (x, x2)]
    for got, want in zip(outs[1][:2], outs[0][:2], strict=True):
        assert _same(got[:t0], want[:t0])
    assert not torch.isfinite(outs[1].membrane[t0, 0])


def test_nonfinite_call_does_not_raise_in_backward():
    x, w, b = _causal_case("rpsu", torch.float32)
    x[5, 2] = NAN
    w[9, 3] = INF
    for variant, method in CALLS:
        xg = x.clone().requires_grad_(True)
        args = (xg,) if variant == "psu" else (xg, w, b)
        getattr(F, variant)(*args, method=method).sum().backward()  # gradients unspecified; no raise


def test_issue_repro_is_causal():
    x = np.full((6, 2), 0.9)
    x[3, 0], x[3, 1] = NAN, INF
    for method in PSU_METHODS:
        out = F.psu(torch.tensor(x), threshold=0.3, return_membrane=True, method=method)
        ref = F.psu(torch.tensor(x[:3]), threshold=0.3, return_membrane=True, method="recurrence")
        assert torch.equal(out.membrane[:3], ref.membrane) and torch.equal(out.spikes[:3], ref.spikes), method
        assert not torch.isfinite(out.membrane[3]).any()


# ------------------------------------------------------------------------------------------------
# R2: float32 decay whose error does not grow with T
# ------------------------------------------------------------------------------------------------
_LONG = dict(tau=1.00011508, threshold=1000.0, reset_scale=0.0)


@pytest.mark.parametrize("method", PSU_METHODS)
def test_long_float32_decay_matches_float64(method):
    ref = reference.forward("psu", np.ones(1000), **_LONG).membrane
    assert abs(ref[999] - 944.55388) < 1e-5
    out = F.psu(torch.ones(1000), **_LONG, return_membrane=True, method=method)
    assert error_ratio(out.membrane.numpy(), ref, for_dtype("float32").membrane) <= 1.0


def test_long_float32_decay_online():
    ref = reference.forward("psu", np.ones(1000), **_LONG).membrane
    out = run_stepper(OnlineStepper("psu", (), **_LONG), torch.ones(1000))
    assert error_ratio(out.membrane.numpy(), ref, for_dtype("float32").membrane) <= 1.0


@pytest.mark.parametrize("method", ["chunked", "recurrence"])
@pytest.mark.parametrize("variant_tau", [1.0001, 1.7, 37.0])
def test_long_float32_gradients_match_float64(method, variant_tau):
    rs = np.random.default_rng(3)
    T, N = 4096, 3
    x = rs.normal(size=(T, N)) * 0.05 + 0.02
    G = rs.normal(size=(T, N))
    kw = dict(tau=variant_tau, threshold=0.5, reset_scale=None, surrogate_alpha=2.0)
    ref_f = reference.forward("psu", x, **kw)
    ref = reference.vjp("psu", x, G, **kw)
    xt = torch.tensor(x, dtype=torch.float32, requires_grad=True)
    out = F.psu(xt, **kw, method=method, return_membrane=True)
    out.spikes.backward(torch.tensor(G, dtype=torch.float32))
    tol = for_dtype("float32")
    assert error_ratio(out.membrane.numpy(), ref_f.membrane, tol.membrane) <= 1.0
    assert error_ratio(xt.grad.numpy(), ref.x, tol.gradient) <= 1.0


# ------------------------------------------------------------------------------------------------
# R3: sigma(z) sigma(-z) from the logit, not P (1 - P) from a rounded P
# ------------------------------------------------------------------------------------------------
def test_saturated_rpsu_bias_gradient():
    T, N = 2, 1000
    kw = dict(tau=2.0, threshold=0.1, reset_scale=1.0)
    ref = reference.vjp("rpsu", np.ones((T, N)), np.ones((T, N)), np.zeros((T, T)), np.array([12.0, 12.0]), **kw)
    assert abs(ref.bias[0] - -0.0025138) < 1e-7
    b = torch.tensor([12.0, 12.0], requires_grad=True)
    F.rpsu(torch.ones((T, N)), torch.zeros((T, T)), b, **kw).sum().backward()
    assert error_ratio(b.grad.numpy(), ref.bias, for_dtype("float32").gradient) <= 1.0


@pytest.mark.parametrize("method", ["dense", "chunked", "recurrence"])
def test_saturated_psu_input_gradient(method):
    # H_0 = 12..13 (float32 P (1 - P) off by ~1e-2 there), gamma = 1e5 so that the reset term
    # gamma c_0 p'_0 is 60% of dL/dx_0; H_1 = 0 keeps V_1 = -gamma a P_0 well conditioned, and
    # G_1 brings its surrogate gradient to ~1 (G_0 = 0).
    x0 = 24.0 + 0.5 * np.arange(5)
    x = np.stack([x0, -x0 / 2])
    kw = dict(tau=2.0, threshold=1.0, reset_scale=1e5, surrogate_alpha=2.0)
    V = reference.forward("psu", x, **kw).membrane
    G = np.zeros_like(x)
    G[1] = np.float32(1 + (np.pi * (V[1] - 1.0)) ** 2)
    ref = reference.vjp("psu", x, G, **kw)
    xt = torch.tensor(x, dtype=torch.float32, requires_grad=True)
    F.psu(xt, **kw, method=method).backward(torch.tensor(G, dtype=torch.float32))
    assert error_ratio(xt.grad.numpy(), ref.x, for_dtype("float32").gradient) <= 1.0


# ------------------------------------------------------------------------------------------------
# R6: online against parallel in float32
# ------------------------------------------------------------------------------------------------
def _stream_case(variant: str, T: int = 48, shape=(64,)):
    rs = np.random.default_rng(21)
    x = rs.normal(size=(T, *shape)) * 1.2 + 0.3
    w = rs.normal(size=(T, T)) * 0.3 if variant != "psu" else None
    b = rs.normal(size=T) * 0.2 if variant != "psu" else None
    return x, w, b


def test_online_psu_is_bit_identical_to_the_recurrence():
    # the same arithmetic (psu_torch._psu_recurrence), so the same bits, in float32
    x, _, _ = _stream_case("psu")
    kw = dict(tau=1.7, threshold=0.6)
    xt = torch.tensor(x, dtype=torch.float32)
    par = F.psu(xt, **kw, method="recurrence", return_membrane=True)
    onl = run_stepper(OnlineStepper("psu", (64,), **kw), xt)
    assert torch.equal(onl.spikes, par.spikes) and torch.equal(onl.membrane, par.membrane)


@pytest.mark.parametrize(("variant", "method"), CALLS)
def test_online_and_parallel_spikes_differ_only_inside_the_band(variant, method):
    """SPEC §3: two float32 computations may differ in a spike only where the float64 reference's
    membrane is within the float32 tolerance band of the threshold."""
    x, w, b = _stream_case(variant)
    kw = dict(tau=1.7, threshold=0.6)
    ref = reference.forward(variant, x, w, b, **kw)
    tensors = [None if a is None else torch.tensor(a, dtype=torch.float32) for a in (x, w, b)]
    args = tensors[:1] if variant == "psu" else tensors
    par = getattr(F, variant)(*args, **kw, method=method, return_membrane=True)
    onl = run_stepper(OnlineStepper(variant, (64,), tensors[1], tensors[2], **kw), tensors[0])
    tol = for_dtype("float32").membrane
    band = tol.atol + tol.rtol * np.abs(ref.membrane)
    outside = np.abs(ref.membrane - 0.6) > band
    for out in (par, onl):
        assert np.array_equal(out.spikes.numpy()[outside], ref.spikes[outside])
        assert error_ratio(out.membrane.numpy(), ref.membrane, tol) <= 1.0
    assert np.array_equal(onl.spikes.numpy()[outside], par.spikes.numpy()[outside])


# ------------------------------------------------------------------------------------------------
# R7: one scalar rule
# ------------------------------------------------------------------------------------------------
ACCEPTED = {
    "float": 2.0,
    "int": 2,
    "np.float32": np.float32(2.0),
    "np 0-d": np.array(2.0),
    "np 0-d int": np.array(2),
    "torch 0-d": torch.tensor(2.0),
    "torch 0-d int": torch.tensor(2),
}
REFUSED = {
    "np [1]": np.array([2.0]),
    "torch [1]": torch.tensor([2.0]),
    "bool": True,
    "torch bool": torch.tensor(True),
    "complex": torch.tensor(2.0 + 0j),
}


@pytest.mark.parametrize("name", ["threshold", "surrogate_alpha"])
def test_scalar_rule_in_functional_and_online(name):
    x = torch.randn(5, 3)
    want = F.psu(x, **{name: 2.0}, return_membrane=True)
    for label, value in ACCEPTED.items():
        got = F.psu(x, **{name: value}, return_membrane=True)
        assert torch.equal(got.spikes, want.spikes) and torch.equal(got.membrane, want.membrane), label
        step(init_state("psu", (3,)), x[0], **{name: value})
        OnlineStepper("psu", (3,), **{name: value})
    for value in REFUSED.values():
        for make in (
            lambda v: F.psu(x, **{name: v}),
            lambda v: step(init_state("psu", (3,)), x[0], **{name: v}),
            lambda v: OnlineStepper("psu", (3,), **{name: v}),
        ):
            with pytest.raises(ValueError, match=name):
                make(value)


@pytest.mark.parametrize("module", [PSU, IPSU, RPSU])
def test_scalar_rule_in_modules(module):
    build = (lambda **kw: module(**kw)) if module is PSU else (lambda **kw: module(4, **kw))
    for label, value in ACCEPTED.items():
        m = build(threshold=value, surrogate_alpha=value)
        assert float(m.threshold.detach()) == float(m.surrogate_alpha.detach()) == 2.0, label
    for value in REFUSED.values():
        with pytest.raises(ValueError, match="threshold"):
            build(threshold=value)


def test_learned_scalars_requiring_grad_keep_working():
    x = torch.randn(6, 4, requires_grad=True)
    th = torch.tensor(0.5, requires_grad=True)
    al = torch.tensor(3.0, requires_grad=True)
    F.psu(x, threshold=th, surrogate_alpha=al).sum().backward()
    assert th.grad is not None and al.grad is not None and x.grad is not None


@pytest.mark.parametrize("tau", [1.00011508, 1.0001, 1.7, 37.0])
def test_decay_split_needs_no_fused_multiply_add(tau):
    """SPEC §9: the split of ``a`` keeps a float32 recurrence within tolerance for any T even where
    ``(u + a_lo s) + a_hi s`` rounds each product on its own (no fma), as a CUDA or CPU kernel
    without contraction would: emulated here in NumPy float32, every operation rounded."""
    from psu_torch._decay import split

    f = np.float32
    hi, lo = (f(v) for v in split(1.0 / tau, torch.float32))
    x = np.ones(4096, f)  # the issue-11 repro's input, where a rounded a drifts most
    h32, h64 = f(0.0), 0.0
    worst = 0.0
    for xt in x:
        h32 = f(f(f(xt) + f(lo * h32)) + f(hi * h32))
        h64 = float(xt) + h64 / tau
        worst = max(worst, abs(float(h32) - h64) / (1e-5 + 1e-5 * abs(h64)))
    assert worst < 0.5, f"tau={tau}: worst error {worst:.3g} of the float32 tolerance"
