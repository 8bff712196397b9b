import itertools
import math
import warnings

import numpy as np
import pytest

from psu_core import reference as ref

VARIANT_MODES = [
    ("psu", "expected"),
    ("psu", "sampled"),
    ("ipsu", "expected"),
    ("rpsu", "expected"),
    ("rpsu", "sampled"),
]


def make(variant, T=6, shape=(3, 2), seed=0):
    g = np.random.default_rng(seed)
    x = g.normal(0.9, 1.0, (T, *shape))
    w = b = None
    if variant != "psu":
        w = g.normal(0, 0.6, (T, T)) + 0.5 * np.eye(T)
        b = g.normal(0, 0.3, T)
    G = g.normal(size=x.shape)
    return x, w, b, G


def params(reset, reset_scale=None, threshold=0.7, tau=3.0, alpha=2.5):
    return dict(
        tau=tau,
        threshold=threshold,
        reset_scale=reset_scale,
        surrogate_alpha=alpha,
        reset=reset,
        seed=2**40 + 3 if reset == "sampled" else None,
    )


@pytest.mark.parametrize("variant,reset", VARIANT_MODES)
@pytest.mark.parametrize("reset_scale", [None, 0.0, 1.3])
@pytest.mark.parametrize("T", [1, 2, 5, 17])
def test_dense_and_recurrence_agree(variant, reset, reset_scale, T):
    x, w, b, G = make(variant, T=T)
    kw = params(reset, reset_scale)
    f, d = ref.forward(variant, x, w, b, **kw), ref.forward_dense(variant, x, w, b, **kw)
    assert np.abs(f.membrane - d.membrane).max() < 1e-12
    assert np.array_equal(f.spikes, d.spikes)
    g, gd = ref.vjp(variant, x, G, w, b, **kw), ref.vjp_dense(variant, x, G, w, b, **kw)
    assert np.abs(g.x - gd.x).max() < 1e-12
    assert abs(g.threshold - gd.threshold) < 1e-12 and abs(g.surrogate_alpha - gd.surrogate_alpha) < 1e-12
    if variant != "psu":
        assert np.abs(g.weight - gd.weight).max() < 1e-12 and np.abs(g.bias - gd.bias).max() < 1e-12


def smooth_loss(variant, x, w, b, G, kw, straight_through=None):
    """sum(G * phi(V)) with phi the arctan whose derivative is the surrogate: its exact gradient
    is the surrogate VJP. With ``straight_through=(R0, P0)`` the reset term uses P + (R0 - P0),
    whose gradient is the straight-through gradient of the sampled draw."""
    T = x.shape[0]
    x2 = x.reshape(T, -1)
    A, B, M = ref.decay_matrices(T, kw["tau"])
    theta = kw["threshold"]
    gamma = theta if kw["reset_scale"] is None else kw["reset_scale"]
    if variant == "ipsu":
        H = (w * M) @ x2 + b[:, None]
        Q = x2
    else:
        H = A @ x2
        Z = H if variant == "psu" else (w * M) @ x2 + b[:, None]
        Q = 1.0 / (1.0 + np.exp(-Z))
        if straight_through is not None:
            Q = Q + (straight_through[0] - straight_through[1])
    V = H - gamma * B @ Q
    phi = np.arctan(math.pi / 2 * kw["surrogate_alpha"] * (V - theta)) / math.pi + 0.5
    return float((G.reshape(T, -1) * phi).sum())


def fd(fun, value, eps=1e-6):
    return (fun(value + eps) - fun(value - eps)) / (2 * eps)


@pytest.mark.parametrize("variant,reset", VARIANT_MODES)
@pytest.mark.parametrize("reset_scale", [None, 0.8])
def test_vjp_matches_finite_differences(variant, reset, reset_scale):
    x, w, b, G = make(variant, T=5, shape=(2, 2), seed=3)
    kw = params(reset, reset_scale)
    g = ref.vjp(variant, x, G, w, b, **kw)
    st = None
    if reset == "sampled":
        f = ref.forward(variant, x, w, b, **kw)
        st = (f.reset.reshape(5, -1), f.reset_probability.reshape(5, -1))

    def loss(x=x, w=w, b=b, kw=kw, st=st):
        if st is not None:
            # Keep R0 - P0 fixed at the base point while P moves: straight-through.
            return smooth_loss(variant, x, w, b, G, kw, st)
        return smooth_loss(variant, x, w, b, G, kw)

    for idx in itertools.product(*map(range, x.shape)):

        def at(v, idx=idx):
            xx = x.copy()
            xx[idx] = v
            return loss(x=xx)

        assert abs(fd(at, x[idx]) - g.x[idx]) < 1e-7, idx
    if variant != "psu":
        for t, j in itertools.product(range(5), range(5)):

            def atw(v, t=t, j=j):
                ww = w.copy()
                ww[t, j] = v
                return loss(w=ww)

            assert abs(fd(atw, w[t, j]) - g.weight[t, j]) < 1e-7, (t, j)
        for t in range(5):

            def atb(v, t=t):
                bb = b.copy()
                bb[t] = v
                return loss(b=bb)

            assert abs(fd(atb, b[t]) - g.bias[t]) < 1e-7, t
        assert np.all(np.triu(g.weight, 1) == 0)
    assert abs(fd(lambda v: loss(kw={**kw, "surrogate_alpha": v}), kw["surrogate_alpha"]) - g.surrogate_alpha) < 1e-7
    d_theta = fd(lambda v: loss(kw={**kw, "threshold": v}), kw["threshold"])
    assert abs(d_theta - g.threshold) < 1e-7


@pytest.mark.parametrize("variant,reset", VARIANT_MODES)
def test_online_stepper_equals_forward(variant, reset):
    x, w, b, _ = make(variant, T=9, shape=(4,))
    kw = params(reset)
    f = ref.forward_dense(variant, x, w, b, **kw)
    st = ref.OnlineStepper(variant, (4,), w, b, **kw)
    for t in range(9):
        s, v, r = st.step(x[t])
        assert np.array_equal(s, f.spikes[t])
        assert np.abs(v - f.membrane[t]).max() < 1e-12
        if reset == "sampled":
            assert np.array_equal(r, f.reset[t])
        else:
            assert r is None


def test_step_is_pure():
    x, w, b, _ = make("rpsu", T=4, shape=(3,))
    state = ref.init_state("rpsu", (3,), T=4)
    s1, out1 = ref.step(state, x[0], w, b, reset="sampled", seed=7)
    s2, out2 = ref.step(state, x[0], w, b, reset="sampled", seed=7)
    assert state.t == 0 and s1.t == s2.t == 1 and state.history == ()
    for a, c in zip(out1, out2, strict=True):
        assert np.array_equal(a, c)


def test_learned_stepper_stops_after_T():
    x, w, b, _ = make("rpsu", T=3, shape=(2,))
    st = ref.OnlineStepper("rpsu", (2,), w, b)
    for t in range(3):
        st.step(x[t])
    with pytest.raises(ValueError, match="step 3 is past the end"):
        st.step(x[0])
    st.reset_state()
    assert st.state.t == 0 and st.step(x[0]).spikes.shape == (2,)


def test_psu_stepper_has_no_end():
    st = ref.OnlineStepper("psu", (2,))
    for _ in range(50):
        st.step(np.ones(2))
    assert st.state.t == 50


def test_functional_api_returns_spikes_or_psu_output():
    x, w, b, _ = make("rpsu", T=5, shape=(3,))
    f = ref.forward("rpsu", x, w, b, reset="sampled", seed=3)
    s = ref.rpsu(x, w, b, reset="sampled", seed=3)
    assert isinstance(s, np.ndarray) and np.array_equal(s, f.spikes)
    out = ref.rpsu(x, w, b, reset="sampled", seed=3, return_membrane=True, return_reset=True, method="dense")
    assert out._fields == ("spikes", "membrane", "reset")
    assert np.array_equal(out.spikes, f.spikes) and np.array_equal(out.reset, f.reset)
    assert ref.psu(x, return_membrane=True).reset is None
    with pytest.raises(ValueError, match="method"):
        ref.psu(x, method="fast")


def test_upper_triangle_of_weight_is_ignored():
    x, w, b, _ = make("ipsu", T=6)
    w2 = w + np.triu(np.full_like(w, 100.0), 1)
    assert np.array_equal(ref.forward("ipsu", x, w, b).membrane, ref.forward("ipsu", x, w2, b).membrane)


def test_sigmoid_is_stable():
    z = np.array([-1000.0, -40.0, 0.0, 40.0, 1000.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = ref.sigmoid(z)
    assert s[0] == 0.0 and s[2] == 0.5 and s[4] == 1.0 and 0 < s[1] < 1e-17


def test_spike_is_strictly_greater():
    # T=1 PSU: V = H = x / tau. With x = 2, tau = 2: V == theta == 1 exactly -> no spike.
    f = ref.forward("psu", np.array([[2.0, 2.0000001]]))
    assert f.spikes.tolist() == [[0.0, 1.0]]


def test_reset_scale_zero_turns_reset_off():
    x, _, _, _ = make("psu")
    f = ref.forward("psu", x, reset_scale=0.0)
    A, _, _ = ref.decay_matrices(x.shape[0], 2.0)
    assert np.abs(f.membrane.reshape(x.shape[0], -1) - A @ x.reshape(x.shape[0], -1)).max() < 1e-12


def test_seeds_change_draws_and_expected_mode_ignores_seed():
    x, _, _, _ = make("psu", T=8, shape=(64,))
    r1 = ref.forward("psu", x, reset="sampled", seed=1).reset
    r2 = ref.forward("psu", x, reset="sampled", seed=2).reset
    assert not np.array_equal(r1, r2)
    assert np.array_equal(ref.forward("psu", x, seed=1).membrane, ref.forward("psu", x).membrane)


def test_validate_opt_in():
    x = np.ones((3, 2))
    x[1, 1] = np.nan
    ref.forward("psu", x)  # not scanned by default
    with pytest.raises(ValueError, match="^x must contain only finite"):
        ref.forward("psu", x, validate=True)


def test_surrogate_formula():
    dv, da = ref.surrogate(np.array([1.0, 1.5]), 1.0, 2.0)
    q = math.pi / 2 * 2.0 * 0.5
    assert dv.tolist() == [1.0, 2.0 / (2 * (1 + q * q))]
    assert da.tolist() == [0.0, 0.5 / (2 * (1 + q * q))]


# ----------------------------------------------------------------------------- issue 11 rules


def exact_sigmoid_derivative(z):
    """sigma'(z) = exp(-|z|) / (1 + exp(-|z|))^2, each factor without cancellation."""
    e = math.exp(-abs(z))
    return e / (1.0 + e) ** 2


@pytest.mark.parametrize("z", [20.0, 25.0, 30.0, 33.0, -30.0])
def test_saturated_reset_probability_gradient_is_accurate(z):
    """SPEC §5: dP/dz = sigma(z) sigma(-z), not P (1 - P) (1 - P loses digits for |z| >~ 20 even
    in float64). RPSU with W = 0, b = z: T = 2, one neuron, so dL/db[0] = -gamma c_0 sigma'(z)."""
    x = np.array([[0.25], [0.5]])
    w, b = np.zeros((2, 2)), np.full(2, z)
    G = np.array([[0.0], [1.0]])
    kw = dict(tau=2.0, threshold=0.1, reset_scale=1.0)
    f = ref.forward("rpsu", x, w, b, **kw)
    dsdv, _ = ref.surrogate(f.membrane[1, 0], 0.1, 2.0)
    want = -1.0 * (0.5 * dsdv) * exact_sigmoid_derivative(z)  # c_0 = a gV_1
    for g in (ref.vjp("rpsu", x, G, w, b, **kw), ref.vjp_dense("rpsu", x, G, w, b, **kw)):
        assert g.bias[0] == pytest.approx(want, rel=1e-13, abs=0.0)
    # PSU: H = z at step 0 (x = 2 z, a = 1/2), the reset path through sigma'(H_0).
    xp = np.array([[2.0 * z], [0.0]])
    f = ref.forward("psu", xp, **kw)
    dsdv, _ = ref.surrogate(f.membrane[1, 0], 0.1, 2.0)
    # dL/dx_0 = a (gH_0 + a gV_1 ... ): gH_0 = -gamma c_0 sigma'(H_0) (G_0 = 0), e_0 = a (gH_0 + e_1), e_1 = a gH_1
    gV1 = dsdv
    e1 = 0.5 * gV1  # gH_1 = gV_1 (c_1 = 0)
    want = 0.5 * (-1.0 * 0.5 * gV1 * exact_sigmoid_derivative(z) + e1)
    for g in (ref.vjp("psu", xp, G, **kw), ref.vjp_dense("psu", xp, G, **kw)):
        assert g.x[0, 0] == pytest.approx(want, rel=1e-13, abs=0.0)


def test_bfloat16_inputs_are_accepted_and_computed_in_float64():
    """SPEC §8: an ml_dtypes bfloat16 array is a floating input, computed like any other (in
    float64 here) and returned as float64, as float16 is."""
    ml_dtypes = pytest.importorskip("ml_dtypes", reason="NumPy's bfloat16 comes from ml_dtypes")
    for variant in ("psu", "ipsu", "rpsu"):
        x, w, b, G = make(variant)
        bf = lambda a: None if a is None else a.astype(ml_dtypes.bfloat16)  # noqa: E731
        exact = lambda a: None if a is None else bf(a).astype(np.float64)  # noqa: E731
        want = ref.forward(variant, exact(x), exact(w), exact(b))
        for got in (ref.forward(variant, bf(x), bf(w), bf(b)), ref.forward_dense(variant, bf(x), bf(w), bf(b))):
            assert got.membrane.dtype == np.float64 and got.spikes.dtype == np.float64
            np.testing.assert_allclose(got.membrane, want.membrane, rtol=1e-12, atol=1e-12)
        g = ref.vjp(variant, bf(x), bf(G), bf(w), bf(b))
        np.testing.assert_array_equal(g.x, ref.vjp(variant, exact(x), exact(G), exact(w), exact(b)).x)
        assert ref.psu(bf(x)).dtype == ref.psu(x.astype(np.float16)).dtype == np.float64
        state, out = ref.step(ref.init_state(variant, x.shape[1:], T=x.shape[0]), bf(x[0]), bf(w), bf(b))
        np.testing.assert_array_equal(out.membrane, want.membrane[0])


@pytest.mark.parametrize(
    "value", [2.5, 3, np.float32(2.5), np.float64(2.5), np.int64(3), np.array(2.5), np.array(3, np.int32)]
)
def test_numpy_scalars_and_0d_arrays_are_scalars(value):
    """SPEC §8, the one scalar rule: NumPy real scalars and 0-d arrays are accepted everywhere."""
    x = np.ones((3, 2))
    want = ref.forward("psu", x, tau=float(value), threshold=float(value), reset_scale=float(value))
    got = ref.forward("psu", x, tau=value, threshold=value, reset_scale=value, surrogate_alpha=value)
    np.testing.assert_array_equal(got.membrane, want.membrane)
    stepper = ref.OnlineStepper("psu", (2,), tau=value, threshold=value)
    stepper.step(x[0])


@pytest.mark.parametrize("value", [np.array([2.5]), np.array([[2.5]]), True, np.bool_(True), np.array(True), 2.5j])
@pytest.mark.parametrize("name", ["tau", "threshold", "reset_scale", "surrogate_alpha"])
def test_scalar_rule_refusals(name, value):
    with pytest.raises(ValueError, match=f"^{name} must be"):
        ref.forward("psu", np.ones((3, 2)), **{name: value})


NONFINITE = [np.nan, np.inf, -np.inf, 1e300, -7.0]


def _causal_inputs(variant, T=7, shape=(3, 2)):
    x, w, b, _ = make(variant, T=T, shape=shape, seed=5)
    return x, w, b


def _same_prefix(a, b, t0):
    for k in ("spikes", "membrane", "reset_probability", "reset", "uniform"):
        u, v = getattr(a, k), getattr(b, k)
        if u is not None:
            assert np.array_equal(u[:t0], v[:t0], equal_nan=True), k


def _online(variant, x, w, b, **kw):
    state = ref.init_state(variant, x.shape[1:], T=x.shape[0])
    spikes, membrane = [], []
    for t in range(x.shape[0]):
        state, out = ref.step(state, x[t], w, b, **kw)
        spikes.append(out.spikes)
        membrane.append(out.membrane)
    return np.stack(spikes), np.stack(membrane)


@pytest.mark.parametrize("value", NONFINITE)
@pytest.mark.parametrize(
    "variant,reset,what",
    [(v, r, what) for v, r in VARIANT_MODES for what in ("x", "weight", "bias") if v != "psu" or what == "x"],
)
def test_causal_whatever_the_values(variant, reset, value, what):
    """SPEC §1/§2 (R1): changing x[t0], W's row t0 (lower triangle) or b[t0] to anything -- NaN,
    +-inf or a finite value -- leaves every output before t0 identical, in the recurrence, dense
    and online forms; a non-finite value makes the membrane (IPSU) or P (RPSU, W/b) non-finite at
    t0; spikes stay 0 or 1; nothing raises."""
    x, w, b = _causal_inputs(variant)
    kw = params(reset)
    t0 = 3
    x2, w2, b2 = x.copy(), None if w is None else w.copy(), None if b is None else b.copy()
    if what == "x":
        x2[t0, 1, 0] = value
    elif what == "weight":
        w2[t0, 1] = value  # lower triangle, row t0
    else:
        b2[t0] = value
    for form in (ref.forward, ref.forward_dense):
        base, got = form(variant, x, w, b, **kw), form(variant, x2, w2, b2, **kw)
        _same_prefix(base, got, t0)
        assert np.isin(got.spikes, (0.0, 1.0)).all()
        if not math.isfinite(value):
            if what == "x":
                assert not np.isfinite(got.membrane[t0, 1, 0])
            elif variant == "ipsu":
                assert not np.isfinite(got.membrane[t0]).any()
            elif math.isnan(value):  # RPSU: +-inf in the logit gives P = 1 or 0, NaN gives NaN
                assert np.isnan(got.reset_probability[t0]).all()
    s0, v0 = _online(variant, x, w, b, **kw)
    s1, v1 = _online(variant, x2, w2, b2, **kw)
    assert np.array_equal(s0[:t0], s1[:t0]) and np.array_equal(v0[:t0], v1[:t0], equal_nan=True)
    assert np.array_equal(v1, ref.forward(variant, x2, w2, b2, **kw).membrane, equal_nan=True)


@pytest.mark.parametrize("variant", ["ipsu", "rpsu"])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_upper_triangle_never_matters_even_nan(variant, value):
    """SPEC §1: the upper triangle of W is ignored whatever it holds, NaN included, in every form;
    its gradient is zero."""
    x, w, b = _causal_inputs(variant)
    G = np.ones_like(x)
    w2 = w.copy()
    w2[np.triu_indices_from(w2, 1)] = value
    for form in (ref.forward, ref.forward_dense):
        assert np.array_equal(form(variant, x, w, b).membrane, form(variant, x, w2, b).membrane)
    assert np.array_equal(_online(variant, x, w, b)[1], _online(variant, x, w2, b)[1])
    for vjp in (ref.vjp, ref.vjp_dense):
        g, g2 = vjp(variant, x, G, w, b), vjp(variant, x, G, w2, b)
        np.testing.assert_allclose(g2.x, g.x, rtol=1e-15, atol=0)
        assert np.array_equal(g.weight, g2.weight) and not np.triu(g2.weight, 1).any()
