"""The online stepper: equal to the parallel call, eagerly and inside lax.scan; the end of T."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import psu_jax
from psu_jax import online

RNG = np.random.default_rng(2)
T, SHAPE = 7, (2, 3)
X = jnp.asarray(RNG.normal(size=(T,) + SHAPE) * 1.5)
W = jnp.asarray(RNG.normal(size=(T, T)) * 0.6)
B = jnp.asarray(RNG.normal(size=T) * 0.1)

CASES = [("psu", "expected"), ("psu", "sampled"), ("ipsu", "expected"), ("rpsu", "expected"), ("rpsu", "sampled")]


def setup(variant, reset):
    wb = {} if variant == "psu" else {"weight": W, "bias": B}
    kw = dict(tau=2.5, threshold=0.6, reset=reset, key_or_seed=11 if reset == "sampled" else None)
    par = getattr(psu_jax, variant)(X, **wb, **kw, return_membrane=True)
    state = online.init_state(variant, SHAPE, num_steps=None if variant == "psu" else T, dtype=X.dtype)
    return wb, kw, par, state


@pytest.mark.parametrize("variant,reset", CASES)
def test_eager_steps_equal_parallel(variant, reset):
    wb, kw, par, state = setup(variant, reset)
    outs = []
    for t in range(T):
        state, out = online.step(state, X[t], **wb, **kw)
        outs.append(out)
    np.testing.assert_array_equal(np.stack([o.spikes for o in outs]), np.asarray(par.spikes))
    np.testing.assert_allclose(np.stack([o.membrane for o in outs]), np.asarray(par.membrane), rtol=1e-12, atol=1e-12)
    if reset == "sampled":
        np.testing.assert_array_equal(np.stack([o.reset for o in outs]), np.asarray(par.reset))
    if variant != "psu":
        with pytest.raises(ValueError, match="step 7 is past the end"):
            online.step(state, X[0], **wb, **kw)
    else:
        state, _ = online.step(state, X[0], **wb, **kw)  # PSU has no end
        assert int(state.t) == T + 1


@pytest.mark.parametrize("variant,reset", CASES)
def test_scan_equals_parallel(variant, reset):
    wb, kw, par, state = setup(variant, reset)
    run = jax.jit(lambda s, x: jax.lax.scan(functools.partial(online.step, **wb, **kw), s, x))
    final, out = run(state, X)
    np.testing.assert_array_equal(np.asarray(out.spikes), np.asarray(par.spikes))
    np.testing.assert_allclose(np.asarray(out.membrane), np.asarray(par.membrane), rtol=1e-12, atol=1e-12)
    assert int(final.t) == T
    if variant != "psu":
        # under jit the step index is traced: a step past the end is NaN, not an exception
        _, extra = run(final, X[:1])
        assert np.all(np.isnan(np.asarray(extra.membrane)))


def test_bad_state_and_shapes():
    state = online.init_state("psu", SHAPE)
    with pytest.raises(ValueError, match="neuron shape"):
        online.step(state, jnp.zeros((3, 2)))
    with pytest.raises(TypeError, match="x must have a floating dtype"):
        online.step(state, jnp.zeros(SHAPE, jnp.int32))
    with pytest.raises(ValueError, match="num_steps"):
        online.init_state("rpsu", SHAPE)
    with pytest.raises(ValueError, match="weight"):
        online.step(online.init_state("rpsu", SHAPE, num_steps=T), X[0])
    with pytest.raises(ValueError, match="reset"):
        online.step(
            online.init_state("ipsu", SHAPE, num_steps=T), X[0], weight=W, bias=B, reset="sampled", key_or_seed=1
        )
