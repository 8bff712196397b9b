"""Tolerance classes per dtype (SPEC §9) and the error measure the conformance suite reports.

``actual`` matches ``expected`` when ``|actual - expected| <= atol + rtol * |expected|``
element-wise; :func:`error_ratio` is the worst ``|actual - expected| / (atol + rtol |expected|)``,
so 1.0 is the limit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Every golden-vector membrane value is at least this far from the threshold.
MEMBRANE_MARGIN = 2e-3
#: Every golden-vector uniform draw is at least this far from its reset probability.
DRAW_MARGIN = 2e-3


@dataclass(frozen=True)
class Tolerance:
    rtol: float
    atol: float


@dataclass(frozen=True)
class DtypeTolerances:
    membrane: Tolerance
    gradient: Tolerance
    scalar_gradient: Tolerance  # dL/dtheta, dL/dalpha: sums over all T*N elements
    spike_mismatch: float  # fraction of spikes allowed to differ


TOLERANCES: dict[str, DtypeTolerances] = {
    "float64": DtypeTolerances(Tolerance(1e-10, 1e-12), Tolerance(1e-9, 1e-11), Tolerance(1e-9, 1e-9), 0.0),
    "float32": DtypeTolerances(Tolerance(1e-5, 1e-5), Tolerance(1e-4, 1e-5), Tolerance(1e-4, 1e-4), 0.0),
    "float16": DtypeTolerances(Tolerance(1e-2, 1e-2), Tolerance(5e-2, 1e-2), Tolerance(5e-2, 5e-2), 0.02),
    "bfloat16": DtypeTolerances(Tolerance(3e-2, 3e-2), Tolerance(1e-1, 3e-2), Tolerance(1e-1, 1e-1), 0.05),
}


def for_dtype(dtype: str) -> DtypeTolerances:
    """The tolerance class of ``dtype`` ("float64", "float32", "float16", "bfloat16")."""
    try:
        return TOLERANCES[dtype]
    except KeyError:
        raise ValueError(f"dtype must be one of {sorted(TOLERANCES)}, got {dtype!r}") from None


def error_ratio(actual, expected, tol: Tolerance) -> float:
    """Worst ``|actual - expected| / (atol + rtol |expected|)``; ``inf`` on a NaN or shape mismatch."""
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    if a.shape != e.shape:
        return float("inf")
    if a.size == 0:
        return 0.0
    err = np.abs(a - e) / (tol.atol + tol.rtol * np.abs(e))
    if np.isnan(err).any():
        return float("inf")
    return float(err.max())
