"""psu_numba.cpu on issue 11's cases: causality whatever the values (SPEC §1), decay accuracy
that does not grow with T (SPEC §9), the slope of a saturated reset probability (SPEC §5), rank-1
and 0-d ``x``, bfloat16 arrays, the scalar rule (SPEC §8), and where the online step runs the
same arithmetic as the forward (SPEC §3). Both ways of mixing IPSU/RPSU's history are covered:
the kernels' in-block loops (``T < GEMM_MIN_T``) and the BLAS products (``T >= GEMM_MIN_T``)."""

from __future__ import annotations

import numpy as np
import pytest
from psu_numba_testlib import make_case

from psu_core import reference, tolerances
from psu_numba import cpu
from psu_numba.adapter import NumbaCpuAdapter
from psu_numba.cpu.device import GEMM_MIN_T

F32 = tolerances.for_dtype("float32")
HORIZONS = [6, GEMM_MIN_T + 9]  # loops, BLAS
NONFINITE = [np.nan, np.inf, -np.inf]


def _within(actual, expected, tol):
    assert tolerances.error_ratio(actual, expected, tol) <= 1.0, (actual, expected)


# ---------------------------------------------------------------------------- R2: decay over T


def test_float32_decay_does_not_drift_with_T():
    # a = 1/tau in float32 applied 1000 times gave V[999] = 944.56818 (1.5x the tolerance).
    x = np.ones(1000, np.float32)
    p = dict(tau=1.00011508, threshold=1000.0, reset_scale=0.0)
    want = reference.forward("psu", x.astype(np.float64), **p).membrane
    got = cpu.psu(x, **p, return_membrane=True).membrane
    assert abs(float(want[999]) - 944.55388) < 1e-5
    _within(got, want, F32.membrane)
    stepper = cpu.OnlineStepper("psu", (), **p, dtype="float32")
    online = np.array([stepper.step(x[t]).membrane for t in range(1000)])
    _within(online, want, F32.membrane)


@pytest.mark.parametrize("variant", ["psu", "ipsu", "rpsu"])
@pytest.mark.parametrize("tau", [1.0001, 1.7, 37.0])
def test_float32_long_horizon_forward_and_gradients(variant, tau):
    T = 2048 if variant == "psu" else 300
    gen = np.random.default_rng([T, int(tau * 10)])
    x = np.abs(gen.normal(1.0, 0.3, size=(T, 3)))
    g = gen.normal(size=x.shape)
    w = b = None
    if variant != "psu":
        w, b = gen.normal(size=(T, T)) * 0.01, gen.normal(size=T) * 0.1
    p = dict(tau=tau, threshold=1e4, reset_scale=0.5, surrogate_alpha=1e-3)  # no spikes: V is smooth in x
    f32 = lambda a: None if a is None else a.astype(np.float32)
    want = reference.forward(variant, x, w, b, **p)
    got = cpu.forward(variant, f32(x), f32(w), f32(b), **p, return_membrane=True)
    _within(got.membrane, want.membrane, F32.membrane)
    gw = reference.vjp(variant, x, g, w, b, **p)
    gg = cpu.vjp(variant, f32(x), f32(g), f32(w), f32(b), **p)
    scale = np.abs(gw.x).max()
    assert np.abs(gg.x - gw.x).max() <= F32.gradient.rtol * scale + F32.gradient.atol * scale


# ---------------------------------------------------------------------------- R3: saturated P


@pytest.mark.parametrize("T_extra", [0, GEMM_MIN_T])
def test_saturated_reset_probability_gradient(T_extra):
    # P = sigmoid(12) in float32: P (1 - P) gave dL/db[0] = -0.0025362 against -0.0025138.
    T = 2 + T_extra
    x = np.ones((T, 1000), np.float32)
    w, b = np.zeros((T, T), np.float32), np.full(T, 12.0, np.float32)
    p = dict(tau=2.0, threshold=0.1, reset_scale=1.0)
    want = reference.vjp("rpsu", x.astype(np.float64), np.ones(x.shape), w.astype(np.float64), b.astype(np.float64),
                         **p)  # fmt: skip
    got = cpu.vjp("rpsu", x, np.ones_like(x), w, b, **p)
    if T == 2:
        assert abs(want.bias[0] - -0.0025138) < 1e-7
    _within(got.bias, want.bias, F32.gradient)
    _within(got.x, want.x, F32.gradient)
    _within(got.weight, want.weight, F32.gradient)


# ---------------------------------------------------------------------------- R1: causality


def _outputs(variant, x, w, b, p):
    out = cpu.forward(variant, x, w, b, **p, return_membrane=True, return_reset=True)
    return [a for a in out if a is not None]


def _assert_prefix_equal(before, after, t0):
    for a, c in zip(before, after, strict=True):
        assert np.array_equal(a[:t0], c[:t0], equal_nan=True)
    assert set(np.unique(after[0])) <= {0.0, 1.0}  # spikes, from t0 on too


@pytest.mark.parametrize("T", HORIZONS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_later_values_never_reach_earlier_outputs(mode, T, dtype):
    variant, reset = mode
    x, _, w, b, p = make_case(variant, T, (4,), reset=reset)
    x = x.astype(dtype)
    w, b = (None, None) if w is None else (w.astype(dtype), b.astype(dtype))
    clean = _outputs(variant, x, w, b, p)
    t0 = T // 2
    for value in [*NONFINITE, 1e30]:
        xs = x.copy()
        xs[t0, 1] = value
        hit = _outputs(variant, xs, w, b, p)
        _assert_prefix_equal(clean, hit, t0)
        if value != 1e30:
            assert not np.isfinite(hit[1][t0, 1])  # the membrane of the neuron hit
        if variant == "psu":
            continue
        ws, bs = w.copy(), b.copy()
        ws[t0, : t0 + 1] = value
        ws[t0:, t0 + 1] = value  # later columns too (rows >= t0)
        _assert_prefix_equal(clean, _outputs(variant, x, ws, b, p), t0)
        bs[t0] = value
        hit = _outputs(variant, x, w, bs, p)
        _assert_prefix_equal(clean, hit, t0)
        if variant == "ipsu" and value != 1e30:
            assert not np.isfinite(hit[1][t0]).any()  # every neuron's membrane


@pytest.mark.parametrize("T", HORIZONS)
@pytest.mark.parametrize("variant", ["ipsu", "rpsu"])
def test_upper_triangle_of_weight_is_never_read(variant, T):
    x, g, w, b, p = make_case(variant, T, (3, 2))
    poisoned = w.copy()
    poisoned[np.triu_indices(T, 1)] = np.nan
    clean, hit = _outputs(variant, x, w, b, p), _outputs(variant, x, poisoned, b, p)
    for a, c in zip(clean, hit, strict=True):
        assert np.array_equal(a, c)
    ga, gb = cpu.vjp(variant, x, g, w, b, **p), cpu.vjp(variant, x, g, poisoned, b, **p)
    for name in ("x", "weight", "bias"):
        assert np.array_equal(getattr(ga, name), getattr(gb, name)), name
    assert (ga.threshold, ga.surrogate_alpha) == (gb.threshold, gb.surrogate_alpha)
    stepper = cpu.OnlineStepper(variant, (3, 2), poisoned, b, **p, dtype="float64")
    for t in range(T):
        assert np.isfinite(stepper.step(x[t]).membrane).all()


# ---------------------------------------------------------------------------- R4, R5, R7: inputs


def test_rank1_x_steps_are_0d_and_0d_x_is_refused():
    case = dict(variant="psu", x=np.linspace(0.2, 1.2, 5), tau=2.0, threshold=0.3, reset_scale=None,
                surrogate_alpha=2.0, reset="expected", seed=None, weight=None, bias=None)  # fmt: skip
    out = NumbaCpuAdapter().online(case, device="cpu", dtype="float32")
    ref = reference.forward("psu", case["x"], threshold=0.3)
    np.testing.assert_array_equal(out["spikes"], ref.spikes)
    for variant in ("psu", "ipsu", "rpsu"):
        w, b = (None, None) if variant == "psu" else (np.eye(1), np.zeros(1))
        with pytest.raises(ValueError, match=r"\bx\b.*rank >= 1"):
            cpu.forward(variant, np.array(1.0), w, b)
        with pytest.raises(ValueError, match=r"\bx\b.*rank >= 1"):
            cpu.vjp(variant, np.array(1.0), np.array(1.0), w, b)


@pytest.mark.parametrize("variant", ["psu", "ipsu", "rpsu"])
def test_bfloat16_computes_in_float32(variant):
    ml_dtypes = pytest.importorskip("ml_dtypes", reason="bfloat16 NumPy arrays come from ml_dtypes (the [test] extra)")
    x, g, w, b, p = make_case(variant, 5, (3, 4))
    bf = ml_dtypes.bfloat16
    cast = lambda a, d: None if a is None else a.astype(d)
    x16, g16, w16, b16 = (cast(a, bf) for a in (x, g, w, b))
    up = [cast(a, np.float32) for a in (x16, g16, w16, b16)]  # the same values, in float32
    got = cpu.forward(variant, x16, w16, b16, **p, return_membrane=True)
    want = cpu.forward(variant, up[0], up[2], up[3], **p, return_membrane=True)
    assert got.spikes.dtype == bf and got.membrane.dtype == bf
    np.testing.assert_array_equal(got.spikes.astype(np.float32), want.spikes)
    np.testing.assert_array_equal(got.membrane, want.membrane.astype(bf))
    gg, gw = cpu.vjp(variant, x16, g16, w16, b16, **p), cpu.vjp(variant, up[0], up[1], up[2], up[3], **p)
    assert gg.x.dtype == bf
    np.testing.assert_array_equal(gg.x, gw.x.astype(bf))
    if variant != "psu":
        np.testing.assert_array_equal(gg.weight, gw.weight.astype(bf))
    stepper = cpu.OnlineStepper(variant, (3, 4), w16, b16, **p, dtype=bf)
    for t in range(5):
        s = stepper.step(x16[t])
        assert s.membrane.dtype == bf
        np.testing.assert_array_equal(s.spikes.astype(np.float32), want.spikes[t])
    for bad in (np.int32, np.complex64, np.bool_):
        with pytest.raises(TypeError, match="x must have a floating dtype .*, got"):
            cpu.psu(np.ones((3, 2), bad))


@pytest.mark.parametrize("name", ["tau", "threshold", "reset_scale", "surrogate_alpha"])
def test_one_scalar_rule(name):
    x = np.random.default_rng(7).normal(1.0, 1.0, size=(6, 5))
    base = dict(tau=2.0, threshold=1.0, reset_scale=0.5, surrogate_alpha=2.0)
    want = cpu.psu(x, **base, return_membrane=True).membrane
    for ok in (2, 2.0, np.float32(2), np.array(2.0), np.array(2, np.int64)):
        got = cpu.psu(x, **{**base, name: ok}, return_membrane=True).membrane
        np.testing.assert_array_equal(got, cpu.psu(x, **{**base, name: 2.0}, return_membrane=True).membrane)
        cpu.vjp("psu", x, np.ones_like(x), **{**base, name: ok})
        cpu.OnlineStepper("psu", (5,), **{**base, name: ok}).step(x[0])
    assert want.shape == x.shape
    for bad in (np.array([2.0]), True, np.array(True), np.array(2 + 0j)):
        with pytest.raises(ValueError, match=name):
            cpu.psu(x, **{**base, name: bad})
        with pytest.raises(ValueError, match=name):
            cpu.OnlineStepper("psu", (5,), **{**base, name: bad})


# ---------------------------------------------------------------------------- R6: online vs parallel


@pytest.mark.parametrize("T", HORIZONS)
def test_online_step_is_the_forward_bit_for_bit_where_the_arithmetic_is_the_same(mode, T):
    # PSU always, IPSU/RPSU below GEMM_MIN_T (the in-block mix adds b + W[t, 0] x_0 + ... in the
    # step's order); from GEMM_MIN_T on the mix is a BLAS sum in another order: only §9 holds.
    variant, reset = mode
    x, _, w, b, p = make_case(variant, T, (7,), reset=reset)
    x = x.astype(np.float32)
    w, b = (None, None) if w is None else (w.astype(np.float32), b.astype(np.float32))
    par = cpu.forward(variant, x, w, b, **p, return_membrane=True)
    stepper = cpu.OnlineStepper(variant, (7,), w, b, **p, dtype="float32")
    online = np.stack([stepper.step(x[t]).membrane for t in range(T)])
    if variant == "psu" or T < GEMM_MIN_T:
        assert online.tobytes() == par.membrane.tobytes()
    else:
        ref = reference.forward(variant, x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), **p)
        _within(online, ref.membrane, F32.membrane)
        _within(par.membrane, ref.membrane, F32.membrane)


@pytest.mark.parametrize("shape", [(1,), (1, 1), (2,), (GEMM_MIN_T, 1)])
@pytest.mark.parametrize("variant", ["ipsu", "rpsu"])
def test_tiny_shapes_mix_their_history(variant, shape):
    # x [1, 1] has the shape of the [1, 1] placeholder the kernels get when they mix in-block.
    x, g, w, b, p = make_case(variant, shape[0], shape[1:])
    want, got = reference.forward(variant, x, w, b, **p), cpu.forward(variant, x, w, b, **p, return_membrane=True)
    np.testing.assert_allclose(got.membrane, want.membrane, rtol=1e-10, atol=1e-12)
    gw, gg = reference.vjp(variant, x, g, w, b, **p), cpu.vjp(variant, x, g, w, b, **p)
    np.testing.assert_allclose(gg.x, gw.x, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(gg.weight, gw.weight, rtol=1e-9, atol=1e-11)
