"""Golden vectors (SPEC §10): where they live and how to read them.

``load_cases()`` returns :class:`VectorCase` objects with NumPy arrays; ``load_rng()`` the
Threefry answers and uniform streams; ``load_bad_input()`` the bad-input table of SPEC §8 (calls in
the encoding of :mod:`psu_core.vectors.calls`). The files are produced by ``python -m psu_core.vectors
generate`` and checked by ``python -m psu_core.vectors verify``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

DATA_DIR = Path(__file__).resolve().parent / "data"
CASE_FILES = ("psu-expected", "psu-sampled", "ipsu-expected", "rpsu-expected", "rpsu-sampled")


def to_array(obj: dict[str, Any] | None) -> np.ndarray | None:
    """``{"shape": [...], "data": [...]}`` -> float64 NumPy array (``None`` stays ``None``)."""
    if obj is None:
        return None
    return np.asarray(obj["data"], dtype=np.float64).reshape(obj["shape"])


def from_array(a: np.ndarray, integer: bool = False) -> dict[str, Any]:
    """NumPy array -> ``{"shape", "data"}`` (C order; 0/1 integers when ``integer``)."""
    a = np.asarray(a)
    data = a.astype(np.int64 if integer else np.float64).ravel().tolist()
    return {"shape": list(a.shape), "data": data}


@dataclass(frozen=True)
class VectorCase:
    """One golden case: parameters, inputs, expected outputs and gradients (float64 arrays)."""

    id: str
    variant: str
    reset: str
    tau: float
    threshold: float
    reset_scale: float | None
    surrogate_alpha: float
    preset: str
    seed: int | None
    x: np.ndarray
    weight: np.ndarray | None
    bias: np.ndarray | None
    grad_spikes: np.ndarray
    expected: dict[str, np.ndarray | None] = field(repr=False)
    gradients: dict[str, Any] = field(repr=False)

    @property
    def T(self) -> int:
        return int(self.x.shape[0])

    def params(self) -> dict[str, Any]:
        """Keyword arguments for :func:`psu_core.reference.forward` and the framework APIs."""
        return {
            "tau": self.tau,
            "threshold": self.threshold,
            "reset_scale": self.reset_scale,
            "surrogate_alpha": self.surrogate_alpha,
            "reset": self.reset,
            "seed": self.seed,
        }

    def to_adapter_case(self) -> dict[str, Any]:
        """The plain mapping the conformance adapters take (:class:`psu_conformance.adapter.Case`)."""
        return {
            "variant": self.variant,
            "x": self.x.copy(),
            "weight": None if self.weight is None else self.weight.copy(),
            "bias": None if self.bias is None else self.bias.copy(),
            **self.params(),
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> VectorCase:
        inputs = obj["inputs"]
        grads = obj["gradients"]
        return cls(
            id=obj["id"],
            variant=obj["variant"],
            reset=obj["reset"],
            tau=obj["tau"],
            threshold=obj["threshold"],
            reset_scale=obj["reset_scale"],
            surrogate_alpha=obj["surrogate_alpha"],
            preset=obj["preset"],
            seed=obj["seed"],
            x=to_array(inputs["x"]),  # type: ignore[arg-type]
            weight=to_array(inputs["weight"]),
            bias=to_array(inputs["bias"]),
            grad_spikes=to_array(inputs["grad_spikes"]),  # type: ignore[arg-type]
            expected={k: to_array(v) for k, v in obj["expected"].items()},
            gradients={
                "x": to_array(grads["x"]),
                "weight": to_array(grads["weight"]),
                "bias": to_array(grads["bias"]),
                "threshold": grads["threshold"],
                "surrogate_alpha": grads["surrogate_alpha"],
            },
        )


def read_json(name: str, data_dir: Path | None = None) -> Any:
    path = (data_dir or DATA_DIR) / name
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def load_cases(variant: str | None = None, reset: str | None = None, data_dir: Path | None = None) -> list[VectorCase]:
    """All golden cases, optionally only one variant and/or reset mode, in file order."""
    cases = []
    for stem in CASE_FILES:
        v, r = stem.split("-")
        if (variant is None or variant == v) and (reset is None or reset == r):
            cases.extend(VectorCase.from_json(c) for c in read_json(f"{stem}.json", data_dir)["cases"])
    return cases


def load_rng(data_dir: Path | None = None) -> dict[str, Any]:
    """``rng.json``: ``known_answers`` and ``words`` (key, counter, output) and uniform ``streams``."""
    return read_json("rng.json", data_dir)


def load_bad_input(data_dir: Path | None = None) -> dict[str, Any]:
    """``bad_input.json``: ``bases`` (a valid call per variant), ``rejected`` (id, variant, changes,
    kind, argument) and ``accepted`` (id, variant, changes) calls, JSON-encoded
    (:func:`psu_core.vectors.calls.decode_call` reads them)."""
    return read_json("bad_input.json", data_dir)


def entry_count(name: str, doc: Any) -> int:
    """The manifest's ``cases`` of a file (SPEC §10): the cases of a case file, the known answers,
    words and streams of ``rng.json``, the rejected and accepted calls of ``bad_input.json``, 0 for
    ``schema.json``."""
    if name == "rng.json":
        return len(doc["known_answers"]) + len(doc["words"]) + len(doc["streams"])
    if name == "bad_input.json":
        return len(doc["rejected"]) + len(doc["accepted"])
    if name == "schema.json":
        return 0
    return len(doc["cases"])
