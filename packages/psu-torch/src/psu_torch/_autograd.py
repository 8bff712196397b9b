"""The fused operators behind :mod:`psu_torch.functional`, as ``torch.library`` custom ops.

Each neuron is one forward operator and one backward operator, tied together with
``torch.library.register_autograd`` (a custom autograd function that ``torch.compile`` treats as
one opaque node: no graph breaks, no tracing into the time loop).

Every operator takes ``X`` as a ``[T, N]`` matrix in any floating dtype and saves only ``X`` (plus
``W``, ``b`` and, in sampled mode, the drawn resets as ``bool``) for backward, which recomputes the
rest. Half precision is computed in float32 (:mod:`psu_torch._precision`): the eager forms get
``X``, ``W``, ``b`` and ``G`` upcast on entry, the Triton kernels upcast in registers; ``S``, ``V``
and ``dL/dX`` come back in ``X.dtype``, ``dL/dW`` and ``dL/db`` in the dtype of ``W`` and ``b``.

Outputs: spikes ``S`` (differentiable through the arctan surrogate), membrane ``V`` and resets
``R`` (for inspection; an empty tensor when not requested; no gradient flows back through them).
``threshold`` and ``surrogate_alpha`` arrive as 0-d tensors so that learnable ones receive their
gradient (SPEC §5); their values are read inside the operator.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from psu_torch import _eager
from psu_torch._precision import compute_dtype

_IMPLS_PSU = ("auto", "recurrence", "chunked", "dense", "triton")
_EMPTY = (0,)


def _no_autocast(fn):
    """Run an operator body in its compute dtype whatever autocast state the caller is in
    (autocast would otherwise recast the float32 GEMMs inside to half precision)."""

    @functools.wraps(fn)
    def wrapped(X, *args):
        with torch.autocast(device_type=X.device.type, enabled=False):
            return fn(X, *args)

    return wrapped


def _psu_impl(impl: str, X: Tensor):
    """``(forward, backward, cd)``: the PSU form and the dtype to hand it ``X`` and ``G`` in."""
    if impl == "auto":
        # Resolved here, inside the operator, so that torch.compile never traces the choice.
        impl = _eager.choose_psu_impl(X.shape[0], X.shape[1])
    cd = compute_dtype(X.dtype)
    if impl == "recurrence":
        return _eager.psu_forward_recurrence, _eager.psu_backward_recurrence, cd
    if impl == "chunked":
        return _eager.psu_forward_chunked, _eager.psu_backward_chunked, cd
    if impl == "dense":
        return _eager.psu_forward_dense, _eager.psu_backward_dense, cd
    if impl == "triton":
        from psu_torch import _triton

        # The kernels read half precision as it is (half the memory traffic) and upcast in registers.
        return _triton.psu_forward, _triton.psu_backward, X.dtype
    raise ValueError(f"impl must be one of {_IMPLS_PSU} here, got {impl!r}")


def _as(t: Tensor | None, dtype: torch.dtype) -> Tensor | None:
    return None if t is None else t.to(dtype)


def _seed(sampled: bool, seed_lo: int, seed_hi: int) -> int | None:
    # Seeds are 64-bit unsigned; custom ops carry int64, so the two 32-bit halves travel apart.
    return (seed_hi << 32) | seed_lo if sampled else None


def split_seed(seed: int | None) -> tuple[bool, int, int]:
    """``seed`` -> ``(sampled, low word, high word)`` for the operators below."""
    if seed is None:
        return False, 0, 0
    return True, seed & 0xFFFFFFFF, seed >> 32


def _gamma(theta: float, reset_scale: float | None) -> float:
    return theta if reset_scale is None else float(reset_scale)


def _or_empty(t: Tensor | None, like: Tensor, dtype: torch.dtype | None = None) -> Tensor:
    return t if t is not None else like.new_empty(_EMPTY, dtype=dtype or like.dtype)


def _scalars(vals, X: Tensor) -> Tensor:
    """Pack ``(sum(gV (V - theta)), sum(gV), sum(gV B Q))`` into one float64 tensor of 3 values."""
    if vals[0] is None:
        return torch.zeros(3, dtype=torch.float64, device=X.device)
    return torch.stack([v.to(torch.float64).reshape(()) for v in vals])


def _scalar_grads(ctx, scalars: Tensor, theta_idx: int, alpha_idx: int):
    # dL/dtheta = -sum(gV) - [gamma tied] sum(gV B Q);  dL/dalpha = sum(gV (V - theta)) / alpha
    theta_like, alpha_like = ctx.scalar_like
    d_theta = d_alpha = None
    if ctx.needs_input_grad[theta_idx]:
        g = -scalars[1] - scalars[2] if ctx.tied else -scalars[1]
        d_theta = g.to(theta_like.dtype).reshape(theta_like.shape)
    if ctx.needs_input_grad[alpha_idx]:
        d_alpha = (scalars[0] / ctx.alpha).to(alpha_like.dtype).reshape(alpha_like.shape)
    return d_theta, d_alpha


def _remember_scalars(ctx, theta_t: Tensor, alpha_t: Tensor, reset_scale: float | None) -> None:
    ctx.scalar_like = (theta_t.new_empty(()), alpha_t.new_empty(()))
    ctx.tied = reset_scale is None


# ---------------------------------------------------------------------------------------------- PSU
@torch.library.custom_op("psu_torch::psu_forward", mutates_args=())
@_no_autocast
def psu_forward(
    X: Tensor, theta: Tensor, alpha: Tensor, a: float, reset_scale: float | None,
    sampled: bool, seed_lo: int, seed_hi: int, want_v: bool, impl: str,
) -> tuple[Tensor, Tensor, Tensor]:
    """PSU forward: ``(S, V or empty, R as bool or empty)`` for ``X [T, N]``."""
    th = float(theta)
    fwd, _, cd = _psu_impl(impl, X)
    S, V, R = fwd(X.to(cd), a, _gamma(th, reset_scale), th, _seed(sampled, seed_lo, seed_hi), want_v)
    return S.to(X.dtype), _or_empty(_as(V, X.dtype), X), _or_empty(R, X, torch.bool)


@psu_forward.register_fake
def _(X, theta, alpha, a, reset_scale, sampled, seed_lo, seed_hi, want_v, impl):
    V = torch.empty_like(X) if want_v else X.new_empty(_EMPTY)
    R = X.new_empty(X.shape if sampled else _EMPTY, dtype=torch.bool)
    return torch.empty_like(X), V, R


@torch.library.custom_op("psu_torch::psu_backward", mutates_args=())
@_no_autocast
def psu_backward(
    X: Tensor, G: Tensor, R: Tensor, theta: Tensor, alpha: Tensor, a: float,
    reset_scale: float | None, sampled: bool, need_scalars: bool, impl: str,
) -> tuple[Tensor, Tensor]:
    """PSU backward: ``(dL/dX, [sum(gV (V-theta)), sum(gV), sum(gV B Q)])``."""
    th, al = float(theta), float(alpha)
    _, bwd, cd = _psu_impl(impl, X)
    dX, *vals = bwd(
        X.to(cd), G.to(cd).contiguous(), R if sampled else None, a, _gamma(th, reset_scale), th, al, need_scalars,
        reset_scale is None,
    )
    return dX.to(X.dtype), _scalars(vals, X)


@psu_backward.register_fake
def _(X, G, R, theta, alpha, a, reset_scale, sampled, need_scalars, impl):
    return torch.empty_like(X), X.new_empty((3,), dtype=torch.float64)


def _psu_setup(ctx, inputs, output) -> None:
    X, theta, alpha, a, reset_scale, sampled, _lo, _hi, _want_v, impl = inputs
    ctx.save_for_backward(X, output[2], theta, alpha)
    ctx.params = (a, reset_scale, sampled, impl)
    ctx.alpha = None
    _remember_scalars(ctx, theta, alpha, reset_scale)


def _psu_backward(ctx, gS, _gV, _gR):
    X, R, theta, alpha = ctx.saved_tensors
    a, reset_scale, sampled, impl = ctx.params
    need = ctx.needs_input_grad[1] or ctx.needs_input_grad[2]
    gS = torch.zeros_like(X) if gS is None else gS
    dX, scalars = psu_backward(X, gS, R, theta.detach(), alpha.detach(), a, reset_scale, sampled, need, impl)
    ctx.alpha = alpha.detach().to(torch.float64)
    d_theta, d_alpha = _scalar_grads(ctx, scalars, 1, 2)
    return dX, d_theta, d_alpha, None, None, None, None, None, None, None


torch.library.register_autograd("psu_torch::psu_forward", _psu_backward, setup_context=_psu_setup)


# --------------------------------------------------------------------------------------------- IPSU
@torch.library.custom_op("psu_torch::ipsu_forward", mutates_args=())
@_no_autocast
def ipsu_forward(
    X: Tensor, W: Tensor, b: Tensor, theta: Tensor, alpha: Tensor, a: float, reset_scale: float | None, want_v: bool,
) -> tuple[Tensor, Tensor]:
    """IPSU forward: ``V = ((W ⊙ M) - gamma B) X + b`` (one GEMM); ``(S, V or empty)``."""
    th = float(theta)
    cd = compute_dtype(X.dtype)
    S, V = _eager.ipsu_forward(X.to(cd), W.to(cd), b.to(cd), a, _gamma(th, reset_scale), th, want_v)
    return S.to(X.dtype), _or_empty(_as(V, X.dtype), X)


@ipsu_forward.register_fake
def _(X, W, b, theta, alpha, a, reset_scale, want_v):
    return torch.empty_like(X), (torch.empty_like(X) if want_v else X.new_empty(_EMPTY))


@torch.library.custom_op("psu_torch::ipsu_backward", mutates_args=())
@_no_autocast
def ipsu_backward(
    X: Tensor, G: Tensor, W: Tensor, b: Tensor, theta: Tensor, alpha: Tensor, a: float,
    reset_scale: float | None, need_scalars: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """IPSU backward: ``(dL/dX, dL/dW, dL/db, scalars)``."""
    th, al = float(theta), float(alpha)
    cd = compute_dtype(X.dtype)
    dX, dW, db, *vals = _eager.ipsu_backward(
        X.to(cd), G.to(cd).contiguous(), W.to(cd), b.to(cd), a, _gamma(th, reset_scale), th, al, need_scalars
    )
    return dX.to(X.dtype), dW.to(W.dtype), db.to(b.dtype), _scalars(vals, X)


@ipsu_backward.register_fake
def _(X, G, W, b, theta, alpha, a, reset_scale, need_scalars):
    return torch.empty_like(X), torch.empty_like(W), torch.empty_like(b), X.new_empty((3,), dtype=torch.float64)


def _ipsu_setup(ctx, inputs, output) -> None:
    X, W, b, theta, alpha, a, reset_scale, _want_v = inputs
    ctx.save_for_backward(X, W, b, theta, alpha)
    ctx.params = (a, reset_scale)
    _remember_scalars(ctx, theta, alpha, reset_scale)


def _ipsu_backward(ctx, gS, _gV):
    X, W, b, theta, alpha = ctx.saved_tensors
    a, reset_scale = ctx.params
    need = ctx.needs_input_grad[3] or ctx.needs_input_grad[4]
    gS = torch.zeros_like(X) if gS is None else gS
    dX, dW, db, scalars = ipsu_backward(X, gS, W, b, theta.detach(), alpha.detach(), a, reset_scale, need)
    ctx.alpha = alpha.detach().to(torch.float64)
    d_theta, d_alpha = _scalar_grads(ctx, scalars, 3, 4)
    return dX, dW, db, d_theta, d_alpha, None, None, None


torch.library.register_autograd("psu_torch::ipsu_forward", _ipsu_backward, setup_context=_ipsu_setup)


# --------------------------------------------------------------------------------------------- RPSU
@torch.library.custom_op("psu_torch::rpsu_forward", mutates_args=())
@_no_autocast
def rpsu_forward(
    X: Tensor, W: Tensor, b: Tensor, theta: Tensor, alpha: Tensor, a: float, reset_scale: float | None,
    sampled: bool, seed_lo: int, seed_hi: int, want_v: bool,
) -> tuple[Tensor, Tensor, Tensor]:
    """RPSU forward: ``P = sigma((W ⊙ M) X + b)``, ``V = A X - gamma B Q``; ``(S, V, R)``."""
    th = float(theta)
    cd = compute_dtype(X.dtype)
    S, V, R = _eager.rpsu_forward(
        X.to(cd), W.to(cd), b.to(cd), a, _gamma(th, reset_scale), th, _seed(sampled, seed_lo, seed_hi), want_v
    )
    return S.to(X.dtype), _or_empty(_as(V, X.dtype), X), _or_empty(R, X, torch.bool)


@rpsu_forward.register_fake
def _(X, W, b, theta, alpha, a, reset_scale, sampled, seed_lo, seed_hi, want_v):
    V = torch.empty_like(X) if want_v else X.new_empty(_EMPTY)
    R = X.new_empty(X.shape if sampled else _EMPTY, dtype=torch.bool)
    return torch.empty_like(X), V, R


@torch.library.custom_op("psu_torch::rpsu_backward", mutates_args=())
@_no_autocast
def rpsu_backward(
    X: Tensor, G: Tensor, R: Tensor, W: Tensor, b: Tensor, theta: Tensor, alpha: Tensor, a: float,
    reset_scale: float | None, sampled: bool, need_scalars: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """RPSU backward: ``(dL/dX, dL/dW, dL/db, scalars)``."""
    th, al = float(theta), float(alpha)
    cd = compute_dtype(X.dtype)
    dX, dW, db, *vals = _eager.rpsu_backward(
        X.to(cd), G.to(cd).contiguous(), R if sampled else None, W.to(cd), b.to(cd), a, _gamma(th, reset_scale), th, al,
        need_scalars,
    )
    return dX.to(X.dtype), dW.to(W.dtype), db.to(b.dtype), _scalars(vals, X)


@rpsu_backward.register_fake
def _(X, G, R, W, b, theta, alpha, a, reset_scale, sampled, need_scalars):
    return torch.empty_like(X), torch.empty_like(W), torch.empty_like(b), X.new_empty((3,), dtype=torch.float64)


def _rpsu_setup(ctx, inputs, output) -> None:
    X, W, b, theta, alpha, a, reset_scale, sampled, _lo, _hi, _want_v = inputs
    ctx.save_for_backward(X, W, b, output[2], theta, alpha)
    ctx.params = (a, reset_scale, sampled)
    _remember_scalars(ctx, theta, alpha, reset_scale)


def _rpsu_backward(ctx, gS, _gV, _gR):
    X, W, b, R, theta, alpha = ctx.saved_tensors
    a, reset_scale, sampled = ctx.params
    need = ctx.needs_input_grad[3] or ctx.needs_input_grad[4]
    gS = torch.zeros_like(X) if gS is None else gS
    dX, dW, db, scalars = rpsu_backward(X, gS, R, W, b, theta.detach(), alpha.detach(), a, reset_scale, sampled, need)
    ctx.alpha = alpha.detach().to(torch.float64)
    d_theta, d_alpha = _scalar_grads(ctx, scalars, 3, 4)
    return dX, dW, db, d_theta, d_alpha, None, None, None, None, None, None


torch.library.register_autograd("psu_torch::rpsu_forward", _rpsu_backward, setup_context=_rpsu_setup)
