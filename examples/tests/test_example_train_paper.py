"""The CIFAR-10 / SHD script: it parses, refuses a path without the data, and trains on tiny local
copies in the real on-disk layouts (no download)."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys

import numpy as np
import pytest

import datasets
import train_paper

SCRIPT = train_paper.HERE / "train_paper.py"


def test_help_runs_as_a_script():
    r = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "cifar10" in r.stdout and "shd" in r.stdout and "--root" in r.stdout


def test_preset_defaults_to_ours_and_is_one_flag():
    assert train_paper.parse_args(["cifar10", "--root", "x"]).preset == "default"
    assert train_paper.parse_args(["cifar10", "--root", "x", "--preset", "published"]).preset == "published"
    with pytest.raises(SystemExit):
        train_paper.parse_args(["cifar10", "--root", "x", "--preset", "paper"])


def test_root_is_required(capsys):
    with pytest.raises(SystemExit) as e:
        train_paper.parse_args(["cifar10"])
    assert e.value.code == 2
    assert "--root" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("dataset", "expected"),
    [("cifar10", "CIFAR-10 not found under"), ("shd", "SHD not found under")],
)
def test_missing_dataset_is_a_clear_error(dataset, expected, tmp_path, capsys):
    pytest.importorskip("torch")
    assert train_paper.main([dataset, "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert expected in err and str(tmp_path) in err
    assert ("cifar-10-batches-py" if dataset == "cifar10" else "shd_train.h5") in err


def _fake_cifar(root, n=40):
    folder = root / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in datasets.CIFAR_FILES:
        d = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"labels": rng.integers(0, 10, n).tolist()}
        with open(folder / name, "wb") as f:
            pickle.dump(d, f)


def test_cifar10_layout_trains(tmp_path, capsys):
    pytest.importorskip("torch")
    _fake_cifar(tmp_path)
    data = datasets.load_cifar10(tmp_path)
    assert data.x_train.shape == (200, 3, 32, 32) and data.x_test.shape == (40, 3, 32, 32)
    out = tmp_path / "r.json"
    argv = ["cifar10", "--root", str(tmp_path), "--channels", "4,8", "--epochs", "1", "--batch-size", "16"]
    assert train_paper.main([*argv, "--limit", "32", "--no-progress", "--json", str(out)]) == 0
    run = json.loads(out.read_text())
    assert run["neuron"] == "psu" and len(run["epochs"]) == 1
    assert run["args"]["preset"] == "default"
    assert "test accuracy" in capsys.readouterr().out


@pytest.mark.parametrize("neuron", ["psu", "rpsu"])
def test_published_preset_trains(neuron, tmp_path, capsys):
    pytest.importorskip("torch")
    _fake_cifar(tmp_path)
    argv = ["cifar10", "--root", str(tmp_path), "--channels", "4,8", "--epochs", "1", "--batch-size", "16"]
    argv += ["--neuron", neuron, "--preset", "published", "--limit", "32", "--no-progress"]
    assert train_paper.main(argv) == 0
    assert "(published preset)" in capsys.readouterr().out


def test_shd_layout_bins_and_trains(tmp_path):
    pytest.importorskip("torch")
    h5py = pytest.importorskip("h5py", reason="SHD is read with h5py (pip install h5py)")
    folder = tmp_path / "SHD"
    folder.mkdir()
    rng = np.random.default_rng(0)
    vlen_f, vlen_u = h5py.vlen_dtype(np.float64), h5py.vlen_dtype(np.uint16)
    for name in datasets.SHD_FILES:
        with h5py.File(folder / name, "w") as f:
            n = 24
            times = f.create_dataset("spikes/times", (n,), dtype=vlen_f)
            units = f.create_dataset("spikes/units", (n,), dtype=vlen_u)
            for i in range(n):
                k = int(rng.integers(5, 50))
                times[i] = np.sort(rng.uniform(0, 1.4, k))
                units[i] = rng.integers(0, 700, k).astype(np.uint16)
            f["labels"] = rng.integers(0, 20, n)
    train, test = datasets.load_shd(tmp_path)
    assert len(train) == 24 and len(test) == 24
    frames = train.frames(np.array([0, 3]), T=7, duration=1.4)
    assert frames.shape == (7, 2, 700)
    assert frames[:, 1].sum() == len(train.times[3])  # every event lands in some bin
    t, u = train.times[3][-1], train.units[3][-1]
    assert frames[min(int(t / 1.4 * 7), 6), 1, u] >= 1
    argv = ["shd", "--root", str(tmp_path), "--T", "6", "--hidden", "16", "--epochs", "1", "--batch-size", "8"]
    assert train_paper.main([*argv, "--neuron", "rpsu", "--no-progress"]) == 0
