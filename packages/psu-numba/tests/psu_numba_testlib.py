"""Helpers shared by the psu-numba unit tests (a uniquely named module: every package's tests run
in one pytest process, where a plain ``conftest`` import would be ambiguous)."""

from __future__ import annotations

import numpy as np


def make_case(variant: str, T: int, neuron_shape: tuple[int, ...], seed: int = 0, *, reset: str = "expected"):
    """Inputs drawn so that membranes straddle a threshold of 0.6 (spikes of both kinds)."""
    gen = np.random.default_rng([seed, T, len(neuron_shape)])
    x = gen.normal(0.8, 1.5, size=(T, *neuron_shape))
    g = gen.normal(size=x.shape)
    w = b = None
    if variant != "psu":
        w = gen.normal(size=(T, T)) * np.sqrt(2.0 / T)
        b = gen.normal(size=T) * 0.3
    params = dict(
        tau=1.7,
        threshold=0.6,
        reset_scale=None,
        surrogate_alpha=2.5,
        reset=reset,
        seed=12345 if reset == "sampled" else None,
    )
    return x, g, w, b, params
