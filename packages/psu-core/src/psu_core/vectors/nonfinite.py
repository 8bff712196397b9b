"""``nonfinite.json`` (SPEC §1, §10): causality whatever the values, as golden cases.

Each case is a small finite call (inputs drawn as the grid's, a margin away from every threshold)
and a list of replacements that put NaN or an infinity at step ``t0``: in ``x`` (one neuron), or,
for IPSU and RPSU, NaN in ``W[t0, j <= t0]`` or in ``b[t0]``. A port applies the replacements, runs
forward (``validate=False``) and must match ``expected`` -- the reference's outputs of the first
``t0`` steps on the finite inputs -- give a non-finite value at each ``nonfinite`` position,
spikes in {0, 1} everywhere, and not raise.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from psu_core import FORMAT_VERSION, reference
from psu_core.vectors import apply_replacements, from_array
from psu_core.vectors.calls import NON_FINITE, encode_seed

NONFINITE_ROOT_SEED = 20261201
T, STEP = 8, 4
#: The seed of each variant's sampled cases (one beyond 2**53).
SEEDS = {"psu": 5, "rpsu": 2**64 - 3}
MODES = (("psu", "expected"), ("psu", "sampled"), ("ipsu", "expected"), ("rpsu", "expected"), ("rpsu", "sampled"))


def plan() -> Iterator[tuple[str, str, tuple[int, ...], str, list[int], str]]:
    """(variant, reset, neuron shape, input, at, value): x gets NaN, +inf and -inf at one neuron of
    step ``STEP``; IPSU and RPSU also NaN in ``W[STEP, 1]`` (lower triangle) and in ``b[STEP]``."""
    for k, (variant, reset) in enumerate(MODES):
        shape = ((3,), (2, 3))[k % 2]
        neuron = [1] if len(shape) == 1 else [1, 2]
        for value in NON_FINITE:
            yield variant, reset, shape, "x", [STEP, *neuron], value
        if variant != "psu":
            yield variant, reset, shape, "weight", [STEP, 1], "NaN"
            yield variant, reset, shape, "bias", [STEP], "NaN"


def make_nonfinite() -> dict[str, Any]:
    # Imported here: generate imports this module.
    from psu_core.vectors.generate import Spec, _inputs, _learned

    gen = np.random.Generator(np.random.PCG64(NONFINITE_ROOT_SEED))
    cases = []
    for variant, reset, shape, name, at, value in plan():
        seed = SEEDS[variant] if reset == "sampled" else None
        preset = "reference" if variant != "psu" else "tied"
        spec = Spec(variant, reset, T, shape, 1.0, preset, 3.0, 2.0, seed)
        w, b = _learned(gen, spec)
        x, _ = _inputs(gen, spec, w, b)
        params = {"tau": spec.tau, "threshold": spec.threshold, "reset_scale": spec.reset_scale,
                  "surrogate_alpha": spec.alpha, "reset": reset, "seed": seed}  # fmt: skip
        finite = {"x": x, "weight": w, "bias": b}
        replace = [{"input": name, "at": at, "value": value}]
        base = reference.forward(variant, x, w, b, **params)
        got = reference.forward(variant, **apply_replacements(finite, replace), **params)
        for key in ("spikes", "membrane", "reset_probability", "reset", "uniform"):
            u, v = getattr(base, key), getattr(got, key)
            assert u is None or np.array_equal(u[:STEP], v[:STEP], equal_nan=True), (variant, name, key)
        assert np.isin(got.spikes, (0.0, 1.0)).all()
        if name == "x":
            nonfinite = [{"output": "membrane", "at": at}]
        else:  # every neuron of step t0: IPSU's membrane, RPSU's reset probability
            output = "membrane" if variant == "ipsu" else "reset_probability"
            nonfinite = [{"output": output, "at": [STEP, *map(int, i)]} for i in np.ndindex(*shape)]
        for n in nonfinite:
            assert not np.isfinite(getattr(got, n["output"])[tuple(n["at"])]), (variant, name, n)
        opt = lambda a, integer=False: None if a is None else from_array(a[:STEP], integer)  # noqa: E731
        n_tag = "x".join(map(str, shape))
        cases.append(
            {
                "id": f"{variant}-{reset}-T{T}-N{n_tag}-{name}@{'.'.join(map(str, at))}-{value}",
                "variant": variant,
                "reset": reset,
                **{k: v for k, v in params.items() if k not in ("reset", "seed")},
                "seed": encode_seed(seed),
                "step": STEP,
                "inputs": {k: None if v is None else from_array(v) for k, v in finite.items()},
                "replace": replace,
                "expected": {
                    "spikes": opt(base.spikes, True),
                    "membrane": opt(base.membrane),
                    "reset_probability": opt(base.reset_probability),
                    "reset": opt(base.reset, True),
                    "uniform": opt(base.uniform),
                },
                "nonfinite": nonfinite,
            }
        )
    return {"format_version": FORMAT_VERSION, "cases": cases}
