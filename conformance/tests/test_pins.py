"""The pin cases (SPEC §10) catch the two wrong ports the margins let through: one that fires at
``V >= theta`` and one that resets at ``u <= P``. Both bugs are planted in a copy of the
JavaScript port (ports/js, one comparison each), which then fails the pins in forward and online
(and, for the draw, sampled) while it passes the grid cases; and a float16 port that fires at the
threshold fails them too, the half-precision allowance for flipped spikes notwithstanding.
"""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

import pytest
from test_suite_runs import BROKEN, rows, run_suite

pytest_plugins = ["pytester"]
JS = Path(__file__).resolve().parents[2] / "ports" / "js"
#: bug -> (file, the correct code, the planted bug)
BUGS = {
    "fire-at-threshold": ("psu.mjs", "s[i] = v[i] > p.threshold ? 1 : 0;", "s[i] = v[i] >= p.threshold ? 1 : 0;"),
    "reset-at-probability": ("psu.mjs", "uniform(key, i, t) < probability[i]", "uniform(key, i, t) <= probability[i]"),
}
GROUPS = ("forward", "online", "sampled")
needs_node = pytest.mark.skipif(
    shutil.which("node") is None, reason="needs Node.js on PATH (the JavaScript port runs in it)"
)


def planted(tmp_path: Path, bug: str) -> str:
    """The exec backend of a copy of ports/js with ``bug`` planted."""
    port = tmp_path / "js"
    shutil.copytree(JS, port)
    name, right, wrong = BUGS[bug]
    text = (port / name).read_text()
    assert text.count(right) == 1, f"ports/js/{name} no longer holds {right!r}: plant the bug where it now is"
    (port / name).write_text(text.replace(right, wrong))
    return "exec:" + shlex.join(["node", str(port / "adapter.mjs")])


@needs_node
@pytest.mark.parametrize(
    ("bug", "failed", "lines"),
    [
        (
            "fire-at-threshold",
            {"forward": 5, "online": 5, "sampled": 0},  # every pin case has membrane pins
            ["*forward spikes, case js-cpu-float64-*-pins: *at a pin, exactly on the threshold*"],
        ),
        (
            "reset-at-probability",
            {"forward": 2, "online": 2, "sampled": 2},  # the two sampled pin cases
            [
                "*forward membrane, case js-cpu-float64-psu-sampled-*-pins: worst error*",
                "*online reset draws, case js-cpu-float64-rpsu-sampled-*-pins: *at a pin*",
                "*forward reset draws, case js-cpu-float64-psu-sampled-*-pins: *at a pin*",
            ],
        ),
    ],
)
def test_a_planted_bug_fails_the_pins(
    pytester: pytest.Pytester, tmp_path: Path, bug: str, failed: dict[str, int], lines: list[str]
) -> None:
    result, data = run_suite(pytester, planted(tmp_path, bug), *GROUPS, args=("-k", "pins"))
    by_group = rows(data)
    assert {g: by_group[g]["failed"] for g in GROUPS} == failed, result.stdout.str()
    for line in lines:
        result.stdout.fnmatch_lines([line])


@needs_node
@pytest.mark.parametrize("bug", sorted(BUGS))
def test_the_grid_alone_misses_a_planted_bug(pytester: pytest.Pytester, tmp_path: Path, bug: str) -> None:
    """Why the pins exist: the grid's cases keep their margins, so the wrong port passes them."""
    result, data = run_suite(pytester, planted(tmp_path, bug), *GROUPS, args=("-k", "-T4- and not pins"))
    assert result.ret == 0, result.stdout.str()
    assert all(rows(data)[g]["passed"] > 0 for g in GROUPS)


@needs_node
def test_the_port_itself_passes_the_pins(pytester: pytest.Pytester) -> None:
    result, data = run_suite(
        pytester, "exec:" + shlex.join(["node", str(JS / "adapter.mjs")]), *GROUPS, args=("-k", "pins")
    )
    assert result.ret == 0, result.stdout.str()
    assert {g: rows(data)[g]["passed"] for g in GROUPS} == {"forward": 5, "online": 5, "sampled": 2}


def test_half_precision_excuses_no_pin(pytester: pytest.Pytester) -> None:
    result, data = run_suite(pytester, f"{BROKEN}:half_fire_at_threshold", "forward", "online", args=("-k", "pins"))
    by_group = rows(data)
    assert by_group["forward"]["failed"] == by_group["online"]["failed"] == 5
    result.stdout.fnmatch_lines(["*forward spikes, case half-fire-at-threshold-cpu-float16-*-pins: *at a pin*"])
    # The same port off the pins: float16's rules hold (nothing there is on a threshold).
    result, data = run_suite(pytester, f"{BROKEN}:half_fire_at_threshold", "forward", "online", args=("-k", "T4-N2x3-"))
    assert result.ret == 0, result.stdout.str()
