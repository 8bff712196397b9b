"""One random stream however a sampled call is split (SPEC §6: neurons numbered by their flat index
in the whole call): a call on part of the neurons with ``neuron_offset``, and ``jax.vmap`` over
pieces with no offset at all, draw what the whole call draws, bit for bit; gradients are unchanged.
(Sharded calls: ``tests_distributed/``.)"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import psu_jax
from psu_core import reference
from psu_jax import functional

RNG = np.random.default_rng(11)
T = 6
X = jnp.asarray(RNG.normal(size=(T, 4, 3, 2)) * 2.0)  # [T, batch, *features]
W = jnp.asarray(RNG.normal(size=(T, T)) * 0.6)
B = jnp.asarray(RNG.normal(size=T) * 0.1)
SEED = 2**33 + 5
KW = dict(threshold=0.4, reset="sampled", seed=SEED, return_membrane=True, return_reset=True)


def call(variant, x, **kw):
    return psu_jax.psu(x, **kw) if variant == "psu" else psu_jax.rpsu(x, W, B, **kw)


def assert_same(got, want):
    """Draws and spikes bit for bit; the membrane to the last bits only: a split program's dense
    ``[T, T]`` products may sum in another order (XLA lays a vmapped or narrower product out
    differently once its operand is the causal product's masked copy, SPEC §1)."""
    np.testing.assert_array_equal(np.asarray(got.reset), np.asarray(want.reset))
    np.testing.assert_array_equal(np.asarray(got.spikes), np.asarray(want.spikes))
    np.testing.assert_allclose(np.asarray(got.membrane), np.asarray(want.membrane), rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("variant", ["psu", "rpsu"])
def test_whole_call_draws_as_the_reference(variant):
    """The reference point: the whole call draws what psu-core's float64 reference draws."""
    out = call(variant, X, **KW)
    wb = (None, None) if variant == "psu" else (np.asarray(W), np.asarray(B))
    ref = reference.forward(variant, np.asarray(X), *wb, tau=2.0, threshold=0.4, reset_scale=None,
                            surrogate_alpha=2.0, reset="sampled", seed=SEED)  # fmt: skip
    np.testing.assert_array_equal(np.asarray(out.reset), ref.reset)
    assert 0 < ref.reset.mean() < 1


@pytest.mark.parametrize("variant", ["psu", "rpsu"])
@pytest.mark.parametrize("start", [1, 2, 3])
def test_neuron_offset_draws_as_the_whole(variant, start):
    whole = call(variant, X, **KW)
    piece_neurons = int(np.prod(X.shape[2:]))
    part = call(variant, X[:, start:], **KW, neuron_offset=start * piece_neurons)
    sliced = type(whole)(*(a[:, start:] for a in whole))
    assert_same(part, sliced)
    # Without the offset the part numbers its neurons from 0: other draws.
    assert not np.array_equal(np.asarray(call(variant, X[:, start:], **KW).reset), np.asarray(sliced.reset))


def test_neuron_offset_is_traced_one_program_for_every_value():
    x = jnp.asarray(RNG.normal(size=(5, 7)))
    functional._run.clear_cache()
    outs = [
        psu_jax.psu(x, reset="sampled", seed=1, neuron_offset=o, return_reset=True).reset
        for o in (0, 7, 2**31, 2**32 - 7)
    ]
    assert functional._run._cache_size() == 1
    assert len({np.asarray(o).tobytes() for o in outs}) == 4
    jitted = jax.jit(lambda x, o: psu_jax.psu(x, reset="sampled", seed=1, neuron_offset=o, return_reset=True).reset)
    np.testing.assert_array_equal(np.asarray(jitted(x, jnp.int32(7))), np.asarray(outs[1]))


@pytest.mark.parametrize(
    "bad",
    [-1, 1.5, True, "3", None, 2**32 - 19, np.int64(2**32), jnp.zeros(2, jnp.int32)],
)
def test_bad_neuron_offset_raises_naming_it(bad):
    x = jnp.zeros((3, 4, 5))  # 20 neurons: offsets above 2**32 - 20 overflow the counter word
    with pytest.raises(ValueError, match="neuron_offset"):
        psu_jax.psu(x, reset="sampled", seed=0, neuron_offset=bad)


def test_expected_mode_checks_and_ignores_neuron_offset():
    x = jnp.asarray(RNG.normal(size=(3, 4, 5)))
    a = psu_jax.psu(x, threshold=0.3, return_membrane=True)
    b = psu_jax.psu(x, threshold=0.3, return_membrane=True, neuron_offset=2**32 - 1)
    assert_same(b, a)
    with pytest.raises(ValueError, match="neuron_offset"):
        psu_jax.psu(x, neuron_offset=-1)
    with pytest.raises(ValueError, match="neuron_offset"):
        jax.jit(lambda x, o: psu_jax.psu(x, neuron_offset=o))(x, jnp.float32(1.0))


@pytest.mark.parametrize("variant", ["psu", "rpsu"])
@pytest.mark.parametrize("method", ["dense", "scan", "associative"])
def test_vmap_over_the_batch_axis_draws_as_the_whole(variant, method):
    whole = call(variant, X, **KW, method=method)
    mapped = jax.vmap(lambda xb: call(variant, xb, **KW, method=method), in_axes=1, out_axes=1)(X)
    assert_same(mapped, whole)


def test_vmap_over_stacked_pieces_draws_as_the_whole():
    """Pieces ``[P, T, n1 / P, ...]`` through one vmap: the whole call on ``[T, n1, ...]``."""
    pieces = jnp.stack(jnp.split(X, 2, axis=1))
    mapped = jax.jit(jax.vmap(lambda xp: call("rpsu", xp, **KW)))(pieces)
    joined = type(mapped)(*(jnp.concatenate(list(a), axis=1) for a in mapped))
    assert_same(joined, call("rpsu", X, **KW))


def test_nested_vmap_numbers_outer_then_inner():
    """``vmap(vmap(f))`` over ``[T, B1, B2, n]``: the whole call (outer index more significant)."""
    inner = jax.vmap(lambda xb: call("psu", xb, **KW), in_axes=1, out_axes=1)
    mapped = jax.vmap(inner, in_axes=1, out_axes=1)(X)
    assert_same(mapped, call("psu", X, **KW))


def test_vmap_over_seeds_is_separate_calls():
    """A mapped seed makes each element its own call: the call with that seed, numbered from 0."""
    seeds = [3, 2**40 + 1, 2**64 - 1]
    keys = jnp.stack([psu_jax.random.seed_words(s) for s in seeds])
    x = X[:, 0]
    kw = {k: v for k, v in KW.items() if k != "seed"}
    words_seed = jax.vmap(lambda k: psu_jax.psu(x, **kw, seed=jax.random.wrap_key_data(k)))(keys)
    for i in range(len(seeds)):
        ref = psu_jax.psu(x, **kw, seed=jax.random.wrap_key_data(keys[i]))
        assert_same(type(ref)(*(a[i] for a in words_seed)), ref)
    # The same with both the data and the seed mapped, and under an outer map over the data.
    both = jax.vmap(lambda xb, k: psu_jax.psu(xb, **kw, seed=jax.random.wrap_key_data(k)), in_axes=(1, 0))(
        X[:, :3], keys
    )
    for i in range(3):
        ref = psu_jax.psu(X[:, i], **kw, seed=jax.random.wrap_key_data(keys[i]))
        np.testing.assert_array_equal(np.asarray(both.reset[i]), np.asarray(ref.reset))
    inner = jax.vmap(lambda xb, k: psu_jax.psu(xb, **kw, seed=jax.random.wrap_key_data(k)).reset, in_axes=(None, 0))
    outer = jax.vmap(inner, in_axes=(1, None), out_axes=2)(X, keys)  # [seeds, T, batch, ...]
    for i in range(3):
        ref = psu_jax.psu(X, **kw, seed=jax.random.wrap_key_data(keys[i])).reset
        np.testing.assert_array_equal(np.asarray(outer[i]), np.asarray(ref))


def test_vmap_over_neuron_offsets_is_separate_calls():
    x = X[:, 0]
    offsets = jnp.asarray([0, 5, 1000], jnp.int32)
    mapped = jax.vmap(lambda o: psu_jax.psu(x, **KW, neuron_offset=o))(offsets)
    for i, o in enumerate((0, 5, 1000)):
        np.testing.assert_array_equal(
            np.asarray(mapped.reset[i]), np.asarray(psu_jax.psu(x, **KW, neuron_offset=o).reset)
        )


@pytest.mark.parametrize("variant", ["psu", "rpsu"])
def test_gradient_under_vmap_is_the_whole_calls(variant):
    g_out = jnp.asarray(RNG.normal(size=X.shape))

    def loss(x, w, th, g):
        fn = psu_jax.psu if variant == "psu" else (lambda x, **k: psu_jax.rpsu(x, w, B, **k))
        return jnp.sum(fn(x, threshold=th, reset="sampled", seed=SEED) * g)

    want = jax.grad(loss, argnums=(0, 1, 2))(X, W, 0.4, g_out)
    per_piece = jax.vmap(jax.grad(loss, argnums=(0, 1, 2)), in_axes=(1, None, None, 1), out_axes=(1, 0, 0))(
        X, W, 0.4, g_out
    )
    np.testing.assert_allclose(np.asarray(per_piece[0]), np.asarray(want[0]), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(np.asarray(per_piece[2].sum()), np.asarray(want[2]), rtol=1e-12)
    if variant == "rpsu":
        np.testing.assert_allclose(np.asarray(per_piece[1].sum(0)), np.asarray(want[1]), rtol=1e-12, atol=1e-14)

    def mapped_loss(x, w, th):
        return jnp.sum(jax.vmap(lambda xb, gb: loss(xb, w, th, gb), in_axes=(1, 1))(x, g_out))

    got = jax.grad(mapped_loss, argnums=(0, 1, 2))(X, W, 0.4)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-14)


def test_online_steps_under_vmap_draw_as_the_whole():
    def run(state, x):
        body = lambda s, xt: psu_jax.step(s, xt, threshold=0.4, reset="sampled", seed=SEED)  # noqa: E731
        return jax.lax.scan(body, state, x)[1]

    whole = run(psu_jax.init_state("psu", X.shape[1:], dtype=X.dtype), X)
    np.testing.assert_array_equal(np.asarray(whole.reset), np.asarray(call("psu", X, **KW).reset))
    states = jax.vmap(lambda _: psu_jax.init_state("psu", X.shape[2:], dtype=X.dtype))(jnp.arange(X.shape[1]))
    mapped = jax.vmap(run, in_axes=(0, 1), out_axes=1)(states, X)
    np.testing.assert_array_equal(np.asarray(mapped.reset), np.asarray(whole.reset))
    np.testing.assert_array_equal(np.asarray(mapped.spikes), np.asarray(whole.spikes))
