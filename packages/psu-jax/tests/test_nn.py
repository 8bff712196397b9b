"""Flax NNX modules: equal to the functional API, initialisation, presets, state round-trip."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import psu_jax
from psu_jax.nn import IPSU, PSU, RPSU

RNG = np.random.default_rng(3)
T = 8
X = jnp.asarray(RNG.normal(size=(T, 4, 5)) * 1.5, jnp.float32)


def test_psu_module_equals_functional():
    m = PSU(threshold=0.5)
    # Defaults shared with psu-torch: alpha learnable (as published), threshold fixed.
    assert isinstance(m.threshold, float) and isinstance(m.surrogate_alpha, nnx.Param)
    np.testing.assert_array_equal(np.asarray(m(X)), np.asarray(psu_jax.psu(X, threshold=0.5)))


@pytest.mark.parametrize("cls,variant", [(IPSU, "ipsu"), (RPSU, "rpsu")])
def test_learned_modules_init_and_call(cls, variant):
    m = cls(64, rngs=nnx.Rngs(0))
    w = np.asarray(m.weight[...])
    assert w.shape == (64, 64) and m.bias[...].shape == (64,)
    assert abs(w.std() - np.sqrt(2 / 64)) < 0.01 and abs(w.mean()) < 0.02 and np.all(np.asarray(m.bias[...]) == 0)
    assert np.count_nonzero(np.triu(w, 1)) > 0  # every entry drawn; the mask applies on use
    m = cls(T, threshold=0.5, rngs=nnx.Rngs(1))
    expect = getattr(psu_jax, variant)(X, m.weight[...], m.bias[...], threshold=0.5)
    np.testing.assert_array_equal(np.asarray(m(X)), np.asarray(expect))


def test_reference_compat_preset():
    m = PSU(threshold=0.5, reference_compat=True, num_steps=T)
    assert m.reset_scale == 0.5 and isinstance(m.threshold, float) and isinstance(m.surrogate_alpha, nnx.Param)
    r = RPSU(T, threshold=0.5, reference_compat=True, rngs=nnx.Rngs(0))
    assert r.reset_scale == 1.0 and r.time_folded
    folded = X.reshape(T * 4, 5)  # [(T*B), F], time-major blocks
    out = r(folded)
    assert out.shape == folded.shape
    expect = psu_jax.rpsu(X, r.weight[...], r.bias[...], threshold=0.5, reset_scale=1.0)
    np.testing.assert_array_equal(np.asarray(out), np.asarray(expect).reshape(T * 4, 5))
    with pytest.raises(ValueError, match="time-folded"):
        r(jnp.zeros((30, 5), jnp.float32))
    with pytest.raises(ValueError, match="num_steps"):
        PSU(reference_compat=True)


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
    a = m(X, return_membrane=True).reset
    b = m(X, return_membrane=True).reset
    assert not np.array_equal(np.asarray(a), np.asarray(b))
    again = PSU(reset="sampled", rngs=nnx.Rngs(reset=0))
    np.testing.assert_array_equal(np.asarray(again(X, return_membrane=True).reset), np.asarray(a))
    fixed = m(X, key_or_seed=42, return_membrane=True).reset
    np.testing.assert_array_equal(
        np.asarray(fixed), np.asarray(psu_jax.psu(X, reset="sampled", key_or_seed=42, return_membrane=True).reset)
    )
    with pytest.raises(ValueError, match="rngs"):
        PSU(reset="sampled")
    with pytest.raises(ValueError, match="reset"):
        IPSU(T, reset="sampled", rngs=nnx.Rngs(0))
