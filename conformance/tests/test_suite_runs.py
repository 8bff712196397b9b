"""The suite, run in-process on the reference adapter and on deliberately broken ones: it must
pass the oracle, fail each planted bug in the matching group, and report what it ran.

Inner runs are restricted to the groups (modules) under test and, with ``-k``, to a few cases, to
stay fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from psu_conformance.report import GROUPS

# Here rather than in a conftest.py: pytest refuses pytest_plugins in a conftest below the rootdir,
# and the repository runs these tests from its root as well as from conformance/.
pytest_plugins = ["pytester"]
HERE = Path(__file__).resolve().parent
BROKEN = "conformance_broken_adapters"
#: A few golden cases of every (variant, reset) file, every other test whole.
#: (The split-call test skips for a backend without a batching path, as the reference is: left out.)
FEW_CASES = (
    "(T4-N2x3- or not (test_forward[ or test_vjp[ or test_online[ or test_reset_draws[))"
    " and not test_split_call_draws_as_the_whole and (not _causal[ or -T16-)"
)
#: The fuzz group's time budget in inner runs (seconds, whole group).
FUZZ_SECONDS = ("--psu-fuzz-seconds", "4")
#: In-process runs drop the modules they imported afterwards, so a plugin that imports a large
#: library at the end of each run (hypothesis does, in its terminal summary) would pay that import
#: on every inner run; these plugins play no part in the suite. Blocking an absent plugin is a no-op.
QUIET_PLUGINS = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:benchmark")
#: The rng group's tests: 3 known answers, the words of rng.json, and its 9 uniform streams.
RNG_TESTS = 13


def run_suite(
    pytester: pytest.Pytester, backend: str, *groups: str, args: tuple[str, ...] = (), device: str = "cpu"
) -> tuple[pytest.RunResult, dict[str, Any] | None]:
    pytester.syspathinsert(HERE)
    report = pytester.path / "report.json"
    modules = [f"psu_conformance.test_{g}" for g in groups] or ["psu_conformance"]
    result = pytester.runpytest(
        "--pyargs",
        *modules,
        "--psu-backend",
        backend,
        "--psu-device",
        device,
        f"--psu-report={report}",
        *QUIET_PLUGINS,
        "-rs",
        *args,
    )
    data = json.loads(report.read_text()) if report.exists() else None
    return result, data


def rows(data: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    assert data is not None, "no JSON report was written"
    return {r["group"]: r for r in data["rows"]}


def test_reference_passes_every_group_and_reports(pytester: pytest.Pytester) -> None:
    result, data = run_suite(pytester, "reference", args=("-k", FEW_CASES, *FUZZ_SECONDS))
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*psu conformance matrix: reference on cpu (float64)*",
            "backend*device*group*passed*failed*skipped*worst error/tol",
            "reference*cpu*rng*",
            "reference*cpu*determinism*",
            f"report written to {pytester.path / 'report.json'}",
        ]
    )
    assert data is not None
    assert set(data) == {"report_version", "backend", "device", "dtypes", "rows", "totals", "collection_errors", "ok"}
    assert (data["report_version"], data["backend"], data["device"], data["dtypes"]) == (
        1,
        "reference",
        "cpu",
        ["float64"],
    )
    assert [r["group"] for r in data["rows"]] == list(GROUPS)
    for row in data["rows"]:
        assert set(row) == {
            "backend",
            "device",
            "group",
            "passed",
            "failed",
            "skipped",
            "worst_error_ratio",
            "worst_quantity",
            "worst_test",
        }
        assert (row["backend"], row["device"]) == ("reference", "cpu")
        assert row["passed"] > 0 and row["failed"] == 0 and row["skipped"] == 0, row
    by_group = rows(data)
    # Groups that compare with a tolerance record ratios; the oracle is within them.
    for group in ("forward", "gradients", "online", "sampled", "fuzz"):
        ratio = by_group[group]["worst_error_ratio"]
        assert isinstance(ratio, float) and 0.0 <= ratio <= 1.0, (group, ratio)
    assert by_group["sampled"]["worst_quantity"] == "reset frequency |z|/5"
    assert data["totals"]["failed"] == 0 and data["totals"]["passed"] == sum(r["passed"] for r in data["rows"])
    assert data["ok"] is True


def test_test_ids_name_backend_device_dtype_case(pytester: pytest.Pytester) -> None:
    result, _ = run_suite(pytester, f"{BROKEN}:two_dtypes", "forward", "rng", args=("--collect-only", "-q"))
    result.stdout.fnmatch_lines(
        [
            "*test_forward[[]reference-two-dtypes-cpu-float64-psu-expected-T1-N6-th1-tied-tau2-a2[]]",
            "*test_forward[[]reference-two-dtypes-cpu-float32-psu-expected-T1-N6-th1-tied-tau2-a2[]]",
            "*test_threefry_known_answer[[]reference-two-dtypes-cpu-zeros[]]",
        ]
    )


def test_psu_dtype_restricts(pytester: pytest.Pytester) -> None:
    result, _ = run_suite(
        pytester, f"{BROKEN}:two_dtypes", "forward", args=("--collect-only", "-q", "--psu-dtype", "float32")
    )
    out = result.stdout.str()
    assert "-cpu-float32-" in out and "-cpu-float64-" not in out
    result, _ = run_suite(pytester, f"{BROKEN}:two_dtypes", "forward", args=("--psu-dtype", "float8"))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--psu-dtype float8: the specification knows float64, float32, float16, bfloat16*"])
    result, _ = run_suite(pytester, f"{BROKEN}:two_dtypes", "forward", args=("--psu-dtype", "float16"))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--psu-dtype float16: backend reference-two-dtypes offers float64, float32 on cpu*"])


def test_shifted_membrane_fails_forward(pytester: pytest.Pytester) -> None:
    result, data = run_suite(
        pytester, f"{BROKEN}:shifted_membrane", "forward", args=("-k", "psu-expected-T4- and not ipsu and not rpsu")
    )
    result.assert_outcomes(failed=7)  # six of the grid and the pin case
    result.stdout.fnmatch_lines(
        [
            "*forward membrane, case shifted-membrane-cpu-float64-psu-expected-T4-*: worst error *x the "
            "tolerance at index (*): actual *, expected *, |diff| * > atol 1e-12 + rtol 1e-10 * |expected| = *"
        ]
    )
    forward = rows(data)["forward"]
    assert forward["failed"] == 7 and forward["worst_error_ratio"] > 1.0
    assert data is not None and data["ok"] is False


def test_doubled_surrogate_fails_gradients_only(pytester: pytest.Pytester) -> None:
    result, data = run_suite(
        pytester, f"{BROKEN}:doubled_surrogate", "gradients", "forward", "online", args=("-k", "T4-N2x3-")
    )
    by_group = rows(data)
    assert by_group["gradients"]["failed"] == 5 and by_group["gradients"]["passed"] == 0
    assert by_group["gradients"]["worst_error_ratio"] > 1.0
    for unrelated in ("forward", "online"):
        assert by_group[unrelated]["passed"] == 5 and by_group[unrelated]["failed"] == 0
    result.stdout.fnmatch_lines(["*vjp dL/dx, case doubled-surrogate-cpu-float64-*worst error*"])
    result.assert_outcomes(passed=10, failed=5)


def test_wrong_seed_fails_sampled(pytester: pytest.Pytester) -> None:
    result, data = run_suite(pytester, f"{BROKEN}:wrong_seed", "sampled", args=("-k", "reset_draws and T8"))
    n = 12  # the T8 cases of psu-sampled and rpsu-sampled
    result.assert_outcomes(failed=n)
    result.stdout.fnmatch_lines(["*forward reset draws, case wrong-seed-cpu-float64-*values differ*first at index*"])
    assert rows(data)["sampled"]["failed"] == n


def test_lax_tau_fails_bad_input(pytester: pytest.Pytester) -> None:
    result, data = run_suite(pytester, f"{BROKEN}:lax_tau", "bad_input", args=("-k", "psu-tau"))
    # tau = 1.0 and 0.5 are accepted (wrong) by forward and vjp; nan and inf still raise.
    result.assert_outcomes(passed=4, failed=4)
    result.stdout.fnmatch_lines(["*forward accepted bad input psu-tau=0.5: expected ValueError naming 'tau'*"])
    assert rows(data)["bad_input"]["failed"] == 4


def test_missing_device_skips_with_reason(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PSU_REQUIRE_DEVICE", raising=False)
    result, data = run_suite(pytester, "reference", "rng", device="cuda")
    result.assert_outcomes(skipped=RNG_TESTS)
    result.stdout.fnmatch_lines(["SKIPPED*device cuda not available to backend reference on this machine*"])
    assert rows(data)["rng"]["skipped"] == RNG_TESTS


def test_missing_device_fails_when_required(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PSU_REQUIRE_DEVICE", "1")
    result, data = run_suite(pytester, "reference", "rng", device="cuda")
    result.assert_outcomes(errors=RNG_TESTS)
    result.stdout.fnmatch_lines(
        ["*device cuda not available to backend reference on this machine*PSU_REQUIRE_DEVICE=1*"]
    )
    assert rows(data)["rng"]["failed"] == RNG_TESTS


def test_unknown_backend_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result, data = run_suite(pytester, "no-such-backend", "rng")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown --psu-backend 'no-such-backend'; registered backends*reference*"])
    assert data is None


def test_incomplete_adapter_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result, _ = run_suite(pytester, f"{BROKEN}:incomplete", "rng")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*lacks the adapter protocol's dtypes, forward, vjp, online, threefry2x32, uniforms*"])


def test_without_backend_the_suite_is_skipped_unimported(pytester: pytest.Pytester) -> None:
    pytester.syspathinsert(HERE)
    result = pytester.runpytest("--pyargs", "psu_conformance", *QUIET_PLUGINS, "-rs")
    result.assert_outcomes(skipped=len(GROUPS))
    result.stdout.fnmatch_lines(["SKIPPED*no --psu-backend given*"])
    assert "psu conformance matrix" not in result.stdout.str()
    assert not list(pytester.path.glob("psu-conformance-*.json"))


def test_plugin_is_inert_in_other_test_runs(pytester: pytest.Pytester) -> None:
    """Loaded in every run (pytest11), it must not touch unrelated tests, even one using a fixture
    name the suite's parametrization also knows."""
    pytester.makepyfile(
        """
        import pytest

        @pytest.fixture
        def psu_vector_case():
            return 3

        def test_plain(psu_vector_case):
            assert psu_vector_case == 3
        """
    )
    result = pytester.runpytest(*QUIET_PLUGINS, "--psu-backend", "reference")
    result.assert_outcomes(passed=1)


def test_half_precision_rules_apply(pytester: pytest.Pytester) -> None:
    """float16 results (computed exactly, then rounded) stay within the float16 rules of SPEC §9."""
    result, data = run_suite(pytester, f"{BROKEN}:half_reference", "forward", "gradients", args=("-k", "T4-N2x3-"))
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*10 passed*"])
    assert data is not None and data["dtypes"] == ["float16"]
    by_group = rows(data)
    assert by_group["forward"]["passed"] == by_group["gradients"]["passed"] == 5
    assert 0.0 < by_group["gradients"]["worst_error_ratio"] <= 1.0


def test_renamed_keyword_fails_api(pytester: pytest.Pytester) -> None:
    result, data = run_suite(pytester, f"{BROKEN}:renamed_keyword", "api")
    result.assert_outcomes(failed=1, passed=8)
    result.stdout.fnmatch_lines(
        [
            "*2 difference(s) from SPEC §11 not declared as idioms:*",
            "*rpsu.alpha: has parameter 'alpha', not in SPEC §11*",
            "*rpsu.surrogate_alpha: lacks parameter surrogate_alpha=2.0*",
        ]
    )
    assert rows(data)["api"]["failed"] == 1 and data is not None and data["ok"] is False


def test_stale_idiom_fails_api(pytester: pytest.Pytester) -> None:
    result, data = run_suite(pytester, f"{BROKEN}:stale_idiom", "api", args=("-k", "idioms"))
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*idioms that match no difference (stale): [[]'psu.seed'[]]*"])


def test_split_calls_must_draw_as_the_whole(pytester: pytest.Pytester) -> None:
    select = ("-k", "split_call and T8-")
    result, data = run_suite(pytester, f"{BROKEN}:local_split", "sampled", args=select)
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) >= 4, result.stdout.str()
    result.stdout.fnmatch_lines(["*split forward reset draws*"])
    result, _ = run_suite(pytester, f"{BROKEN}:whole_split", "sampled", args=select)
    assert result.ret == 0 and result.parseoutcomes().get("passed", 0) == outcomes["failed"] + outcomes.get("passed", 0)
    result, _ = run_suite(pytester, "reference", "sampled", args=(*select, "-rs"))
    result.stdout.fnmatch_lines(["*no batching path to check (no adapter.split_forward)*"])


# ----------------------------------------------------------------------------- causality, fuzz


def test_dense_product_leaks_the_future(pytester: pytest.Pytester) -> None:
    """``A @ X`` computes 0 * NaN above the diagonal: a later NaN reaches every earlier step."""
    select = ("-k", "forward_causal and psu-expected-T16-N2x3-th1-tied and x-all and not ipsu and not rpsu")
    result, data = run_suite(pytester, f"{BROKEN}:dense_forward", "causality", args=select)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*case psu-expected-T16-*, x[[]8, all neurons[]] = nan: membrane changed before step 8 (the future leaked*"
         "first at index (0, *): nan, unperturbed *"]
    )  # fmt: skip
    assert rows(data)["causality"]["failed"] == 1
    # Finite changes do not leak through a product: the message lists only non-finite ones.
    assert "= finite:" not in result.stdout.str()


def test_masking_by_product_lets_the_upper_triangle_in(pytester: pytest.Pytester) -> None:
    select = ("-k", "forward_causal and -T16- and (weight-upper or (psu-expected and not ipsu and not rpsu))")
    result, _ = run_suite(pytester, f"{BROKEN}:mask_by_product", "causality", args=select)
    outcomes = result.parseoutcomes()
    # ipsu, rpsu-expected, rpsu-sampled fail the upper triangle; PSU (recurrence) passes x-all, x-one.
    assert outcomes.get("failed") == 3 and outcomes.get("passed") == 2, result.stdout.str()
    result.stdout.fnmatch_lines(["*weight above the diagonal = nan: * changed anywhere*"])


def test_reference_and_honest_float32_pass_fuzz_and_causality(pytester: pytest.Pytester) -> None:
    result, data = run_suite(pytester, f"{BROKEN}:float32_decay", "fuzz", args=FUZZ_SECONDS)
    assert result.ret == 0, result.stdout.str()
    assert rows(data)["fuzz"]["passed"] == 3


@pytest.mark.parametrize(
    ("adapter", "part", "message"),
    [
        ("drifting_decay", "forward", "*forward: membrane at (*) = *x the tolerance*(conditioning *)*"),
        ("flipped_threshold", "forward", "*forward: spike at * outside the band where a spike may differ*"),
        ("rounded_reset_derivative", "vjp", "*vjp: dL/dbias at (0,) = *x the tolerance*"),
    ],
)
def test_fuzz_catches(pytester: pytest.Pytester, adapter: str, part: str, message: str) -> None:
    result, data = run_suite(pytester, f"{BROKEN}:{adapter}", "fuzz", args=("-k", part, *FUZZ_SECONDS))
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([message, "*reproduce: python -m psu_conformance.fuzz --backend * --device cpu *"])
    assert rows(data)["fuzz"]["failed"] == 1
