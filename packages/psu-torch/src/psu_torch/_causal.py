"""Time-mixing products that stay causal whatever the values (SPEC §1/§2).

A product ``L @ X`` with a lower-triangular ``[T, T]`` matrix ``L`` (``A X``, ``B Q``, ``(W ⊙ M) X``)
computes ``0 * x`` above the diagonal; ``0 * NaN`` and ``0 * inf`` are NaN, so a non-finite value at
step ``t0`` would reach every output row before ``t0``. With ``Xf`` the finite part of ``X`` (0 where
``X`` is not finite)::

    L @ X  :=  L @ Xf + cumsum_t(X - Xf)

``X - Xf`` is exactly 0 where ``X`` is finite and non-finite elsewhere, so its running sum adds ``+0``
to the rows before the first non-finite step (leaving them bit for bit as they were) and makes the
rows from there on non-finite.

On the CPU the correction is made only when ``X`` holds a non-finite value (one sum over ``X`` says
whether it may: it is finite when every element is, barring an overflow, which only costs the
correction). Under tracing (``torch.compile``/``torch.export``, the ONNX lowering) and on other
devices, where reading a value would break the graph or wait for the device, it is made always.
"""

from __future__ import annotations

import math

import torch

from psu_torch._sums import total


def _nonfinite_part(X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(Xf, cumsum_t(X - Xf))``, or ``(X, None)`` when ``X`` is known to be finite."""
    if X.device.type == "cpu" and not torch.compiler.is_compiling() and math.isfinite(total(X)):
        return X, None
    Xf = torch.where(torch.isfinite(X), X, torch.zeros((), dtype=X.dtype, device=X.device))
    return Xf, torch.cumsum(X - Xf, dim=0)


def causal_mm(L: torch.Tensor, X: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """``L @ X`` for a lower-triangular ``L [T, T]`` and ``X [T, N]``, causal (module docstring)."""
    Xf, tail = _nonfinite_part(X)
    Y = torch.mm(L, Xf) if out is None else torch.mm(L, Xf, out=out)
    return Y if tail is None else Y.add_(tail)


def causal_addmm(C: torch.Tensor, L: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """``C + L @ X`` (``C`` broadcast to ``[T, N]``, e.g. a bias ``[T, 1]``), causal."""
    Xf, tail = _nonfinite_part(X)
    Y = torch.addmm(C, L, Xf)
    return Y if tail is None else Y.add_(tail)


def causal_addmm_(Y: torch.Tensor, L: torch.Tensor, X: torch.Tensor, alpha: float) -> torch.Tensor:
    """``Y += alpha L @ X`` in place, causal."""
    Xf, tail = _nonfinite_part(X)
    Y.addmm_(L, Xf, alpha=alpha)
    return Y if tail is None else Y.add_(tail, alpha=alpha)
