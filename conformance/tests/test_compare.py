"""The comparison helpers: verdicts, ratios and the messages a porter reads."""

from __future__ import annotations

import math

import numpy as np
import pytest

from psu_conformance.compare import Checker, compare_close, compare_exact, compare_scalar
from psu_core.tolerances import Tolerance, error_ratio

TOL = Tolerance(rtol=1e-5, atol=1e-5)


def test_close_within_tolerance_reports_ratio() -> None:
    expected = np.array([[1.0, -2.0], [0.5, 0.0]])
    actual = expected + np.array([[1e-5, 0.0], [0.0, -5e-6]])
    result = compare_close("forward membrane", actual, expected, TOL, case="c1")
    assert result.ok and result.message == ""
    assert result.ratio == pytest.approx(error_ratio(actual, expected, TOL))
    assert 0.5 < result.ratio <= 1.0


def test_close_failure_names_what_case_index_values_and_tolerance() -> None:
    expected = np.zeros((3, 4))
    actual = expected.copy()
    actual[2, 1] = 1e-3
    actual[0, 0] = 2e-5
    result = compare_close("forward membrane", actual, expected, TOL, case="psu-T3")
    assert not result.ok
    assert result.ratio == pytest.approx(100.0)
    msg = result.message
    assert msg.startswith("forward membrane, case psu-T3: worst error 100x the tolerance at index (2, 1)")
    assert "actual 0.001, expected 0" in msg
    assert "atol 1e-05 + rtol 1e-05 * |expected| = 1e-05" in msg
    assert "2 of 12 values out of tolerance" in msg


def test_close_nan_is_infinitely_wrong() -> None:
    actual = np.array([1.0, np.nan, 3.0])
    result = compare_close("vjp dL/dx", actual, np.array([1.0, 2.0, 3.0]), TOL)
    assert not result.ok and math.isinf(result.ratio)  # type: ignore[arg-type]
    assert "at index (1)" in result.message and "actual nan" in result.message


def test_close_shape_mismatch() -> None:
    result = compare_close("forward membrane", np.zeros((4, 3)), np.zeros((4, 1, 3)), TOL, case="c")
    assert not result.ok and math.isinf(result.ratio)  # type: ignore[arg-type]
    assert result.message == "forward membrane, case c: shape [4, 3] returned, expected [4, 1, 3]"


def test_close_mask_ignores_unselected_positions() -> None:
    expected = np.zeros(4)
    actual = np.array([0.0, 1.0, 0.0, 0.0])
    mask = np.array([True, False, True, True])
    assert compare_close("vjp dL/dx", actual, expected, TOL, mask=mask).ok
    assert not compare_close("vjp dL/dx", actual, expected, TOL).ok
    assert compare_close("vjp dL/dx", actual, expected, TOL, mask=np.zeros(4, bool)).ratio == 0.0


def test_exact_counts_and_points_at_the_first_mismatch_with_context() -> None:
    expected = np.array([[0, 1, 1], [0, 0, 1]], dtype=float)
    actual = expected.copy()
    actual[1, 0] = 1
    actual[1, 2] = 0
    membrane = np.array([[0.1, 1.2, 1.5], [0.9995, 0.3, 1.1]])
    result = compare_exact("forward spikes", actual, expected, case="k", context={"expected membrane": membrane})
    assert not result.ok
    assert result.message == (
        "forward spikes, case k: 2 of 6 values differ (0.333; must match exactly); first at index (1, 0): "
        "actual 1, expected 0 (expected membrane 0.9995)"
    )


def test_exact_equal_arrays_and_dtype_independence() -> None:
    spikes = np.array([0, 1, 1, 0], dtype=np.float32)
    result = compare_exact("forward spikes", spikes.astype(bool), spikes.astype(np.float64))
    assert result.ok and result.ratio is None


def test_exact_allowed_fraction_for_half_precision() -> None:
    expected = np.zeros(100)
    one = expected.copy()
    one[7] = 1
    ok = compare_exact("forward spikes", one, expected, allowed_fraction=0.02)
    assert ok.ok and ok.ratio == pytest.approx(0.5)
    three = expected.copy()
    three[:3] = 1
    bad = compare_exact("forward spikes", three, expected, allowed_fraction=0.02)
    assert not bad.ok and bad.ratio == pytest.approx(1.5)
    assert "3 of 100 values differ (0.03; allowed 0.02)" in bad.message


def test_exact_a_pin_is_never_excused() -> None:
    """SPEC §9: at a pin (exactly on the threshold) a flip fails whatever fraction the dtype allows."""
    expected = np.zeros(100)
    one = expected.copy()
    one[7] = 1
    pinned = np.zeros(100, dtype=bool)
    assert compare_exact("forward spikes", one, expected, allowed_fraction=0.02, pinned=pinned).ok
    pinned[7] = True
    bad = compare_exact("forward spikes", one, expected, allowed_fraction=0.02, pinned=pinned)
    assert not bad.ok and bad.ratio == math.inf
    assert "1 of 100 values differ (0.01; allowed 0.02; 1 at a pin, exactly on the threshold" in bad.message
    assert "first pin at index (7): actual 1, expected 0" in bad.message
    two = one.copy()
    two[3] = 1  # the first difference reported is the pin's, not the excused one before it
    assert "first pin at index (7)" in compare_exact("s", two, expected, allowed_fraction=0.02, pinned=pinned).message
    assert compare_exact("s", expected, expected, allowed_fraction=0.02, pinned=pinned).ok


def test_checker_half_precision_excuses_no_pin() -> None:
    check = Checker("float16", "c")
    expected = np.zeros((4, 25))
    actual = expected.copy()
    actual[1, 2] = 1
    check.exact("forward spikes", actual, expected, pinned=np.zeros_like(expected, dtype=bool))
    pinned = np.zeros_like(expected, dtype=bool)
    pinned[1, 2] = True
    with pytest.raises(AssertionError, match=r"1 at a pin.*first pin at index \(1, 2\)"):
        check.exact("forward spikes", actual, expected, pinned=pinned)


def test_exact_nan_differs() -> None:
    assert not compare_exact("forward spikes", [np.nan], [0.0]).ok


def test_scalar() -> None:
    ok = compare_scalar("vjp dL/dthreshold", 1.00005, 1.0, Tolerance(1e-4, 1e-4))
    assert ok.ok and 0 < ok.ratio < 1  # type: ignore[operator]
    bad = compare_scalar("vjp dL/dthreshold", np.float32(1.1), 1.0, Tolerance(1e-4, 1e-4), case="c")
    assert not bad.ok
    assert bad.message.startswith("vjp dL/dthreshold, case c: error 500x the tolerance: actual 1.100000024, expected 1")
    assert not compare_scalar("vjp dL/dthreshold", [1.0, 2.0], 1.0, Tolerance(1e-4, 1e-4)).ok
    assert not compare_scalar("vjp dL/dthreshold", float("nan"), 1.0, Tolerance(1e-4, 1e-4)).ok


def test_checker_uses_dtype_tolerances_records_and_raises() -> None:
    recorded: list[tuple[str, float]] = []
    check = Checker("float32", "reference-cpu-float32-case", lambda q, r: recorded.append((q, r)))
    check.membrane("forward membrane", [1.0 + 5e-6], [1.0])  # float32 membrane: 1e-5 / 1e-5
    with pytest.raises(AssertionError, match=r"^forward membrane, case reference-cpu-float32-case: worst error"):
        check.membrane("forward membrane", [1.1], [1.0])
    check.exact("forward spikes", [1.0, 0.0], [1.0, 0.0])
    assert [q for q, _ in recorded] == ["forward membrane", "forward membrane"]
    assert recorded[0][1] < 1.0 < recorded[1][1]
    with pytest.raises(AssertionError, match="1 of 2 values differ"):
        check.exact("forward spikes", [1.0, 1.0], [1.0, 0.0])


def test_checker_half_precision_allows_a_few_flips() -> None:
    check = Checker("float16", "c")
    expected = np.zeros(100)
    actual = expected.copy()
    actual[0] = 1
    check.exact("forward spikes", actual, expected)  # 1% <= 2%


def test_checker_collect_reports_every_failure_once() -> None:
    check = Checker("float64", "c")
    with pytest.raises(AssertionError) as info:
        with check.collect():
            check.gradient("vjp dL/dx", [1.0], [2.0])
            check.scalar_gradient("vjp dL/dthreshold", 3.0, 1.0)
            check.gradient("vjp dL/dbias", [1.0], [1.0])
    lines = str(info.value).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("vjp dL/dx, case c") and lines[1].startswith("vjp dL/dthreshold, case c")


def test_checker_collect_lets_adapter_errors_through() -> None:
    check = Checker("float64", "c")
    with pytest.raises(RuntimeError, match="boom"):
        with check.collect():
            check.gradient("vjp dL/dx", [1.0], [2.0])
            raise RuntimeError("boom")
    # and the checker is usable again afterwards, raising at once
    with pytest.raises(AssertionError):
        check.gradient("vjp dL/dx", [1.0], [2.0])


def test_checker_keys() -> None:
    check = Checker("float64", "c")
    check.keys("forward", {"spikes": 1, "membrane": 2}, ["spikes", "membrane"])
    with pytest.raises(AssertionError, match=r"forward, case c: result lacks \['reset'\]"):
        check.keys("forward", {"spikes": 1, "membrane": 2, "reset": None}, ["spikes", "reset"])
    with pytest.raises(AssertionError, match="expected a dict"):
        check.keys("forward", (1, 2), ["spikes"])  # type: ignore[arg-type]


def test_checker_rejects_unknown_dtype() -> None:
    with pytest.raises(ValueError, match="dtype"):
        Checker("float8", "c")
