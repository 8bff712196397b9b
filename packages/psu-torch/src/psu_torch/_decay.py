"""The fixed decay matrices of SPEC §1 and the decay powers of the chunked form.

With ``a = 1/tau``::

    A[t, j] = a^(t-j+1)  (j <= t)        leaky integration, H = A X
    B[t, j] = a^(t-j)    (j <  t)        reset decay, the reset term B Q

Every power is computed directly as ``a^k`` in float64 and then rounded once to the compute dtype,
so its error does not grow with ``k`` (a running product would round ``k`` times).
"""

from __future__ import annotations

from functools import lru_cache

import torch


@lru_cache(maxsize=64)
def _decay_matrices_cpu(T: int, a: float, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    t = torch.arange(T, dtype=torch.float64)
    d = t[:, None] - t[None, :]
    a64 = torch.tensor(a, dtype=torch.float64)
    zero = torch.zeros((), dtype=torch.float64)
    A = torch.where(d >= 0, a64 ** (d + 1), zero)
    B = torch.where(d > 0, a64**d, zero)
    # Entries below the dtype's smallest normal number (a^k for large k) are flushed to 0: they are
    # far below rounding next to the diagonal terms, and subnormal operands slow a CPU GEMM several
    # times over (measured: RPSU at T = 256, N = 2^15 forward 1.43 s with them).
    tiny = torch.finfo(dtype).tiny
    A, B = (torch.where(m.abs() < tiny, zero, m).to(dtype) for m in (A, B))
    return A, B


def decay_matrices(T: int, a: float, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """``A`` and ``B``, each ``[T, T]`` in ``dtype`` on ``device`` (built once per ``(T, a, dtype)``)."""
    if torch.compiler.is_compiling():
        # Traced (torch.export under the ONNX lowering): the tensors built here are the tracer's
        # placeholders, which must not outlive the trace in the cache.
        A, B = _decay_matrices_cpu.__wrapped__(T, float(a), dtype)
    else:
        A, B = _decay_matrices_cpu(T, float(a), dtype)
    if device.type != "cpu":
        A, B = A.to(device), B.to(device)
    return A, B


def decay_powers(a: float, exponents: torch.Tensor, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``a^k`` for each ``k`` of the float64 tensor ``exponents``, rounded once to ``dtype``."""
    return (torch.tensor(a, dtype=torch.float64) ** exponents).to(dtype=dtype, device=device)
