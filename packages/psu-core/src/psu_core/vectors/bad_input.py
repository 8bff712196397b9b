"""The bad-input table of SPEC §8 as data: ``bad_input.json``, one entry per wrong call.

Every call starts from a small valid call of its variant (``bases``: ``x [4, 3]``, ``weight [4, 4]``,
``bias [4]``, expected reset) and changes one argument. ``rejected`` lists the calls that must
raise, with the exception kind (``invalid_type`` = ``TypeError``, ``invalid_value`` =
``ValueError``) and the argument the message names; ``accepted`` the calls that must not raise
(the bases with ``validate=True``, and NaN in ``x`` without it: scanning is opt-in). Calls are in
the JSON encoding of :mod:`psu_core.vectors.calls`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from psu_core import FORMAT_VERSION, checks
from psu_core.vectors.calls import encode_call

SMALL_T = 4
SMALL_NEURONS = (3,)


def base_call(variant: str) -> dict[str, Any]:
    """A small correct call of ``variant`` (expected reset), the base of every bad input."""
    gen = np.random.default_rng([checks.VARIANTS.index(variant), 11])
    learned = variant != "psu"
    return {
        "variant": variant,
        "x": gen.standard_normal((SMALL_T, *SMALL_NEURONS)),
        "tau": 2.0,
        "threshold": 1.0,
        "reset_scale": None,
        "surrogate_alpha": 2.0,
        "weight": gen.standard_normal((SMALL_T, SMALL_T)) if learned else None,
        "bias": gen.standard_normal(SMALL_T) if learned else None,
        "reset": "expected",
        "seed": None,
        "validate": False,
    }


def _nan_x() -> np.ndarray:
    x: np.ndarray = base_call("psu")["x"]
    x[1, 0] = np.nan
    return x


def _rejected() -> Iterator[tuple[str, str, dict[str, Any], str, str]]:
    """(id, variant, changes, kind, argument) for every row of SPEC §8."""
    value = "invalid_value"
    for arg, values in (
        ("tau", [1.0, 0.5, math.nan, math.inf]),
        ("threshold", [0.0, -1.0, math.nan, math.inf]),
        ("surrogate_alpha", [0.0, -2.0, math.nan]),
        ("reset_scale", [-1.0, math.nan]),
    ):
        for v in values:
            yield f"psu-{arg}={v!r}", "psu", {arg: v}, value, arg
    for v in ("ipsu", "rpsu"):
        yield f"{v}-weight-shape", v, {"weight": np.zeros((SMALL_T, SMALL_T + 1))}, value, "weight"
        yield f"{v}-weight-missing", v, {"weight": None}, value, "weight"
        yield f"{v}-bias-shape", v, {"bias": np.zeros(SMALL_T + 1)}, value, "bias"
    yield "psu-weight-given", "psu", {"weight": np.zeros((SMALL_T, SMALL_T))}, value, "weight"
    x_int = np.arange(SMALL_T * 3, dtype=np.int64).reshape(SMALL_T, 3)
    yield "psu-x-integer", "psu", {"x": x_int}, "invalid_type", "x"
    yield "psu-x-T0", "psu", {"x": np.zeros((0, 3))}, value, "x"
    yield "psu-reset=foo", "psu", {"reset": "foo"}, value, "reset"
    for v in ("psu", "rpsu"):
        yield f"{v}-sampled-seed=None", v, {"reset": "sampled", "seed": None}, value, "seed"
    yield "psu-sampled-seed=-1", "psu", {"reset": "sampled", "seed": -1}, value, "seed"
    yield "psu-sampled-seed=2**64", "psu", {"reset": "sampled", "seed": 2**64}, value, "seed"
    yield "ipsu-sampled", "ipsu", {"reset": "sampled", "seed": 0}, value, "reset"
    yield "psu-validate-nan", "psu", {"x": _nan_x(), "validate": True}, value, "x"


def make_bad_input() -> dict[str, Any]:
    """The document written as ``bad_input.json``."""
    rejected = [
        {"id": i, "variant": v, "changes": encode_call(c), "kind": kind, "argument": arg}
        for i, v, c, kind, arg in _rejected()
    ]
    accepted = [{"id": f"{v}-valid-validate", "variant": v, "changes": {"validate": True}} for v in checks.VARIANTS]
    accepted.append({"id": "psu-nan-unvalidated", "variant": "psu", "changes": encode_call({"x": _nan_x()})})
    return {
        "format_version": FORMAT_VERSION,
        "bases": {v: encode_call(base_call(v)) for v in checks.VARIANTS},
        "rejected": rejected,
        "accepted": accepted,
    }
