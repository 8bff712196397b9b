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
