"""The causality rule of SPEC §1/§2 (issue 11, R1) as checks: perturbations of a call and what must
stay the same.

Outputs at step ``t`` depend only on ``x_0..x_t``, on the lower triangle of ``W``'s rows ``0..t`` and
on ``b_0..b_t``, whatever the values: a change at step ``t0`` -- finite, NaN, +inf or -inf -- leaves
every output before ``t0`` with identical values (``np.array_equal(..., equal_nan=True)``), and
``W``'s upper triangle never matters, NaN included. A non-finite ``x`` at ``t0`` makes that neuron's
membrane at ``t0`` non-finite; a non-finite ``W[t0, j<=t0]`` or ``b[t0]`` makes IPSU's membrane at
``t0`` non-finite (all neurons) and RPSU's reset probability there. Spikes are 0 or 1 everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

#: The values a perturbation writes: a finite change (far from every threshold), NaN, +inf, -inf.
VALUES: dict[str, float] = {"finite": 1000.0, "nan": math.nan, "+inf": math.inf, "-inf": -math.inf}
#: What a perturbation changes. ``weight-upper`` writes NaN above W's diagonal (never matters).
TARGETS = ("x-all", "x-one", "weight-row", "weight-entry", "bias", "weight-upper")
#: Outputs compared (the adapter's forward/online results).
OUTPUTS = ("spikes", "membrane", "reset")


@dataclass(frozen=True)
class Perturbation:
    """Write ``value`` into ``target`` at step ``step`` (``weight-upper``: NaN above the diagonal,
    ``step`` unused). ``neuron`` is the flat neuron index of ``x-one``; ``column`` the ``j <= step``
    of ``weight-entry``."""

    target: str
    step: int
    value: str
    neuron: int = 0
    column: int = 0

    def __str__(self) -> str:
        where = {
            "x-all": f"x[{self.step}, all neurons]",
            "x-one": f"x[{self.step}, neuron {self.neuron}]",
            "weight-row": f"weight[{self.step}, 0..{self.step}]",
            "weight-entry": f"weight[{self.step}, {self.column}]",
            "bias": f"bias[{self.step}]",
            "weight-upper": "weight above the diagonal",
        }[self.target]
        return f"{where} = {self.value}"

    def apply(self, case: Mapping[str, Any]) -> dict[str, Any]:
        """A perturbed copy of ``case`` (arrays copied)."""
        out = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in case.items()}
        v, t = VALUES[self.value], self.step
        if self.target == "x-all":
            x = out["x"].reshape(out["x"].shape[0], -1)
            x[t] = x[t] + v if self.value == "finite" else v
        elif self.target == "x-one":
            x = out["x"].reshape(out["x"].shape[0], -1)
            x[t, self.neuron] = x[t, self.neuron] + v if self.value == "finite" else v
        elif self.target == "weight-row":
            out["weight"][t, : t + 1] = v
        elif self.target == "weight-entry":
            out["weight"][t, self.column] = v
        elif self.target == "bias":
            out["bias"][t] = v
        elif self.target == "weight-upper":
            w = out["weight"]
            w[np.triu_indices(w.shape[0], 1)] = math.nan
        else:
            raise ValueError(f"unknown target {self.target!r}")
        return out

    @property
    def prefix_only(self) -> bool:
        """True when only the steps before ``step`` must be unchanged (else every step)."""
        return self.target != "weight-upper"

    def nonfinite_membrane(self, variant: str, neuron_count: int) -> np.ndarray | None:
        """Flat neuron indices whose membrane at ``step`` must be non-finite (None: no claim)."""
        if self.value == "finite" or not self.prefix_only:
            return None
        if self.target == "x-all":
            return np.arange(neuron_count)
        if self.target == "x-one":
            return np.array([self.neuron])
        if variant == "ipsu":  # weight-row, weight-entry, bias
            return np.arange(neuron_count)
        return None  # RPSU: the reset probability, which adapters need not return


def steps_for(T: int) -> list[int]:
    """The steps perturbed: the first, the middle and the last."""
    return sorted({0, T // 2, T - 1})


def perturbations(variant: str, T: int, neuron_count: int, target: str) -> list[Perturbation]:
    """Every perturbation of ``target`` a case of ``T`` steps and ``neuron_count`` neurons gets."""
    if target == "weight-upper":
        return [Perturbation(target, 0, "nan")] if T > 1 else []
    # -inf only on the whole input (it takes the paths +inf takes, with the other sign).
    values = VALUES if target == "x-all" else [v for v in VALUES if v != "-inf"]
    return [
        Perturbation(target, t, value, neuron=neuron_count // 2, column=t // 2)
        for t in steps_for(T)
        for value in values
    ]


def first_difference(a: np.ndarray, b: np.ndarray) -> tuple[int, ...] | None:
    """The first index where ``a`` and ``b`` differ (NaN equals NaN), or None."""
    differ = ~((a == b) | (np.isnan(a) & np.isnan(b)))
    if not differ.any():
        return None
    return tuple(int(i) for i in np.argwhere(differ)[0])


def check(
    what: str,
    case_id: str,
    variant: str,
    perturbation: Perturbation,
    base: Mapping[str, Any],
    out: Mapping[str, Any],
) -> list[str]:
    """The failures of one perturbed call ``out`` against the unperturbed ``base`` (empty: it holds)."""
    failures = []
    label = f"{what}, case {case_id}, {perturbation}"
    for key in OUTPUTS:
        if base.get(key) is None:
            continue
        if out.get(key) is None:
            failures.append(f"{label}: the result lacks {key!r}")
            continue
        a = np.asarray(base[key], dtype=np.float64)
        b = np.asarray(out[key], dtype=np.float64)
        if a.shape != b.shape:
            failures.append(f"{label}: {key} of shape {list(b.shape)}, unperturbed {list(a.shape)}")
            continue
        n = perturbation.step if perturbation.prefix_only else a.shape[0]
        at = first_difference(a[:n], b[:n])
        if at is not None:
            scope = f"before step {perturbation.step}" if perturbation.prefix_only else "anywhere"
            failures.append(
                f"{label}: {key} changed {scope} (the future leaked into the past); first at index "
                f"{at}: {float(b[at])!r}, unperturbed {float(a[at])!r}"
            )
        if key in ("spikes", "reset") and not np.isin(b, (0.0, 1.0)).all():
            bad = tuple(int(i) for i in np.argwhere(~np.isin(b, (0.0, 1.0)))[0])
            failures.append(f"{label}: {key} must be 0 or 1, got {float(b[bad])!r} at index {bad}")
    if out.get("membrane") is not None:
        v = np.asarray(out["membrane"], dtype=np.float64)
        must = perturbation.nonfinite_membrane(variant, int(v[0].size) if v.shape[0] else 0)
        if must is not None:
            row = v.reshape(v.shape[0], -1)[perturbation.step]
            finite = must[np.isfinite(row[must])]
            if finite.size:
                failures.append(
                    f"{label}: the membrane at step {perturbation.step} of neuron {int(finite[0])} (flat index) "
                    f"is finite ({float(row[finite[0]])!r}); a non-finite input there must make it non-finite"
                )
    return failures


def check_nonfinite(checker: Any, nf: Any, out: Mapping[str, Any]) -> None:
    """A golden non-finite case (:class:`psu_core.vectors.NonfiniteCase`) against a forward
    result, through ``checker`` (:class:`psu_conformance.compare.Checker`): the first ``nf.step``
    steps within SPEC §9 (spikes and draws exactly), NaN or infinity at every ``nf.nonfinite``
    position whose output the adapter returns (``reset_probability`` only if it does), spikes and
    draws 0 or 1."""
    sampled = nf.case["reset"] == "sampled"
    checker.keys("forward (non-finite input)", out, ["spikes", "membrane"] + (["reset"] if sampled else []))
    t0 = nf.step
    with checker.collect():
        for key in ("spikes", "reset"):
            if out.get(key) is not None:
                values = np.asarray(out[key], dtype=np.float64)
                bad = np.argwhere(~np.isin(values, (0.0, 1.0)))
                at = tuple(int(i) for i in bad[0]) if len(bad) else None
                shown = float(values[at]) if at is not None else None
                checker.require(f"forward {key}", at is None, f"{shown!r} at {at}, must be 0 or 1")
        checker.membrane("forward membrane before the non-finite step", out["membrane"][:t0], nf.expected["membrane"])
        checker.exact("forward spikes before the non-finite step", out["spikes"][:t0], nf.expected["spikes"])
        if sampled:
            checker.exact("forward reset draws before the non-finite step", out["reset"][:t0], nf.expected["reset"])
        for output, at in nf.nonfinite:
            if out.get(output) is None:
                continue
            value = float(np.asarray(out[output], dtype=np.float64)[at])
            checker.require(
                f"forward {output}",
                not math.isfinite(value),
                f"{value!r} at {at}, must be NaN or infinite (non-finite input at step {t0})",
            )
