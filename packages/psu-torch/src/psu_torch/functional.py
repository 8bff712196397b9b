"""Functional API (SPEC §11): ``psu``, ``ipsu``, ``rpsu`` on ``[T, ...]`` tensors (time first).

With ``X`` the input viewed as a ``[T, N]`` matrix (SPEC §2)::

    PSU:   H = A X,              P = sigma(H),              V = H - gamma B Q
    IPSU:  H = (W ⊙ M) X + b,                               V = H - gamma B X
    RPSU:  H = A X,              P = sigma((W ⊙ M) X + b),  V = H - gamma B Q
    S = [V > theta]

``Q = P`` (``reset="expected"``) or ``Q = R ~ Bernoulli(P)`` drawn from the Threefry stream of
SPEC §6 (``reset="sampled"``, ``seed`` required). ``gamma = theta`` when ``reset_scale=None``
(the gradient of a learnable threshold then reaches the reset term too), else ``reset_scale``.

Spikes are differentiable through the arctan surrogate with sharpness ``surrogate_alpha``;
``threshold`` and ``surrogate_alpha`` may be Python numbers or 0-d tensors (learnable). The
membrane and the reset draws are returned without gradient.

``method`` selects the computation, and the one selected is the one that runs
(:mod:`psu_torch._methods`):

* ``"auto"``: PSU on CPU picks ``"recurrence"``, ``"dense"`` or ``"chunked"`` by the measured
  rule :func:`psu_torch._methods.choose_psu_method`; PSU on CUDA uses ``"triton"`` (raises if
  Triton is missing); IPSU and RPSU use ``"dense"`` (their learned matrix is one GEMM).
* ``"recurrence"`` (one pass over time, row operations), ``"chunked"`` (the dense form on blocks
  of 32 steps with carries), ``"dense"`` (``[T, T]`` GEMMs): eager PyTorch, any device; the first
  two are PSU only.
* ``"triton"``: the fused Triton kernels (PSU; CUDA tensors, or CPU tensors under
  ``TRITON_INTERPRET=1``).

While ``torch.onnx.export`` traces a call, the dense form in standard operations runs instead of
the custom operators (:mod:`psu_torch._onnx`: expected reset and a fixed ``T`` only).
"""

from __future__ import annotations

import os
from typing import Any

import torch

from psu_core import checks
from psu_core.api import PSUOutput
from psu_torch import _autograd, _onnx
from psu_torch import random as prandom
from psu_torch._methods import METHODS
from psu_torch._onnx import ONNXExportError

__all__ = ["psu", "ipsu", "rpsu", "call", "METHODS", "ONNXExportError"]


class _ShapeOnly:
    """A traced tensor's shape and dtype, with a stand-in value: what the scalar rule may read of a
    tensor under ``torch.compile`` (reading the value would break the graph). 1.0 passes every
    value check."""

    def __init__(self, t: torch.Tensor) -> None:
        self.shape, self.dtype = t.shape, t.dtype

    def __float__(self) -> float:
        return 1.0


def scalar_value(name: str, value: Any) -> Any:
    """``value`` checked by the one scalar rule of SPEC §8 (:func:`psu_core.checks.scalar_value`: a
    Python or NumPy real number, or a 0-d integer or floating array or tensor; ``[1]``-shaped, bool
    and complex values are ``ValueError`` naming ``name``), as a float. A 0-d floating tensor may
    require grad (a learned threshold or alpha); under ``torch.compile`` only its shape and dtype
    are checked."""
    if isinstance(value, torch.Tensor):
        value = _ShapeOnly(value) if torch.compiler.is_compiling() else value.detach()
    return checks.scalar_value(name, value, "a finite number > 0")


def _scalar_tensor(value: Any) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    # float64 holds the caller's number exactly; this tensor only carries the value.
    return torch.tensor(float(value), dtype=torch.float64)


def _triton_ready(x: torch.Tensor) -> None:
    """Raise with the reason when the Triton path cannot run ``x``."""
    interpret = os.environ.get("TRITON_INTERPRET", "0") == "1"
    if x.device.type != "cuda" and not interpret:
        raise RuntimeError(
            f"method='triton' needs a CUDA tensor (or TRITON_INTERPRET=1 to run the kernels in Triton's "
            f"interpreter on CPU), got a tensor on {x.device}"
        )
    try:
        import triton  # noqa: F401
    except ImportError as err:  # pragma: no cover - depends on the install
        raise RuntimeError(
            "method='triton' (the default for CUDA tensors) needs the 'triton' package: "
            "pip install 'psu-torch[cuda]', or pass method='recurrence' to run eager PyTorch operations"
        ) from err


def _method(variant: str, method: Any, x: torch.Tensor) -> str:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if variant != "psu":
        if method not in ("auto", "dense"):
            raise ValueError(
                f"method must be 'auto' or 'dense' for variant {variant!r} (its learned [T, T] matrix needs "
                f"the whole input history, so it is computed as one GEMM), got {method!r}"
            )
        return "dense"
    if method == "auto" and x.device.type == "cuda":
        method = "triton"
    # "auto" on CPU is resolved inside the operator (psu_torch._methods.choose_psu_method).
    if method == "triton":
        _triton_ready(x)
    return method


def call(
    variant: str,
    x: torch.Tensor,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    *,
    tau: float = 2.0,
    threshold: float | torch.Tensor = 1.0,
    reset_scale: float | None = None,
    surrogate_alpha: float | torch.Tensor = 2.0,
    reset: str = "expected",
    seed: int | None = None,
    method: str = "auto",
    return_membrane: bool = False,
    return_reset: bool = False,
    validate: bool = False,
    neuron_offset: int = 0,
) -> torch.Tensor | PSUOutput:
    """:func:`psu`, :func:`ipsu` or :func:`rpsu` by name (``variant``): one entry point for code that
    chooses the variant at run time. PSU takes ``weight=None, bias=None`` (anything else raises the
    ``ValueError`` of SPEC §8)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    for name, arr in (("weight", weight), ("bias", bias)):
        if arr is not None and not isinstance(arr, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor or None, got {type(arr).__name__}")
    exporting = _onnx.exporting()
    if exporting:
        _onnx.check_exportable(x, reset, validate)
    p = checks.validate_call(
        variant,
        x_shape=_onnx.shape_to_check(x) if exporting else tuple(x.shape),
        x_dtype=str(x.dtype).removeprefix("torch."),
        x_is_floating=x.is_floating_point(),
        tau=tau,
        threshold=scalar_value("threshold", threshold),
        reset_scale=reset_scale,
        surrogate_alpha=scalar_value("surrogate_alpha", surrogate_alpha),
        weight_shape=None if weight is None else tuple(weight.shape),
        bias_shape=None if bias is None else tuple(bias.shape),
        reset=reset,
        seed=seed,
    )
    neuron_offset = prandom.check_neuron_offset(neuron_offset, p.n)
    if exporting:
        spikes, V = _onnx.forward(p.variant, x, weight, bias, tau=p.tau, threshold=threshold, reset_scale=p.reset_scale)
        if not (return_membrane or return_reset):
            return spikes
        return PSUOutput(spikes, V.detach() if return_membrane else None, None)
    if validate:
        checks.check_finite(bool(torch.isfinite(x).all()))
    method = _method(p.variant, method, x)
    # A [T, N] input is used as it is: a reshape would add a view node to the autograd graph, a few
    # microseconds per forward and backward on a small layer (issue 10).
    flat = x.dim() == 2 and not torch.compiler.is_compiling() and x.is_contiguous()
    X = x if flat else x.reshape(p.T, p.n).contiguous()
    theta, alpha = _scalar_tensor(threshold), _scalar_tensor(surrogate_alpha)
    seed_args = _autograd.split_seed(p.seed, neuron_offset)
    if p.variant == "psu":
        S, V, R = _autograd.psu(X, theta, alpha, p.tau, p.reset_scale, *seed_args, return_membrane, method)
    elif p.variant == "ipsu":
        S, V = _autograd.ipsu(X, weight, bias, theta, alpha, p.tau, p.reset_scale, return_membrane)
        R = None
    else:
        S, V, R = _autograd.rpsu(X, weight, bias, theta, alpha, p.tau, p.reset_scale, *seed_args, return_membrane)
    spikes = S if flat else S.reshape(x.shape)
    if not (return_membrane or return_reset):
        return spikes
    # The operators return S and V in x.dtype (half precision computed in float32 inside them);
    # V and R carry no gradient (SPEC §11): gradients flow through the spikes only.
    membrane = V.detach().reshape(x.shape) if return_membrane else None
    draws = R.to(x.dtype).reshape(x.shape) if return_reset and p.sampled else None
    return PSUOutput(spikes, membrane, draws)


def psu(
    x: torch.Tensor,
    *,
    tau: float = 2.0,
    threshold: float | torch.Tensor = 1.0,
    reset_scale: float | None = None,
    surrogate_alpha: float | torch.Tensor = 2.0,
    reset: str = "expected",
    seed: int | None = None,
    method: str = "auto",
    return_membrane: bool = False,
    return_reset: bool = False,
    validate: bool = False,
    neuron_offset: int = 0,
) -> torch.Tensor | PSUOutput:
    """Parallel Spiking Unit: ``V = A X - gamma B Q`` with ``Q = sigma(A X)`` (or its draw).

    Args:
        x: input current ``[T, ...]``, any floating dtype, any device.
        tau: membrane time constant ``> 1``; decay and input gain are ``a = 1/tau``.
        threshold: firing threshold ``theta > 0`` (number or 0-d tensor, learnable).
        reset_scale: ``gamma``; ``None`` ties it to ``threshold`` (with gradient).
        surrogate_alpha: arctan surrogate sharpness ``> 0`` (number or 0-d tensor, learnable).
        reset: ``"expected"`` (use ``P``) or ``"sampled"`` (draw ``R`` with ``seed``).
        seed: integer in ``[0, 2**64)``, required when ``reset="sampled"``.
        method: ``"auto"``, ``"recurrence"``, ``"chunked"``, ``"dense"`` or ``"triton"`` (module docstring).
        return_membrane: also return ``V`` (``[T, ...]``, no gradient).
        return_reset: also return the drawn ``R`` (``None`` in expected mode).
        validate: scan ``x`` for NaN/inf first (one extra pass over the data).
        neuron_offset: the flat index, in the whole call, of this call's first neuron, for a call on
            part of a batch (a DDP rank's share): sampled draws then use counter
            ``n + neuron_offset`` (SPEC §6), as the whole call draws. Checked (an integer ``>= 0``,
            ``neuron_offset + N <= 2**32``, else ``ValueError``) and otherwise unused in expected mode.

    Returns:
        ``S`` ``[T, ...]`` in ``x.dtype``; with ``return_membrane`` or ``return_reset``,
        ``PSUOutput(spikes, membrane, reset)`` with ``None`` for what was not asked.
    """
    return call("psu", x, tau=tau, threshold=threshold, reset_scale=reset_scale, surrogate_alpha=surrogate_alpha,
                reset=reset, seed=seed, method=method, return_membrane=return_membrane, return_reset=return_reset,
                validate=validate, neuron_offset=neuron_offset)  # fmt: skip


def ipsu(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    *,
    tau: float = 2.0,
    threshold: float | torch.Tensor = 1.0,
    reset_scale: float | None = None,
    surrogate_alpha: float | torch.Tensor = 2.0,
    reset: str = "expected",
    seed: int | None = None,
    method: str = "auto",
    return_membrane: bool = False,
    return_reset: bool = False,
    validate: bool = False,
    neuron_offset: int = 0,
) -> torch.Tensor | PSUOutput:
    """Input-aware PSU: ``V = ((W ⊙ M) - gamma B) X + b`` (one GEMM), ``S = [V > theta]``.

    ``weight`` is ``[T, T]`` (only its lower triangle, diagonal included, is used; the upper
    triangle gets a zero gradient), ``bias`` is ``[T]``. ``reset="sampled"`` is not defined for
    IPSU and raises ``ValueError``. Other arguments and the result as in :func:`psu`.
    """
    return call("ipsu", x, weight, bias, tau=tau, threshold=threshold, reset_scale=reset_scale,
                surrogate_alpha=surrogate_alpha, reset=reset, seed=seed, method=method,
                return_membrane=return_membrane, return_reset=return_reset, validate=validate,
                neuron_offset=neuron_offset)  # fmt: skip


def rpsu(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    *,
    tau: float = 2.0,
    threshold: float | torch.Tensor = 1.0,
    reset_scale: float | None = None,
    surrogate_alpha: float | torch.Tensor = 2.0,
    reset: str = "expected",
    seed: int | None = None,
    method: str = "auto",
    return_membrane: bool = False,
    return_reset: bool = False,
    validate: bool = False,
    neuron_offset: int = 0,
) -> torch.Tensor | PSUOutput:
    """Reset-aware PSU: ``P = sigma((W ⊙ M) X + b)``, ``V = A X - gamma B Q``, ``S = [V > theta]``.

    ``weight`` ``[T, T]`` (lower triangle used), ``bias`` ``[T]``. Other arguments and the result
    as in :func:`psu`.
    """
    return call("rpsu", x, weight, bias, tau=tau, threshold=threshold, reset_scale=reset_scale,
                surrogate_alpha=surrogate_alpha, reset=reset, seed=seed, method=method,
                return_membrane=return_membrane, return_reset=return_reset, validate=validate,
                neuron_offset=neuron_offset)  # fmt: skip
