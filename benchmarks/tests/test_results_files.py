"""RESULTS.md and the PNG plots, written from a fake result set."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from benchmarks import __main__ as cli
from benchmarks import figures, markdown, report

CPU = "Fake CPU 9000 @ 1.00GHz"


def _row(impl: str, kind: str, variant: str, T: int, fwd: float | None, fb: float | None, **kw) -> dict:
    dense = {4: (10.0, 30.0), 16: (20.0, 60.0)}[T]
    floor = {4: (0.5, 1.5), 16: (0.5, 1.5)}[T]
    r: dict[str, Any] = {
        "impl": impl,
        "kind": kind,
        "path": "prepare" if kind == "backend" else "peer",
        "device": "cpu",
        "variant": variant,
        "T": T,
        "N": 64 // T,
        "dtype": "float32",
        "requested_dtype": "float32",
        "forward_ms": fwd,
        "fwd_bwd_ms": fb,
        "ratio_dense_forward": None if fwd is None else fwd / dense[0],
        "ratio_dense_fwd_bwd": None if fb is None else fb / dense[1],
        "ratio_floor_forward": None if fwd is None else fwd / floor[0],
        "ratio_floor_fwd_bwd": None if fb is None else fb / floor[1],
        "peak_mib": None if fb is None else 12.0,
        "memory_method": "rss-hwm",
        "notes": [],
        "skipped": {},
    }
    return r | kw


def _doc() -> dict:
    rows = []
    for variant in ("psu", "ipsu"):
        for T in (4, 16):
            rows += [
                _row("torch", "backend", variant, T, 2.0, 6.0),
                _row("reference", "backend", variant, T, 40.0, 90.0, dtype="float64"),
                _row("dense-torch", "peer", variant, T, *{4: (10.0, 30.0), 16: (20.0, 60.0)}[T]),
                _row(
                    "spikingjelly-lif",
                    "peer",
                    variant,
                    T,
                    5.0,
                    None if T == 16 else 15.0,
                    skipped={"fwd+bwd": "over budget"} if T == 16 else {},
                ),
                _row("copy-floor", "floor", variant, T, 0.5, 1.5, floor_gbps_forward=4.0, floor_gbps_fwd_bwd=5.0),
            ]
    machine = {
        "host": "testhost",
        "platform": "Linux-test",
        "cpu": CPU,
        "python": "3.11.7",
        "numpy": "2.4.0",
        "torch": "2.13.0+cpu",
        "jax": "0.10.2",
        "os_cpu_count": 2,
        "cpus_usable": 2,
        "torch_num_threads": 2,
        "torch_num_interop_threads": 2,
        "env": {"OMP_NUM_THREADS": None},
        "libraries": {"spikingjelly": "2.0.0"},
        "loadavg": [7.5, 7.0, 6.5],
    }
    config = {
        "Ts": [4, 16],
        "total": 64,
        "dtype": "float32",
        "repeats": 3,
        "warmup": 2,
        "target_repeat_s": 0.03,
        "max_call_s": 1.0,
        "seed": 0,
        "backends": ["torch", "reference"],
    }
    return report.document(
        rows,
        machine=machine,
        config=config,
        skipped=["spyx-lif: skipped: spyx not installed (pip install spyx): No module named 'spyx'"],
        problems=[],
        created=dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.timezone.utc),
    )


def test_series_and_speed_up() -> None:
    rows = [r for r in _doc()["rows"] if r["variant"] == "psu"]
    t = figures.series(rows, "fwd_bwd_ms")
    assert t["torch"][1] == [(4, 6.0), (16, 6.0)]
    assert t["spikingjelly-lif"][1] == [(4, 15.0)]  # the skipped point is left out
    assert "reference (float64)" in t and "reference" not in t  # not the run's dtype: said so
    up = figures.series(rows, "ratio_dense_forward", lambda v: 1.0 / v)
    assert up["torch"][1] == [(4, 5.0), (16, 10.0)]


def test_plots_and_results_md(tmp_path) -> None:
    pytest.importorskip("matplotlib", reason="matplotlib not installed")
    doc = _doc()
    pngs = figures.write_plots(doc, tmp_path / "plots")
    names = sorted(p.name for p in pngs)
    assert names == sorted(
        f"{k}-cpu-{v}{s}.png"
        for v in ("psu", "ipsu")
        for k, s in (("bench", "-forward"), ("bench", "-fwd-bwd"), ("speedup", ""))
    )
    for p in pngs:
        data = p.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    md = markdown.write_results(doc, tmp_path / "RESULTS.md", plots=pngs, command="python -m benchmarks --quick")
    text = md.read_text()
    assert text.startswith("# PSU benchmarks")
    assert "`python -m benchmarks --quick` on 2026-11-28T12:00:00+00:00" in text
    assert CPU in text and "Read the ratios" in text and "load average 7.50" in text
    assert "PyTorch 2 (interop 2)" in text and "JAX 0.10.2" in text and "spikingjelly 2.0.0" in text
    assert "## PSU on cpu" in text and "## IPSU on cpu" in text
    assert "![bench-cpu-psu-forward](plots/bench-cpu-psu-forward.png)" in text
    assert "![speedup-cpu-ipsu](plots/speedup-cpu-ipsu.png)" in text
    assert "spyx not installed" in text  # skipped, with the reason
    assert "not the Parallel Spiking Unit" in text
    table = [line for line in text.splitlines() if line.startswith("| 16 |")]
    assert len(table) == 2 * 5  # T=16 rows of both variants
    sj = next(line for line in table if "spikingjelly-lif" in line)
    assert "| skipped |" in sj and "skipped fwd+bwd" in sj
    torch_row = next(line for line in table if "| torch |" in line)
    cells = [c.strip() for c in torch_row.strip("|").split("|")]
    # T, N, impl, dtype, fwd ms, f+b ms, fwd/dense, f+b/dense, fwd/floor, f+b/floor, peak MiB, note
    assert cells[:11] == ["16", "4", "torch", "float32", "2.00", "6.00", "0.10", "0.10", "4.0", "4.0", "12"]


def test_results_md_without_plots_needs_no_matplotlib(tmp_path) -> None:
    text = markdown.render(_doc())
    assert "![" not in text and "| spikingjelly-lif | peer |" in text


def test_cli_writes_results_and_plots(tmp_path) -> None:
    pytest.importorskip("matplotlib", reason="matplotlib not installed")
    md = tmp_path / "R.md"
    args = ["--backends", "none", "--peers", "lif-loop-torch,copy-floor", "--variants", "psu", "--T", "4", "8"]
    args += ["--total", "64", "--repeats", "1", "--warmup", "1", "--device", "cpu", "--no-json"]
    assert cli.main([*args, "--results-md", str(md), "--plots", str(tmp_path / "p")]) == 0
    assert "lif-loop-torch" in md.read_text()
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == [
        "bench-cpu-psu-forward.png",
        "bench-cpu-psu-fwd-bwd.png",
    ]  # no dense-torch in the run: no speed-up plot
