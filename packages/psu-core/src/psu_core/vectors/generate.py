"""Deterministic generation of the golden vectors (SPEC §10) from the float64 reference.

Inputs come from a fixed NumPy ``Generator`` (PCG64, whose stream NumPy keeps stable) and are
rounded to 8 significant bits (:func:`half_exact`), so that they are exact in bfloat16 and float16:
a half-precision port then starts from the very inputs the reference used, and only its own
arithmetic separates it from the vectors. They are drawn one time step at a time through the
online stepper: whenever a neuron's membrane lands within ``MEMBRANE_MARGIN`` of the threshold, or
its uniform draw within ``DRAW_MARGIN`` of its reset probability, that neuron's input at that step
is drawn again. Every quantity at step ``t`` depends only on inputs up to ``t``, so fixing step
``t`` never disturbs earlier steps.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from psu_core import FORMAT_VERSION, checks, reference, rng
from psu_core.tolerances import DRAW_MARGIN, MEMBRANE_MARGIN
from psu_core.vectors import CASE_FILES, entry_count, from_array
from psu_core.vectors.bad_input import make_bad_input
from psu_core.vectors.schema import SCHEMA

T_VALUES = (1, 2, 3, 4, 8, 16, 64, 256)
SHAPES = ((6,), (2, 3), (2, 1, 3), (1, 2, 2, 2))  # neuron shapes of rank 1 to 4
LONG_SHAPES = ((4,), (2, 2), (1, 2, 1), (1, 1, 2, 2))  # smaller, for T >= 64
SEEDS = (0, 1, 42, 2**32 + 5, 2**53 - 1, 987654321)
THRESHOLDS = (1.0, 0.5)
PRESETS = ("tied", "free", "reference")
FREE_RESET_SCALE = 0.75
ALPHAS = (2.0, 2.0, 3.5)
ROOT_SEED = 20240201
MAX_REDRAWS = 200


@dataclass(frozen=True)
class Spec:
    variant: str
    reset: str
    T: int
    shape: tuple[int, ...]
    threshold: float
    preset: str
    tau: float
    alpha: float
    seed: int | None

    @property
    def reset_scale(self) -> float | None:
        if self.preset == "tied":
            return None
        if self.preset == "free":
            return FREE_RESET_SCALE
        # The published code (SPEC §7): PSU multiplies its reset by the threshold itself (tied),
        # IPSU and RPSU use gamma = 1.
        return None if self.variant == "psu" else 1.0

    @property
    def id(self) -> str:
        n = "x".join(map(str, self.shape))
        seed = "" if self.seed is None else f"-seed{self.seed}"
        return f"{self.variant}-{self.reset}-T{self.T}-N{n}-th{self.threshold:g}-{self.preset}-tau{self.tau:g}-a{self.alpha:g}{seed}"


def plan() -> Iterator[Spec]:
    """Every case, in file order: for each file, T ascending, then threshold x preset."""
    n_sampled = 0
    for stem in CASE_FILES:
        variant, reset = stem.split("-")
        for ti, T in enumerate(T_VALUES):
            combos = [(th, pr) for th in THRESHOLDS for pr in PRESETS]
            if T == 64:
                combos = [(1.0, "tied"), (0.5, "free"), (0.5, "reference")]
            elif T == 256:
                combos = [(0.5, "tied")] + ([(1.0, "free")] if variant == "psu" else [])
            for k, (th, preset) in enumerate(combos):
                shapes = LONG_SHAPES if T >= 64 else SHAPES
                seed = None
                if reset == "sampled":
                    seed = SEEDS[n_sampled % len(SEEDS)]
                    n_sampled += 1
                yield Spec(
                    variant=variant,
                    reset=reset,
                    T=T,
                    shape=shapes[(ti + k) % len(shapes)],
                    threshold=th,
                    preset=preset,
                    tau=(2.0, 4.0)[k % 2],
                    alpha=ALPHAS[k % len(ALPHAS)],
                    seed=seed,
                )


#: Below float16's smallest normal number an input is stored as 0 (exact in every dtype).
HALF_TINY = 2.0**-14


def half_exact(a: np.ndarray) -> np.ndarray:
    """``a`` rounded to 8 significant bits (bfloat16's precision; ties to even), values below
    ``2^-14`` in magnitude flushed to 0: exactly representable in bfloat16, float16, float32 and
    float64 (the inputs stay far below float16's largest value)."""
    m, e = np.frexp(np.asarray(a, dtype=np.float64))
    out = np.ldexp(np.round(m * 256.0) / 256.0, e)
    return np.where(np.abs(out) < HALF_TINY, 0.0, out)


def _draw_x(gen: np.random.Generator, spec: Spec, size: int) -> np.ndarray:
    # Scale so that spikes are neither rare nor everywhere: the steady state of h is x / (tau - 1).
    mean = (spec.tau - 1.0) * (1.1 * spec.threshold + 0.3)
    return half_exact(gen.normal(mean, (spec.tau - 1.0) * 0.9, size=size))


def _learned(gen: np.random.Generator, spec: Spec) -> tuple[np.ndarray | None, np.ndarray | None]:
    if spec.variant == "psu":
        return None, None
    T = spec.T
    # Kaiming-normal fan-out (std sqrt(2/T)) as published, with the upper triangle filled on
    # purpose (a port that forgets the mask must fail), plus a diagonal: IPSU then integrates its
    # input, and the step-t quantities of both depend on x_t enough for the margin redraws to work.
    w = gen.normal(0.0, np.sqrt(2.0 / T), size=(T, T))
    w = w + (1.0 if spec.variant == "ipsu" else 0.5) * np.eye(T)
    b = gen.normal(0.3 if spec.variant == "ipsu" else 0.0, 0.5, size=T)
    return half_exact(w), half_exact(b)


def _inputs(gen: np.random.Generator, spec: Spec, w, b) -> np.ndarray:
    """Draw ``x`` step by step, redrawing neurons that land within a margin (module docstring)."""
    params = {
        "tau": spec.tau,
        "threshold": spec.threshold,
        "reset_scale": spec.reset_scale,
        "surrogate_alpha": spec.alpha,
        "reset": spec.reset,
        "seed": spec.seed,
    }
    n = int(np.prod(spec.shape))
    p_ = checks.validate_call(
        spec.variant, x_shape=(spec.T, *spec.shape), x_dtype="float64", x_is_floating=True,
        weight_shape=None if w is None else w.shape, bias_shape=None if b is None else b.shape, **params,
    )  # fmt: skip
    state = reference.init_state(spec.variant, spec.shape, T=spec.T)
    x = np.zeros((spec.T, n))
    for t in range(spec.T):
        x_t = _draw_x(gen, spec, n)
        for _ in range(MAX_REDRAWS):
            trial = reference._advance(state, x_t.astype(np.float64), w, b, p_)  # a step is pure: retry freely
            bad = np.abs(trial.membrane - spec.threshold) < MEMBRANE_MARGIN
            if spec.reset == "sampled":
                bad |= np.abs(trial.uniform - trial.reset_probability) < DRAW_MARGIN  # type: ignore[operator]
            if not bad.any():
                break
            x_t = np.where(bad, _draw_x(gen, spec, n), x_t)
        else:
            raise RuntimeError(f"{spec.id}: could not keep step {t} a margin away from the thresholds")
        state = trial.state
        x[t] = x_t
    return x.reshape((spec.T, *spec.shape))


def make_case(spec: Spec, gen: np.random.Generator) -> dict[str, Any]:
    w, b = _learned(gen, spec)
    x = _inputs(gen, spec, w, b)
    g = half_exact(gen.normal(0.0, 1.0, size=x.shape))
    params = {
        "tau": spec.tau,
        "threshold": spec.threshold,
        "reset_scale": spec.reset_scale,
        "surrogate_alpha": spec.alpha,
        "reset": spec.reset,
        "seed": spec.seed,
    }
    fwd = reference.forward(spec.variant, x, w, b, **params)
    grads = reference.vjp(spec.variant, x, g, w, b, **params)
    opt = lambda a, integer=False: None if a is None else from_array(a, integer)  # noqa: E731
    return {
        "id": spec.id,
        "variant": spec.variant,
        "reset": spec.reset,
        "tau": spec.tau,
        "threshold": spec.threshold,
        "reset_scale": spec.reset_scale,
        "surrogate_alpha": spec.alpha,
        "preset": spec.preset,
        "seed": spec.seed,
        "inputs": {"x": from_array(x), "weight": opt(w), "bias": opt(b), "grad_spikes": from_array(g)},
        "expected": {
            "spikes": from_array(fwd.spikes, integer=True),
            "membrane": from_array(fwd.membrane),
            "reset_probability": opt(fwd.reset_probability),
            "reset": opt(fwd.reset, integer=True),
            "uniform": opt(fwd.uniform),
        },
        "gradients": {
            "x": from_array(grads.x),
            "weight": opt(grads.weight),
            "bias": opt(grads.bias),
            "threshold": grads.threshold,
            "surrogate_alpha": grads.surrogate_alpha,
        },
    }


KNOWN_ANSWERS = (
    ((0x00000000, 0x00000000), (0x00000000, 0x00000000), (0x6B200159, 0x99BA4EFE)),
    ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
    ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0)),
)
STREAMS = ((0, (3, 5)), (1, (4, 2, 3)), (2**32 + 5, (2, 1, 7)), (2**53 - 1, (5,)), (987654321, (1, 2, 2, 3)))


def make_rng(gen: np.random.Generator) -> dict[str, Any]:
    words = []
    for _ in range(32):
        k0, k1, c0, c1 = (int(v) for v in gen.integers(0, 2**32, size=4, dtype=np.uint64))
        o0, o1 = rng.threefry2x32(k0, k1, c0, c1)
        words.append({"key": [k0, k1], "counter": [c0, c1], "output": [int(o0), int(o1)]})
    return {
        "format_version": FORMAT_VERSION,
        "known_answers": [{"key": list(k), "counter": list(c), "output": list(o)} for k, c, o in KNOWN_ANSWERS],
        "words": words,
        "streams": [{"seed": s, "uniform": from_array(rng.uniforms(s, shape))} for s, shape in STREAMS],
    }


def dumps(obj: Any, indent: int | None = None) -> bytes:
    """SPEC §10's bytes: sorted keys, compact separators (or ``indent`` spaces), ASCII with
    ``\\uXXXX`` escapes, floats as Python's ``repr`` (the number format of §10), a final newline."""
    separators = (",", ":") if indent is None else (",", ": ")
    text = json.dumps(obj, sort_keys=True, separators=separators, indent=indent, allow_nan=False)
    return (text + "\n").encode("ascii")


def generate() -> dict[str, bytes]:
    """Every file of the vector set, name -> bytes, manifest included."""
    gen = np.random.Generator(np.random.PCG64(ROOT_SEED))
    by_file: dict[str, list[dict[str, Any]]] = {stem: [] for stem in CASE_FILES}
    for spec in plan():
        by_file[f"{spec.variant}-{spec.reset}"].append(make_case(spec, gen))
    docs: dict[str, Any] = {}
    for stem, cases in by_file.items():
        variant, reset = stem.split("-")
        docs[f"{stem}.json"] = {"format_version": FORMAT_VERSION, "variant": variant, "reset": reset, "cases": cases}
    docs["rng.json"] = make_rng(gen)
    docs["bad_input.json"] = make_bad_input()
    files = {name: dumps(doc) for name, doc in docs.items()}
    docs["schema.json"] = SCHEMA
    files["schema.json"] = dumps(SCHEMA, indent=2)
    manifest = {
        "format_version": FORMAT_VERSION,
        "files": {
            name: {"sha256": hashlib.sha256(data).hexdigest(), "cases": entry_count(name, docs[name])}
            for name, data in sorted(files.items())
        },
    }
    files["manifest.json"] = dumps(manifest, indent=2)
    return files
