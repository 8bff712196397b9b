"""The GPU check's one summary: what each step reported, as JSON and as Markdown.

JSON (``format`` = ``psu-gpu-check/1``)::

    {"format": ..., "created": ISO-8601 UTC, "dry_run": bool, "ok": bool, "wall_s": float,
     "environment": {name: version or message},
     "steps": [{"name", "kind", "command", "returncode", "timed_out", "wall_s", "tail"}],
     "unit": {"tests", "failures", "errors", "skipped"} | null,
     "conformance": [{"backend", "device", "group", "passed", "failed", "skipped",
                      "worst_error_ratio", "worst_quantity"} | {"backend", "device", "group": null,
                      "error": why no report}],
     "bench": {"rows": [benchmark rows], "skipped": [...], "problems": [...]} | null}

A step is ``ok`` when it exited 0 and its report says so; a step that timed out or left no report
is a failure with its reason, never a silent pass.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

FORMAT = "psu-gpu-check/1"
PHASES_NOTE = "fwd/dense, f+b/dense: time over the paper's dense formulation; fwd/floor, f+b/floor: over the copy floor"


def unit_counts(junit_xml: Path) -> dict[str, int] | None:
    """Totals of a pytest JUnit XML file (None if it is missing or unreadable)."""
    try:
        root = ET.parse(junit_xml).getroot()
    except (OSError, ET.ParseError):
        return None
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    keys = ("tests", "failures", "errors", "skipped")
    return {k: sum(int(s.get(k, 0)) for s in suites) for k in keys}


def conformance_rows(report: Path, backend: str, device: str, why_missing: str) -> list[dict[str, Any]]:
    """The pair's group rows from its ``--psu-report`` JSON, or one row saying why there is none."""
    try:
        doc = json.loads(report.read_text())
    except (OSError, ValueError):
        return [{"backend": backend, "device": device, "group": None, "error": why_missing}]
    keys = ("backend", "device", "group", "passed", "failed", "skipped", "worst_error_ratio", "worst_quantity")
    rows = [{k: r.get(k) for k in keys} for r in doc["rows"]]
    rows += [
        {"backend": backend, "device": device, "group": None, "error": f"collection error: {e}"}
        for e in doc.get("collection_errors", [])
    ]
    return rows


def bench_part(bench_json: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(bench_json.read_text())
    except (OSError, ValueError):
        return None
    return {k: doc.get(k, []) for k in ("rows", "skipped", "problems")} | {"machine": doc.get("machine", {})}


def bench_failures(bench: dict[str, Any] | None) -> list[str]:
    """Backends the benchmark could not run: a ``prepare`` or a timed call that raised (a compile
    error, out of memory). Over-budget skips are figures, not failures: they are reported only."""
    if bench is None:
        return []
    out = []
    for r in bench["rows"]:
        for phase, why in r.get("skipped", {}).items():
            if r["kind"] == "backend" and why.startswith(("prepare failed", "raised")):
                out.append(f"{r['impl']} {r['device']} {r['variant']} T={r['T']} {phase}: {why}")
    return out


def is_ok(summary: dict[str, Any]) -> bool:
    steps_ok = all(s["returncode"] == 0 and not s["timed_out"] for s in summary["steps"])
    conf_ok = all(r.get("group") is not None and r["failed"] == 0 for r in summary["conformance"])
    unit = summary["unit"]
    unit_ok = unit is None or (unit["failures"] == 0 and unit["errors"] == 0)
    return steps_ok and conf_ok and unit_ok and not bench_failures(summary["bench"])


def _ratio(v: Any) -> str:
    if v is None:
        return "-"
    return "inf" if v == "inf" else f"{v:.3g}"


def _md_table(head: list[str], body: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return lines + ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in body]


def markdown(summary: dict[str, Any]) -> str:
    """The summary as Markdown: verdict, environment, steps, pair x group, unit tests, speed."""
    from benchmarks.report import COLUMNS, table_rows

    verdict = "PASS" if summary["ok"] else "FAIL"
    kind = (
        "dry run on the CPU (interpreter, simulator, CPU pairs: nothing ran on a GPU)" if summary["dry_run"] else "GPU"
    )
    out = [f"# psu GPU check: {verdict}", "", f"{summary['created']}, {kind}, {summary['wall_s']:.0f} s in all.", ""]
    out += ["## Environment", ""] + [f"- {k}: {v}" for k, v in summary["environment"].items()] + [""]
    out += ["## Steps", ""]
    out += _md_table(
        ["step", "exit", "wall s", "command"],
        [
            [
                s["name"],
                "timed out" if s["timed_out"] else str(s["returncode"]),
                f"{s['wall_s']:.0f}",
                f"`{s['command']}`",
            ]
            for s in summary["steps"]
        ],
    )
    out += ["", "## Conformance (pair x group)", ""]
    body = []
    for r in summary["conformance"]:
        pair = f"{r['backend']}-{r['device']}"
        if r.get("group") is None:
            body.append([pair, "-", "-", "-", "-", "-", f"FAIL: {r['error']}"])
            continue
        ran = r["passed"] + r["failed"] + r["skipped"]
        status = "FAIL" if r["failed"] else ("not run" if ran == 0 else "skipped" if r["passed"] == 0 else "pass")
        worst = _ratio(r["worst_error_ratio"]) + (f" ({r['worst_quantity']})" if r["worst_quantity"] else "")
        body.append([pair, r["group"], str(r["passed"]), str(r["failed"]), str(r["skipped"]), worst, status])
    out += _md_table(["pair", "group", "passed", "failed", "skipped", "worst error/tol", "status"], body)
    u = summary["unit"]
    out += ["", "## Unit tests", ""]
    if u is None:
        out.append("No JUnit report (see the step's exit and output).")
    else:
        passed = u["tests"] - u["failures"] - u["errors"] - u["skipped"]
        out.append(f"{passed} passed, {u['failures']} failed, {u['errors']} errors, {u['skipped']} skipped.")
    out += ["", "## Speed", ""]
    b = summary["bench"]
    if b is None:
        out.append("No benchmark report (see the step's exit and output).")
    else:
        out += [PHASES_NOTE + "; peak MiB: extra memory of one forward+backward call.", ""]
        out += _md_table(list(COLUMNS), table_rows(b["rows"]))
        out += [f"- FAIL: {f}" for f in bench_failures(b)]
        out += [f"- skipped: {s}" for s in b["skipped"]] + [f"- problem: {p}" for p in b["problems"]]
    failing = [s for s in summary["steps"] if s["returncode"] != 0 or s["timed_out"]]
    if failing:
        out += ["", "## Output of the failing steps (last lines)", ""]
        for s in failing:
            out += [f"### {s['name']}", "", "```", s["tail"].rstrip(), "```", ""]
    return "\n".join(out).rstrip() + "\n"
