"""The CPU peak-memory method sees allocations tracemalloc cannot (NumPy, PyTorch)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmarks import memory

ok, why = memory.rss_hwm_available()
needs_hwm = pytest.mark.skipif(not ok, reason=why or "rss-hwm available")


@needs_hwm
@pytest.mark.parametrize(
    "alloc",
    [
        lambda: np.ones(16 * 2**20 // 8),  # 16 MiB kept as the result
        lambda: float(torch.ones(4 * 2**20).sum()),  # 16 MiB freed before returning
    ],
    ids=["numpy-result", "torch-temporary"],
)
def test_peak_rss_sees_a_16_mib_allocation(alloc) -> None:
    m = memory.peak_rss(alloc)
    assert m.method == "rss-hwm" and m.note == "" and m.peak_bytes is not None
    assert 15 <= m.peak_bytes / 2**20 < 64


@needs_hwm
def test_peak_rss_of_nothing_is_small() -> None:
    keep = np.ones(8 * 2**20 // 8)  # resident before the call: not counted
    m = memory.peak_rss(lambda: keep.sum())
    assert m.peak_bytes is not None and m.peak_bytes / 2**20 < 4


def test_unknown_device_raises() -> None:
    with pytest.raises(ValueError, match="device"):
        memory.peak_memory(lambda: None, "tpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_torch_cuda_peak() -> None:
    m = memory.peak_memory(lambda: torch.ones(2**22, device="cuda"), "cuda")
    assert m.peak_bytes == 2**24
