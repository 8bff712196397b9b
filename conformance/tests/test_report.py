"""The end-of-run matrix and its JSON."""

from __future__ import annotations

import json
from pathlib import Path

from psu_conformance.report import (
    GROUP_PROPERTY,
    GROUPS,
    RATIO_PROPERTY,
    Matrix,
    default_report_path,
    group_of,
    write_report,
)


def props(group: str, *ratios: tuple[str, float]) -> list[tuple[str, object]]:
    return [(GROUP_PROPERTY, group)] + [(RATIO_PROPERTY, {"quantity": q, "ratio": r}) for q, r in ratios]


def test_group_of() -> None:
    assert group_of(Path("/x/psu_conformance/test_bad_input.py")) == "bad_input"
    assert group_of(Path("test_rng.py")) == "rng"
    assert group_of(Path("test_other.py")) is None
    assert group_of(Path("conftest.py")) is None


def test_one_count_per_test_worst_phase_wins() -> None:
    m = Matrix("b", "cpu", ["float64"])
    p = props("forward")
    for phase in ("passed", "passed", "passed"):  # setup, call, teardown
        m.add("::a", phase, p)
    m.add("::b", "passed", p)
    m.add("::b", "failed", p)  # call failed
    m.add("::b", "passed", p)
    m.add("::c", "skipped", p)  # skipped in setup
    m.add("::c", "passed", p)  # teardown
    m.add("::d", "passed", p)
    m.add("::d", "passed", p)
    m.add("::d", "failed", p)  # teardown error
    s = m.stats()["forward"]
    assert (s.passed, s.failed, s.skipped) == (1, 2, 1)


def test_reports_without_group_are_ignored() -> None:
    m = Matrix("b", "cpu", ["float64"])
    m.add("other.py::test_x", "failed", [])
    assert all(s.passed + s.failed + s.skipped == 0 for s in m.stats().values())


def test_same_test_name_in_two_groups_counts_twice() -> None:
    m = Matrix("b", "cpu", ["float64"])
    m.add("::test_x", "passed", props("rng"))
    m.add("::test_x", "passed", props("online"))
    assert m.stats()["rng"].passed == m.stats()["online"].passed == 1


def test_worst_ratio_kept_with_quantity_and_test() -> None:
    m = Matrix("b", "cpu", ["float64", "float32"])
    m.add("::t1", "passed", props("gradients", ("vjp dL/dx", 0.2), ("vjp dL/dbias", 0.7)))
    m.add("::t2", "failed", props("gradients", ("vjp dL/dthreshold", 3.5)))
    m.add("::t3", "passed", props("gradients", ("vjp dL/dx", 0.9)))
    m.add("::t4", "failed", props("forward", ("forward membrane", float("nan"))))
    data = m.to_json()
    rows = {r["group"]: r for r in data["rows"]}
    assert rows["gradients"]["worst_error_ratio"] == 3.5
    assert rows["gradients"]["worst_quantity"] == "vjp dL/dthreshold"
    assert rows["gradients"]["worst_test"] == "::t2"
    assert rows["forward"]["worst_error_ratio"] == "inf"
    assert rows["rng"]["worst_error_ratio"] is None
    assert data["totals"] == {"passed": 2, "failed": 2, "skipped": 0}
    assert data["ok"] is False
    assert [r["group"] for r in data["rows"]] == list(GROUPS)
    json.dumps(data, allow_nan=False)  # strict JSON


def test_table_has_a_row_per_group() -> None:
    m = Matrix("torch", "cuda", ["float32"])
    m.add("::t", "passed", props("forward", ("forward membrane", 0.25)))
    lines = m.table()
    assert lines[0].split() == ["backend", "device", "group", "passed", "failed", "skipped", "worst", "error/tol"]
    assert len(lines) == 1 + len(GROUPS)
    forward = next(line for line in lines if " forward " in line)
    assert forward.split()[:6] == ["torch", "cuda", "forward", "1", "0", "0"]
    assert "0.25  (forward membrane)" in forward
    assert next(line for line in lines if " rng " in line).endswith("-")


def test_collection_errors_make_the_run_not_ok() -> None:
    m = Matrix("b", "cpu", ["float64"])
    m.collection_errors.append("test_forward.py: ImportError")
    assert m.to_json()["ok"] is False
    assert m.table()[-1] == "collection error: test_forward.py: ImportError"


def test_default_report_path_is_file_safe() -> None:
    assert default_report_path("numba-cuda", "cuda") == Path("psu-conformance-numba-cuda-cuda.json")
    assert default_report_path("my port/x:y", "cpu") == Path("psu-conformance-my_port_x_y-cpu.json")


def test_write_report(tmp_path: Path) -> None:
    m = Matrix("b", "cpu", ["float64"])
    path = tmp_path / "sub" / "r.json"
    write_report(m, path)
    assert json.loads(path.read_text())["backend"] == "b"
