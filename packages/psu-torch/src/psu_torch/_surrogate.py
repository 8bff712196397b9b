"""The arctan surrogate of SPEC §4 and the two scalar gradients of SPEC §5, for the GEMM forms.

With ``D = V - theta``, ``q = pi/2 alpha D`` and ``s = alpha / 2``::

    dS/dV = s / (1 + q^2)              dS/dalpha = D / (2 (1 + q^2))         gV = G dS/dV
    dL/dalpha = sum(G dS/dalpha) = sum(gV D) / alpha
    dL/dtheta = -sum(gV) - [gamma tied to theta] sum(gV * B Q)

The forms compute ``gV / s`` (:func:`scaled_surrogate`) and fold ``s`` into the one GEMM or sum that
follows. The recurrence and the Triton kernel fold the scalars into their own sweeps instead (see
:mod:`psu_torch._psu_recurrence`).
"""

from __future__ import annotations

import functools
import math

import torch

from psu_core.checks import Params

HALF_PI = math.pi / 2


def scaled_surrogate(G: torch.Tensor, D: torch.Tensor, alpha: float, out: torch.Tensor) -> torch.Tensor:
    """``out = G / (1 + (pi/2 alpha D)^2)`` (that is ``gV / s``), in ``out``'s storage."""
    k = HALF_PI * alpha
    torch.addcmul(_one(D.dtype, D.device), D, D, value=k * k, out=out)
    return torch.div(G, out, out=out)


def _one(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A 0-d ``1`` (built once per dtype and device: constructing it costs ~2 us per call; a traced
    call builds its own, which must not outlive the trace)."""
    if torch.compiler.is_compiling():
        return torch.ones((), dtype=dtype, device=device)
    return _cached_one(dtype, device)


@functools.lru_cache(maxsize=16)
def _cached_one(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    return torch.ones((), dtype=dtype, device=device)


def scalar_grads(
    p: Params, sum_gv_d: torch.Tensor, sum_gv: torch.Tensor, sum_gv_bq: torch.Tensor | None, scale: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(dL/dtheta, dL/dalpha)`` from ``sum(gV D)``, ``sum(gV)`` and ``sum(gV * B Q)``, each given
    divided by ``scale`` (the forms sum ``gV / s``; ``sum_gv_bq`` is needed only when tied)."""
    d_alpha = sum_gv_d * (scale / p.surrogate_alpha)
    d_theta = sum_gv + sum_gv_bq if p.tied else sum_gv
    return d_theta * -scale, d_alpha
