"""The exec adapter: a port in another language driven over the line protocol (PORTING.md, Protocol).

A Python program speaking the protocol over the reference (``exec_reference_port.py``) passes
every group but api, which skips saying why; each bug planted in it fails its group; every line
it exchanges is valid against ``protocol.schema.json``; and the JavaScript port in ports/js passes.
"""

from __future__ import annotations

import json
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest
from test_suite_runs import BROKEN, FEW_CASES, FUZZ_SECONDS, rows, run_suite

from psu_conformance.cases import valid_case
from psu_conformance.exec_adapter import API_NOT_APPLICABLE, LOG_ENV, PROTOCOL_VERSION, ExecAdapter
from psu_conformance.report import GROUPS
from psu_core.adapter import ReferenceAdapter
from psu_core.vectors import schema as vectors_schema

pytest_plugins = ["pytester"]
HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PORT = HERE / "exec_reference_port.py"
SCHEMA_PATH = ROOT / "conformance" / "src" / "psu_conformance" / "protocol.schema.json"
JS_ADAPTER = ROOT / "ports" / "js" / "adapter.mjs"


def exec_backend(*args: str) -> str:
    return "exec:" + shlex.join([sys.executable, str(PORT), *args])


def test_exec_port_passes_every_group_but_api_which_says_why(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    log = tmp_path / "transcript.txt"
    monkeypatch.setenv(LOG_ENV, str(log))
    result, data = run_suite(pytester, exec_backend(), args=("-k", FEW_CASES, *FUZZ_SECONDS))
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*psu conformance matrix: python-exec on cpu (float64)*"])
    result.stdout.fnmatch_lines([f"SKIPPED*{API_NOT_APPLICABLE[:60]}*"])
    by_group = rows(data)
    assert by_group["api"]["skipped"] > 0 and by_group["api"]["passed"] == by_group["api"]["failed"] == 0
    for group in GROUPS[1:]:
        assert by_group[group]["passed"] > 0 and by_group[group]["failed"] == 0, (group, by_group[group])

    # Every request and reply of that run follows the protocol's schema.
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    validators = {
        name: jsonschema.Draft202012Validator({**schema, "$ref": f"#/$defs/{name}"}) for name in schema["$defs"]
    }
    lines = log.read_text().splitlines()

    def shortened(message: Any) -> Any:
        # The schema's per-value checks on arrays of 2**15 values take a minute; 64 values say as much.
        if isinstance(message, dict):
            return {k: (v[:64] if k == "data" else shortened(v)) for k, v in message.items()}
        return message

    ops: set[str] = set()
    for request_line, reply_line in zip(lines[::2], lines[1::2], strict=True):
        assert request_line.startswith("> ") and reply_line.startswith("< ")
        request, reply = shortened(json.loads(request_line[2:])), shortened(json.loads(reply_line[2:]))
        op = request["op"]
        ops.add(op)
        validators[f"request_{op}"].validate(request)
        validators["error" if "error" in reply else f"reply_{op}"].validate(reply)
    assert ops == {"hello", "devices", "dtypes", "forward", "vjp", "online", "threefry2x32", "uniforms"}
    assert any('"error"' in line for line in lines[1::2])  # the bad-input errors were checked too


def test_protocol_schema_encodes_calls_as_the_vectors_do() -> None:
    """A request's case is a call of bad_input.json: one definition, the same in both schemas."""
    defs = json.loads(SCHEMA_PATH.read_text())["$defs"]
    assert defs["case"] == json.loads(json.dumps(vectors_schema.CALL))
    assert defs["call_array"] == json.loads(json.dumps(vectors_schema.CALL_ARRAY))
    assert defs["reply_hello"]["properties"]["protocol"] == {"const": PROTOCOL_VERSION}


def test_membrane_late_fails_forward(pytester: pytest.Pytester) -> None:
    result, data = run_suite(pytester, exec_backend("membrane-late"), "forward", "online", args=("-k", "T4-N2x3-"))
    by_group = rows(data)
    assert by_group["forward"]["failed"] == 5 and by_group["online"]["passed"] == 5
    result.stdout.fnmatch_lines(["*forward membrane, case python-exec-cpu-float64-*worst error*"])


@pytest.mark.parametrize(
    ("bug", "failed", "line"),
    [
        ("lax-tau", 4, "*forward accepted bad input psu-tau=0.5: expected ValueError naming 'tau'*"),
        ("wrong-kind", 8, "*bad input psu-tau=1.0: raised TypeError(tau: tau must be*), expected ValueError*"),
        ("no-argument", 8, "*error of kind invalid_value without the argument's name*"),
    ],
)
def test_wrong_errors_fail_bad_input(pytester: pytest.Pytester, bug: str, failed: int, line: str) -> None:
    result, data = run_suite(pytester, exec_backend(bug), "bad_input", args=("-k", "psu-tau"))
    result.assert_outcomes(passed=8 - failed, failed=failed)
    result.stdout.fnmatch_lines([line])
    assert rows(data)["bad_input"]["failed"] == failed


def test_a_crash_is_reported_with_the_exit_code_and_stderr(pytester: pytest.Pytester) -> None:
    result, data = run_suite(pytester, exec_backend("crash-on-vjp"), "gradients", args=("-k", "T1-N6-th1-tied"))
    assert rows(data)["gradients"]["failed"] >= 1
    result.stdout.fnmatch_lines(
        ["*closed its stdout (exit code 3)*crashing on purpose*", "*is not running (exit code 3)*"]
    )


def test_a_wrong_protocol_version_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result, data = run_suite(pytester, exec_backend("bad-hello"), "rng")
    assert result.ret == pytest.ExitCode.USAGE_ERROR and data is None
    result.stderr.fnmatch_lines(["*answered hello with*expected protocol 1 and a name*"])


def test_a_missing_program_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result, _ = run_suite(pytester, "exec:no-such-program-xyz --flag", "rng")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*cannot start 'no-such-program-xyz --flag'*"])


def test_only_the_exec_adapter_skips_api(pytester: pytest.Pytester) -> None:
    """A Python backend cannot declare its way out of the api group: the skip is for the exec
    adapter's class alone, whatever attributes an adapter sets."""
    result, data = run_suite(pytester, f"{BROKEN}:renamed_keyword_claiming_exec", "api")
    result.assert_outcomes(failed=1, passed=8)
    assert rows(data)["api"]["skipped"] == 0


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js on PATH (the JavaScript port runs in it)")
def test_javascript_port_passes_every_group_but_api(pytester: pytest.Pytester) -> None:
    """A few cases of each group here; nox -s tests certifies ports/js on every case."""
    js = "exec:" + shlex.join(["node", str(JS_ADAPTER)])
    result, data = run_suite(pytester, js, args=("-k", FEW_CASES, *FUZZ_SECONDS))
    assert result.ret == 0, result.stdout.str()
    by_group = rows(data)
    assert by_group["api"]["skipped"] > 0
    for group in GROUPS[1:]:
        assert by_group[group]["passed"] > 0 and by_group[group]["failed"] == 0, (group, by_group[group])


PORTS = [pytest.param([sys.executable, str(PORT)], id="python-exec")] + [
    pytest.param(
        ["node", str(JS_ADAPTER)],
        id="js",
        marks=pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js on PATH"),
    )
]


@pytest.mark.parametrize("argv", PORTS)
def test_online_step_past_the_horizon_is_invalid_value_naming_step(argv: list[str]) -> None:
    """SPEC §3: IPSU/RPSU built for T steps refuse step T; over the protocol that is an
    invalid_value error naming ``step`` (the suite raises ValueError)."""
    port = ExecAdapter(shlex.join(argv))
    try:
        for variant in ("ipsu", "rpsu"):
            case = valid_case(variant)
            case["x"] = np.concatenate([case["x"], case["x"][:1]])  # T + 1 steps, weight [T, T]
            with pytest.raises(ValueError, match=r"^step: "):
                port.online(case, device="cpu", dtype="float64")
    finally:
        port.close()


@pytest.mark.parametrize("argv", PORTS)
def test_nonfinite_values_travel_both_ways(argv: list[str]) -> None:
    """NaN and infinities go to the port as "NaN"/"Infinity"/"-Infinity" and come back the same
    way: an unvalidated non-finite input gives a non-finite membrane from its step on (SPEC §1,
    issue 11 R1), and the steps before it are the reference's."""
    port = ExecAdapter(shlex.join(argv))
    try:
        for variant in ("psu", "ipsu", "rpsu"):
            case = valid_case(variant)
            x = case["x"].reshape(case["x"].shape[0], -1)
            x[1, 0], x[1, -1] = np.nan, -np.inf
            for call in (port.forward, port.online):
                out = call(case, device="cpu", dtype="float64")
                reference = ReferenceAdapter().forward(case, device="cpu", dtype="float64")
                v = np.asarray(out["membrane"]).reshape(x.shape)
                assert not np.isfinite(v[1, 0]) and not np.isfinite(v[1, -1]), (variant, call.__name__, v[1])
                assert np.array_equal(v[:1], reference["membrane"].reshape(x.shape)[:1]), (variant, call.__name__)
                assert np.isin(out["spikes"], (0.0, 1.0)).all()
    finally:
        port.close()
