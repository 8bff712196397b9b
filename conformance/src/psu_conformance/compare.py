"""Comparisons with failure messages a porter can act on (SPEC §9).

Each ``compare_*`` function is pure: it returns a :class:`Comparison` with the verdict, the worst
error ratio ``|actual - expected| / (atol + rtol |expected|)`` (1.0 is the limit, from
:func:`psu_core.tolerances.error_ratio`) and, on failure, a message that names what was compared,
the case, the worst index, the actual and expected values there and the tolerance.
:class:`Checker` binds them to one test (backend, device, dtype, case), records the ratios for
the end-of-run matrix and raises ``AssertionError`` on failure.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from psu_core.tolerances import Tolerance, error_ratio, for_dtype


@dataclass(frozen=True)
class Comparison:
    """Outcome of one comparison.

    ``ratio`` is the worst error over its tolerance (``inf`` for NaN or a wrong shape); for an
    exact comparison with an allowed mismatch fraction ``f > 0`` it is ``mismatches / f`` (``inf``
    when a pin differs), and it is ``None`` for a comparison that must be exact.
    """

    ok: bool
    ratio: float | None
    message: str = ""


def _fmt_index(index: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(i) for i in index) + ")" if index else "()"


def _fmt(value: Any) -> str:
    v = float(value)
    if v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return f"{v:.10g}"


def _header(what: str, case: str | None) -> str:
    return f"{what}, case {case}" if case else what


def _shape_problem(what: str, case: str | None, actual: np.ndarray, expected: np.ndarray) -> Comparison | None:
    if actual.shape != expected.shape:
        return Comparison(
            False,
            math.inf,
            f"{_header(what, case)}: shape {list(actual.shape)} returned, expected {list(expected.shape)}",
        )
    return None


def compare_close(
    what: str,
    actual: Any,
    expected: Any,
    tol: Tolerance,
    *,
    case: str | None = None,
    mask: np.ndarray | None = None,
) -> Comparison:
    """Element-wise ``|actual - expected| <= atol + rtol |expected|`` (where ``mask`` is true).

    NaN or infinity where ``expected`` is finite counts as an infinite error.
    """
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    bad_shape = _shape_problem(what, case, a, e)
    if bad_shape is not None:
        return bad_shape
    select = np.ones(e.shape, dtype=bool) if mask is None else np.broadcast_to(np.asarray(mask, dtype=bool), e.shape)
    if not select.any():
        return Comparison(True, 0.0)
    ratio = error_ratio(a[select], e[select], tol)
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.abs(a - e) / (tol.atol + tol.rtol * np.abs(e))
    err = np.where(np.isnan(err), np.inf, err)
    err = np.where(select, err, -1.0)
    if ratio <= 1.0:
        return Comparison(True, ratio)
    flat = int(np.argmax(err))
    index = tuple(int(i) for i in np.unravel_index(flat, e.shape))
    n_bad = int((err > 1.0).sum())
    allowed = tol.atol + tol.rtol * abs(e[index])
    return Comparison(
        False,
        ratio,
        f"{_header(what, case)}: worst error {ratio:.3g}x the tolerance at index {_fmt_index(index)}: "
        f"actual {a[index]:.10g}, expected {e[index]:.10g}, |diff| {abs(a[index] - e[index]):.3g} > "
        f"atol {tol.atol:g} + rtol {tol.rtol:g} * |expected| = {allowed:.3g}; "
        f"{n_bad} of {int(select.sum())} values out of tolerance",
    )


def compare_exact(
    what: str,
    actual: Any,
    expected: Any,
    *,
    case: str | None = None,
    allowed_fraction: float = 0.0,
    context: Mapping[str, Any] | None = None,
    pinned: np.ndarray | None = None,
) -> Comparison:
    """Exact equality (spikes, reset draws), with at most ``allowed_fraction`` of values differing,
    but none where ``pinned`` is true: a golden case's pins sit exactly on a threshold, where
    every dtype computes exactly (SPEC §9, §10), so no allowance excuses a difference there.

    ``context`` names other arrays of the same shape whose values at the first mismatch are put in
    the message (for example the expected membrane next to a flipped spike).
    """
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    bad_shape = _shape_problem(what, case, a, e)
    if bad_shape is not None:
        return bad_shape
    differ = a != e  # NaN differs from everything
    n_diff = int(differ.sum())
    fraction = n_diff / e.size if e.size else 0.0
    ratio = fraction / allowed_fraction if allowed_fraction > 0 else None
    on_pin = differ & np.broadcast_to(np.asarray(pinned, dtype=bool), e.shape) if pinned is not None else None
    pin_missed = on_pin is not None and bool(on_pin.any())
    if n_diff == 0 or (fraction <= allowed_fraction and not pin_missed):
        return Comparison(True, ratio)
    index = tuple(int(i) for i in np.argwhere(on_pin if pin_missed else differ)[0])
    extra = ""
    if context:
        parts = [f"{name} {_fmt(np.asarray(arr)[index])}" for name, arr in context.items() if arr is not None]
        extra = " (" + ", ".join(parts) + ")" if parts else ""
    limit = "must match exactly" if allowed_fraction == 0 else f"allowed {allowed_fraction:.3g}"
    if pin_missed:
        limit += f"; {int(on_pin.sum())} at a pin, exactly on the threshold, where every dtype must match"  # type: ignore[union-attr]
    return Comparison(
        False,
        math.inf if ratio is None or pin_missed else ratio,
        f"{_header(what, case)}: {n_diff} of {e.size} values differ ({fraction:.3g}; {limit}); "
        f"first {'pin ' if pin_missed else ''}at index {_fmt_index(index)}: actual {_fmt(a[index])}, "
        f"expected {_fmt(e[index])}{extra}",
    )


def compare_scalar(what: str, actual: Any, expected: float, tol: Tolerance, *, case: str | None = None) -> Comparison:
    """One number (``dL/dtheta``, ``dL/dalpha``) against the scalar-gradient tolerance."""
    try:
        a = float(np.asarray(actual, dtype=np.float64).reshape(()))
    except (TypeError, ValueError):
        return Comparison(False, math.inf, f"{_header(what, case)}: expected a scalar, got {actual!r}")
    ratio = error_ratio(a, expected, tol)
    if ratio <= 1.0:
        return Comparison(True, ratio)
    allowed = tol.atol + tol.rtol * abs(expected)
    return Comparison(
        False,
        ratio,
        f"{_header(what, case)}: error {ratio:.3g}x the tolerance: actual {a:.10g}, expected "
        f"{expected:.10g}, |diff| {abs(a - expected):.3g} > atol {tol.atol:g} + rtol {tol.rtol:g} "
        f"* |expected| = {allowed:.3g}",
    )


#: Signature of the callback that stores one error ratio: ``(quantity, ratio)``.
Recorder = Callable[[str, float], None]


class Checker:
    """The comparisons of one test, bound to its dtype and case; records every ratio.

    ``label`` describes the test in messages (backend, device, dtype, case id). Each method raises
    ``AssertionError`` with the comparison's message when it fails, after recording the ratio.
    """

    def __init__(self, dtype: str, label: str, record: Recorder | None = None) -> None:
        self.dtype = dtype
        self.tolerances = for_dtype(dtype)
        self.label = label
        self._record = record
        self._soft: list[str] | None = None

    @contextlib.contextmanager
    def collect(self) -> Iterator[None]:
        """Within this block failed comparisons are gathered instead of raised at once; leaving it
        raises one ``AssertionError`` listing all of them (an exception from the code under test
        inside the block propagates unchanged)."""
        outer, self._soft = self._soft, []
        try:
            yield
            failures = self._soft
        finally:
            self._soft = outer
        if failures:
            raise AssertionError("\n".join(failures))

    def record(self, quantity: str, ratio: float | None) -> None:
        """Store ``ratio`` (error over its tolerance, 1.0 = limit) for the end-of-run matrix."""
        if ratio is not None and self._record is not None:
            self._record(quantity, float(ratio))

    def _finish(self, what: str, result: Comparison) -> float | None:
        self.record(what, result.ratio)
        if not result.ok:
            if self._soft is not None:
                self._soft.append(result.message)
            else:
                raise AssertionError(result.message)
        return result.ratio

    def keys(self, what: str, out: Mapping[str, Any], required: Iterable[str]) -> None:
        """``out`` (an adapter's result) must hold every key in ``required``."""
        if not isinstance(out, Mapping):
            raise AssertionError(f"{what}, case {self.label}: expected a dict, got {type(out).__name__}")
        missing = [k for k in required if k not in out or out[k] is None]
        if missing:
            raise AssertionError(f"{what}, case {self.label}: result lacks {missing}; it has {sorted(out)}")

    def exact(
        self,
        what: str,
        actual: Any,
        expected: Any,
        context: Mapping[str, Any] | None = None,
        pinned: np.ndarray | None = None,
    ) -> None:
        """Spikes and reset draws: exact in float32/float64; in half precision the dtype's allowed
        mismatch fraction (SPEC §9), except at ``pinned`` positions, exact in every dtype."""
        self._finish(
            what,
            compare_exact(
                what,
                actual,
                expected,
                case=self.label,
                allowed_fraction=self.tolerances.spike_mismatch,
                context=context,
                pinned=pinned,
            ),
        )

    def require(self, what: str, ok: bool, message: str) -> None:
        """A condition without a ratio (a value that must be non-finite, 0 or 1): fails with
        ``message`` (prefixed with ``what`` and the case) when ``ok`` is false."""
        if not ok:
            self._finish(what, Comparison(False, None, f"{_header(what, self.label)}: {message}"))

    def membrane(self, what: str, actual: Any, expected: Any) -> float | None:
        return self._finish(what, compare_close(what, actual, expected, self.tolerances.membrane, case=self.label))

    def gradient(self, what: str, actual: Any, expected: Any, mask: np.ndarray | None = None) -> float | None:
        return self._finish(
            what, compare_close(what, actual, expected, self.tolerances.gradient, case=self.label, mask=mask)
        )

    def scalar_gradient(self, what: str, actual: Any, expected: float) -> float | None:
        return self._finish(
            what, compare_scalar(what, actual, expected, self.tolerances.scalar_gradient, case=self.label)
        )
