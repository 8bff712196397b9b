"""The conformance adapter computes each case in a padded shape bucket: what it returns must be
what the public API returns on the exact shape (spikes and draws bit for bit, the rest to
rounding), for short and long T, several neuron shapes and every mode."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import psu_jax
from psu_jax.adapter import JaxAdapter, _layout

RNG = np.random.default_rng(3)
ADAPTER = JaxAdapter()
MODES = [("psu", "expected"), ("psu", "sampled"), ("ipsu", "expected"), ("rpsu", "expected"), ("rpsu", "sampled")]


def case(variant, reset, shape, reset_scale=None):
    T = shape[0]
    learned = variant != "psu"
    return {
        "variant": variant,
        "x": RNG.normal(size=shape) * 1.5,
        "tau": 2.5,
        "threshold": 0.6,
        "reset_scale": reset_scale,
        "surrogate_alpha": 2.0,
        "weight": RNG.normal(size=(T, T)) * 0.6 if learned else None,
        "bias": RNG.normal(size=T) * 0.1 if learned else None,
        "reset": reset,
        "seed": 2**40 + 3 if reset == "sampled" else None,
    }


def exact(c, grad):
    """Forward outputs and gradients from the public API on the unpadded arrays."""
    fn = getattr(psu_jax, c["variant"])
    wb = () if c["weight"] is None else (jnp.asarray(c["weight"]), jnp.asarray(c["bias"]))
    kw = dict(tau=c["tau"], reset_scale=c["reset_scale"], reset=c["reset"], seed=c["seed"])
    out = fn(jnp.asarray(c["x"]), *wb, **kw, threshold=c["threshold"], return_membrane=True, return_reset=True)

    def loss(x, th, al, wb):
        return jnp.sum(fn(x, *wb, **kw, threshold=th, surrogate_alpha=al) * grad)

    g = jax.grad(loss, argnums=(0, 1, 2, 3))(jnp.asarray(c["x"]), c["threshold"], c["surrogate_alpha"], wb)
    return out, g


@pytest.mark.parametrize("variant,reset", MODES)
@pytest.mark.parametrize("shape", [(1, 6), (3, 2, 1, 3), (9, 5), (200, 2, 3)])
def test_bucketed_equals_exact(variant, reset, shape):
    c = case(variant, reset, shape, reset_scale=0.75 if shape[0] == 3 else None)
    lay = _layout(c, "cpu")
    assert lay.shape == shape and lay.T_b >= shape[0] and lay.N_b >= int(np.prod(shape[1:]))
    grad = RNG.normal(size=shape)
    out, (gx, gth, gal, gwb) = exact(c, jnp.asarray(grad))
    fwd = ADAPTER.forward(c, device="cpu", dtype="float64")
    np.testing.assert_array_equal(fwd["spikes"], np.asarray(out.spikes))
    np.testing.assert_allclose(fwd["membrane"], np.asarray(out.membrane), rtol=1e-12, atol=1e-12)
    if reset == "sampled":
        np.testing.assert_array_equal(fwd["reset"], np.asarray(out.reset))
    g = ADAPTER.vjp(c, grad, device="cpu", dtype="float64")
    np.testing.assert_allclose(g["x"], np.asarray(gx), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(g["threshold"], float(gth), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(g["surrogate_alpha"], float(gal), rtol=1e-10, atol=1e-12)
    for k, gk in zip(("weight", "bias"), gwb, strict=False):
        np.testing.assert_allclose(g[k], np.asarray(gk), rtol=1e-10, atol=1e-12)
    on = ADAPTER.online(c, device="cpu", dtype="float64")
    np.testing.assert_array_equal(on["spikes"], np.asarray(out.spikes))
    if reset == "sampled":
        np.testing.assert_array_equal(on["reset"], np.asarray(out.reset))


def test_malformed_cases_are_not_padded():
    """Wrong shapes and dtypes reach the public API as given, so its message names the caller's shapes."""
    c = case("ipsu", "expected", (4, 3))
    c["weight"] = np.zeros((4, 5))
    assert _layout(c, "cpu").shape is None
    with pytest.raises(ValueError, match=r"weight.*\[4, 5\]|\[4, 5\].*weight"):
        ADAPTER.forward(c, device="cpu", dtype="float64")
    c = case("psu", "expected", (4, 3))
    c["x"] = np.arange(12).reshape(4, 3)
    assert _layout(c, "cpu").shape is None


def test_psu_weight_is_refused_in_the_words_of_spec_8():
    """psu(x) has no weight parameter (SPEC §11): a PSU case carrying one is refused as SPEC §8 words
    it (ValueError naming weight), not with Python's TypeError for an unknown keyword."""
    c = case("psu", "expected", (4, 3))
    c["weight"] = np.zeros((4, 4))
    with pytest.raises(ValueError, match="weight must be None for variant 'psu'"):
        ADAPTER.forward(c, device="cpu", dtype="float64")
    with pytest.raises(ValueError, match="weight must be None for variant 'psu'"):
        ADAPTER.vjp(c, np.ones((4, 3)), device="cpu", dtype="float64")


def test_public_api_is_the_package():
    assert ADAPTER.public_api() is psu_jax
    assert set(ADAPTER.api_idioms) == {"psu.neuron_offset", "ipsu.neuron_offset", "rpsu.neuron_offset"}


@pytest.mark.parametrize("variant", ["psu", "rpsu"])
@pytest.mark.parametrize("shape,parts", [((5, 4, 3), 2), ((9, 6, 1, 2), 3), ((200, 2, 3), 2)])
def test_split_forward_equals_forward(variant, shape, parts):
    """The pieces through one vmap, reassembled, are the whole call (draws and spikes bit for bit)."""
    c = case(variant, "sampled", shape)
    whole = ADAPTER.forward(c, device="cpu", dtype="float64")
    split = ADAPTER.split_forward(c, parts, device="cpu", dtype="float64")
    np.testing.assert_array_equal(split["reset"], whole["reset"])
    np.testing.assert_array_equal(split["spikes"], whole["spikes"])
    np.testing.assert_allclose(split["membrane"], whole["membrane"], rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="does not split in 4"):
        ADAPTER.split_forward(case(variant, "sampled", (3, 6)), 4, device="cpu", dtype="float64")
