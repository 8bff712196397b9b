"""The demo's command line: it trains, prints the table, writes the PNG and the JSON."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("matplotlib")

import train_digits  # noqa: E402


def test_demo_writes_table_plot_and_numbers(tmp_path, capsys):
    import torch

    png, js = tmp_path / "curves.png", tmp_path / "results.json"
    argv = ["--framework", "torch", "--neurons", "psu,lif", "--epochs", "1", "--no-progress"]
    threads = torch.get_num_threads()  # the demo sets its own (--threads); later tests get theirs back
    try:
        assert train_digits.main([*argv, "--plot", str(png), "--json", str(js)]) == 0
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert "| torch | PSU |" in out and "| torch | LIF |" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    runs = json.loads(js.read_text())["runs"]
    assert [(r["framework"], r["neuron"], len(r["epochs"])) for r in runs] == [("torch", "psu", 1), ("torch", "lif", 1)]


@pytest.mark.parametrize("argv", [["--neurons", "psu,adex"], ["--epochs", "0"], ["--framework", "mxnet"]])
def test_bad_arguments_are_refused(argv, capsys):
    with pytest.raises(SystemExit) as e:
        train_digits.parse_args(argv)
    assert e.value.code == 2
    assert "error" in capsys.readouterr().err
