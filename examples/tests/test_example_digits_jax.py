"""The JAX / Flax NNX digits example learns with PSU; its LIF baseline matches the torch one."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("flax", reason="the JAX example needs Flax NNX (pip install flax)")
pytest.importorskip("psu_jax")

import jax.numpy as jnp  # noqa: E402

import digits  # noqa: E402
import snn_jax  # noqa: E402

SHORT = digits.Config(epochs=2)


@pytest.fixture(scope="module")
def psu_history(digits_data):
    return snn_jax.train_digits("psu", SHORT, digits_data, show_progress=False)


def test_psu_learns_well_above_chance(psu_history):
    h = psu_history
    assert len(h.epochs) == SHORT.epochs
    assert h.final.test_accuracy > 0.5, f"test accuracy {h.final.test_accuracy} (chance is 0.1)"
    assert 0.0 < h.final.firing_rate < 1.0
    assert h.epochs[-1].train_loss < h.epochs[0].train_loss


def test_same_seed_same_numbers(psu_history, digits_data):
    # the same structure and settings find the compiled steps again: seconds, not a compile
    again = snn_jax.train_digits("psu", SHORT, digits_data, show_progress=False)
    key = lambda h: [(e.train_loss, e.train_accuracy, e.test_accuracy, e.firing_rate) for e in h.epochs]
    assert key(again) == key(psu_history)


def test_lif_matches_torch():
    torch = pytest.importorskip("torch")
    import snn_torch

    x = np.random.default_rng(0).normal(1.0, 1.0, size=(8, 3, 5)).astype(np.float32)
    want = snn_torch.LIF(tau=2.0, threshold=0.5)(torch.from_numpy(x)).numpy()
    got = np.asarray(snn_jax.LIF(tau=2.0, threshold=0.5)(jnp.asarray(x)))
    assert 0 < want.mean() < 1
    np.testing.assert_array_equal(got, want)


def test_lif_surrogate_is_arctan():
    import jax

    g = jax.grad(lambda d: snn_jax.arctan_spike(d, 2.0).sum())(jnp.array([-0.3, 0.0, 0.2]))
    want = [2.0 / (2 * (1 + (np.pi / 2 * 2.0 * v) ** 2)) for v in (-0.3, 0.0, 0.2)]
    np.testing.assert_allclose(np.asarray(g), want, rtol=1e-6)
