"""The ONNX lowering: what ``psu``, ``ipsu`` and ``rpsu`` compute while ``torch.onnx.export`` traces them.

The fused operators of :mod:`psu_torch._autograd` are ``torch.library`` custom ops, which ONNX does
not know. While exporting (``torch.onnx.is_in_onnx_export()``), :func:`psu_torch.functional.call`
computes the dense form of SPEC §2 in standard operations instead, each of which the exporter
lowers to one ONNX operator (MatMul, Sigmoid, Sub, Mul, Add, Greater, Cast)::

    PSU:   H = A X,  V = H - gamma B sigma(H)
    IPSU:  V = ((W ⊙ M) - gamma B) X + b
    RPSU:  V = A X - gamma B sigma((W ⊙ M) X + b)
    S = [V > theta]

with ``X`` the input viewed as ``[T, N]``. Each time-mixing product is made causal whatever the
values (:mod:`psu_torch._causal`, in IsNaN/IsInf, Where and CumSum). ``A`` and ``B`` (:mod:`psu_torch._decay`) become constants
of the graph, so ``T`` is fixed at export; ``theta``, ``gamma``, ``W`` and ``b`` are the tensors
given (the module's parameters become initialisers). The neuron axes may stay dynamic (a batch
size chosen at run time). Half precision is computed in float32, as everywhere
(:mod:`psu_torch._precision`).

Limits, each refused at export with :class:`ONNXExportError`: sampled resets (a graph would hold the
seed as a constant, so every run would draw the same resets, and the Threefry stream of SPEC §6
would need unsigned 32-bit arithmetic in ONNX), and a dynamic ``T``.
"""

from __future__ import annotations

from typing import Any

import torch

from psu_torch._causal import causal_addmm, causal_mm
from psu_torch._decay import decay_matrices
from psu_torch._precision import compute_dtype

try:  # the exporter's own flag, behind torch.onnx.is_in_onnx_export() (private: read defensively)
    from torch.onnx._internal.exporter import _flags as _exporter_flags
except ImportError:  # pragma: no cover - depends on the torch release
    _exporter_flags = None

__all__ = ["ONNXExportError", "exporting", "check_exportable", "shape_to_check", "forward"]


class ONNXExportError(ValueError):
    """A call ``torch.onnx.export`` cannot express (sampled reset, dynamic ``T``)."""


def exporting() -> bool:
    """Whether ``torch.onnx.export`` is tracing now.

    ``torch.onnx.is_in_onnx_export()`` says so while the exporter traces with ``torch.export``
    (``strict=False``, its first way of capturing a model); under ``strict=True``, its second, Dynamo
    reads that function as ``False``, so the flag behind it is read directly: the same lowering, and
    the same errors, whichever way the exporter captures the model."""
    return torch.onnx.is_in_onnx_export() or bool(getattr(_exporter_flags, "_is_onnx_exporting", False))


def check_exportable(x: torch.Tensor, reset: Any, validate: bool) -> None:
    """Raise :class:`ONNXExportError` for what the lowering does not cover."""
    if validate:
        raise ONNXExportError(
            "validate=True cannot be exported to ONNX: it reads the input's values to raise on NaN/inf, which a "
            "graph cannot do; export with validate=False"
        )
    if reset == "sampled":
        raise ONNXExportError(
            "reset='sampled' cannot be exported to ONNX: the graph would hold one seed as a constant (every "
            "run drawing the same resets) and the Threefry stream of SPEC §6 needs unsigned 32-bit arithmetic; "
            "export with reset='expected'"
        )
    # A symbolic size (torch.SymInt) carries a .node. Under Dynamo (the exporter's strict=True capture,
    # which otherwise fixes a dynamic T to the example's value without a word) the query itself is
    # refused, so that capture fails as well and the exporter reports this error, its first.
    if x.ndim >= 1 and (isinstance(x.shape[0], torch.SymInt) or hasattr(x.shape[0], "node")):
        raise ONNXExportError(
            f"the number of time steps T must be fixed for ONNX export (the [T, T] decay matrices are constants "
            f"of the graph), got a dynamic dimension {x.shape[0]} for x.shape[0]: leave the time axis out of "
            "dynamic_shapes (the neuron axes, e.g. the batch, may be dynamic)"
        )


def shape_to_check(x: torch.Tensor) -> tuple[int, ...]:
    """``x``'s shape for the SPEC §8 checks, a dynamic neuron axis (symbolic) read as 1: the checks
    need ``T`` and the rank, and reading a symbolic size would fix it in the graph."""
    return tuple(d if isinstance(d, int) else 1 for d in x.shape)


def _value(t: torch.Tensor | float, like: torch.Tensor) -> torch.Tensor | float:
    return t.to(like.dtype) if isinstance(t, torch.Tensor) else float(t)


def forward(
    variant: str,
    x: torch.Tensor,
    weight: torch.Tensor | None,
    bias: torch.Tensor | None,
    *,
    tau: float,
    threshold: torch.Tensor | float,
    reset_scale: float | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(S, V)`` for ``x [T, ...]`` in the dense form (module docstring), both in ``x.dtype``."""
    T = x.shape[0]
    cd = compute_dtype(x.dtype)
    X = x.reshape(T, -1).to(cd)
    A, B = decay_matrices(T, 1.0 / tau, cd, x.device)
    theta = _value(threshold, X)
    gamma = theta if reset_scale is None else float(reset_scale)
    if variant == "ipsu":
        V = causal_addmm(bias.to(cd)[:, None], torch.tril(weight.to(cd)) - gamma * B, X)
    else:
        H = causal_mm(A, X)
        Z = H if variant == "psu" else causal_addmm(bias.to(cd)[:, None], torch.tril(weight.to(cd)), X)
        V = H - gamma * causal_mm(B, torch.sigmoid(Z))
    S = (V > theta).to(x.dtype)
    return S.reshape(x.shape), V.to(x.dtype).reshape(x.shape)
