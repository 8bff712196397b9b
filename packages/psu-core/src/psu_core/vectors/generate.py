"""Deterministic generation of the golden vectors (SPEC §10) from the float64 reference.

Inputs come from a fixed NumPy ``Generator`` (PCG64, whose stream NumPy keeps stable) and are
rounded to 8 significant bits (:func:`half_exact`), so that they are exact in bfloat16 and float16:
a half-precision port then starts from the very inputs the reference used, and only its own
arithmetic separates it from the vectors. They are drawn one time step at a time through the
online stepper: whenever a neuron's membrane lands within ``MEMBRANE_MARGIN`` of the threshold, or
its uniform draw within ``DRAW_MARGIN`` of its reset probability, that neuron's input at that step
is drawn again. Every quantity at step ``t`` depends only on inputs up to ``t``, so fixing step
``t`` never disturbs earlier steps.

Beyond that grid, each case file ends with cases drawn from their own generator (so that the grid
stays as it was): a rank-1 ``x`` (neuron shape ``()``) with a tau that is not a power of two, and
a *pin* case (SPEC §10) whose inputs are solved, step by step, so that chosen membranes equal the
threshold exactly and, in sampled mode, a uniform equals its reset probability exactly (both 1/2),
every value on the way exact in every dtype; the rest of a pin case keeps the margins. A draw pin
needs a seed whose uniform at its position is exactly 1/2: :func:`first_seed_with_half_draw`
finds the first one by counting up from 2**53 (PSU) or down from 2**64 - 1 (RPSU).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from psu_core import FORMAT_VERSION, checks, reference, rng
from psu_core.tolerances import DRAW_MARGIN, MEMBRANE_MARGIN
from psu_core.vectors import CASE_FILES, entry_count, from_array
from psu_core.vectors.bad_input import make_bad_input
from psu_core.vectors.nonfinite import make_nonfinite
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
#: The rank-1 and pin cases come from their own generator, after the grid.
EXTRA_ROOT_SEED = 20240203
RANK1_T = 16
RANK1_TAU = 3.0  # a = 1/3: not a power of two, so a float32 port rounds it (SPEC §9)
#: |H| or |Z| this large makes P exactly 1 or 0 in every dtype (exp(-768) underflows to 0 even in
#: float64), and overflows exp in a sigmoid that is not the stable one of SPEC §1.
BIG = 768.0
#: Where the draw pins sit: step 1, flat neuron 1.
DRAW_PIN = (1, 1)
MAX_PIN_ATTEMPTS = 200


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
    #: Pin cases: ``(t, n, kind)`` inputs solved for (see :func:`_solve`), the bias values fixed
    #: at some steps ``(t, value)`` (RPSU's logit), and a word appended to the id.
    script: tuple[tuple[int, int, str], ...] = ()
    bias_at: tuple[tuple[int, float], ...] = ()
    tag: str = ""
    #: Robustness cases (:func:`robustness_plan`): ``x`` ~ Normal(mean, sd) instead of the grid's
    #: draw; a banded ``W`` (``band`` > 0: the diagonal and ``band`` steps below it, and the first
    #: superdiagonal as the upper triangle to ignore); ``grad_spikes`` ~ Normal(mean, sd);
    #: ``saturate = (lo, hi)``: logits of magnitude in ``[lo, hi]`` (PSU: H, RPSU: the bias).
    x_draw: tuple[float, float] | None = None
    band: int = 0
    grad_draw: tuple[float, float] = (0.0, 1.0)
    saturate: tuple[float, float] | None = None
    #: ``grad_spikes`` is 0 outside steps ``[start, stop)`` (keeps a long case's dL/dW small).
    grad_steps: tuple[int, int] | None = None

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
    def gamma(self) -> float:
        return self.threshold if self.reset_scale is None else self.reset_scale

    @property
    def id(self) -> str:
        n = "x".join(map(str, self.shape)) or "scalar"
        seed = "" if self.seed is None else f"-seed{self.seed}"
        tag = f"-{self.tag}" if self.tag else ""
        return f"{self.variant}-{self.reset}-T{self.T}-N{n}-th{self.threshold:g}-{self.preset}-tau{self.tau:g}-a{self.alpha:g}{seed}{tag}"


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


def first_seed_with_half_draw(start: int, step: int, t: int, n: int, chunk: int = 1 << 20) -> int:
    """The first seed of ``start, start + step, start + 2 step, ...`` (``step`` = 1 or -1) whose
    uniform at step ``t``, flat neuron ``n`` is exactly 1/2 (``w0 >> 8 == 2**23``, SPEC §6): one
    seed in 2**24 on average, counted in chunks through :func:`psu_core.rng.threefry2x32`."""
    offsets = np.arange(chunk, dtype=np.uint64)
    for first in itertools.count(start, step * chunk):
        seeds = np.uint64(first) + offsets if step > 0 else np.uint64(first) - offsets
        w0, _ = rng.threefry2x32(seeds & np.uint64(0xFFFFFFFF), seeds >> np.uint64(32), n, t)
        hits = np.flatnonzero((w0 >> np.uint32(8)) == np.uint32(1 << 23))
        if hits.size:
            return int(seeds[hits[0]])
    raise AssertionError("unreachable")


def pin_specs() -> dict[str, Spec]:
    """The pin case of each file. Script kinds (the input at ``(t, n)`` is solved so that):
    ``theta``: V = theta (a membrane pin); ``draw``: P = 1/2 where u = 1/2 (a draw pin);
    ``half``: P = 1/2; ``big``/``-big``: H = +-BIG, P = 1/0 (PSU); ``above``: V = theta + gamma a/2,
    which a wrong draw at the step before (R = 1, one more reset of gamma a) puts below theta."""
    up = first_seed_with_half_draw(2**53, 1, *DRAW_PIN)
    down = first_seed_with_half_draw(2**64 - 1, -1, *DRAW_PIN)
    psu_chains = ((0, 2, "big"), (1, 2, "half"), (2, 2, "theta"), (0, 3, "-big"), (1, 3, "half"), (2, 3, "theta"))
    common = dict(T=4, tag="pins")
    return {
        "psu-expected": Spec("psu", "expected", shape=(4,), threshold=1.0, preset="tied", tau=2.0, alpha=2.0,
                             seed=None, script=((0, 0, "theta"), (0, 1, "half"), (1, 1, "theta"), *psu_chains),
                             **common),
        "psu-sampled": Spec("psu", "sampled", shape=(2, 2), threshold=0.5, preset="free", tau=4.0, alpha=3.5,
                            seed=up, script=((0, 0, "theta"), (1, 1, "draw"), (2, 1, "above"), *psu_chains),
                            **common),
        "ipsu-expected": Spec("ipsu", "expected", shape=(4,), threshold=1.0, preset="reference", tau=2.0, alpha=2.0,
                              seed=None, script=((0, 0, "theta"), (1, 1, "theta"), (2, 2, "theta"), (3, 3, "theta"),
                                                 (3, 1, "theta")), **common),
        "rpsu-expected": Spec("rpsu", "expected", shape=(2, 2), threshold=0.5, preset="tied", tau=2.0, alpha=3.5,
                              seed=None, script=((0, 0, "theta"), (1, 1, "theta"), (1, 2, "half"), (2, 2, "theta"),
                                                 (1, 3, "half"), (2, 3, "half"), (3, 3, "theta")),
                              bias_at=((0, BIG), (3, -BIG)), **common),
        "rpsu-sampled": Spec("rpsu", "sampled", shape=(4,), threshold=1.0, preset="free", tau=4.0, alpha=2.0,
                             seed=down, script=((0, 0, "theta"), (1, 1, "draw"), (2, 1, "above"), (2, 2, "theta"),
                                                (1, 3, "half"), (3, 3, "theta")), bias_at=((0, -BIG),), **common),
    }  # fmt: skip


RANK1 = {  # stem -> (threshold, preset, alpha, seed)
    "psu-expected": (1.0, "tied", 2.0, None),
    "psu-sampled": (0.5, "free", 3.5, 2**64 - 1),
    "ipsu-expected": (1.0, "reference", 2.0, None),
    "rpsu-expected": (0.5, "tied", 3.5, None),
    "rpsu-sampled": (1.0, "free", 2.0, 2**53),
}


def extra_plan() -> Iterator[Spec]:
    """The cases after the grid, in file order: per file a rank-1 case, then the pin case."""
    pins = pin_specs()
    for stem in CASE_FILES:
        variant, reset = stem.split("-")
        threshold, preset, alpha, seed = RANK1[stem]
        yield Spec(variant, reset, RANK1_T, (), threshold, preset, RANK1_TAU, alpha, seed)
        yield pins[stem]


#: The robustness cases (issue 11) come from their own generator, after the pin cases.
ROBUST_ROOT_SEED = 20261130
#: Time constants that are not powers of two: a = 1/tau is rounded in float32 (SPEC §9). 1.0001:
#: a within 1e-4 of 1, the decay that a float32 recurrence multiplying a rounded ``a`` T times
#: drifts on; 37: a gain of 1/37.
ROBUST_TAUS = (1.0001, 1.7, 37.0)


def robustness_plan() -> Iterator[Spec]:
    """Per file: the three non-dyadic ``tau`` over long ``T`` on few neurons (``-decay``), then, for
    PSU and RPSU, saturated reset probabilities (``-saturated``).

    ``tau = 1.0001``: PSU runs ``T = 4096`` with inputs ~ Normal(1.5 theta, theta) (expected mode:
    H and V grow to thousands, spikes almost everywhere, and a float32 recurrence that multiplies
    a rounded ``a`` 4096 times misses the membrane tolerance several times over) or ~ Normal(0,
    0.05) (sampled mode, where P must stay away from 0 and 1 for the draw margins); IPSU and RPSU
    run ``T = 512`` with a banded ``W`` (a dense ``[T, T]`` this long would be megabytes of JSON)
    and upstream gradients on 64 steps only (IPSU the last, RPSU the first: dL/dW stays small).
    Saturated: PSU with ``|H|`` in [10, 30] at every step (its dL/dx hardly feels dP/dz there);
    RPSU with ``|b|`` in [9, 16] on 64 neurons, inputs ~ Normal(2, 0.25) (V near theta) and
    upstream gradients ~ Normal(64, 32), so that ``dL/db`` and ``dL/dW`` hold the float32 error of
    ``P (1 - P)`` several times over the gradient tolerance."""
    seeds = iter((2**64 - 2, 3, 2**53 + 1, 7, 2**63, 13, 2**32 - 1))  # 13: a draw margin holds (11: not)
    for stem in CASE_FILES:
        variant, reset = stem.split("-")
        sampled = reset == "sampled"
        seed = (lambda: next(seeds)) if sampled else (lambda: None)
        if variant == "psu":
            long = dict(T=4096, shape=(2,), x_draw=(0.0, 0.05) if sampled else (1.5, 1.0))
        elif variant == "ipsu":  # dL/dx = (W⊙M)^T gV - gamma B^T gV: B^T reaches back over all T
            long = dict(T=512, shape=(2,), band=8, x_draw=(0.0, 0.5), grad_steps=(448, 512))
        else:  # gZ = -gamma (B^T gV) sigma'(Z) is dense: keep G, hence dL/dW, to the first steps
            long = dict(T=512, shape=(2,), band=8, x_draw=(0.8, 1.0), grad_steps=(0, 64))
        yield Spec(
            variant,
            reset,
            threshold=1.0,
            preset="tied",
            tau=ROBUST_TAUS[0],
            alpha=2.0,
            seed=seed(),
            tag="decay",
            **long,
        )  # type: ignore[arg-type]
        T = 1024 if variant == "psu" else 128
        yield Spec(variant, reset, T, (3,), 0.5, "free", ROBUST_TAUS[1], 3.5, seed(), tag="decay")
        T = 512 if variant == "psu" else 64
        yield Spec(variant, reset, T, (2,), 1.0, "reference", ROBUST_TAUS[2], 2.0, seed(), tag="decay")
        if variant == "psu" and not sampled:
            yield Spec(variant, reset, 64, (4,), 1.0, "tied", 2.0, 2.0, None, tag="saturated", saturate=(10.0, 30.0))
        if variant == "rpsu":
            yield Spec(variant, reset, 16, (64,), 1.0, "reference", 2.0, 2.0, seed(), tag="saturated",
                       saturate=(9.0, 16.0), x_draw=(2.0, 0.25), grad_draw=(64.0, 32.0))  # fmt: skip


#: Below float16's smallest normal number an input is stored as 0 (exact in every dtype).
HALF_TINY = 2.0**-14


def half_exact(a: np.ndarray) -> np.ndarray:
    """``a`` rounded to 8 significant bits (bfloat16's precision; ties to even), values below
    ``2^-14`` in magnitude flushed to 0: exactly representable in bfloat16, float16, float32 and
    float64 (the inputs stay far below float16's largest value)."""
    m, e = np.frexp(np.asarray(a, dtype=np.float64))
    out = np.ldexp(np.round(m * 256.0) / 256.0, e)
    return np.where(np.abs(out) < HALF_TINY, 0.0, out)


def _quarters(a: np.ndarray) -> np.ndarray:
    # Pin cases draw on a grid of 1/4: the solved inputs and every sum on the way to a pin then
    # have few significant bits, exact in bfloat16.
    return half_exact(np.round(np.asarray(a) * 4.0) / 4.0)


def _draw_x(gen: np.random.Generator, spec: Spec, size: int, state: reference.OnlineState) -> np.ndarray:
    if spec.saturate is not None and spec.variant == "psu":
        # H = a (h + x) lands on a logit of magnitude in [lo, hi], positive three times in four.
        sign = np.where(gen.random(size) < 0.75, 1.0, -1.0)
        return half_exact(sign * gen.uniform(*spec.saturate, size=size) * spec.tau - state.h)
    if spec.x_draw is not None:
        return half_exact(gen.normal(*spec.x_draw, size=size))
    # Scale so that spikes are neither rare nor everywhere: the steady state of h is x / (tau - 1).
    mean = (spec.tau - 1.0) * (1.1 * spec.threshold + 0.3)
    x = gen.normal(mean, (spec.tau - 1.0) * 0.9, size=size)
    return _quarters(x) if spec.script else half_exact(x)


def _learned(gen: np.random.Generator, spec: Spec) -> tuple[np.ndarray | None, np.ndarray | None]:
    if spec.variant == "psu":
        return None, None
    T = spec.T
    # Kaiming-normal fan-out (std sqrt(2/T)) as published, with the upper triangle filled on
    # purpose (a port that forgets the mask must fail), plus a diagonal: IPSU then integrates its
    # input, and the step-t quantities of both depend on x_t enough for the margin redraws to work.
    w = gen.normal(0.0, np.sqrt(2.0 / T), size=(T, T))
    diagonal = 1.0 if spec.variant == "ipsu" else 0.5
    b = gen.normal(0.3 if spec.variant == "ipsu" else 0.0, 0.5, size=T)
    if spec.script:
        # A power-of-two diagonal: solving for x_t divides by it exactly.
        w, b = _quarters(w), _quarters(b)
        np.fill_diagonal(w, diagonal)
        for t, value in spec.bias_at:
            b[t] = value
        return w, b
    if spec.band:
        d = np.arange(T)[:, None] - np.arange(T)[None, :]
        w = np.where((d == -1) | ((d >= 0) & (d <= spec.band)), gen.normal(0.0, np.sqrt(2.0 / spec.band), (T, T)), 0.0)
    w = w + diagonal * np.eye(T)
    if spec.saturate is not None:
        b = _saturated_bias(gen, spec)
    return half_exact(w), half_exact(b)


#: A saturated logit is kept off steps where a uniform lies this close to 0 or 1: there no input
#: could keep the draw a margin away from its probability.
SATURATED_DRAW_EDGE = 2.5e-3  # > DRAW_MARGIN + sigma(-9)


def _saturated_bias(gen: np.random.Generator, spec: Spec) -> np.ndarray:
    """RPSU's bias with magnitudes in ``spec.saturate`` (positive three times in four), so that
    ``P`` is within ``sigma(-lo)`` of 0 or 1; in sampled mode a step whose uniforms come within
    ``SATURATED_DRAW_EDGE`` of 0 or 1 keeps a small bias instead."""
    T = spec.T
    sign = np.where(gen.random(T) < 0.75, 1.0, -1.0)
    b = sign * gen.uniform(*spec.saturate, size=T)
    if spec.reset == "sampled":
        u = rng.uniforms(spec.seed, (T, math.prod(spec.shape)))  # type: ignore[arg-type]
        edge = ((u < SATURATED_DRAW_EDGE) | (u > 1.0 - SATURATED_DRAW_EDGE)).any(axis=1)
        b = np.where(edge, gen.normal(0.0, 0.5, size=T), b)
    return b


class _Unfit(Exception):
    """A pin case's draw cannot be solved exactly or keep its margins: draw the case again."""


def _solve(state: reference.OnlineState, kind: str, n: int, w: Any, b: Any, spec: Spec) -> float:
    """The input of neuron ``n`` at step ``state.t`` that makes the step what ``kind`` says
    (:func:`pin_specs`), from the recurrences of SPEC §3; exact: every value is a short dyadic."""
    t, a, gamma = state.t, 1.0 / spec.tau, spec.gamma
    r = a * (state.r[n] + state.q[n]) if t > 0 else 0.0
    # sum_{j<t} W[t, j] x_j + b_t: the mix without this step's input, whose weight is W[t, t].
    mix = math.fsum([w[t, j] * state.history[j][n] for j in range(t)] + [b[t]]) if w is not None else 0.0
    target_v = {"theta": spec.threshold, "above": spec.threshold + gamma * a / 2}.get(kind)
    if target_v is not None:  # V = H - gamma r
        h = target_v + gamma * r
        return (h - mix) / w[t, t] if spec.variant == "ipsu" else h / a - state.h[n]
    if spec.variant == "rpsu":  # Z = 0 (the large |Z| come from the bias)
        assert kind in ("half", "draw"), kind
        return -mix / w[t, t]
    return {"half": 0.0, "draw": 0.0, "big": BIG, "-big": -BIG}[kind] / a - state.h[n]  # PSU's H


def _check_solved(kind: str, step: Any, n: int, spec: Spec) -> None:
    v, p = step.membrane[n], None if step.reset_probability is None else step.reset_probability[n]
    a = 1.0 / spec.tau
    want = {
        "theta": v == spec.threshold,
        "above": v == spec.threshold + spec.gamma * a / 2,
        "half": p == 0.5,
        "draw": p == 0.5 and step.uniform is not None and step.uniform[n] == 0.5,
        "big": p == 1.0,
        "-big": p == 0.0,
    }[kind]
    assert want, f"{spec.id}: {kind} at step {step.state.t - 1}, neuron {n}: V {v!r}, P {p!r}"


def _inputs(gen: np.random.Generator, spec: Spec, w, b) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Draw ``x`` step by step, redrawing neurons that land within a margin (module docstring);
    in a pin case, solve the scripted inputs. Returns ``x`` and the pins."""
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
    pins: list[dict[str, Any]] = []
    for t in range(spec.T):
        script = {m: kind for s, m, kind in spec.script if s == t}
        solved = np.zeros(n, dtype=bool)
        solved[list(script)] = True
        on_theta = np.isin(np.arange(n), [m for m, k in script.items() if k == "theta"])
        on_draw = np.isin(np.arange(n), [m for m, k in script.items() if k == "draw"])
        x_t = _draw_x(gen, spec, n, state)
        for m, kind in script.items():
            x_t[m] = _solve(state, kind, m, w, b, spec)
        if not np.array_equal(half_exact(x_t), x_t) or np.abs(x_t).max() > 4 * BIG:
            raise _Unfit  # a solved input needs more than 8 significant bits
        for _ in range(MAX_REDRAWS):
            trial = reference._advance(state, x_t.astype(np.float64), w, b, p_)  # a step is pure: retry freely
            bad = (np.abs(trial.membrane - spec.threshold) < MEMBRANE_MARGIN) & ~on_theta
            if spec.reset == "sampled":
                bad |= (np.abs(trial.uniform - trial.reset_probability) < DRAW_MARGIN) & ~on_draw  # type: ignore[operator]
            if not bad.any():
                break
            if (bad & solved).any():
                raise _Unfit
            x_t = np.where(bad, _draw_x(gen, spec, n, state), x_t)
        else:
            raise RuntimeError(f"{spec.id}: could not keep step {t} a margin away from the thresholds")
        for m, kind in script.items():
            _check_solved(kind, trial, m, spec)
            if kind in ("theta", "draw"):
                index = [t, *(int(i) for i in np.unravel_index(m, spec.shape))]
                pins.append({"kind": "membrane" if kind == "theta" else "draw", "at": index})
        state = trial.state
        x[t] = x_t
    return x.reshape((spec.T, *spec.shape)), pins


def make_case(spec: Spec, gen: np.random.Generator) -> dict[str, Any]:
    for _ in range(MAX_PIN_ATTEMPTS):
        w, b = _learned(gen, spec)
        try:
            x, pins = _inputs(gen, spec, w, b)
            break
        except _Unfit:
            continue
    else:
        raise RuntimeError(f"{spec.id}: no draw solved the pins exactly within their margins")
    g = half_exact(gen.normal(*spec.grad_draw, size=x.shape))
    if spec.grad_steps is not None:
        start, stop = spec.grad_steps
        g[:start] = 0.0
        g[stop:] = 0.0
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
        "seed": None if spec.seed is None else str(spec.seed),
        "pins": pins,
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
STREAMS = (
    (0, (3, 5)), (1, (4, 2, 3)), (2**32 + 5, (2, 1, 7)), (2**53 - 1, (5,)), (987654321, (1, 2, 2, 3)),
    # Seeds beyond JSON's exact integers, and one whose high word alone is not small.
    (2**53, (2, 3)), (2**53 + 12345, (3, 2, 5)), ((0xDEADBEEF << 32) | 7, (3, 2, 5)), (2**64 - 1, (3, 2, 5)),
)  # fmt: skip


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
        "streams": [{"seed": str(s), "uniform": from_array(rng.uniforms(s, shape))} for s, shape in STREAMS],
    }


# The sampled group's statistics (SPEC §10, statistics.json): large cases whose draws are checked
# by frequency, not value, and the seeds whose uniform streams must differ.
STAT_T, STAT_N = 8, 4096
STAT_SEED = 0x5EED_1234_ABCD
FREQUENCY_SIGMAS = 5.0
DIFFER_FRACTION = 0.9


def make_statistics() -> dict[str, Any]:
    """``x [8, 4096]`` ~ Normal(0, 1), RPSU ``weight`` ~ Normal(0, 2/T) (upper triangle included),
    ``bias`` ~ Normal(0, 0.1^2), all rounded by :func:`half_exact`; threshold 1, tau 2, tied reset
    scale, alpha 2; seed ``STAT_SEED`` (and ``+ 1``). ``mean(P)`` and the binomial standard deviation
    of ``mean(R)``, ``sqrt(sum P (1 - P)) / (T N)``, are exactly rounded sums (``math.fsum``)."""
    cases = []
    for variant in ("psu", "rpsu"):
        gen = np.random.default_rng([checks.VARIANTS.index(variant), STAT_T, STAT_N, 7])
        x = half_exact(gen.standard_normal((STAT_T, STAT_N)))
        w = b = None
        if variant == "rpsu":
            w = half_exact(gen.standard_normal((STAT_T, STAT_T)) * math.sqrt(2.0 / STAT_T))
            b = half_exact(gen.standard_normal(STAT_T) * 0.1)
        params = {"tau": 2.0, "threshold": 1.0, "reset_scale": None, "surrogate_alpha": 2.0, "reset": "sampled"}
        p = reference.forward(variant, x, w, b, seed=STAT_SEED, **params).reset_probability
        assert p is not None
        opt = lambda a: None if a is None else from_array(a)  # noqa: E731
        cases.append(
            {
                "id": f"gen-{variant}-sampled-T{STAT_T}-N{STAT_N}-seed{STAT_SEED}",
                "variant": variant,
                **params,
                "seed": str(STAT_SEED),
                "other_seed": str(STAT_SEED + 1),
                "inputs": {"x": from_array(x), "weight": opt(w), "bias": opt(b)},
                "expected": {
                    "reset_probability_mean": math.fsum(p.ravel().tolist()) / p.size,
                    "reset_sd": math.sqrt(math.fsum((p * (1.0 - p)).ravel().tolist())) / p.size,
                },
            }
        )
    return {
        "format_version": FORMAT_VERSION,
        "frequency_sigmas": FREQUENCY_SIGMAS,
        "uniforms": {
            "shape": [STAT_T, STAT_N],
            "seeds": [str(STAT_SEED), str(STAT_SEED + 1)],
            "differ_fraction": DIFFER_FRACTION,
        },
        "cases": cases,
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
    extra = np.random.Generator(np.random.PCG64(EXTRA_ROOT_SEED))
    for spec in extra_plan():
        by_file[f"{spec.variant}-{spec.reset}"].append(make_case(spec, extra))
    robust = np.random.Generator(np.random.PCG64(ROBUST_ROOT_SEED))
    for spec in robustness_plan():
        by_file[f"{spec.variant}-{spec.reset}"].append(make_case(spec, robust))
    docs: dict[str, Any] = {}
    for stem, cases in by_file.items():
        variant, reset = stem.split("-")
        docs[f"{stem}.json"] = {"format_version": FORMAT_VERSION, "variant": variant, "reset": reset, "cases": cases}
    docs["rng.json"] = make_rng(gen)
    docs["statistics.json"] = make_statistics()
    docs["bad_input.json"] = make_bad_input()
    docs["nonfinite.json"] = make_nonfinite()
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
