"""The end-of-run matrix: backend x device x group -> passed / failed / skipped, worst error ratio.

One test counts once: failed if any phase (setup, call, teardown) failed, else skipped if it was
skipped, else passed. The plugin tags every suite test at collection with a ``user_properties``
entry ``("psu_group", group)`` (node ids alone do not name the module reliably: with ``--pyargs``
outside the rootdir their file part can be empty). Tests record error ratios (error over tolerance, 1.0 = the limit) as
``user_properties`` entries ``("psu_error_ratio", {"quantity": ..., "ratio": ...})``; the matrix
keeps the worst per group, with the test and quantity that produced it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: The groups, in report order; each is one module ``psu_conformance/test_<group>.py``.
GROUPS = ("api", "rng", "forward", "gradients", "sampled", "online", "bad_input", "determinism", "causality", "fuzz")
#: Name of the ``user_properties`` entry tests use for error ratios.
RATIO_PROPERTY = "psu_error_ratio"
#: Name of the ``user_properties`` entry that holds a test's group.
GROUP_PROPERTY = "psu_group"
#: Version of the JSON report's layout.
REPORT_VERSION = 1

_PRECEDENCE = {"passed": 0, "skipped": 1, "failed": 2}


def group_of(path: Path) -> str | None:
    """``.../test_forward.py`` -> ``"forward"`` (None if the file is not a group's module)."""
    name = Path(path).name
    if name.startswith("test_") and name.endswith(".py") and name[5:-3] in GROUPS:
        return name[5:-3]
    return None


@dataclass
class Worst:
    ratio: float
    quantity: str
    test: str


@dataclass
class GroupStats:
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    worst: Worst | None = None


@dataclass
class Matrix:
    """Accumulates test outcomes of one backend on one device."""

    backend: str
    device: str
    dtypes: list[str]
    outcomes: dict[tuple[str, str], str] = field(default_factory=dict)  # (group, nodeid) -> outcome
    worst: dict[str, Worst] = field(default_factory=dict)  # group -> worst ratio
    collection_errors: list[str] = field(default_factory=list)

    def add(self, nodeid: str, outcome: str, user_properties: Iterable[tuple[str, Any]] = ()) -> None:
        """Fold one phase report (``outcome`` is "passed", "failed" or "skipped") into the matrix;
        reports without a ``psu_group`` property are not the suite's and are ignored."""
        props = list(user_properties)
        group = next((str(v) for k, v in props if k == GROUP_PROPERTY), None)
        if group not in GROUPS:
            return
        key = (group, nodeid)
        old = self.outcomes.get(key)
        if old is None or _PRECEDENCE[outcome] > _PRECEDENCE[old]:
            self.outcomes[key] = outcome
        for name, value in props:
            if name != RATIO_PROPERTY:
                continue
            ratio = float(value["ratio"])
            if math.isnan(ratio):
                ratio = math.inf
            current = self.worst.get(group)
            if current is None or ratio > current.ratio:
                self.worst[group] = Worst(ratio, str(value["quantity"]), nodeid)

    def stats(self) -> dict[str, GroupStats]:
        out = {g: GroupStats() for g in GROUPS}
        for (group, _), outcome in self.outcomes.items():
            s = out[group]
            setattr(s, outcome, getattr(s, outcome) + 1)
        for group, worst in self.worst.items():
            out[group].worst = worst
        return out

    def to_json(self) -> dict[str, Any]:
        """The report: one row per group, plus totals. ``worst_error_ratio`` is a number, ``null``
        when the group recorded none, or the string ``"inf"`` for NaN/infinite/ill-shaped results."""
        rows = []
        totals = {"passed": 0, "failed": 0, "skipped": 0}
        for group, s in self.stats().items():
            for k in totals:
                totals[k] += getattr(s, k)
            rows.append(
                {
                    "backend": self.backend,
                    "device": self.device,
                    "group": group,
                    "passed": s.passed,
                    "failed": s.failed,
                    "skipped": s.skipped,
                    "worst_error_ratio": None if s.worst is None else _json_ratio(s.worst.ratio),
                    "worst_quantity": None if s.worst is None else s.worst.quantity,
                    "worst_test": None if s.worst is None else s.worst.test,
                }
            )
        return {
            "report_version": REPORT_VERSION,
            "backend": self.backend,
            "device": self.device,
            "dtypes": list(self.dtypes),
            "rows": rows,
            "totals": totals,
            "collection_errors": list(self.collection_errors),
            "ok": totals["failed"] == 0 and not self.collection_errors,
        }

    def table(self) -> list[str]:
        """The matrix as lines of text for the terminal."""
        head = ("backend", "device", "group", "passed", "failed", "skipped", "worst error/tol")
        body = []
        for group, s in self.stats().items():
            worst = "-" if s.worst is None else f"{_fmt_ratio(s.worst.ratio)}  ({s.worst.quantity})"
            body.append((self.backend, self.device, group, str(s.passed), str(s.failed), str(s.skipped), worst))
        widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head) - 1)]
        numeric = {3, 4, 5}

        def line(r: tuple[str, ...]) -> str:
            cells = [r[i].rjust(widths[i]) if i in numeric else r[i].ljust(widths[i]) for i in range(len(widths))]
            return "  ".join([*cells, r[-1]]).rstrip()

        lines = [line(head)] + [line(r) for r in body]
        for err in self.collection_errors:
            lines.append(f"collection error: {err}")
        return lines


def _json_ratio(ratio: float) -> float | str:
    return ratio if math.isfinite(ratio) else "inf"


def _fmt_ratio(ratio: float) -> str:
    return "inf" if not math.isfinite(ratio) else f"{ratio:.3g}"


def default_report_path(backend: str, device: str) -> Path:
    """``psu-conformance-<backend>-<device>.json`` in the current directory (names made file-safe)."""
    safe = [re.sub(r"[^A-Za-z0-9._-]+", "_", s) for s in (backend, device)]
    return Path(f"psu-conformance-{safe[0]}-{safe[1]}.json")


def write_report(matrix: Matrix, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(matrix.to_json(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
