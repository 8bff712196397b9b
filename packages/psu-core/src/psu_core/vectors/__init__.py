"""Golden vectors (SPEC §10): where they live and how to read them.

``load_cases()`` returns :class:`VectorCase` objects with NumPy arrays; ``load_rng()`` the
Threefry answers and uniform streams; ``load_bad_input()`` the bad-input table of SPEC §8 (calls in
the encoding of :mod:`psu_core.vectors.calls`); ``load_statistics()`` the sampled group's
statistical cases; ``load_nonfinite()`` the causality cases of ``nonfinite.json`` (SPEC §1). Seeds are decimal strings in the files (exact in any JSON reader) and integers
here. The files are produced by ``python -m psu_core.vectors generate`` and checked by
``python -m psu_core.vectors verify``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from psu_core.vectors.calls import NON_FINITE, decode_seed

DATA_DIR = Path(__file__).resolve().parent / "data"
CASE_FILES = ("psu-expected", "psu-sampled", "ipsu-expected", "rpsu-expected", "rpsu-sampled")
#: What a pin holds exactly (SPEC §10): "membrane" = the threshold (spike 0), "draw" = the uniform
#: equals the reset probability (no reset, R = 0).
PIN_KINDS = ("membrane", "draw")


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
    #: ``(kind, index)`` pairs: positions ``[t, *neuron index]`` sitting exactly on a threshold.
    pins: tuple[tuple[str, tuple[int, ...]], ...] = ()

    @property
    def T(self) -> int:
        return int(self.x.shape[0])

    def pin_mask(self, kind: str) -> np.ndarray:
        """Boolean ``[T, *neuron_shape]``: the pins of ``kind`` ("membrane" or "draw")."""
        mask = np.zeros(self.x.shape, dtype=bool)
        for k, index in self.pins:
            if k == kind:
                mask[index] = True
        return mask

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
            seed=decode_seed(obj["seed"]),
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
            pins=tuple((p["kind"], tuple(p["at"])) for p in obj["pins"]),
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
    """``rng.json``: ``known_answers`` and ``words`` (key, counter, output) and uniform ``streams``
    (``seed`` an integer, ``uniform``)."""
    doc = read_json("rng.json", data_dir)
    for stream in doc["streams"]:
        stream["seed"] = decode_seed(stream["seed"])
    return doc


def load_bad_input(data_dir: Path | None = None) -> dict[str, Any]:
    """``bad_input.json``: ``bases`` (a valid call per variant), ``rejected`` (id, variant, changes,
    kind, argument) and ``accepted`` (id, variant, changes) calls, JSON-encoded
    (:func:`psu_core.vectors.calls.decode_call` reads them)."""
    return read_json("bad_input.json", data_dir)


@dataclass(frozen=True)
class StatisticalCase:
    """A large sampled case of ``statistics.json``: the adapter mapping (float64 arrays, integer
    seed), the other seed, and the reference's ``mean(P)`` and binomial standard deviation of
    ``mean(R)``, ``sqrt(sum P (1 - P)) / P.size``."""

    id: str
    case: dict[str, Any] = field(repr=False)
    other_seed: int
    reset_probability_mean: float
    reset_sd: float


def load_statistics(data_dir: Path | None = None) -> dict[str, Any]:
    """``statistics.json``: ``cases`` (:class:`StatisticalCase`), ``frequency_sigmas``, and
    ``uniforms`` (``shape``, ``seeds`` as integers, ``differ_fraction``)."""
    doc = read_json("statistics.json", data_dir)
    cases = []
    for c in doc["cases"]:
        inputs = c["inputs"]
        params = {k: c[k] for k in ("variant", "tau", "threshold", "reset_scale", "surrogate_alpha", "reset")}
        arrays = {k: to_array(inputs[k]) for k in ("x", "weight", "bias")}
        case = {**params, **arrays, "seed": decode_seed(c["seed"])}
        expected = c["expected"]
        cases.append(
            StatisticalCase(c["id"], case, decode_seed(c["other_seed"]), expected["reset_probability_mean"],
                            expected["reset_sd"])
        )  # fmt: skip
    uniforms = {**doc["uniforms"], "seeds": [decode_seed(s) for s in doc["uniforms"]["seeds"]]}
    return {"cases": cases, "frequency_sigmas": doc["frequency_sigmas"], "uniforms": uniforms}


def apply_replacements(
    inputs: dict[str, np.ndarray | None], replace: list[dict[str, Any]]
) -> dict[str, np.ndarray | None]:
    """Float64 copies of ``inputs`` (``x``, ``weight``, ``bias``) with each of ``nonfinite.json``'s
    replacements ``{"input", "at", "value"}`` applied (``value``: "NaN", "Infinity", "-Infinity")."""
    out = {k: None if v is None else np.array(v, dtype=np.float64) for k, v in inputs.items()}
    for r in replace:
        out[r["input"]][tuple(r["at"])] = NON_FINITE[r["value"]]  # type: ignore[index]
    return out


@dataclass(frozen=True)
class NonfiniteCase:
    """A case of ``nonfinite.json``: ``case`` is the adapter mapping with the replacements applied
    (NaN or an infinity at step ``step``; ``validate`` False); ``finite`` the inputs before them;
    ``expected`` the outputs of steps ``< step`` (float64 ``[step, *neuron_shape]``, None where
    undefined); ``nonfinite`` the ``(output, index)`` positions that must not be finite."""

    id: str
    step: int
    case: dict[str, Any] = field(repr=False)
    finite: dict[str, np.ndarray | None] = field(repr=False)
    replace: tuple[dict[str, Any], ...]
    expected: dict[str, np.ndarray | None] = field(repr=False)
    nonfinite: tuple[tuple[str, tuple[int, ...]], ...]

    def fresh(self) -> dict[str, Any]:
        """A copy of ``case`` an adapter may change."""
        return {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in self.case.items()}


def load_nonfinite(data_dir: Path | None = None) -> list[NonfiniteCase]:
    """``nonfinite.json``'s cases (SPEC §1, §10), in file order."""
    cases = []
    for c in read_json("nonfinite.json", data_dir)["cases"]:
        finite = {k: to_array(c["inputs"][k]) for k in ("x", "weight", "bias")}
        params = {k: c[k] for k in ("variant", "tau", "threshold", "reset_scale", "surrogate_alpha", "reset")}
        case = {**params, **apply_replacements(finite, c["replace"]), "seed": decode_seed(c["seed"]), "validate": False}
        cases.append(
            NonfiniteCase(
                id=c["id"],
                step=c["step"],
                case=case,
                finite=finite,
                replace=tuple(c["replace"]),
                expected={k: to_array(v) for k, v in c["expected"].items()},
                nonfinite=tuple((n["output"], tuple(n["at"])) for n in c["nonfinite"]),
            )
        )
    return cases


def entry_count(name: str, doc: Any) -> int:
    """The manifest's ``cases`` of a file (SPEC §10): the cases of a case file and of
    ``statistics.json``, the known answers, words and streams of ``rng.json``, the rejected and
    accepted calls of ``bad_input.json``, 0 for ``schema.json``."""
    if name == "rng.json":
        return len(doc["known_answers"]) + len(doc["words"]) + len(doc["streams"])
    if name == "bad_input.json":
        return len(doc["rejected"]) + len(doc["accepted"])
    if name == "schema.json":
        return 0
    return len(doc["cases"])
