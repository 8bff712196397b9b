"""The inputs the suite feeds adapters: golden vectors, generated large cases, bad inputs.

Golden cases come from :func:`psu_core.vectors.load_cases` (SPEC §10). Generated cases are larger
inputs drawn here from a fixed NumPy seed, for the statistical and determinism checks that need
many neurons; their expected values come from :mod:`psu_core.reference` where needed. The
bad-input table is SPEC §8 turned into calls.
"""

from __future__ import annotations

import copy
import functools
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from psu_core import checks, vectors
from psu_core.vectors import VectorCase

VARIANTS = checks.VARIANTS
#: (variant, reset) pairs that exist (sampled mode is PSU/RPSU only, SPEC §6).
MODES = (("psu", "expected"), ("psu", "sampled"), ("ipsu", "expected"), ("rpsu", "expected"), ("rpsu", "sampled"))


@functools.lru_cache(maxsize=1)
def vector_cases() -> tuple[VectorCase, ...]:
    """All golden cases, in file order (cached; treat as read-only)."""
    return tuple(vectors.load_cases())


@functools.lru_cache(maxsize=1)
def rng_vectors() -> dict[str, Any]:
    """``rng.json`` (cached; treat as read-only)."""
    return vectors.load_rng()


def adapter_case(vc: VectorCase) -> dict[str, Any]:
    """A fresh adapter case for a golden case (fresh copies: an adapter may not corrupt the vectors)."""
    return vc.to_adapter_case()


# ----------------------------------------------------------------------------- generated cases


@dataclass(frozen=True)
class GeneratedCase:
    """A larger case drawn from a fixed seed: ``case`` is the adapter mapping."""

    id: str
    case: dict[str, Any] = field(repr=False)
    grad_spikes: np.ndarray = field(repr=False)

    def fresh(self) -> dict[str, Any]:
        return copy.deepcopy(self.case)


def generated_case(variant: str, reset: str, *, T: int = 8, N: int = 4096, seed: int = 20240211) -> GeneratedCase:
    """PSU/IPSU/RPSU input ``x [T, N]`` ~ Normal(0, 1), RPSU/IPSU ``weight`` ~ Normal(0, 2/T) (the
    reference initialisation, upper triangle included so that a missing mask shows), ``bias`` ~
    Normal(0, 0.1^2), ``grad_spikes`` ~ Normal(0, 1); threshold 1, tau 2, tied reset scale.
    ``seed`` is the reset seed in sampled mode; the data come from a NumPy generator seeded from
    (variant, T, N) so that every run and machine sees the same inputs."""
    data_seed = [VARIANTS.index(variant), T, N, 7]
    gen = np.random.default_rng(data_seed)
    x = gen.standard_normal((T, N))
    weight = bias = None
    if variant != "psu":
        weight = gen.standard_normal((T, T)) * math.sqrt(2.0 / T)
        bias = gen.standard_normal(T) * 0.1
    grad_spikes = gen.standard_normal((T, N))
    case = {
        "variant": variant,
        "x": x,
        "tau": 2.0,
        "threshold": 1.0,
        "reset_scale": None,
        "surrogate_alpha": 2.0,
        "weight": weight,
        "bias": bias,
        "reset": reset,
        "seed": seed if reset == "sampled" else None,
    }
    seed_part = f"-seed{seed}" if reset == "sampled" else ""
    return GeneratedCase(f"gen-{variant}-{reset}-T{T}-N{N}{seed_part}", case, grad_spikes)


# ----------------------------------------------------------------------------- bad input (SPEC §8)


@dataclass(frozen=True)
class BadInput:
    """One wrong call: start from the valid small case of ``variant``, apply ``changes``; the call
    must raise ``exception`` whose message names ``argument``."""

    id: str
    variant: str
    changes: dict[str, Any] = field(repr=False)
    exception: type[Exception] = ValueError
    argument: str = ""

    def case(self) -> dict[str, Any]:
        case = valid_case(self.variant)
        case.update(copy.deepcopy(self.changes))
        return case


SMALL_T = 4
SMALL_NEURONS = (3,)


def valid_case(variant: str) -> dict[str, Any]:
    """A small correct call of ``variant`` (expected reset), the base of every bad input."""
    gen = np.random.default_rng([VARIANTS.index(variant), 11])
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
    }


def names_argument(message: str, argument: str) -> bool:
    """True when ``argument`` appears in ``message`` as a whole identifier (``reset`` does not
    match inside ``reset_scale``)."""
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(argument)}(?![A-Za-z0-9_])", message) is not None


def _nan_x() -> np.ndarray:
    x: np.ndarray = valid_case("psu")["x"]
    x[1, 0] = np.nan
    return x


def _bad_inputs() -> Iterator[BadInput]:
    def scalar(arg: str, values: list[Any]) -> Iterator[BadInput]:
        for v in values:
            yield BadInput(f"psu-{arg}={v!r}", "psu", {arg: v}, ValueError, arg)

    yield from scalar("tau", [1.0, 0.5, math.nan, math.inf])
    yield from scalar("threshold", [0.0, -1.0, math.nan, math.inf])
    yield from scalar("surrogate_alpha", [0.0, -2.0, math.nan])
    yield from scalar("reset_scale", [-1.0, math.nan])
    for v in ("ipsu", "rpsu"):
        yield BadInput(f"{v}-weight-shape", v, {"weight": np.zeros((SMALL_T, SMALL_T + 1))}, ValueError, "weight")
        yield BadInput(f"{v}-weight-missing", v, {"weight": None}, ValueError, "weight")
        yield BadInput(f"{v}-bias-shape", v, {"bias": np.zeros(SMALL_T + 1)}, ValueError, "bias")
    yield BadInput("psu-weight-given", "psu", {"weight": np.zeros((SMALL_T, SMALL_T))}, ValueError, "weight")
    yield BadInput(
        "psu-x-integer", "psu", {"x": np.arange(SMALL_T * 3, dtype=np.int64).reshape(SMALL_T, 3)}, TypeError, "x"
    )
    yield BadInput("psu-x-T0", "psu", {"x": np.zeros((0, 3))}, ValueError, "x")
    yield BadInput("psu-reset=foo", "psu", {"reset": "foo"}, ValueError, "reset")
    for v in ("psu", "rpsu"):
        yield BadInput(f"{v}-sampled-seed=None", v, {"reset": "sampled", "seed": None}, ValueError, "seed")
    yield BadInput("psu-sampled-seed=-1", "psu", {"reset": "sampled", "seed": -1}, ValueError, "seed")
    yield BadInput("psu-sampled-seed=2**64", "psu", {"reset": "sampled", "seed": 2**64}, ValueError, "seed")
    yield BadInput("ipsu-sampled", "ipsu", {"reset": "sampled", "seed": 0}, ValueError, "reset")
    yield BadInput("psu-validate-nan", "psu", {"x": _nan_x(), "validate": True}, ValueError, "x")


#: SPEC §8 as calls; ids are readable test ids.
BAD_INPUTS: tuple[BadInput, ...] = tuple(_bad_inputs())


def nan_input_unvalidated() -> dict[str, Any]:
    """NaN in ``x`` with ``validate=False``: the contract is that this does NOT raise (scanning the
    data is opt-in, SPEC §8); what the outputs hold is unspecified."""
    case = valid_case("psu")
    case["x"] = _nan_x()
    case["validate"] = False
    return case
