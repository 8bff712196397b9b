"""The GPU check: its plan, how it reads what the steps leave (failures, timeouts, missing
reports), and a dry run end to end on this CPU."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gpucheck import __main__ as cli
from gpucheck import plan, summary

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_plan_certifies_every_cuda_pair_and_fits_in_nine_minutes() -> None:
    steps = plan.gpu_plan()
    conf = [s for s in steps if s.kind == "conformance"]
    assert [(s.backend, s.device) for s in conf] == [(b, "cuda") for b in ("torch", "jax", "numba-cuda", "cupy")]
    assert all(s.env.get("PSU_REQUIRE_DEVICE") == "1" and "-k" not in s.args for s in conf)
    bench = next(s for s in steps if s.kind == "bench")
    args = " ".join(bench.args)
    assert "--device cuda" in args and "--T 8 64 256 1024" in args and "--total 2^24" in args
    assert "--no-memory" not in args and not bench.parallel
    # unit tests and suites side by side, then the benchmark
    longest_parallel = max(s.timeout_s for s in steps if s.parallel)
    # (under the device tool's 10-minute limit on one command, with a minute to spare)
    assert longest_parallel + sum(s.timeout_s for s in steps if not s.parallel) < 9 * 60


def _conformance_report(path: Path, failed_group: str | None = None) -> None:
    rows = [
        {"backend": "torch", "device": "cuda", "group": g, "passed": 3, "failed": int(g == failed_group), "skipped": 0,
         "worst_error_ratio": 0.5, "worst_quantity": "forward membrane", "worst_test": "t"}
        for g in ("rng", "forward")
    ]  # fmt: skip
    path.write_text(json.dumps({"rows": rows, "collection_errors": []}))


def _doc(tmp_path: Path, **kw) -> dict:
    step = {"name": "s", "kind": "conformance", "command": "python -m pytest", "returncode": 0, "timed_out": False,
            "wall_s": 1.0, "tail": ""}  # fmt: skip
    doc = {"created": "now", "dry_run": True, "environment": {"torch": "x"}, "steps": [step], "unit": None,
           "conformance": [], "bench": None, "wall_s": 1.0}  # fmt: skip
    doc |= kw
    doc["ok"] = summary.is_ok(doc)
    return doc


def test_a_failing_group_a_missing_report_and_a_bad_exit_each_fail_the_check(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    _conformance_report(good)
    _conformance_report(bad, failed_group="forward")
    rows = summary.conformance_rows(good, "torch", "cuda", "why")
    assert _doc(tmp_path, conformance=rows)["ok"]
    doc = _doc(tmp_path, conformance=summary.conformance_rows(bad, "torch", "cuda", "why"))
    assert not doc["ok"] and "| torch-cuda | forward | 3 | 1 | 0 | 0.5 (forward membrane) | FAIL |" in summary.markdown(
        doc
    )
    missing = summary.conformance_rows(tmp_path / "none.json", "jax", "cuda", "timed out")
    doc = _doc(tmp_path, conformance=rows + missing)
    assert not doc["ok"] and "| jax-cuda | - | - | - | - | - | FAIL: timed out |" in summary.markdown(doc)
    crashed = _doc(tmp_path, conformance=rows)
    crashed["steps"][0] |= {"returncode": 3, "tail": "Traceback: boom"}
    assert not summary.is_ok(crashed) and "Traceback: boom" in summary.markdown(crashed)


def test_unit_counts_from_junit(tmp_path: Path) -> None:
    xml = tmp_path / "u.xml"
    xml.write_text('<testsuites><testsuite tests="5" failures="1" errors="0" skipped="2"/></testsuites>')
    counts = summary.unit_counts(xml)
    assert counts == {"tests": 5, "failures": 1, "errors": 0, "skipped": 2}
    assert not _doc(tmp_path, unit=counts)["ok"]
    assert summary.unit_counts(tmp_path / "missing.xml") is None


def test_a_step_past_its_timeout_is_interrupted_then_killed_and_reported(tmp_path: Path) -> None:
    # SIGINT first, so that pytest can still write the suite's report; SIGKILL for what ignores it.
    graceful = "import sys, time\ntry:\n    print('started', flush=True); time.sleep(60)\nexcept KeyboardInterrupt:\n    print('wrote my report', flush=True); sys.exit(2)"
    stubborn = "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); time.sleep(60)"
    fails = plan.Step("fails", "unit", ("-c", "raise SystemExit(7)"), 30)
    steps = [
        plan.Step("graceful", "unit", ("-c", graceful), 1),
        plan.Step("stubborn", "unit", ("-c", stubborn), 1),
        fails,
    ]
    records = cli.run_steps(steps, sys.executable, tmp_path, {})
    assert [r["name"] for r in records] == ["graceful", "stubborn", "fails"]
    assert records[0]["timed_out"] and records[0]["returncode"] == 2 and "wrote my report" in records[0]["tail"]
    assert records[1]["timed_out"] and records[1]["returncode"] < 0 and records[1]["wall_s"] < 1 + cli.GRACE_S + 10
    assert records[2]["returncode"] == 7 and not records[2]["timed_out"]


def test_a_report_left_by_an_earlier_run_is_never_read(tmp_path: Path) -> None:
    _conformance_report(tmp_path / "conformance-torch-cuda.json")
    crashes = plan.Step("conformance torch-cuda", "conformance", ("-c", "raise SystemExit(3)"), 30,
                        report="conformance-torch-cuda.json", backend="torch", device="cuda")  # fmt: skip
    cli.run_steps([crashes], sys.executable, tmp_path, {})
    rows = summary.conformance_rows(tmp_path / crashes.report, "torch", "cuda", "no report (exit 3)")
    assert rows == [{"backend": "torch", "device": "cuda", "group": None, "error": "no report (exit 3)"}]


def test_a_backend_the_benchmark_could_not_run_fails_the_check(tmp_path: Path) -> None:
    from benchmarks import backends, runner
    from benchmarks.tests.test_report import FakeAdapter

    class NoMemory(FakeAdapter):
        name = "no-memory"

        def prepare(self, case, grad_spikes, *, device, dtype):  # type: ignore[no-untyped-def]
            raise MemoryError("out of memory")

    cfg = runner.Config(variants=["psu"], Ts=[4], total=64, repeats=1, warmup=1, target_repeat_s=1e-4, memory=False)
    rows, skipped = runner.run(cfg, [backends.from_adapter("no-memory", NoMemory())], progress=lambda m: None)
    bench = {"rows": rows, "skipped": skipped, "problems": []}
    doc = _doc(tmp_path, bench=bench)
    assert not doc["ok"] and "- FAIL: no-memory cpu psu T=4 forward: prepare failed" in summary.markdown(doc)
    budget = [r | {"skipped": {"fwd+bwd": "one call took 12 s > budget 1 s"}} for r in rows]
    assert _doc(tmp_path, bench=bench | {"rows": budget})["ok"]  # a figure, reported, not a failure


def test_dry_run_end_to_end(tmp_path: Path) -> None:
    # What CI runs so that the one GPU command keeps working: every step, the summary, both files.
    proc = subprocess.run(
        [sys.executable, "-m", "gpucheck", "--dry-run", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=1500,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-3000:]
    doc = json.loads((tmp_path / "gpu-check.json").read_text())
    assert doc["ok"] and doc["dry_run"] and doc["format"] == summary.FORMAT
    pairs = {(r["backend"], r["device"]) for r in doc["conformance"]}
    assert pairs == {("torch", "cpu"), ("jax", "cpu"), ("numba-cuda", "cuda")}
    for pair in pairs:
        forward = next(r for r in doc["conformance"] if (r["backend"], r["device"]) == pair and r["group"] == "forward")
        assert forward["passed"] > 0 and forward["failed"] == 0
    assert doc["unit"]["tests"] > 0 and doc["unit"]["failures"] == 0
    impls = {r["impl"] for r in doc["bench"]["rows"] if r["fwd_bwd_ms"] is not None}
    assert {"torch", "jax", "numba-cpu", "dense-torch", "copy-floor"} <= impls
    md = (tmp_path / "gpu-check.md").read_text()
    assert md.startswith("# psu GPU check: PASS") and "nothing ran on a GPU" in md
    assert md.strip() in proc.stdout


def test_unknown_step_kind_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="unknown step kinds"):
        cli.main(["--dry-run", "--only", "bench,unknown", "--out", str(tmp_path)])
