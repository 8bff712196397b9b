"""The online form: pure step equal to the parallel call, eagerly and inside lax.scan; the end of T;
purity; the committed initial state; the OnlineStepper wrapper."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import psu_jax
from psu_core import api
from psu_jax import online

RNG = np.random.default_rng(2)
T, SHAPE = 7, (2, 3)
X = jnp.asarray(RNG.normal(size=(T,) + SHAPE) * 1.5)
W = jnp.asarray(RNG.normal(size=(T, T)) * 0.6)
B = jnp.asarray(RNG.normal(size=T) * 0.1)

CASES = [("psu", "expected"), ("psu", "sampled"), ("ipsu", "expected"), ("rpsu", "expected"), ("rpsu", "sampled")]


def setup(variant, reset):
    wb = () if variant == "psu" else (W, B)
    kw = dict(tau=2.5, threshold=0.6, reset=reset, seed=11 if reset == "sampled" else None)
    par = getattr(psu_jax, variant)(X, *wb, **kw, return_membrane=True, return_reset=True)
    state = psu_jax.init_state(variant, SHAPE, T=None if variant == "psu" else T, dtype=X.dtype)
    return wb, kw, par, state


@pytest.mark.parametrize("variant,reset", CASES)
def test_eager_steps_equal_parallel(variant, reset):
    wb, kw, par, state = setup(variant, reset)
    outs = []
    for t in range(T):
        state, out = psu_jax.step(state, X[t], *wb, **kw)
        assert type(out) is api.StepOutput and (out.reset is None) == (reset == "expected")
        outs.append(out)
    np.testing.assert_array_equal(np.stack([o.spikes for o in outs]), np.asarray(par.spikes))
    np.testing.assert_allclose(np.stack([o.membrane for o in outs]), np.asarray(par.membrane), rtol=1e-12, atol=1e-12)
    if reset == "sampled":
        np.testing.assert_array_equal(np.stack([o.reset for o in outs]), np.asarray(par.reset))
    if variant != "psu":
        with pytest.raises(ValueError, match="step 7 is past the end"):
            psu_jax.step(state, X[0], *wb, **kw)
    else:
        state, _ = psu_jax.step(state, X[0], *wb, **kw)  # PSU has no end
        assert int(state.t) == T + 1


@pytest.mark.parametrize("variant,reset", CASES)
def test_scan_equals_parallel(variant, reset):
    wb, kw, par, state = setup(variant, reset)
    weights = dict(zip(("weight", "bias"), wb, strict=False))
    run = jax.jit(lambda s, x: jax.lax.scan(functools.partial(psu_jax.step, **weights, **kw), s, x))
    final, out = run(state, X)
    np.testing.assert_array_equal(np.asarray(out.spikes), np.asarray(par.spikes))
    np.testing.assert_allclose(np.asarray(out.membrane), np.asarray(par.membrane), rtol=1e-12, atol=1e-12)
    assert int(final.t) == T
    if variant != "psu":
        # under jit the step index is traced: a step past the end is NaN, not an exception
        _, extra = run(final, X[:1])
        assert np.all(np.isnan(np.asarray(extra.membrane)))


def test_sampled_with_jax_key_in_scan():
    """seed may be a JAX key, traced inside scan: the draws are those of the parallel call with it."""
    key = jax.random.key(4)
    par = psu_jax.rpsu(X, W, B, reset="sampled", seed=key, return_reset=True)
    step = functools.partial(psu_jax.step, weight=W, bias=B, reset="sampled")
    _, out = jax.jit(
        lambda k: jax.lax.scan(
            lambda s, x: step(s, x, seed=k), psu_jax.init_state("rpsu", SHAPE, T=T, dtype=X.dtype), X
        )
    )(key)
    np.testing.assert_array_equal(np.asarray(out.reset), np.asarray(par.reset))


@pytest.mark.parametrize("variant,reset", [("psu", "sampled"), ("rpsu", "expected")])
def test_step_is_pure(variant, reset):
    """A state is a value: stepping leaves it as it was, so it can be kept, branched and replayed."""
    wb, kw, _, state = setup(variant, reset)
    s1, _ = psu_jax.step(state, X[0], *wb, **kw)
    s2, _ = psu_jax.step(s1, X[1], *wb, **kw)
    before = [np.asarray(a).copy() for a in jax.tree.leaves(s1)]
    branch, out_a = psu_jax.step(s1, X[1], *wb, **kw)  # replay step 1 from the kept state
    _, out_b = psu_jax.step(s1, X[2], *wb, **kw)  # and branch off with another input
    for a, b in zip(jax.tree.leaves(s1), before, strict=True):
        np.testing.assert_array_equal(np.asarray(a), b)
    for a, b in zip(jax.tree.leaves(branch), jax.tree.leaves(s2), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert int(s1.t) == 1 and not np.array_equal(np.asarray(out_a.membrane), np.asarray(out_b.membrane))


def test_init_state_is_committed_and_steps_compile_once():
    """init_state commits its arrays to the device (default or given): eager steps then find one
    compiled program instead of compiling again once the state becomes committed."""
    dev = jax.devices()[0]
    state = psu_jax.init_state("rpsu", SHAPE, T=T, dtype=jnp.float32)
    assert all(a.committed and a.devices() == {dev} for a in jax.tree.leaves(state))
    given = psu_jax.init_state("psu", SHAPE, dtype="float32", device=dev)
    assert all(a.committed for a in jax.tree.leaves(given)) and given.h.dtype == jnp.float32
    x = jax.device_put(np.asarray(X, np.float32), dev)
    w, b = jax.device_put((np.asarray(W, np.float32), np.asarray(B, np.float32)), dev)
    before = online._step_jit._cache_size()
    for t in range(3):
        state, _ = psu_jax.step(state, x[t], w, b, threshold=0.6)
    assert online._step_jit._cache_size() == before + 1


def test_init_state_arguments():
    """T is the horizon's one name (num_steps is gone); PSU has no end; dtype half -> float32 state."""
    with pytest.raises(ValueError, match="T must be an integer >= 1"):
        psu_jax.init_state("rpsu", SHAPE)
    with pytest.raises(ValueError, match="T must be an integer >= 1"):
        psu_jax.init_state("ipsu", SHAPE, T=2.5)
    with pytest.raises(TypeError, match="num_steps"):
        psu_jax.init_state("ipsu", SHAPE, num_steps=T)
    with pytest.raises(TypeError, match="dtype must be floating"):
        psu_jax.init_state("psu", SHAPE, dtype=jnp.int32)
    assert psu_jax.init_state("psu", SHAPE, T=5).T is None
    state = psu_jax.init_state("ipsu", SHAPE, T=T, dtype=jnp.bfloat16)
    assert state.h.dtype == jnp.float32 and state.history.shape == (T, *SHAPE)


def test_bad_state_and_shapes():
    state = psu_jax.init_state("psu", SHAPE)
    with pytest.raises(ValueError, match="neuron shape"):
        psu_jax.step(state, jnp.zeros((3, 2)))
    with pytest.raises(TypeError, match="x_t must have a floating dtype"):
        psu_jax.step(state, jnp.zeros(SHAPE, jnp.int32))
    with pytest.raises(TypeError, match="state must be an OnlineState"):
        psu_jax.step({"t": 0}, X[0])
    with pytest.raises(ValueError, match="weight"):
        psu_jax.step(psu_jax.init_state("rpsu", SHAPE, T=T), X[0])
    with pytest.raises(ValueError, match="reset"):
        psu_jax.step(psu_jax.init_state("ipsu", SHAPE, T=T), X[0], W, B, reset="sampled", seed=1)
    with pytest.raises(TypeError, match="key_or_seed"):
        psu_jax.step(state, X[0], reset="sampled", key_or_seed=1)


@pytest.mark.parametrize("variant,reset", CASES)
def test_stepper_equals_parallel_and_restarts(variant, reset):
    wb, kw, par, _ = setup(variant, reset)
    stepper = psu_jax.OnlineStepper(variant, SHAPE, *wb, **kw, dtype=X.dtype)
    for _ in range(2):  # the second round after reset_state() repeats the first
        outs = [stepper.step(X[t]) for t in range(T)]
        np.testing.assert_array_equal(np.stack([o.spikes for o in outs]), np.asarray(par.spikes))
        np.testing.assert_allclose(
            np.stack([o.membrane for o in outs]), np.asarray(par.membrane), rtol=1e-12, atol=1e-12
        )
        if reset == "sampled":
            np.testing.assert_array_equal(np.stack([o.reset for o in outs]), np.asarray(par.reset))
        assert isinstance(stepper.state, psu_jax.OnlineState) and int(stepper.state.t) == T
        if variant != "psu":
            with pytest.raises(ValueError, match="step 7 is past the end"):
                stepper.step(X[0])
        stepper.reset_state()
        assert int(stepper.state.t) == 0


def test_stepper_checks_when_built():
    with pytest.raises(ValueError, match="tau"):
        psu_jax.OnlineStepper("psu", SHAPE, tau=0.5)
    with pytest.raises(ValueError, match="weight"):
        psu_jax.OnlineStepper("rpsu", SHAPE)
    with pytest.raises(ValueError, match="bias"):
        psu_jax.OnlineStepper("rpsu", SHAPE, W, B[:3])
    with pytest.raises(ValueError, match="seed"):
        psu_jax.OnlineStepper("psu", SHAPE, reset="sampled")
    with pytest.raises(ValueError, match="variant"):
        psu_jax.OnlineStepper("lif", SHAPE)
