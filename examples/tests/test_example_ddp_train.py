"""examples/ddp_train.py: PSU, IPSU and RPSU layers trained under DistributedDataParallel by 2
processes reach the parameters one process reaches on the whole batch (float32 tolerance), with
expected and with sampled resets; without ``set_batch_shard`` sampled training parts from it.

The gloo runs need only CPUs; the NCCL run needs one GPU per process and skips without two."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

SCRIPT = Path(__file__).resolve().parents[1] / "ddp_train.py"
#: Seconds for one run of the script (its own --timeout bounds the distributed part below that).
RUN_TIMEOUT = 420


def _run(tmp_path: Path, *argv: str) -> tuple[subprocess.CompletedProcess, dict]:
    out = tmp_path / "figures.json"
    cmd = [sys.executable, str(SCRIPT), "--check", "--json", str(out), "--timeout", "300", *argv]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    figures = json.loads(out.read_text()) if out.exists() else {}
    return proc, figures


@pytest.mark.parametrize("reset", ["expected", "sampled"])
def test_ddp_gloo_reaches_the_one_process_parameters(tmp_path, reset):
    proc, figures = _run(tmp_path, "--reset", reset, "--steps", "8")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert figures["ranks_identical"]
    assert figures["max_error_over_tolerance"] <= 1.0, figures
    # every layer spikes, so the comparison covers the three neurons' gradients
    assert all(0.02 < rate < 0.9 for rate in figures["spike_rates"].values()), figures["spike_rates"]


def test_sampled_ddp_without_batch_shard_differs(tmp_path):
    # Every rank then draws the first shard's numbers: the check must see it (the test can fail).
    proc, figures = _run(tmp_path, "--reset", "sampled", "--steps", "8", "--no-shard")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "DIFFERENT" in proc.stdout
    assert figures["max_error_over_tolerance"] > 1.0


def test_ddp_nccl_on_gpus(tmp_path):
    if torch.cuda.device_count() < 2:
        pytest.skip(f"NCCL runs one process per GPU: needs 2 CUDA devices, found {torch.cuda.device_count()}")
    for reset in ("expected", "sampled"):
        proc, figures = _run(tmp_path, "--backend", "nccl", "--device", "cuda", "--reset", reset)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert figures["ranks_identical"] and figures["max_error_over_tolerance"] <= 1.0, figures


def test_nccl_needs_cuda():
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--backend", "nccl"], capture_output=True, text=True, timeout=RUN_TIMEOUT
    )
    assert proc.returncode == 2 and "--backend nccl needs --device cuda" in proc.stderr
