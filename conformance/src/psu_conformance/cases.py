"""The inputs the suite feeds adapters: golden vectors, statistical cases, generated large cases,
bad inputs.

Golden cases come from :func:`psu_core.vectors.load_cases` (SPEC §10), the sampled group's large
statistical cases from ``statistics.json`` (:func:`psu_core.vectors.load_statistics`). Generated
cases are larger inputs drawn here from a fixed NumPy seed, for the determinism checks, which
compare a backend with itself and need no expected values. The bad-input table is SPEC §8 turned
into calls.
"""

from __future__ import annotations

import copy
import functools
import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from psu_core import checks, vectors
from psu_core.vectors import VectorCase
from psu_core.vectors.calls import decode_call

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


@functools.lru_cache(maxsize=1)
def statistics() -> dict[str, Any]:
    """``statistics.json`` (cached; treat as read-only): ``cases`` (large sampled cases with the
    reference's mean(P) and binomial sd), ``frequency_sigmas``, and ``uniforms`` (shape, two seeds,
    the fraction of positions where their streams must differ)."""
    return vectors.load_statistics()


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

#: bad_input.json's kinds as the exceptions a Python backend raises.
EXCEPTIONS: dict[str, type[Exception]] = {"invalid_type": TypeError, "invalid_value": ValueError}


@functools.lru_cache(maxsize=1)
def bad_input_table() -> dict[str, Any]:
    """``bad_input.json`` (cached; treat as read-only)."""
    return vectors.load_bad_input()


def valid_case(variant: str) -> dict[str, Any]:
    """A small correct call of ``variant`` (expected reset), the base of every bad input (fresh)."""
    return decode_call(bad_input_table()["bases"][variant])


def _call(variant: str, changes: dict[str, Any]) -> dict[str, Any]:
    case = valid_case(variant)
    case.update(decode_call(changes))
    return case


@dataclass(frozen=True)
class BadInput:
    """One wrong call: start from the valid small case of ``variant``, apply ``changes`` (JSON-encoded,
    as in ``bad_input.json``); the call must raise ``exception`` whose message names ``argument``."""

    id: str
    variant: str
    changes: dict[str, Any] = field(repr=False)
    exception: type[Exception] = ValueError
    argument: str = ""

    def case(self) -> dict[str, Any]:
        return _call(self.variant, self.changes)


@dataclass(frozen=True)
class AcceptedInput:
    """A call that must NOT raise: a base with ``validate=True``, or NaN in ``x`` unvalidated (what
    the outputs then hold is unspecified: scanning the data is opt-in, SPEC §8)."""

    id: str
    variant: str
    changes: dict[str, Any] = field(repr=False)

    def case(self) -> dict[str, Any]:
        return _call(self.variant, self.changes)


def names_argument(message: str, argument: str) -> bool:
    """True when ``argument`` appears in ``message`` as a whole identifier (``reset`` does not
    match inside ``reset_scale``)."""
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(argument)}(?![A-Za-z0-9_])", message) is not None


#: SPEC §8 as calls, from bad_input.json; ids are readable test ids.
BAD_INPUTS: tuple[BadInput, ...] = tuple(
    BadInput(r["id"], r["variant"], r["changes"], EXCEPTIONS[r["kind"]], r["argument"])
    for r in bad_input_table()["rejected"]
)
#: The calls that must be accepted, from bad_input.json.
ACCEPTED_INPUTS: tuple[AcceptedInput, ...] = tuple(
    AcceptedInput(a["id"], a["variant"], a["changes"]) for a in bad_input_table()["accepted"]
)


# ----------------------------------------------------------------------------- non-finite inputs (R1)


@functools.lru_cache(maxsize=1)
def nonfinite_cases() -> tuple[vectors.NonfiniteCase, ...]:
    """psu-core's ``nonfinite.json`` (:func:`psu_core.vectors.load_nonfinite`; cached, read-only)."""
    return tuple(vectors.load_nonfinite())
