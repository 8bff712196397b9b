"""Flax NNX modules: equal to the functional API, initialisation, defaults and the SPEC §7 preset,
the time-folded layout, results, state round-trip, sampled seeds."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import psu_jax
from psu_core import api
from psu_jax.nn import IPSU, PSU, RPSU

RNG = np.random.default_rng(3)
T = 8
X = jnp.asarray(RNG.normal(size=(T, 4, 5)) * 1.5, jnp.float32)


def test_psu_module_equals_functional():
    m = PSU(threshold=0.5)
    # Defaults shared with psu-torch (SPEC §7): alpha learnable (as published), threshold fixed, tied reset.
    assert isinstance(m.threshold, float) and isinstance(m.surrogate_alpha, nnx.Param) and m.reset_scale is None
    np.testing.assert_array_equal(np.asarray(m(X)), np.asarray(psu_jax.psu(X, threshold=0.5)))
    fixed = PSU(threshold=0.5, learn_alpha=False, learn_threshold=True)
    assert isinstance(fixed.threshold, nnx.Param) and isinstance(fixed.surrogate_alpha, float)


@pytest.mark.parametrize("cls,variant", [(IPSU, "ipsu"), (RPSU, "rpsu")])
def test_learned_modules_init_and_call(cls, variant):
    m = cls(64, rngs=nnx.Rngs(0))
    w = np.asarray(m.weight[...])
    assert m.T == 64 and w.shape == (64, 64) and m.bias[...].shape == (64,)
    assert abs(w.std() - np.sqrt(2 / 64)) < 0.01 and abs(w.mean()) < 0.02 and np.all(np.asarray(m.bias[...]) == 0)
    assert np.count_nonzero(np.triu(w, 1)) > 0  # every entry drawn; the mask applies on use
    m = cls(T=T, threshold=0.5, rngs=nnx.Rngs(1))
    expect = getattr(psu_jax, variant)(X, m.weight[...], m.bias[...], threshold=0.5)
    np.testing.assert_array_equal(np.asarray(m(X)), np.asarray(expect))


def test_return_membrane():
    """return_membrane=True: PSUOutput(spikes, membrane, None), the membrane without gradient."""
    m = RPSU(T, threshold=0.5, rngs=nnx.Rngs(0))
    out = m(X, return_membrane=True)
    assert type(out) is api.PSUOutput and out.reset is None
    expect = psu_jax.rpsu(X, m.weight[...], m.bias[...], threshold=0.5, return_membrane=True)
    np.testing.assert_array_equal(np.asarray(out.spikes), np.asarray(expect.spikes))
    np.testing.assert_array_equal(np.asarray(out.membrane), np.asarray(expect.membrane))
    grads = nnx.grad(lambda m: jnp.sum(m(X, return_membrane=True).membrane))(m)
    assert all(np.all(np.asarray(g) == 0) for g in jax.tree.leaves(grads))


def test_reference_compat_preset():
    """SPEC §7: PSU's reset tied to the threshold (reset_scale None), IPSU/RPSU gamma = 1, inputs
    [(T*B), ...]; alpha learnable and threshold fixed as by default."""
    m = PSU(threshold=0.5, reference_compat=True, T=T)
    assert m.reset_scale is None and m.time_folded
    assert isinstance(m.threshold, float) and isinstance(m.surrogate_alpha, nnx.Param)
    folded = X.reshape(T * 4, 5)  # [(T*B), F], time-major blocks
    np.testing.assert_array_equal(
        np.asarray(m(folded)), np.asarray(psu_jax.psu(X, threshold=0.5)).reshape(T * 4, 5)
    )  # fmt: skip
    for cls in (IPSU, RPSU):
        r = cls(T, threshold=0.5, reference_compat=True, rngs=nnx.Rngs(0))
        assert r.reset_scale == 1.0 and r.time_folded
    out = r(folded)
    assert out.shape == folded.shape
    expect = psu_jax.rpsu(X, r.weight[...], r.bias[...], threshold=0.5, reset_scale=1.0)
    np.testing.assert_array_equal(np.asarray(out), np.asarray(expect).reshape(T * 4, 5))
    mem = r(folded, return_membrane=True)
    assert mem.spikes.shape == mem.membrane.shape == folded.shape
    # each of the preset's choices can be overridden by its own argument
    r = RPSU(T, reference_compat=True, reset_scale=None, time_folded=False, rngs=nnx.Rngs(0))
    assert r.reset_scale is None and not r.time_folded


def test_preset_psu_learned_threshold_moves_the_reset():
    """Tied under the preset: a learned threshold gets the gradient through the reset term too."""
    m = PSU(threshold=0.5, reference_compat=True, T=T, learn_threshold=True)
    fixed = PSU(threshold=0.5, T=T, time_folded=True, reset_scale=0.5, learn_threshold=True)
    folded = X.reshape(T * 4, 5)
    g_tied = nnx.grad(lambda m: jnp.sum(m(folded) * folded))(m).threshold[...]
    g_fixed = nnx.grad(lambda m: jnp.sum(m(folded) * folded))(fixed).threshold[...]
    gx = jax.grad(lambda th: jnp.sum(psu_jax.psu(X, threshold=th) * X))(0.5)
    np.testing.assert_allclose(float(g_tied), float(gx), rtol=1e-6)
    assert float(g_tied) != float(g_fixed)


def test_time_folded_layout_checks():
    with pytest.raises(ValueError, match="T must be given for time-folded"):
        PSU(reference_compat=True)
    with pytest.raises(ValueError, match="T must be given for time-folded"):
        PSU(time_folded=True)
    m = PSU(T=T, time_folded=True)
    with pytest.raises(ValueError, match=r"\[\(T\*B\), \.\.\.\] with T=8"):
        m(jnp.zeros((30, 5), jnp.float32))  # 30 is not a multiple of T
    with pytest.raises(ValueError, match="T must be an integer >= 1"):
        IPSU(0, rngs=nnx.Rngs(0))
    with pytest.raises(TypeError, match="num_steps"):
        PSU(num_steps=T)


def test_learnable_parameters_get_gradients():
    m = RPSU(T, threshold=0.5, learn_threshold=True, rngs=nnx.Rngs(0))

    def loss(m):
        return jnp.sum(m(X) * X)

    grads = nnx.grad(loss)(m)
    for name in ("threshold", "surrogate_alpha", "weight", "bias"):
        g = np.asarray(getattr(grads, name)[...])
        assert np.all(np.isfinite(g)) and np.any(g != 0), name
    assert np.all(np.triu(np.asarray(grads.weight[...]), 1) == 0)


def test_state_round_trip_and_jit():
    m = IPSU(T, threshold=0.4, rngs=nnx.Rngs(5))
    graphdef, state = nnx.split(m)
    restored = nnx.merge(graphdef, jax.tree.map(lambda a: a, state))
    np.testing.assert_array_equal(np.asarray(restored(X)), np.asarray(m(X)))
    pure = nnx.to_pure_dict(nnx.state(m, nnx.Param))
    fresh = IPSU(T, threshold=0.4, rngs=nnx.Rngs(99))
    nnx.replace_by_pure_dict(state2 := nnx.state(fresh, nnx.Param), pure)
    nnx.update(fresh, state2)
    np.testing.assert_array_equal(np.asarray(fresh(X)), np.asarray(m(X)))
    jitted = nnx.jit(lambda mod, x: mod(x))
    np.testing.assert_array_equal(np.asarray(jitted(m, X)), np.asarray(m(X)))


def test_sampled_module_draws_fresh_seeds():
    m = PSU(reset="sampled", rngs=nnx.Rngs(reset=0))
    a = m(X, return_membrane=True).membrane  # the membrane differs where the draws do
    b = m(X, return_membrane=True).membrane
    assert not np.array_equal(np.asarray(a), np.asarray(b))
    again = PSU(reset="sampled", rngs=nnx.Rngs(reset=0))
    np.testing.assert_array_equal(np.asarray(again(X, return_membrane=True).membrane), np.asarray(a))
    fixed = m(X, seed=42, return_membrane=True)
    expect = psu_jax.psu(X, reset="sampled", seed=42, return_membrane=True)
    np.testing.assert_array_equal(np.asarray(fixed.membrane), np.asarray(expect.membrane))
    np.testing.assert_array_equal(np.asarray(fixed.spikes), np.asarray(expect.spikes))
    key = jax.random.key(7)
    np.testing.assert_array_equal(
        np.asarray(m(X, seed=key)), np.asarray(psu_jax.psu(X, reset="sampled", seed=key))
    )  # fmt: skip
    with pytest.raises(ValueError, match="rngs"):
        PSU(reset="sampled")
    with pytest.raises(ValueError, match="reset"):
        IPSU(T, reset="sampled", rngs=nnx.Rngs(0))
    with pytest.raises(TypeError, match="key_or_seed"):
        m(X, key_or_seed=42)
