"""A small real run through runner + report: rows, ratios, skips, table and JSON structure."""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np
import pytest

from benchmarks import __main__ as cli
from benchmarks import backends, report, runner


class FakeAdapter:
    """float64-only, no ``prepare``: timed through forward/vjp on the NumPy case."""

    name = "fake"

    def __init__(self, sleep_s: float = 0.0) -> None:
        self.sleep_s = sleep_s
        self.seen: list[tuple[str, str]] = []

    def devices(self) -> list[str]:
        return ["cpu"]

    def dtypes(self, device: str) -> list[str]:
        return ["float64"]

    def forward(self, case, *, device, dtype):
        self.seen.append((str(case["x"].dtype), dtype))
        return {"spikes": (case["x"] > 1).astype(dtype), "membrane": case["x"].astype(dtype)}

    def vjp(self, case, grad_spikes, *, device, dtype):
        time.sleep(self.sleep_s)
        return {"x": np.asarray(grad_spikes, dtype), "threshold": 0.0, "surrogate_alpha": 0.0}


def _config(**kw) -> runner.Config:
    base: dict[str, Any] = dict(
        variants=["psu", "rpsu"], Ts=[4, 8], total=256, repeats=2, warmup=1, target_repeat_s=1e-4, max_call_s=5.0
    )
    return runner.Config(**(base | kw))


def _impls(adapter: FakeAdapter) -> list[backends.Impl]:
    return [backends.from_adapter("fake", adapter)] + backends.peer_impls(cli.CORE_PEERS)


def test_rows_ratios_and_dtype_fallback() -> None:
    adapter = FakeAdapter()
    rows, skipped = runner.run(_config(), _impls(adapter), progress=lambda m: None)
    assert skipped == []
    # per group: fake (float64), dense, lif, floor float32, floor float64
    assert len(rows) == 2 * 2 * 5
    assert {(r["impl"], r["dtype"]) for r in rows} == {
        ("fake", "float64"),
        ("dense-torch", "float32"),
        ("lif-loop-torch", "float32"),
        ("copy-floor", "float32"),
        ("copy-floor", "float64"),
    }
    assert set(adapter.seen) == {("float64", "float64")}  # the case came in the backend's dtype
    for r in rows:
        assert r["N"] == 256 // r["T"]
        assert r["forward_ms"] > 0 and r["fwd_bwd_ms"] > 0
        assert len(r["forward_samples_ms"]) == 2
        assert np.median(r["forward_samples_ms"]) == pytest.approx(r["forward_ms"])
        assert r["peak_mib"] is not None or r["notes"]
    fake = next(r for r in rows if r["impl"] == "fake")
    assert fake["path"] == "adapter" and "lists no float32" in fake["notes"][0]
    dense = next(r for r in rows if r["impl"] == "dense-torch" and r["variant"] == "rpsu")
    assert dense["ratio_dense_forward"] == 1.0 and dense["ratio_dense_fwd_bwd"] == 1.0
    # the float64 backend is held against the float64 floor of its own group
    f64 = next(
        r
        for r in rows
        if r["impl"] == "copy-floor"
        and r["dtype"] == "float64"
        and r["variant"] == fake["variant"]
        and r["T"] == fake["T"]
    )
    assert fake["ratio_floor_forward"] == pytest.approx(fake["forward_ms"] / f64["forward_ms"])
    assert f64["floor_gbps_forward"] > 0


def test_budget_skips_are_reported_and_predicted() -> None:
    adapter = FakeAdapter(sleep_s=0.05)
    rows, skipped = runner.run(_config(variants=["psu"], max_call_s=0.02), _impls(adapter), progress=lambda m: None)
    fake = [r for r in rows if r["impl"] == "fake"]
    assert [r["T"] for r in fake] == [4, 8]
    assert fake[0]["forward_ms"] is not None  # forward fits, only fwd+bwd is over budget
    assert fake[0]["fwd_bwd_ms"] is None and "budget" in fake[0]["skipped"]["fwd+bwd"]
    assert fake[1]["skipped"]["fwd+bwd"].startswith("not run: one call took")
    mine = [s for s in skipped if s.startswith("fake")]  # a loaded machine may push a peer over too
    assert len(mine) == 2 and all(s.startswith("fake [float64] cpu psu T=") for s in mine)
    table = report.format_table(rows)
    assert "skipped" in table


def test_a_backend_that_raises_gets_a_row_saying_so() -> None:
    broken = FakeAdapter()

    def vjp(case, grad_spikes, *, device, dtype):
        raise RuntimeError("no gradient today")

    broken.vjp = vjp  # type: ignore[method-assign]
    impls = [backends.from_adapter("broken", broken)] + backends.peer_impls(["copy-floor"])
    rows, skipped = runner.run(_config(variants=["psu"]), impls, progress=lambda m: None)
    broken_rows = [r for r in rows if r["impl"] == "broken"]
    assert [r["T"] for r in broken_rows] == [4, 8]  # tried again at every size: not a budget skip
    for r in broken_rows:
        assert r["forward_ms"] is not None and r["fwd_bwd_ms"] is None
        assert "no gradient today" in r["skipped"]["fwd+bwd"]
    assert len(skipped) == 2


def test_backend_without_the_device_is_reported_once() -> None:
    gpu_only = FakeAdapter()
    gpu_only.devices = lambda: []  # type: ignore[method-assign]
    impls = [backends.from_adapter("gpu-only", gpu_only)] + backends.peer_impls(["dense-torch", "copy-floor"])
    rows, skipped = runner.run(_config(), impls, progress=lambda m: None)
    assert skipped == ["gpu-only: not run on cpu: no usable device 'cpu' here (devices(): [])"]
    assert {r["impl"] for r in rows} == {"dense-torch", "copy-floor"} and gpu_only.seen == []


def test_document_table_and_json(tmp_path) -> None:
    rows, skipped = runner.run(_config(Ts=[4], variants=["ipsu"]), _impls(FakeAdapter()), progress=lambda m: None)
    doc = report.document(
        rows,
        machine=report.machine_info(),
        config={
            "total": 256,
            "dtype": "float32",
            "repeats": 2,
            "warmup": 1,
            "target_repeat_s": 1e-4,
            "max_call_s": 5.0,
            "seed": 0,
        },
        skipped=skipped,
        problems=["x failed"],
        created=report.now(),
    )
    text = report.format_report(doc)
    header = text.splitlines()[1]
    assert "torch.get_num_threads()=" in header and "os.cpu_count()=" in header
    for col in report.COLUMNS:
        assert col in text
    assert "Problems:" in text and "x failed" in text
    path = report.write_json(doc, tmp_path / "sub" / "out.json")
    back = json.loads(path.read_text())
    assert back["format"] == report.FORMAT
    assert set(back) == {"format", "created", "machine", "config", "definitions", "problems", "skipped", "rows"}
    assert back["rows"] == json.loads(json.dumps(rows))
    row_keys = {
        "impl",
        "kind",
        "path",
        "device",
        "variant",
        "T",
        "N",
        "dtype",
        "forward_ms",
        "fwd_bwd_ms",
        "ratio_dense_forward",
        "ratio_dense_fwd_bwd",
        "ratio_floor_forward",
        "ratio_floor_fwd_bwd",
        "peak_mib",
        "memory_method",
        "notes",
        "skipped",
    }
    assert all(row_keys <= set(r) for r in back["rows"])


def test_default_json_path() -> None:
    p = report.default_json_path("my host", report.now())
    assert p.parent.name == "results" and p.parent.parent.name == "benchmarks"
    assert p.name.startswith("bench-my-host-") and p.suffix == ".json"


def test_cli_end_to_end_with_the_reference_backend(tmp_path, capsys) -> None:
    pytest.importorskip("psu_core.adapter", reason="psu-core is not installed")
    out = tmp_path / "r.json"
    assert (
        cli.main(
            [
                "--backends",
                "reference",
                "--variants",
                "psu",
                "--T",
                "4",
                "--total",
                "64",
                "--repeats",
                "1",
                "--warmup",
                "1",
                "--device",
                "cpu",
                "--json",
                str(out),
                "--no-results",
                "--peers",
                ",".join(cli.CORE_PEERS),
            ]
        )
        == 0
    )
    doc = json.loads(out.read_text())
    ref = next(r for r in doc["rows"] if r["impl"] == "reference")
    assert ref["dtype"] == "float64" and ref["path"] in ("prepare", "adapter")
    assert doc["config"]["backends"] == ["reference"]
    assert "reference" in capsys.readouterr().out


def test_cli_rejects_unknown_names() -> None:
    with pytest.raises(SystemExit, match="not registered"):
        cli.main(["--backends", "no-such-backend", "--no-json"])
    with pytest.raises(SystemExit, match="variants"):
        cli.main(["--backends", "none", "--variants", "lif", "--no-json"])
    assert cli._int("2^23") == 2**23 == cli._int("2**23")


class HalfAdapter(FakeAdapter):
    """Lists the half precisions too; records the dtype of the case it was given."""

    def dtypes(self, device: str) -> list[str]:
        return ["float64", "float32", "float16", "bfloat16"]

    def forward(self, case, *, device, dtype):
        self.seen.append((str(case["x"].dtype), dtype))
        return {"spikes": case["x"] > 1, "membrane": case["x"]}

    def vjp(self, case, grad_spikes, *, device, dtype):
        return {"x": grad_spikes, "threshold": 0.0, "surrogate_alpha": 0.0}


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_half_precision_runs_where_listed_and_skips_with_the_reason(dtype: str) -> None:
    half, full_only = HalfAdapter(), FakeAdapter()
    impls = [backends.from_adapter("half", half), backends.from_adapter("full", full_only)]
    impls += backends.peer_impls(["dense-torch", "copy-floor"])
    rows, skipped = runner.run(_config(variants=["psu"], Ts=[4], dtype=dtype), impls, progress=lambda m: None)
    by = {r["impl"]: r for r in rows}
    assert by["half"]["dtype"] == dtype and by["half"]["fwd_bwd_ms"] > 0
    # NumPy has no bfloat16: the case is held in float32 and the adapter converts it
    assert half.seen[0] == ("float32" if dtype == "bfloat16" else "float16", dtype)
    assert by["full"]["dtype"] is None and by["full"]["forward_ms"] is None and full_only.seen == []
    assert by["full"]["skipped"]["forward"] == f"skipped: the backend has no {dtype} on this device (it lists float64)"
    assert any(s.startswith(f"full [-] cpu psu T=4 forward: skipped: the backend has no {dtype}") for s in skipped)
    assert by["dense-torch"]["dtype"] == dtype and by["dense-torch"]["fwd_bwd_ms"] > 0
    floor = by["copy-floor"]
    assert floor["dtype"] == dtype and floor["floor_gbps_forward"] > 0
    assert by["half"]["ratio_dense_fwd_bwd"] is not None and by["half"]["ratio_floor_forward"] is not None


def test_cli_rejects_an_unknown_dtype() -> None:
    with pytest.raises(SystemExit):
        cli.main(["--backends", "none", "--dtype", "int8", "--no-json"])
