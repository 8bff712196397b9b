"""The fixed decay matrices of SPEC §1 and the decay powers of the chunked form.

With ``a = 1/tau``::

    A[t, j] = a^(t-j+1)  (j <= t)        leaky integration, H = A X
    B[t, j] = a^(t-j)    (j <  t)        reset decay, the reset term B Q

Every power is computed directly as ``a^k`` in float64 and then rounded once to the compute dtype,
so its error does not grow with ``k`` (a running product would round ``k`` times).

A recurrence that applies ``a`` at every step (or a chunk carry that applies ``a^L`` at every
block) would multiply the rounding of ``a`` into its state ``T`` times. In float32 it applies
``a`` as two terms instead (:func:`split`), ``y = (u + a_lo s) + a_hi s``, whose error does not
grow with ``T`` (SPEC §9). For ``a >= 1/2`` the split is ``a_hi = 1``, ``a_lo = float32(a - 1)``
(``a`` in float64): ``a_lo``'s rounding is relative to ``1 - a``, and ``a_hi s`` is exact, so no
fused multiply-add is needed. For ``a < 1/2`` it is ``a_hi = float32(a)``, ``a_lo = float32(a -
a_hi)``: a state forgets within a few steps, so ``a``'s rounding cannot pile up, and ``a_lo``
helps only where the second sum runs as a fused multiply-add. The Triton kernels always use the
second split (``fused=True``) with ``tl.fma``, which keeps the product ``a_hi s`` unrounded
(measured: ``V[999]`` of the issue-11 repro, T = 1000 and tau = 1.00011508, is within 0.012 of the
float32 tolerance, against 1.5 with a float32 ``a``). In float64, and wherever ``a`` (or ``a^L``)
is exact in the dtype (``tau`` a power of 2: no rounding of ``a`` to pile up), ``a_lo`` is 0 and the
first sum is skipped: one operation per update.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
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


def split(a: float, dtype: torch.dtype, *, fused: bool = False) -> tuple[float, float]:
    """``(a_hi, a_lo)``: ``a`` (a float64 number) as ``a_hi + a_lo`` with both in ``dtype``
    (``a_lo = 0.0`` for float64). ``a_hi = 1`` for ``a >= 1/2`` unless ``fused`` (the caller
    applies ``a_hi`` with a fused multiply-add and uses ``a_hi`` as ``a`` rounded)."""
    if dtype == torch.float64:
        return a, 0.0
    # half precision: a form handed half arithmetic on purpose (the operators compute in float32)
    cast = (
        (lambda v: float(np.float32(v))) if dtype == torch.float32 else (lambda v: float(torch.tensor(v, dtype=dtype)))
    )
    rounded = cast(a)
    if rounded == a:
        # a is exact in dtype (tau = 2, 4, 8, ...): one product has no rounding of a to pile up, and
        # the recurrences run one operation per state update instead of two.
        return a, 0.0
    hi = rounded if (fused or a < 0.5) else 1.0
    return hi, cast(a - hi)


def decay_add(u: torch.Tensor, state: torch.Tensor, a: tuple[float, float], out: torch.Tensor,
              tmp: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
    """``out = u + a state`` with ``a = (a_hi, a_lo)`` from :func:`split`, as ``(u + a_lo state) +
    a_hi state`` (``tmp``: a buffer like ``out`` for the first sum; ``out`` may be ``state``)."""
    hi, lo = a
    if lo:
        u = torch.add(u, state, alpha=lo, out=tmp)
    return torch.add(u, state, alpha=hi, out=out)


def decay_powers_split(
    a: float, exponents: torch.Tensor, dtype: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``a^k`` (float64 ``exponents``) as ``(hi, lo)`` in ``dtype``: ``hi`` is ``a^k`` rounded once,
    ``lo`` the rest rounded (``None`` when it is 0 everywhere, as in float64)."""
    exact = torch.tensor(a, dtype=torch.float64) ** exponents
    hi = exact.to(dtype)
    if dtype == torch.float64:
        return hi.to(device), None
    lo = (exact - hi.to(torch.float64)).to(dtype)
    return hi.to(device), (lo.to(device) if bool(lo.any()) else None)


def power_split(a: float, n: int, dtype: torch.dtype) -> tuple[float, float]:
    """``a^n`` as ``(hi, lo)`` in ``dtype`` (:func:`split` of the float64 power)."""
    return split(math.pow(a, n), dtype)
