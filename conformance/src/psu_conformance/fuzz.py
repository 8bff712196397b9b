"""Differential fuzzing against the float64 reference: cases, their conditioning, the checks, and
the one-line reproduction of a failure (``python -m psu_conformance.fuzz``).

A :class:`FuzzSpec` is a handful of numbers (variant, reset mode, T, neuron shape, tau, threshold,
reset scale, alpha, input scale and kind, a data seed); :func:`build` turns it into the adapter's
case, with every array rounded to the dtype under test so that the reference sees what the backend
sees. :func:`reference_of` runs psu-core's float64 reference on it and computes the call's
**conditioning**, the scale an honest implementation's rounding errors grow with (SPEC §9 applies
``atol + rtol * scale`` with these scales instead of ``|expected|``; ``[T, N]`` arrays, ``a = 1/tau``,
``A[t, j] = a^(t-j+1)`` (j <= t), ``B[t, j] = a^(t-j)`` (j < t), ``M`` the lower triangle):

* ``S_H = A|X|`` (PSU, RPSU) or ``|W⊙M||X| + |b|`` (IPSU); ``S_Z = |W⊙M||X| + |b|`` (RPSU), ``S_H`` (PSU);
* membrane: ``S_V = S_H + |gamma| B(|Q| + S_Z/4)``, ``Q`` the reset input (``P``, the draws ``R`` or
  IPSU's ``X``; the ``S_Z/4`` term, ``max P' = 1/4``, only where ``Q = P``);
* a spike may differ from the reference only where ``|V - theta| <= atol + rtol (S_V + theta)``, a draw
  only where ``|u - P| <= atol + rtol (P + S_Z/4)``; after a draw differs, that neuron's later
  membrane and spikes are not compared (its reset history is another one);
* gradients: ``atol + rtol G_abs + 3 spread``, where ``G_abs`` is the VJP with every term replaced by
  its absolute value (the summation scale) and ``spread`` the largest change of the reference's
  own VJP when ``x``, ``W`` and ``b`` are perturbed by relative ``rtol`` (two random sign patterns):
  how much the surrogate's steep slope near the threshold amplifies rounding of ``V``.

The decay ``a`` is never perturbed: a backend whose ``a`` drifts with T (rounded ``a`` multiplied T
times) is wrong, and ``tau`` close to 1 over long T shows it.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from psu_core import reference
from psu_core.tolerances import DtypeTolerances, for_dtype

#: Dtypes the fuzz group compares (half precision is covered by the golden vectors).
FUZZ_DTYPES = ("float64", "float32")
#: Above this T the reference runs its recurrences (the dense forms hold [T, T] matrices).
DENSE_MAX_T = 1024
#: Failures listed per check before "... and N more".
SHOWN = 5


@dataclass(frozen=True)
class FuzzSpec:
    """One fuzz case. ``shape`` is the neuron shape (``()``: ``x`` is ``[T]``); ``inputs`` is
    ``"zero-mean"`` (normal) or ``"positive"`` (uniform in [0, 1)), times ``input_scale``; ``bias``
    is ``"normal"`` or ``"saturated"`` (``W = 0``, ``b`` in 10..13: reset probabilities just below 1);
    ``grad`` is ``"normal"`` or ``"ones"``; ``seed`` draws the arrays and is the reset seed.
    ``inputs="ones"`` and ``bias="saturated"`` (``W = 0``) make issue 11's repros expressible."""

    variant: str
    reset: str
    T: int
    shape: tuple[int, ...]
    tau: float
    threshold: float
    reset_scale: float | None
    alpha: float
    input_scale: float
    inputs: str = "zero-mean"
    bias: str = "normal"
    grad: str = "normal"
    seed: int = 0

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "shape": list(self.shape)}, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> FuzzSpec:
        d = json.loads(text)
        return cls(**{**d, "shape": tuple(d["shape"])})


def reproduction(spec: FuzzSpec, backend: str, device: str, dtype: str) -> str:
    """A shell line that reruns ``spec`` on the backend and prints what differs."""
    args = f"--backend '{backend}' --device {device} --dtype {dtype}"
    return f"python -m psu_conformance.fuzz {args} '{spec.to_json()}'"


def _round(a: np.ndarray, dtype: str) -> np.ndarray:
    return a.astype(dtype).astype(np.float64)


def build(spec: FuzzSpec, dtype: str) -> tuple[dict[str, Any], np.ndarray]:
    """The adapter case of ``spec`` and its ``grad_spikes``, arrays exact in ``dtype``."""
    gen = np.random.default_rng(spec.seed)
    shape = (spec.T, *spec.shape)
    if spec.inputs == "ones":
        x = np.ones(shape)
    elif spec.inputs == "positive":
        x = gen.random(shape)
    else:
        x = gen.standard_normal(shape)
    x = _round(x * spec.input_scale, dtype)
    weight = bias = None
    if spec.variant != "psu":
        # The whole matrix, upper triangle included, so that a backend reading it shows.
        weight = _round(gen.standard_normal((spec.T, spec.T)) * math.sqrt(2.0 / spec.T), dtype)
        if spec.bias == "saturated":
            # Every neuron's logit is b_t: P near 1 alike in all of them, so that an error in
            # P (1 - P) adds up in dL/db instead of averaging out (10..13: 1 - P is a few float32
            # steps below 1, and P (1 - P) is still large enough to count).
            weight = np.zeros_like(weight)
            bias = gen.uniform(10.0, 13.0, spec.T)
        else:
            bias = gen.standard_normal(spec.T) * 0.1
        bias = _round(bias, dtype)
    grad = np.ones(shape) if spec.grad == "ones" else _round(gen.standard_normal(shape), dtype)
    case = {
        "variant": spec.variant,
        "x": x,
        "tau": spec.tau,
        "threshold": spec.threshold,
        "reset_scale": spec.reset_scale,
        "surrogate_alpha": spec.alpha,
        "weight": weight,
        "bias": bias,
        "reset": spec.reset,
        "seed": spec.seed if spec.reset == "sampled" else None,
    }
    return case, grad


# ----------------------------------------------------------------------------- the reference


def _leaky(x: np.ndarray, a: float) -> np.ndarray:
    """``A x``: ``h_t = a (h_{t-1} + x_t)``."""
    h = np.empty_like(x)
    acc = np.zeros_like(x[0])
    for t in range(x.shape[0]):
        acc = a * (acc + x[t])
        h[t] = acc
    return h


def _decayed(q: np.ndarray, a: float) -> np.ndarray:
    """``B q``: ``r_0 = 0``, ``r_t = a (r_{t-1} + q_{t-1})``."""
    r = np.zeros_like(q)
    for t in range(1, q.shape[0]):
        r[t] = a * (r[t - 1] + q[t - 1])
    return r


def _leaky_t(g: np.ndarray, a: float) -> np.ndarray:
    """``A^T g``."""
    return _leaky(g[::-1], a)[::-1]


def _decayed_t(g: np.ndarray, a: float) -> np.ndarray:
    """``B^T g``."""
    return _decayed(g[::-1], a)[::-1]


@dataclass
class Reference:
    """The reference's outputs and gradients on one case, ``[T, N]`` (N = 1 for ``x [T]``), with
    the tolerances of each compared value (module docstring)."""

    V: np.ndarray
    S: np.ndarray
    P: np.ndarray | None
    u: np.ndarray | None
    R: np.ndarray | None
    tol_v: np.ndarray
    spike_band: np.ndarray  # True where a spike may differ
    draw_band: np.ndarray | None  # True where a draw may differ
    grads: dict[str, Any]
    grad_tol: dict[str, Any]
    scale_v: np.ndarray


def _ref_call(case: Mapping[str, Any], grad: np.ndarray | None) -> tuple[Any, Any]:
    dense = case["x"].shape[0] <= DENSE_MAX_T
    params = {k: case[k] for k in ("tau", "threshold", "reset_scale", "surrogate_alpha", "reset", "seed")}
    args = (case["variant"], case["x"])
    fwd = (reference.forward_dense if dense else reference.forward)(*args, case["weight"], case["bias"], **params)
    g = None
    if grad is not None:
        g = (reference.vjp_dense if dense else reference.vjp)(*args, grad, case["weight"], case["bias"], **params)
    return fwd, g


def _grads_dict(g: Any) -> dict[str, Any]:
    out = {"x": np.asarray(g.x), "threshold": float(g.threshold), "surrogate_alpha": float(g.surrogate_alpha)}
    if g.weight is not None:
        out["weight"], out["bias"] = np.asarray(g.weight), np.asarray(g.bias)
    return out


def reference_of(
    spec: FuzzSpec, case: Mapping[str, Any], grad: np.ndarray, tols: DtypeTolerances, with_grads: bool = True
) -> Reference:
    """Run the reference on ``case`` and compute the tolerances of every compared value."""
    fwd, g = _ref_call(case, grad if with_grads else None)
    T = spec.T
    flat = lambda a: None if a is None else np.asarray(a, dtype=np.float64).reshape(T, -1)  # noqa: E731
    V, S, P, u, R = (flat(v) for v in (fwd.membrane, fwd.spikes, fwd.reset_probability, fwd.uniform, fwd.reset))
    X = np.abs(flat(case["x"]))
    a = 1.0 / spec.tau
    theta = spec.threshold
    gamma = abs(theta if spec.reset_scale is None else spec.reset_scale)
    wm = None if case["weight"] is None else np.abs(np.tril(case["weight"]))
    s_z = None if wm is None else wm @ X + np.abs(case["bias"])[:, None]
    s_h = s_z if spec.variant == "ipsu" else _leaky(X, a)
    if spec.variant == "psu":
        s_z = s_h
    if spec.variant == "ipsu":
        q = X
    elif spec.reset == "sampled":
        q = R
    else:
        q = P + s_z * tols.membrane.rtol / 4.0
    scale_v = s_h + gamma * _decayed(q, a)
    m = tols.membrane
    tol_v = m.atol + m.rtol * scale_v
    spike_band = np.abs(V - theta) <= tol_v + m.rtol * abs(theta)
    draw_band = None
    if spec.reset == "sampled":
        draw_band = np.abs(u - P) <= m.atol + m.rtol * (P + s_z / 4.0)
    grads: dict[str, Any] = {}
    grad_tol: dict[str, Any] = {}
    if with_grads:
        grads = _grads_dict(g)
        grad_tol = _grad_tolerances(spec, case, grad, tols, grads, V, P, q, X, wm, a, gamma)
    return Reference(V, S, P, u, R, tol_v, spike_band, draw_band, grads, grad_tol, scale_v)


def _grad_tolerances(spec, case, grad, tols, grads, V, P, q, X, wm, a, gamma):  # type: ignore[no-untyped-def]
    T = spec.T
    G = np.abs(np.asarray(grad, dtype=np.float64).reshape(T, -1))
    ds_dv, ds_dalpha = reference.surrogate(V, spec.threshold, spec.alpha)
    gv = G * ds_dv
    c = _decayed_t(gv, a)
    dp = None if P is None else P * (1.0 - P)
    absolute: dict[str, Any] = {}
    if spec.variant == "psu":
        absolute["x"] = _leaky_t(gv + gamma * c * dp, a)
    elif spec.variant == "ipsu":
        absolute["x"] = wm.T @ gv + gamma * c
        absolute["weight"], absolute["bias"] = np.tril(gv @ X.T), gv.sum(axis=1)
    else:
        gz = gamma * c * dp
        absolute["x"] = _leaky_t(gv, a) + wm.T @ gz
        absolute["weight"], absolute["bias"] = np.tril(gz @ X.T), gz.sum(axis=1)
    absolute["x"] = absolute["x"].reshape(np.shape(grads["x"]))
    absolute["threshold"] = float(gv.sum() + (gv * _decayed(q, a)).sum() if spec.reset_scale is None else gv.sum())
    absolute["surrogate_alpha"] = float((G * np.abs(ds_dalpha)).sum())
    # The reference's own sensitivity: x, W, b moved by relative rtol, two sign patterns.
    spread: dict[str, Any] = {k: np.zeros_like(np.asarray(v, dtype=np.float64)) for k, v in grads.items()}
    gen = np.random.default_rng([spec.seed, 1])
    delta = tols.membrane.rtol
    for _ in range(2):
        moved = dict(case)
        for k in ("x", "weight", "bias"):
            if case[k] is not None:
                moved[k] = case[k] * (1.0 + delta * gen.choice((-1.0, 1.0), case[k].shape))
        _, g2 = _ref_call(moved, grad)
        for k, v in _grads_dict(g2).items():
            spread[k] = np.maximum(spread[k], np.abs(np.asarray(v) - np.asarray(grads[k])))
    out = {}
    for k, v in absolute.items():
        tol = tols.scalar_gradient if k in ("threshold", "surrogate_alpha") else tols.gradient
        out[k] = tol.atol + tol.rtol * np.abs(v) + 3.0 * spread[k]
    return out


# ----------------------------------------------------------------------------- the checks


@dataclass
class Outcome:
    """What one check found: ``failures`` (messages), the worst error over its tolerance, and the
    neurons (flat indices) whose draws differed from the reference's (within the band)."""

    failures: list[str]
    ratio: float
    flipped: np.ndarray


def _index(t: int, n: int, shape: tuple[int, ...]) -> str:
    return str(tuple(int(i) for i in (t, *np.unravel_index(n, shape)))) if shape else f"({int(t)},)"


def check_forward(what: str, spec: FuzzSpec, out: Mapping[str, Any], ref: Reference) -> Outcome:
    """Spikes, membrane (and draws) of ``out`` against the reference, within the bands."""
    T = spec.T
    failures: list[str] = []
    keys = ["spikes", "membrane"] + (["reset"] if spec.reset == "sampled" else [])
    missing = [k for k in keys if not isinstance(out, Mapping) or out.get(k) is None]
    if missing:
        return Outcome([f"{what}: the result lacks {missing}"], math.inf, np.zeros(0, dtype=int))
    arrays = {}
    for k in keys:
        a = np.asarray(out[k], dtype=np.float64)
        if a.shape != (T, *spec.shape):
            return Outcome([f"{what}: {k} of shape {list(a.shape)}, expected {[T, *spec.shape]}"], math.inf,
                           np.zeros(0, dtype=int))  # fmt: skip
        arrays[k] = a.reshape(T, -1)
    affected = np.zeros_like(ref.V, dtype=bool)
    flipped = np.zeros(0, dtype=int)
    if spec.reset == "sampled":
        r = arrays["reset"]
        flips = r != ref.R
        for t, n in np.argwhere(flips & ~ref.draw_band)[:SHOWN]:
            failures.append(
                f"{what}: reset draw at {_index(t, n, spec.shape)} = {r[t, n]:g}, reference {ref.R[t, n]:g} "
                f"(u {ref.u[t, n]:.9g}, P {ref.P[t, n]:.9g}: outside the band where a draw may differ)"
            )
        # A reset acts from the next step on: later membrane and spikes follow another history.
        affected[1:] = np.cumsum(flips, axis=0)[:-1] > 0
        flipped = np.flatnonzero(flips.any(axis=0))
    v, s = arrays["membrane"], arrays["spikes"]
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.abs(v - ref.V) / ref.tol_v
    err = np.where(np.isnan(err), np.inf, err)
    err = np.where(affected, 0.0, err)
    ratio = float(err.max()) if err.size else 0.0
    for t, n in np.argwhere(err > 1.0)[:SHOWN]:
        failures.append(
            f"{what}: membrane at {_index(t, n, spec.shape)} = {v[t, n]:.9g}, reference {ref.V[t, n]:.9g}, "
            f"|diff| {abs(v[t, n] - ref.V[t, n]):.3g} = {err[t, n]:.3g}x the tolerance {ref.tol_v[t, n]:.3g} "
            f"(conditioning {ref.scale_v[t, n]:.3g})"
        )
    if not np.isin(s, (0.0, 1.0)).all():
        failures.append(f"{what}: spikes other than 0 and 1")
    bad = (s != ref.S) & ~ref.spike_band & ~affected
    for t, n in np.argwhere(bad)[:SHOWN]:
        failures.append(
            f"{what}: spike at {_index(t, n, spec.shape)} = {s[t, n]:g}, reference {ref.S[t, n]:g} (reference "
            f"membrane {ref.V[t, n]:.9g}, threshold {spec.threshold:.9g}: outside the band where a spike may differ)"
        )
    n_bad = int((err > 1.0).sum() + bad.sum())
    if n_bad > SHOWN:
        failures.append(f"... {n_bad} values out of tolerance in all")
    return Outcome(failures, ratio, flipped)


def check_vjp(what: str, spec: FuzzSpec, g: Mapping[str, Any], ref: Reference, flipped: np.ndarray) -> Outcome:
    """The adapter's VJP against the reference's; where draws differed (``flipped`` neurons) only
    the other neurons' dL/dx are compared (the sums mix every neuron)."""
    failures: list[str] = []
    names = ["x", "threshold", "surrogate_alpha"] + (["weight", "bias"] if spec.variant != "psu" else [])
    if not isinstance(g, Mapping) or any(g.get(k) is None for k in names):
        return Outcome([f"{what}: the result lacks some of {names}"], math.inf, flipped)
    ratio = 0.0
    for k in names if flipped.size == 0 else ["x"]:
        expected = np.asarray(ref.grads[k], dtype=np.float64)
        actual = np.asarray(g[k], dtype=np.float64)
        if actual.shape != expected.shape:
            failures.append(f"{what}: dL/d{k} of shape {list(actual.shape)}, expected {list(expected.shape)}")
            ratio = math.inf
            continue
        tol = np.asarray(ref.grad_tol[k])
        with np.errstate(invalid="ignore", over="ignore"):
            err = np.abs(actual - expected) / tol
        err = np.where(np.isnan(err), np.inf, err)
        if k == "x" and flipped.size:
            err2 = err.reshape(spec.T, -1).copy()
            err2[:, flipped] = 0.0
            err = err2.reshape(err.shape)
        ratio = max(ratio, float(err.max()) if err.size else 0.0)
        for at in np.argwhere(err > 1.0)[:SHOWN] if err.ndim else ([()] if err > 1.0 else []):
            at = tuple(int(i) for i in at)
            failures.append(
                f"{what}: dL/d{k} at {at} = {actual[at]:.9g}, reference {expected[at]:.9g}, "
                f"|diff| {abs(actual[at] - expected[at]):.3g} = {err[at]:.3g}x the tolerance {tol[at]:.3g}"
            )
    return Outcome(failures, ratio, flipped)


# ----------------------------------------------------------------------------- reproduction


def run(adapter: Any, spec: FuzzSpec, device: str, dtype: str, parts: tuple[str, ...]) -> list[tuple[str, Outcome]]:
    """Run ``parts`` ("forward", "vjp", "online") of ``spec`` on ``adapter``; each part's outcome."""
    tols = for_dtype(dtype)
    case, grad = build(spec, dtype)
    ref = reference_of(spec, case, grad, tols, with_grads="vjp" in parts)
    fresh = lambda: {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in case.items()}  # noqa: E731
    results = []
    flipped = None
    if "forward" in parts or "vjp" in parts:
        fwd = check_forward("forward", spec, adapter.forward(fresh(), device=device, dtype=dtype), ref)
        flipped = fwd.flipped
        if "forward" in parts:
            results.append(("forward", fwd))
    if "vjp" in parts:
        g = adapter.vjp(fresh(), grad.copy(), device=device, dtype=dtype)
        results.append(("vjp", check_vjp("vjp", spec, g, ref, flipped)))
    if "online" in parts:
        results.append(("online", check_forward("online", spec, adapter.online(fresh(), device=device, dtype=dtype),
                                                ref)))  # fmt: skip
    return results


def main(argv: list[str] | None = None) -> int:
    """``python -m psu_conformance.fuzz --backend NAME --device D --dtype DT 'SPEC-JSON'``."""
    from psu_conformance.adapter import load_adapter

    parser = argparse.ArgumentParser(prog="python -m psu_conformance.fuzz", description=main.__doc__)
    parser.add_argument("--backend", required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--parts", default="forward,vjp,online")
    parser.add_argument("spec")
    args = parser.parse_args(argv)
    spec = FuzzSpec.from_json(args.spec)
    _, adapter = load_adapter(args.backend)
    failed = False
    try:
        for part, outcome in run(adapter, spec, args.device, args.dtype, tuple(args.parts.split(","))):
            print(f"{part}: worst error {outcome.ratio:.3g}x the tolerance")
            for line in outcome.failures:
                print(f"  {line}")
            failed |= bool(outcome.failures)
    finally:
        close = getattr(adapter, "close", None)
        if callable(close):
            close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
