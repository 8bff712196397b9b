"""The fused operators behind :mod:`psu_torch.functional`, as ``torch.library`` custom ops.

Each neuron is one forward operator and one backward operator, tied together with
``torch.library.register_autograd`` (a custom autograd function that ``torch.compile`` treats as
one opaque node: no graph breaks, no tracing into the time loop). In eager mode the same bodies,
``setup_context`` and backward run as a plain ``torch.autograd.Function`` (:func:`psu`,
:func:`ipsu`, :func:`rpsu` choose): the custom-op dispatch adds ~60-100 us of Python per call,
which a small layer (T = 4) pays on every forward and backward.

Every operator takes ``X`` as a ``[T, N]`` matrix in any floating dtype and saves only ``X`` (plus
``W``, ``b`` and, in sampled mode, the drawn resets as ``bool``) for backward, which recomputes the
rest; the one exception is an eager PSU call on a small input with the dense form, which keeps the
three ``[T, N]`` intermediates its backward reads (:func:`psu_torch._methods.keeps_intermediates`).
Sampled forwards take ``neuron_offset``, the whole call's flat index of ``X``'s first neuron
(the Threefry counter of neuron ``n`` is ``n + neuron_offset``, SPEC §6). Half precision is computed in float32 (:mod:`psu_torch._precision`): the eager forms get
``X``, ``W``, ``b`` and ``G`` upcast on entry, the Triton kernels upcast in registers; ``S``, ``V``
and ``dL/dX`` come back in ``X.dtype``, ``dL/dW`` and ``dL/db`` in the dtype of ``W`` and ``b``.

Outputs: spikes ``S`` (differentiable through the arctan surrogate), membrane ``V`` and resets
``R`` (for inspection; an empty tensor when not requested; no gradient flows back through them).
``threshold`` and ``surrogate_alpha`` arrive as 0-d tensors so that learnable ones receive their
gradient (SPEC §5); their values are read inside the operator, where the call's
:class:`~psu_core.checks.Params` is rebuilt from the operator's arguments and handed to the form.
Every backward form returns final gradients; the operator only casts them to the parameters' dtype.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from psu_core.checks import Params
from psu_torch import _learned
from psu_torch._methods import keeps_intermediates, psu_form, resolve
from psu_torch._precision import compute_dtype
from psu_torch._psu_dense import psu_backward_dense_saved, psu_forward_dense_saving

_EMPTY = (0,)


def _no_autocast(fn):
    """Run an operator body in its compute dtype whatever autocast state the caller is in
    (autocast would otherwise recast the float32 GEMMs inside to half precision)."""

    @functools.wraps(fn)
    def wrapped(X, *args):
        device_type = X.device.type
        if not torch.is_autocast_enabled(device_type):
            return fn(X, *args)  # the context manager alone costs ~5 us per call
        with torch.autocast(device_type=device_type, enabled=False):
            return fn(X, *args)

    return wrapped


def split_seed(seed: int | None, neuron_offset: int = 0) -> tuple[bool, int, int, int]:
    """``seed`` -> ``(sampled, low word, high word, neuron_offset)``: seeds are 64-bit unsigned,
    custom ops carry int64, so the two 32-bit halves travel apart; the offset (``< 2**32``, the whole
    call's flat index of the first neuron) travels beside them."""
    if seed is None:
        return False, 0, 0, 0
    return True, seed & 0xFFFFFFFF, seed >> 32, neuron_offset


def _params(
    variant: str, X: Tensor, theta: Tensor, alpha: Tensor, tau: float, reset_scale: float | None,
    sampled: bool = False, seed_lo: int = 0, seed_hi: int = 0,
) -> Params:  # fmt: skip
    """The checked call (already checked by :mod:`psu_torch.functional`), with the current values of
    the threshold and alpha tensors."""
    seed = (seed_hi << 32) | seed_lo if sampled else None
    reset = "sampled" if sampled else "expected"
    T, N = X.shape
    return Params(variant, T, (N,), tau, float(theta), reset_scale, float(alpha), reset, seed)


def _out(t: Tensor | None, like: Tensor, dtype: torch.dtype | None = None) -> Tensor:
    """``t`` in ``dtype`` (default ``like.dtype``), or an empty tensor for a result not asked for."""
    dtype = dtype or like.dtype
    return like.new_empty(_EMPTY, dtype=dtype) if t is None else t.to(dtype)


def _scalar(t: Tensor | None, X: Tensor) -> Tensor:
    # A custom op returns tensors only: a scalar gradient not asked for comes back as 0.
    if t is None:
        return torch.zeros((), dtype=compute_dtype(X.dtype), device=X.device)
    return t if t.dim() == 0 else t.reshape(())


def _fake_scalar(X: Tensor) -> Tensor:
    return X.new_empty((), dtype=compute_dtype(X.dtype))


def _scalar_grads(ctx, d_theta: Tensor, d_alpha: Tensor, theta_idx: int):
    """The threshold's and alpha's gradients in their own dtype and shape, where asked for."""
    needs = ctx.needs_input_grad
    return tuple(
        _like(grad, like) if need else None
        for grad, like, need in zip((d_theta, d_alpha), ctx.scalar_like, needs[theta_idx : theta_idx + 2], strict=True)
    )


def _like(grad: Tensor, like: tuple[torch.dtype, torch.Size]) -> Tensor:
    """``grad`` in the ``(dtype, shape)`` of ``like`` (no operation where they already match)."""
    dtype, shape = like
    if grad.dtype != dtype:
        grad = grad.to(dtype)
    return grad if grad.shape == shape else grad.reshape(shape)


def _remember_scalars(ctx, theta: Tensor, alpha: Tensor) -> None:
    ctx.scalar_like = ((theta.dtype, theta.shape), (alpha.dtype, alpha.shape))


def _op(op, impl):
    """The custom op while ``torch.compile``/``torch.export`` traces (one opaque node in the graph),
    else its body called directly: the same computation without the custom-op dispatch, which
    costs ~100 us of Python per call (issue 10: per-call overhead on small layers)."""
    return op if torch.compiler.is_compiling() else impl


def _eager(name: str, impl, setup, backward, n_outputs: int):
    """A ``torch.autograd.Function`` running ``impl`` forward and the operator's own ``setup`` and
    ``backward`` (those of ``register_autograd``): the eager twin of a custom op with autograd."""

    def forward(ctx, *inputs):
        outputs = impl(*inputs)
        setup(ctx, inputs, outputs)
        ctx.mark_non_differentiable(*outputs[1:n_outputs])
        return outputs

    return type(
        name, (torch.autograd.Function,), {"forward": staticmethod(forward), "backward": staticmethod(backward)}
    )


# ---------------------------------------------------------------------------------------------- PSU
@_no_autocast
def _psu_forward_impl(
    X: Tensor,
    theta: Tensor,
    alpha: Tensor,
    tau: float,
    reset_scale: float | None,
    sampled: bool,
    seed_lo: int,
    seed_hi: int,
    neuron_offset: int,
    want_v: bool,
    method: str,
) -> tuple[Tensor, Tensor, Tensor]:
    """PSU forward: ``(S, V or empty, R as bool or empty)`` for ``X [T, N]``."""
    p = _params("psu", X, theta, alpha, tau, reset_scale, sampled, seed_lo, seed_hi)
    fwd, _, cd = psu_form(method, X)
    S, V, R = fwd(X.to(cd), p, want_v, neuron_offset)
    return S.to(X.dtype), _out(V, X), _out(R, X, torch.bool)


psu_forward = torch.library.custom_op("psu_torch::psu_forward", mutates_args=())(_psu_forward_impl)


@psu_forward.register_fake
def _(X, theta, alpha, tau, reset_scale, sampled, seed_lo, seed_hi, neuron_offset, want_v, method):
    V = torch.empty_like(X) if want_v else X.new_empty(_EMPTY)
    R = X.new_empty(X.shape if sampled else _EMPTY, dtype=torch.bool)
    return torch.empty_like(X), V, R


@_no_autocast
def _psu_backward_impl(
    X: Tensor,
    G: Tensor,
    R: Tensor,
    theta: Tensor,
    alpha: Tensor,
    tau: float,
    reset_scale: float | None,
    sampled: bool,
    need_scalars: bool,
    method: str,
) -> tuple[Tensor, Tensor, Tensor]:
    """PSU backward: ``(dL/dX, dL/dtheta, dL/dalpha)`` (the scalars 0 unless ``need_scalars``)."""
    p = _params("psu", X, theta, alpha, tau, reset_scale)
    _, bwd, cd = psu_form(method, X)
    dX, d_theta, d_alpha = bwd(X.to(cd), G.to(cd).contiguous(), R if sampled else None, p, need_scalars)
    return dX.to(X.dtype), _scalar(d_theta, X), _scalar(d_alpha, X)


psu_backward = torch.library.custom_op("psu_torch::psu_backward", mutates_args=())(_psu_backward_impl)


@psu_backward.register_fake
def _(X, G, R, theta, alpha, tau, reset_scale, sampled, need_scalars, method):
    return torch.empty_like(X), _fake_scalar(X), _fake_scalar(X)


def _psu_setup(ctx, inputs, output) -> None:
    X, theta, alpha, tau, reset_scale, sampled, _lo, _hi, _offset, _want_v, method = inputs
    ctx.save_for_backward(X, output[2], theta, alpha)
    ctx.params = (tau, reset_scale, sampled)
    ctx.method = method
    _remember_scalars(ctx, theta, alpha)


def _psu_backward(ctx, gS, _gV, _gR):
    X, R, theta, alpha = ctx.saved_tensors
    need = ctx.needs_input_grad[1] or ctx.needs_input_grad[2]
    gS = torch.zeros_like(X) if gS is None else gS
    dX, d_theta, d_alpha = _op(psu_backward, _psu_backward_impl)(
        X, gS, R, theta.detach(), alpha.detach(), *ctx.params, need, ctx.method
    )
    return dX, *_scalar_grads(ctx, d_theta, d_alpha, 1), None, None, None, None, None, None, None, None


torch.library.register_autograd("psu_torch::psu_forward", _psu_backward, setup_context=_psu_setup)


@_no_autocast
def _psu_forward_keeping(X, theta, alpha, tau, reset_scale, sampled, seed_lo, seed_hi, neuron_offset, want_v):
    """The dense forward on a small input, ``(S, V or empty, R or empty, kept)``: ``kept`` are the
    intermediates its backward reads (:func:`psu_torch._methods.keeps_intermediates`)."""
    p = _params("psu", X, theta, alpha, tau, reset_scale, sampled, seed_lo, seed_hi)
    S, V, R, kept = psu_forward_dense_saving(X.to(compute_dtype(X.dtype)), p, want_v, neuron_offset)
    return S.to(X.dtype), _out(V, X), _out(R, X, torch.bool), kept


@_no_autocast
def _psu_backward_kept(G, kept, theta, alpha, tau, reset_scale, need_scalars):
    p = _params("psu", kept[0], theta, alpha, tau, reset_scale)
    return psu_backward_dense_saved(kept, G.to(kept[0].dtype).contiguous(), p, need_scalars)


class _PSU(torch.autograd.Function):
    """The eager twin of :func:`psu_forward` with autograd. A small dense call keeps the
    intermediates its backward reads instead of recomputing them from ``X``."""

    @staticmethod
    def forward(ctx, *inputs):
        X, theta, alpha, *args, method = inputs
        method = resolve(method, X)
        if not keeps_intermediates(method, X):
            outputs = _psu_forward_impl(*inputs[:-1], method)
            _psu_setup(ctx, inputs, outputs)
            ctx.kept = False
        else:
            *outputs, kept = _psu_forward_keeping(X, theta, alpha, *args)
            ctx.save_for_backward(*kept, theta, alpha)
            ctx.params = (inputs[3], inputs[4])
            ctx.x_dtype = X.dtype
            ctx.kept = True
            _remember_scalars(ctx, theta, alpha)
        ctx.mark_non_differentiable(*outputs[1:])
        return tuple(outputs)

    @staticmethod
    def backward(ctx, gS, gV, gR):
        if not ctx.kept:
            return _psu_backward(ctx, gS, gV, gR)
        *kept, theta, alpha = ctx.saved_tensors
        need = ctx.needs_input_grad[1] or ctx.needs_input_grad[2]
        gS = torch.zeros_like(kept[0]) if gS is None else gS
        dX, d_theta, d_alpha = _psu_backward_kept(gS, kept, theta.detach(), alpha.detach(), *ctx.params, need)
        d_theta, d_alpha = _scalar_grads(ctx, d_theta, d_alpha, 1) if need else (None, None)
        return dX.to(ctx.x_dtype), d_theta, d_alpha, None, None, None, None, None, None, None, None


def psu(*args):
    """:func:`psu_forward` with autograd (the custom op under tracing, its eager twin otherwise)."""
    return psu_forward(*args) if torch.compiler.is_compiling() else _PSU.apply(*args)


# --------------------------------------------------------------------------------------------- IPSU
@_no_autocast
def _ipsu_forward_impl(
    X: Tensor,
    W: Tensor,
    b: Tensor,
    theta: Tensor,
    alpha: Tensor,
    tau: float,
    reset_scale: float | None,
    want_v: bool,
) -> tuple[Tensor, Tensor]:
    """IPSU forward: ``V = ((W ⊙ M) - gamma B) X + b`` (one GEMM); ``(S, V or empty)``."""
    p = _params("ipsu", X, theta, alpha, tau, reset_scale)
    cd = compute_dtype(X.dtype)
    S, V = _learned.ipsu_forward(X.to(cd), W.to(cd), b.to(cd), p, want_v)
    return S.to(X.dtype), _out(V, X)


ipsu_forward = torch.library.custom_op("psu_torch::ipsu_forward", mutates_args=())(_ipsu_forward_impl)


@ipsu_forward.register_fake
def _(X, W, b, theta, alpha, tau, reset_scale, want_v):
    return torch.empty_like(X), (torch.empty_like(X) if want_v else X.new_empty(_EMPTY))


@_no_autocast
def _ipsu_backward_impl(
    X: Tensor,
    G: Tensor,
    W: Tensor,
    b: Tensor,
    theta: Tensor,
    alpha: Tensor,
    tau: float,
    reset_scale: float | None,
    need_scalars: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """IPSU backward: ``(dL/dX, dL/dW, dL/db, dL/dtheta, dL/dalpha)``."""
    p = _params("ipsu", X, theta, alpha, tau, reset_scale)
    cd = compute_dtype(X.dtype)
    dX, dW, db, d_theta, d_alpha = _learned.ipsu_backward(
        X.to(cd), G.to(cd).contiguous(), W.to(cd), b.to(cd), p, need_scalars
    )
    return dX.to(X.dtype), dW.to(W.dtype), db.to(b.dtype), _scalar(d_theta, X), _scalar(d_alpha, X)


ipsu_backward = torch.library.custom_op("psu_torch::ipsu_backward", mutates_args=())(_ipsu_backward_impl)


@ipsu_backward.register_fake
def _(X, G, W, b, theta, alpha, tau, reset_scale, need_scalars):
    return torch.empty_like(X), torch.empty_like(W), torch.empty_like(b), _fake_scalar(X), _fake_scalar(X)


def _ipsu_setup(ctx, inputs, output) -> None:
    X, W, b, theta, alpha, tau, reset_scale, _want_v = inputs
    ctx.save_for_backward(X, W, b, theta, alpha)
    ctx.params = (tau, reset_scale)
    _remember_scalars(ctx, theta, alpha)


def _ipsu_backward(ctx, gS, _gV):
    X, W, b, theta, alpha = ctx.saved_tensors
    need = ctx.needs_input_grad[3] or ctx.needs_input_grad[4]
    gS = torch.zeros_like(X) if gS is None else gS
    dX, dW, db, d_theta, d_alpha = _op(ipsu_backward, _ipsu_backward_impl)(
        X, gS, W, b, theta.detach(), alpha.detach(), *ctx.params, need
    )
    return dX, dW, db, *_scalar_grads(ctx, d_theta, d_alpha, 3), None, None, None


torch.library.register_autograd("psu_torch::ipsu_forward", _ipsu_backward, setup_context=_ipsu_setup)
_IPSU = _eager("_IPSU", _ipsu_forward_impl, _ipsu_setup, _ipsu_backward, 2)


def ipsu(*args):
    """:func:`ipsu_forward` with autograd (the custom op under tracing, its eager twin otherwise)."""
    return ipsu_forward(*args) if torch.compiler.is_compiling() else _IPSU.apply(*args)


# --------------------------------------------------------------------------------------------- RPSU
@_no_autocast
def _rpsu_forward_impl(
    X: Tensor,
    W: Tensor,
    b: Tensor,
    theta: Tensor,
    alpha: Tensor,
    tau: float,
    reset_scale: float | None,
    sampled: bool,
    seed_lo: int,
    seed_hi: int,
    neuron_offset: int,
    want_v: bool,
) -> tuple[Tensor, Tensor, Tensor]:
    """RPSU forward: ``P = sigma((W ⊙ M) X + b)``, ``V = A X - gamma B Q``; ``(S, V, R)``."""
    p = _params("rpsu", X, theta, alpha, tau, reset_scale, sampled, seed_lo, seed_hi)
    cd = compute_dtype(X.dtype)
    S, V, R = _learned.rpsu_forward(X.to(cd), W.to(cd), b.to(cd), p, want_v, neuron_offset)
    return S.to(X.dtype), _out(V, X), _out(R, X, torch.bool)


rpsu_forward = torch.library.custom_op("psu_torch::rpsu_forward", mutates_args=())(_rpsu_forward_impl)


@rpsu_forward.register_fake
def _(X, W, b, theta, alpha, tau, reset_scale, sampled, seed_lo, seed_hi, neuron_offset, want_v):
    V = torch.empty_like(X) if want_v else X.new_empty(_EMPTY)
    R = X.new_empty(X.shape if sampled else _EMPTY, dtype=torch.bool)
    return torch.empty_like(X), V, R


@_no_autocast
def _rpsu_backward_impl(
    X: Tensor,
    G: Tensor,
    R: Tensor,
    W: Tensor,
    b: Tensor,
    theta: Tensor,
    alpha: Tensor,
    tau: float,
    reset_scale: float | None,
    sampled: bool,
    need_scalars: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """RPSU backward: ``(dL/dX, dL/dW, dL/db, dL/dtheta, dL/dalpha)``."""
    p = _params("rpsu", X, theta, alpha, tau, reset_scale)
    cd = compute_dtype(X.dtype)
    dX, dW, db, d_theta, d_alpha = _learned.rpsu_backward(
        X.to(cd), G.to(cd).contiguous(), R if sampled else None, W.to(cd), b.to(cd), p, need_scalars
    )
    return dX.to(X.dtype), dW.to(W.dtype), db.to(b.dtype), _scalar(d_theta, X), _scalar(d_alpha, X)


rpsu_backward = torch.library.custom_op("psu_torch::rpsu_backward", mutates_args=())(_rpsu_backward_impl)


@rpsu_backward.register_fake
def _(X, G, R, W, b, theta, alpha, tau, reset_scale, sampled, need_scalars):
    return torch.empty_like(X), torch.empty_like(W), torch.empty_like(b), _fake_scalar(X), _fake_scalar(X)


def _rpsu_setup(ctx, inputs, output) -> None:
    X, W, b, theta, alpha, tau, reset_scale, sampled, _lo, _hi, _offset, _want_v = inputs
    ctx.save_for_backward(X, W, b, output[2], theta, alpha)
    ctx.params = (tau, reset_scale, sampled)
    _remember_scalars(ctx, theta, alpha)


def _rpsu_backward(ctx, gS, _gV, _gR):
    X, W, b, R, theta, alpha = ctx.saved_tensors
    need = ctx.needs_input_grad[3] or ctx.needs_input_grad[4]
    gS = torch.zeros_like(X) if gS is None else gS
    dX, dW, db, d_theta, d_alpha = _op(rpsu_backward, _rpsu_backward_impl)(
        X, gS, R, W, b, theta.detach(), alpha.detach(), *ctx.params, need
    )
    return dX, dW, db, *_scalar_grads(ctx, d_theta, d_alpha, 3), None, None, None, None, None, None, None


torch.library.register_autograd("psu_torch::rpsu_forward", _rpsu_backward, setup_context=_rpsu_setup)
_RPSU = _eager("_RPSU", _rpsu_forward_impl, _rpsu_setup, _rpsu_backward, 3)


def rpsu(*args):
    """:func:`rpsu_forward` with autograd (the custom op under tracing, its eager twin otherwise)."""
    return rpsu_forward(*args) if torch.compiler.is_compiling() else _RPSU.apply(*args)
