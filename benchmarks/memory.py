"""Peak memory of one call, measured in a pass of its own (never while timing).

CPU — ``rss-hwm``: the growth of the process's resident set during the call. Python's
``tracemalloc`` sees neither PyTorch's, XLA's nor Numba's allocations, so the operating system
is asked instead (Linux only)::

    gc.collect(); malloc_trim(0)            # hand freed heap back, so it is not reused unseen
    base = VmRSS                            # inputs and prepared state are already resident
    write "5" to /proc/self/clear_refs      # resets the high-water mark VmHWM to VmRSS
    fn()
    peak = VmHWM - base

So the figure is the extra memory one forward+backward call needs beyond its inputs: temporaries,
saved activations and outputs. It counts every allocator in the process (it cannot tell a
backend's allocations from anything else the process does meanwhile, which is nothing here), at
page granularity. Where the high-water mark cannot be reset the result is ``None`` with the reason.

CUDA — ``torch-cuda-peak``: ``torch.cuda.max_memory_allocated`` minus the memory allocated before
the call, after ``reset_peak_memory_stats``. It sees PyTorch's caching allocator only: a backend
that allocates through another runtime (JAX/XLA, CuPy, Numba) shows ``None`` with that reason.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_STATUS = "/proc/self/status"
_CLEAR_REFS = "/proc/self/clear_refs"


@dataclass
class Memory:
    """Peak extra bytes of one call (``None`` with ``note`` saying why), and the method used."""

    peak_bytes: int | None
    method: str
    note: str = ""


def _status_kib(field: str) -> int:
    with open(_STATUS) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} missing from {_STATUS}")


def _reset_hwm() -> None:
    with open(_CLEAR_REFS, "w") as f:
        f.write("5")


def _load_malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        fn = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    return fn


_malloc_trim = _load_malloc_trim()


def rss_hwm_available() -> tuple[bool, str]:
    """Whether the CPU method works here; the reason when it does not."""
    try:
        _status_kib("VmHWM")
        _reset_hwm()
    except (OSError, RuntimeError) as exc:
        return False, f"cannot reset the resident high-water mark ({exc})"
    return True, ""


def peak_rss(fn: Callable[[], Any]) -> Memory:
    """CPU method ``rss-hwm`` (module docstring)."""
    ok, why = rss_hwm_available()
    if not ok:
        return Memory(None, "rss-hwm", why)
    gc.collect()
    if _malloc_trim is not None:
        _malloc_trim(0)
    base = _status_kib("VmRSS")
    _reset_hwm()
    result = fn()
    peak = _status_kib("VmHWM")
    del result
    return Memory(max(0, peak - base) * 1024, "rss-hwm")


def peak_torch_cuda(fn: Callable[[], Any], device: str) -> Memory:
    """CUDA method ``torch-cuda-peak`` (module docstring)."""
    import torch

    dev = torch.device(device)
    gc.collect()
    torch.cuda.synchronize(dev)
    torch.cuda.reset_peak_memory_stats(dev)
    base = torch.cuda.memory_allocated(dev)
    result = fn()
    torch.cuda.synchronize(dev)
    peak = torch.cuda.max_memory_allocated(dev) - base
    del result
    if peak == 0:
        return Memory(
            None, "torch-cuda-peak", "no allocation through PyTorch's CUDA allocator (another runtime's is unseen)"
        )
    return Memory(peak, "torch-cuda-peak")


def peak_memory(fn: Callable[[], Any], device: str) -> Memory:
    """Peak extra memory of one call of ``fn`` on ``device`` ("cpu" or "cuda[:i]")."""
    if device.startswith("cuda"):
        return peak_torch_cuda(fn, device)
    if device == "cpu":
        return peak_rss(fn)
    raise ValueError(f"device must be 'cpu' or 'cuda[:i]', got {device!r}")


def method_for(device: str) -> str:
    return "torch-cuda-peak" if device.startswith("cuda") else "rss-hwm"


__all__ = ["Memory", "peak_memory", "peak_rss", "peak_torch_cuda", "rss_hwm_available", "method_for"]
