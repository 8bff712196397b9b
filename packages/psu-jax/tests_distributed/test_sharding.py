"""psu-jax on 2 and 4 virtual CPU devices (conftest.py): sharded calls compute and draw what the
single-device call does.

* ``jax.jit`` with ``NamedSharding`` over the batch axis, over the neuron (feature) axis, and over
  both on a 2 x 2 mesh: functions and NNX modules give the single-device outputs (spikes and draws
  bit for bit, membrane to rounding) and gradients (to rounding: sums over neurons are reduced in
  another order), in expected and sampled mode, for T = 8 (dense method) and T = 160 (``lax.scan``
  on the CPU). Nothing is passed for the draws: the program has the global shapes, so each device
  computes its own block of the global counters.
* The compiled HLO (``jax.jit(f).lower(...).compile().as_text()``, after SPMD partitioning) of
  the forward call and of its gradient holds no ``all-gather``, ``all-to-all`` or
  ``collective-permute``: no device fetches another's input (along time or any axis); the only
  collectives are the ``all-reduce`` of the gradient sums over neurons (threshold, alpha, weight,
  bias). The outputs keep the input's sharding. A control shows the check sees a gather: a call
  that flattens a sharded feature axis into the neuron axis compiles to one.
* ``shard_map``: each shard passes ``neuron_offset = lax.axis_index(axis) * local_neurons`` and
  the shards together draw the whole call's resets bit for bit (without it they do not).
* ``jax.vmap`` inside ``jit`` over a sharded batch axis draws the whole call's resets.
"""

from __future__ import annotations

import re
from functools import cache

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

import psu_jax

DEVICES = np.array(jax.devices())
SEED = 2**40 + 7
B, F = 4, 8  # x is [T, B, F]: batch, then features; both split by 2 and by 4
MODES = [("psu", "expected"), ("psu", "sampled"), ("ipsu", "expected"), ("rpsu", "expected"), ("rpsu", "sampled")]
LAYOUTS = {
    "batch/2": (("d",), (2,), P(None, "d")),
    "batch/4": (("d",), (4,), P(None, "d")),
    "neurons/2": (("d",), (2,), P(None, None, "d")),
    "neurons/4": (("d",), (4,), P(None, None, "d")),
    "batch/2xneurons/2": (("b", "n"), (2, 2), P(None, "b", "n")),
}
MOVES_DATA = re.compile(r"\s(all-gather|all-to-all|collective-permute)(-start)?\(")


def mesh(layout: str) -> tuple[Mesh, P]:
    names, shape, spec = LAYOUTS[layout]
    return Mesh(DEVICES[: int(np.prod(shape))].reshape(shape), names), spec


@cache
def data(T: int) -> tuple[jax.Array, ...]:
    rng = np.random.default_rng(T)
    x = jnp.asarray(rng.normal(size=(T, B, F)) * 1.5)
    w = jnp.asarray(rng.normal(size=(T, T)) * 0.6 / np.sqrt(T / 8))
    b = jnp.asarray(rng.normal(size=T) * 0.1)
    g = jnp.asarray(rng.normal(size=(T, B, F)))
    return x, w, b, g


def functions(variant: str, reset: str):
    """``forward(x, w, b, theta, alpha) -> PSUOutput`` and its gradient w.r.t. every floating argument."""
    kw = dict(reset=reset, seed=SEED if reset == "sampled" else None, tau=2.5)

    def forward(x, w, b, theta, alpha):
        fn = psu_jax.psu if variant == "psu" else getattr(psu_jax, variant)
        wb = () if variant == "psu" else (w, b)
        return fn(x, *wb, threshold=theta, surrogate_alpha=alpha, **kw, return_membrane=True, return_reset=True)

    def loss(x, w, b, theta, alpha, g):
        return jnp.sum(forward(x, w, b, theta, alpha).spikes * g)

    argnums = (0, 3, 4) if variant == "psu" else (0, 1, 2, 3, 4)
    return forward, jax.grad(loss, argnums=argnums)


def assert_no_data_movement(compiled_text: str, what: str) -> None:
    found = sorted({m.group(1) for m in MOVES_DATA.finditer(compiled_text)})
    assert not found, f"{what}: the compiled program moves data between devices with {found}"


def assert_outputs_equal(got, want) -> None:
    np.testing.assert_array_equal(np.asarray(got.spikes), np.asarray(want.spikes))
    np.testing.assert_allclose(np.asarray(got.membrane), np.asarray(want.membrane), rtol=1e-12, atol=1e-12)
    if want.reset is None:
        assert got.reset is None
    else:
        np.testing.assert_array_equal(np.asarray(got.reset), np.asarray(want.reset))


def assert_grads_equal(got, want) -> None:
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-11, atol=1e-12)


@cache
def single_device(variant: str, reset: str, T: int):
    forward, grad = functions(variant, reset)
    x, w, b, g = data(T)
    with jax.default_device(DEVICES[0]):
        return jax.jit(forward)(x, w, b, 0.6, 2.0), jax.jit(grad)(x, w, b, 0.6, 2.0, g)


@pytest.mark.parametrize("T", [8, 160])
@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("variant,reset", MODES)
def test_jit_with_named_sharding_equals_single_device(variant, reset, layout, T):
    forward, grad = functions(variant, reset)
    want_out, want_grad = single_device(variant, reset, T)
    m, spec = mesh(layout)
    x, w, b, g = data(T)
    sharded = NamedSharding(m, spec)
    xs, gs = jax.device_put(x, sharded), jax.device_put(g, sharded)
    w, b = jax.device_put((w, b), NamedSharding(m, P()))  # the [T, T] matrix and bias: replicated
    fwd = jax.jit(forward).lower(xs, w, b, 0.6, 2.0).compile()
    bwd = jax.jit(grad).lower(xs, w, b, 0.6, 2.0, gs).compile()
    assert_no_data_movement(fwd.as_text(), f"{variant} {reset} forward, x sharded {layout}")
    assert_no_data_movement(bwd.as_text(), f"{variant} {reset} gradient, x sharded {layout}")
    out = fwd(xs, w, b, 0.6, 2.0)
    assert_outputs_equal(out, want_out)
    for a in (out.spikes, out.membrane):
        assert a.sharding.is_equivalent_to(sharded, a.ndim), f"output sharded {a.sharding}, input {sharded}"
    got_grad = bwd(xs, w, b, 0.6, 2.0, gs)
    assert got_grad[0].sharding.is_equivalent_to(sharded, 3)
    assert_grads_equal(got_grad, want_grad)


def test_the_hlo_check_sees_a_gather():
    """Control: flattening the sharded feature axis into one neuron axis cannot stay sharded as
    ``[T, B * F]`` blocks, so the partitioner gathers the input; the check reports it."""
    m, spec = mesh("neurons/2")
    x = jax.device_put(data(8)[0], NamedSharding(m, spec))
    text = jax.jit(lambda x: psu_jax.psu(x.reshape(x.shape[0], -1))).lower(x).compile().as_text()
    with pytest.raises(AssertionError, match="all-gather"):
        assert_no_data_movement(text, "flattened")


def modules(variant: str, reset: str, T: int):
    """The same module twice (same seeds: same parameters and the same stream of sampled keys)."""

    def make():
        rngs = nnx.Rngs(params=0, reset=1)
        kw = dict(reset=reset, learn_threshold=True, threshold=0.6, rngs=rngs)
        return psu_jax.PSU(**kw) if variant == "psu" else getattr(psu_jax, variant.upper())(T, **kw)

    return make(), make()


@pytest.mark.parametrize("layout", ["batch/4", "neurons/4", "batch/2xneurons/2"])
@pytest.mark.parametrize("variant,reset", MODES)
def test_nnx_modules_under_jit_with_named_sharding(variant, reset, layout):
    T = 8
    x, _, _, g = data(T)
    m, spec = mesh(layout)
    xs, gs = jax.device_put((x, g), NamedSharding(m, spec))
    ref, sharded = modules(variant, reset, T)

    @nnx.jit
    def forward(module, x):
        return module(x, return_membrane=True)

    @nnx.jit
    def grads(module, x, g):
        return nnx.grad(lambda mod: jnp.sum(mod(x) * g))(module)

    with jax.default_device(DEVICES[0]):
        want_out, want_grad = forward(ref, x), grads(ref, x, g)
    assert_outputs_equal(forward(sharded, xs), want_out)
    got_grad = grads(sharded, xs, gs)
    assert jax.tree.structure(got_grad) == jax.tree.structure(want_grad)
    assert_grads_equal(got_grad, want_grad)
    if reset == "sampled":  # the two modules drew the same keys; a third call draws another
        again = forward(sharded, xs)
        assert not np.array_equal(np.asarray(again.spikes), np.asarray(want_out.spikes))


def shard_map_fn():
    return getattr(jax, "shard_map", None) or __import__("jax.experimental.shard_map", fromlist=["x"]).shard_map


@pytest.mark.parametrize("devices", [2, 4])
@pytest.mark.parametrize("variant", ["psu", "rpsu"])
def test_shard_map_with_neuron_offset_draws_as_the_whole(variant, devices):
    """Sharded over the batch (the first neuron axis): shard ``k`` holds the neurons
    ``k * local .. (k + 1) * local - 1`` of the whole call, so it passes ``neuron_offset = k * local``."""
    x, w, b, g = data(8)
    m = Mesh(DEVICES[:devices], ("d",))
    kw = dict(threshold=0.6, reset="sampled", seed=SEED, return_membrane=True, return_reset=True)
    wb = () if variant == "psu" else (w, b)
    fn = psu_jax.psu if variant == "psu" else psu_jax.rpsu

    def local(x, with_offset=True):  # x: this shard's [T, B / devices, F]
        local_neurons = x.size // x.shape[0]
        offset = jax.lax.axis_index("d") * local_neurons if with_offset else 0
        return fn(x, *wb, **kw, neuron_offset=offset)

    smap = shard_map_fn()
    sharded = jax.jit(smap(local, mesh=m, in_specs=P(None, "d"), out_specs=P(None, "d")))
    whole = fn(x, *wb, **kw)
    xs = jax.device_put(x, NamedSharding(m, P(None, "d")))
    assert_outputs_equal(sharded(xs), whole)
    unnumbered = jax.jit(smap(lambda x: local(x, False), mesh=m, in_specs=P(None, "d"), out_specs=P(None, "d")))
    assert not np.array_equal(np.asarray(unnumbered(xs).reset), np.asarray(whole.reset))

    # Gradients: x's stays sharded; the replicated threshold, alpha, weight and bias get the sum
    # of the shards' parts (the transpose of JAX's cast of a replicated value to a sharded one).
    def loss(x, theta, alpha, w, b, g, offset):
        wb = () if variant == "psu" else (w, b)
        kw2 = dict(kw, threshold=theta, surrogate_alpha=alpha)
        return jnp.sum(fn(x, *wb, **kw2, neuron_offset=offset).spikes * g)

    def loss_local(x, theta, alpha, w, b, g):
        return loss(x, theta, alpha, w, b, g, jax.lax.axis_index("d") * (x.size // x.shape[0]))

    argnums = (0, 1, 2) if variant == "psu" else (0, 1, 2, 3, 4)
    specs = (P(None, "d"), P(), P(), P(), P(), P(None, "d"))
    grad_sharded = jax.jit(smap(jax.grad(loss_local, argnums), mesh=m, in_specs=specs,
                                out_specs=tuple(specs[i] for i in argnums)))  # fmt: skip
    args = (0.6, 2.0, w, b)
    want = jax.grad(loss, argnums)(x, *args, g, 0)
    assert_grads_equal(grad_sharded(xs, *(jnp.asarray(a) for a in args), jax.device_put(g, xs.sharding)), want)


def test_vmap_inside_jit_over_a_sharded_batch_draws_as_the_whole():
    x, *_ = data(8)
    m, spec = mesh("batch/4")
    kw = dict(threshold=0.6, reset="sampled", seed=SEED, return_reset=True)
    mapped = jax.jit(jax.vmap(lambda xb: psu_jax.psu(xb, **kw), in_axes=1, out_axes=1))
    got = mapped(jax.device_put(x, NamedSharding(m, spec)))
    np.testing.assert_array_equal(np.asarray(got.reset), np.asarray(psu_jax.psu(x, **kw).reset))
