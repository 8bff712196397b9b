"""Functional API: ``psu``, ``ipsu``, ``rpsu`` on ``[T, ...]`` tensors (time first).

With ``X`` the input viewed as a ``[T, N]`` matrix (SPEC §2)::

    PSU:   H = A X,              P = sigma(H),              V = H - gamma B Q
    IPSU:  H = (W ⊙ M) X + b,                               V = H - gamma B X
    RPSU:  H = A X,              P = sigma((W ⊙ M) X + b),  V = H - gamma B Q
    S = [V > theta]

``Q = P`` (``reset="expected"``) or ``Q = R ~ Bernoulli(P)`` drawn from the Threefry stream of
SPEC §6 (``reset="sampled"``, ``seed`` required). ``gamma = theta`` when ``reset_scale=None``
(the gradient of a learnable threshold then reaches the reset term too), else ``reset_scale``.

Spikes are differentiable through the arctan surrogate with sharpness ``surrogate_alpha``;
``threshold`` and ``surrogate_alpha`` may be Python numbers or 0-d tensors (learnable).

``impl`` selects the computation, and the one selected is the one that runs:

* ``"auto"``: PSU on CPU picks ``"recurrence"``, ``"dense"`` or ``"chunked"`` by the measured
  rule :func:`psu_torch._eager.choose_psu_impl`; PSU on CUDA uses ``"triton"`` (raises if Triton
  is missing); IPSU and RPSU use ``"dense"`` (their learned matrix is one GEMM).
* ``"recurrence"`` (one pass over time, row operations), ``"chunked"`` (the dense form on blocks
  of 32 steps with carries), ``"dense"`` (``[T, T]`` GEMMs): eager PyTorch, any device; the first
  two are PSU only.
* ``"triton"``: the fused Triton kernels (PSU; CUDA tensors, or CPU tensors under
  ``TRITON_INTERPRET=1``).
"""

from __future__ import annotations

import os
from typing import Any

import torch

from psu_core import checks
from psu_torch import _autograd

__all__ = ["psu", "ipsu", "rpsu", "IMPLS"]

IMPLS = ("auto", "recurrence", "chunked", "dense", "triton")


def _scalar_value(name: str, value: Any) -> Any:
    """The Python value of a scalar parameter for the SPEC §8 checks (tensors must be 0-d)."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1 or not value.is_floating_point():
            raise ValueError(f"{name} must be a finite number or a 0-d floating tensor, got a tensor of "
                             f"shape {tuple(value.shape)} and dtype {value.dtype}")
        if torch.compiler.is_compiling():
            # Reading a tensor's value would break the graph; under torch.compile the value of a
            # tensor parameter is not checked (its shape and dtype are). 1.0 passes every check.
            return 1.0
        return float(value.detach())
    return value


def _scalar_tensor(value: Any, like: torch.Tensor) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.reshape(())
    # float64 holds the caller's number exactly; this tensor only carries the value.
    return torch.tensor(float(value), dtype=torch.float64)


def _validate(variant: str, x: Any, weight: Any, bias: Any, tau, threshold, reset_scale, surrogate_alpha,
              reset, seed, validate) -> int:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    for name, arr in (("weight", weight), ("bias", bias)):
        if arr is not None and not isinstance(arr, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor or None, got {type(arr).__name__}")
    T = checks.validate_call(
        variant,
        x_shape=tuple(x.shape),
        x_dtype=str(x.dtype).replace("torch.", ""),
        x_is_floating=x.is_floating_point(),
        tau=tau,
        threshold=_scalar_value("threshold", threshold),
        reset_scale=reset_scale,
        surrogate_alpha=_scalar_value("surrogate_alpha", surrogate_alpha),
        weight_shape=None if weight is None else tuple(weight.shape),
        bias_shape=None if bias is None else tuple(bias.shape),
        reset=reset,
        seed=seed,
    ).T
    if validate:
        checks.check_finite(bool(torch.isfinite(x).all()))
    return T


def _triton_ready(x: torch.Tensor) -> None:
    """Raise with the reason when the Triton path cannot run ``x``."""
    interpret = os.environ.get("TRITON_INTERPRET", "0") == "1"
    if x.device.type != "cuda" and not interpret:
        raise RuntimeError(
            f"impl='triton' needs a CUDA tensor (or TRITON_INTERPRET=1 to run the kernels in Triton's "
            f"interpreter on CPU), got a tensor on {x.device}"
        )
    try:
        import triton  # noqa: F401
    except ImportError as err:  # pragma: no cover - depends on the install
        raise RuntimeError(
            "impl='triton' (the default for CUDA tensors) needs the 'triton' package: "
            "pip install 'psu-torch[cuda]', or pass impl='recurrence' to run eager PyTorch operations"
        ) from err


def _resolve_psu_impl(impl: str, x: torch.Tensor, T: int, N: int) -> str:
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    if impl == "auto" and x.device.type == "cuda":
        impl = "triton"
    # "auto" on CPU is resolved inside the operator (psu_torch._eager.choose_psu_impl).
    if impl == "triton":
        _triton_ready(x)
    return impl


def _resolve_learned_impl(variant: str, impl: str) -> None:
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    if impl not in ("auto", "dense"):
        raise ValueError(
            f"impl must be 'auto' or 'dense' for variant {variant!r} (its learned [T, T] matrix needs the "
            f"whole input history, so it is computed as one GEMM), got {impl!r}"
        )


def _pack(x: torch.Tensor, S, V, R, return_membrane: bool, return_reset: bool):
    # The operators return S and V in x.dtype (half precision computed in float32 inside them).
    shape, dtype = x.shape, x.dtype
    spikes = S.reshape(shape)
    if not (return_membrane or return_reset):
        return spikes
    out = [spikes]
    if return_membrane:
        out.append(V.detach().reshape(shape))
    if return_reset:
        out.append(None if R is None else R.to(dtype).reshape(shape))
    return tuple(out)


def psu(
    x: torch.Tensor,
    *,
    tau: float = 2.0,
    threshold: float | torch.Tensor = 1.0,
    reset_scale: float | None = None,
    surrogate_alpha: float | torch.Tensor = 2.0,
    reset: str = "expected",
    seed: int | None = None,
    return_membrane: bool = False,
    return_reset: bool = False,
    validate: bool = False,
    impl: str = "auto",
    weight: None = None,
    bias: None = None,
):
    """Parallel Spiking Unit: ``V = A X - gamma B Q`` with ``Q = sigma(A X)`` (or its draw).

    Args:
        x: input current ``[T, ...]``, any floating dtype, any device.
        tau: membrane time constant ``> 1``; decay and input gain are ``a = 1/tau``.
        threshold: firing threshold ``theta > 0`` (number or 0-d tensor, learnable).
        reset_scale: ``gamma``; ``None`` ties it to ``threshold`` (with gradient).
        surrogate_alpha: arctan surrogate sharpness ``> 0`` (number or 0-d tensor, learnable).
        reset: ``"expected"`` (use ``P``) or ``"sampled"`` (draw ``R`` with ``seed``).
        seed: integer in ``[0, 2**64)``, required when ``reset="sampled"``.
        return_membrane: also return ``V`` (``[T, ...]``, not differentiable).
        return_reset: also return the drawn ``R`` (``None`` in expected mode).
        validate: scan ``x`` for NaN/inf first (one extra pass over the data).
        impl: ``"auto"``, ``"recurrence"``, ``"dense"`` or ``"triton"`` (see the module docstring).
        weight, bias: must be ``None``: PSU has no learned parameters (accepted only so that passing
            them raises the ``ValueError`` of SPEC §8 that every backend raises).

    Returns:
        ``S`` ``[T, ...]`` in ``x.dtype``; or the tuple ``(S, V)``, ``(S, R)``, ``(S, V, R)``
        following the ``return_*`` flags.
    """
    T = _validate("psu", x, weight, bias, tau, threshold, reset_scale, surrogate_alpha, reset, seed, validate)
    N = x.numel() // T if T else 0
    impl = _resolve_psu_impl(impl, x, T, N)
    X = x.reshape(T, N).contiguous()
    S, V, R = _autograd.psu_forward(
        X,
        _scalar_tensor(threshold, X),
        _scalar_tensor(surrogate_alpha, X),
        1.0 / float(tau),
        None if reset_scale is None else float(reset_scale),
        *_autograd.split_seed(int(seed) if reset == "sampled" else None),
        return_membrane,
        impl,
    )
    return _pack(x, S, V, R if reset == "sampled" else None, return_membrane, return_reset)


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
    return_membrane: bool = False,
    return_reset: bool = False,
    validate: bool = False,
    impl: str = "auto",
):
    """Input-aware PSU: ``V = ((W ⊙ M) - gamma B) X + b`` (one GEMM), ``S = [V > theta]``.

    ``weight`` is ``[T, T]`` (only its lower triangle, diagonal included, is used; the upper
    triangle gets a zero gradient), ``bias`` is ``[T]``. ``reset="sampled"`` is not defined for
    IPSU and raises ``ValueError``. Other arguments and the return value as in :func:`psu`.
    """
    T = _validate("ipsu", x, weight, bias, tau, threshold, reset_scale, surrogate_alpha, reset, seed, validate)
    _resolve_learned_impl("ipsu", impl)
    N = x.numel() // T
    X = x.reshape(T, N).contiguous()
    S, V = _autograd.ipsu_forward(
        X,
        weight,
        bias,
        _scalar_tensor(threshold, X),
        _scalar_tensor(surrogate_alpha, X),
        1.0 / float(tau),
        None if reset_scale is None else float(reset_scale),
        return_membrane,
    )
    return _pack(x, S, V, None, return_membrane, return_reset)


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
    return_membrane: bool = False,
    return_reset: bool = False,
    validate: bool = False,
    impl: str = "auto",
):
    """Reset-aware PSU: ``P = sigma((W ⊙ M) X + b)``, ``V = A X - gamma B Q``, ``S = [V > theta]``.

    ``weight`` ``[T, T]`` (lower triangle used), ``bias`` ``[T]``. Other arguments and the return
    value as in :func:`psu`.
    """
    T = _validate("rpsu", x, weight, bias, tau, threshold, reset_scale, surrogate_alpha, reset, seed, validate)
    _resolve_learned_impl("rpsu", impl)
    N = x.numel() // T
    X = x.reshape(T, N).contiguous()
    S, V, R = _autograd.rpsu_forward(
        X,
        weight,
        bias,
        _scalar_tensor(threshold, X),
        _scalar_tensor(surrogate_alpha, X),
        1.0 / float(tau),
        None if reset_scale is None else float(reset_scale),
        *_autograd.split_seed(int(seed) if reset == "sampled" else None),
        return_membrane,
    )
    return _pack(x, S, V, R if reset == "sampled" else None, return_membrane, return_reset)
