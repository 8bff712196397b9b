"""Forward and vector-Jacobian product of PSU, IPSU and RPSU on CUDA device arrays (Numba CUDA).

The same API and equations as :mod:`psu_numba.cpu.functional`; arrays are CUDA device arrays
(anything with ``__cuda_array_interface__``: Numba, CuPy, PyTorch, JAX), read without a copy,
float32 or float64, C-contiguous; results are Numba device arrays (zero-copy into PyTorch with
``torch.as_tensor(out, device="cuda")``, into CuPy with ``cupy.asarray(out)``). Kernels run on the
device that holds ``x``; the caller's current device is restored. Host NumPy arrays are refused
(no hidden transfers).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import cuda

from psu_numba import common
from psu_numba.common import ForwardResult, Gradients
from psu_numba.numba_cuda import arrays, kernels

__all__ = ["forward", "vjp", "psu", "ipsu", "rpsu", "empty_like"]


def empty_like(x: Any) -> Any:
    """A new device array with the shape and dtype of ``x`` (for ``out=``)."""
    return cuda.device_array(tuple(x.shape), np.dtype(x.dtype))


def _prepare(variant, x, weight, bias, *, tau, threshold, reset_scale, surrogate_alpha, reset, seed,
             validate):
    arrays.require()
    x_obj = x
    x = arrays.as_device("x", x)
    weight = arrays.as_device("weight", weight)
    bias = arrays.as_device("bias", bias)
    params = common.check_call(
        variant, x, weight, bias, tau=tau, threshold=threshold, reset_scale=reset_scale,
        surrogate_alpha=surrogate_alpha, reset=reset, seed=seed,
    )
    n = common.neuron_count(tuple(x.shape))
    common.check_neurons_for_sampling(params, n)
    dt = arrays.check_kernel_dtype("x", x)
    arrays.contiguous("x", x)
    if params.code == common.PSU:
        w = cuda.to_device(np.zeros((1, 1), dt))
        b = cuda.to_device(np.zeros(1, dt))
    else:
        w = arrays.contiguous("weight", weight)
        b = arrays.contiguous("bias", bias)
        arrays.check_kernel_dtype("weight", w, dt)
        arrays.check_kernel_dtype("bias", b, dt)
    x2 = x.reshape(params.T, n)
    if validate:
        from psu_core import checks

        checks.check_finite(bool(np.isfinite(x2.copy_to_host()).all()))
    return params, x_obj, x, x2, w, b, dt


def _out(name: str, out: Any, shape: tuple[int, ...], dt: np.dtype, rows: int, n: int) -> Any:
    if out is None:
        return cuda.device_array((rows, n), dt)
    o = arrays.as_device(name, out)
    if tuple(o.shape) != tuple(shape) or np.dtype(o.dtype) != dt or not o.is_c_contiguous():
        raise ValueError(f"{name} must be a C-contiguous {dt} device array of shape {list(shape)}, "
                         f"got {o.dtype} {list(o.shape)}")
    return o.reshape(rows, n)


def _scalars(params: common.Params, dt: np.dtype):
    c = dt.type
    k0, k1 = params.key
    return (c(params.decay), c(params.gamma), c(params.threshold), c(params.surrogate_alpha),
            np.uint64(k0), np.uint64(k1))


def forward(
    variant: str,
    x: Any,
    weight: Any = None,
    bias: Any = None,
    *,
    tau: float = 2.0,
    threshold: float = 1.0,
    reset_scale: float | None = None,
    surrogate_alpha: float = 2.0,
    reset: str = "expected",
    seed: int | None = None,
    return_membrane: bool = False,
    return_reset: bool = False,
    validate: bool = False,
    out: Any = None,
    membrane_out: Any = None,
) -> ForwardResult:
    """Spikes (membrane, resets on request) on the GPU; see :func:`psu_numba.cpu.forward`.

    One thread per neuron loops over ``T``: ``h_t = a (h_{t-1} + x_t)``,
    ``r_t = a (r_{t-1} + q_{t-1})``, ``v_t = h_t - gamma r_t``, ``s_t = [v_t > theta]``.
    Returns Numba device arrays ``[T, *neuron_shape]`` in the dtype of ``x``.
    """
    params, _, xd, x2, w, b, dt = _prepare(
        variant, x, weight, bias, tau=tau, threshold=threshold, reset_scale=reset_scale,
        surrogate_alpha=surrogate_alpha, reset=reset, seed=seed, validate=validate,
    )
    T, n = x2.shape
    shape = tuple(xd.shape)
    with arrays.device_of(x):
        spikes = _out("out", out, shape, dt, T, n)
        want_r = bool(return_reset and params.sampled)
        membrane = (_out("membrane_out", membrane_out, shape, dt, T, n) if return_membrane
                    else cuda.device_array((1, 1), dt))
        resets = cuda.device_array((T, n), dt) if want_r else cuda.device_array((1, 1), dt)
        a, gamma, theta, _, k0, k1 = _scalars(params, dt)
        arrays.launch(kernels.forward_kernel, n, kernels.THREADS, params.code, x2, w, b, a, gamma, theta,
                      params.sampled, k0, k1, spikes, membrane, resets, bool(return_membrane), want_r)
    return ForwardResult(
        spikes=spikes.reshape(*shape),
        membrane=membrane.reshape(*shape) if return_membrane else None,
        reset=resets.reshape(*shape) if want_r else None,
    )


def vjp(
    variant: str,
    x: Any,
    grad_spikes: Any,
    weight: Any = None,
    bias: Any = None,
    *,
    tau: float = 2.0,
    threshold: float = 1.0,
    reset_scale: float | None = None,
    surrogate_alpha: float = 2.0,
    reset: str = "expected",
    seed: int | None = None,
    validate: bool = False,
    out: Any = None,
) -> Gradients:
    """Vector-Jacobian product on the GPU; see :func:`psu_numba.cpu.vjp` for the equations.

    ``x`` (dL/dX), ``weight`` ``[T, T]`` and ``bias`` ``[T]`` come back as device arrays in the
    dtype of ``x``; ``threshold`` and ``surrogate_alpha`` as Python floats (a device sync).
    Reductions over neurons are fixed-order trees in float64 (no atomics): same bits every call.
    """
    params, _, xd, x2, w, b, dt = _prepare(
        variant, x, weight, bias, tau=tau, threshold=threshold, reset_scale=reset_scale,
        surrogate_alpha=surrogate_alpha, reset=reset, seed=seed, validate=validate,
    )
    g = arrays.as_device("grad_spikes", grad_spikes)
    common.check_grad_shape(tuple(g.shape), tuple(xd.shape))
    arrays.check_kernel_dtype("grad_spikes", g, dt)
    arrays.contiguous("grad_spikes", g)
    T, n = x2.shape
    learned = params.code != common.PSU
    with arrays.device_of(x):
        g2 = g.reshape(T, n)
        dx = _out("out", out, tuple(xd.shape), dt, T, n)
        gv = cuda.device_array((T, n), dt)
        pp = cuda.device_array((T, n) if params.code != common.IPSU else (1, 1), dt)
        partial = cuda.device_array((2, n), np.float64)
        a, gamma, theta, alpha, k0, k1 = _scalars(params, dt)
        arrays.launch(kernels.vjp_kernel, n, kernels.THREADS, params.code, x2, g2, w, b, a, gamma, theta,
                      alpha, params.tied, params.sampled, k0, k1, dx, gv, pp, partial)
        sums = cuda.to_device(np.zeros(2, np.float64))
        if n > 0:
            arrays.launch_grid(kernels.rowsum_kernel, (2,), kernels.RED_THREADS, partial, sums)
        dW = db = None
        if learned:
            src = gv if params.code == common.IPSU else pp
            dW = cuda.to_device(np.zeros((T, T), dt))
            db = cuda.to_device(np.zeros(T, dt))
            if n > 0:
                grid = (T, 1) if kernels.SIMULATED else (T, T)
                arrays.launch_grid(kernels.rowdot_kernel, grid, kernels.RED_THREADS, src, x2, dW, True)
                arrays.launch_grid(kernels.rowsum_kernel, (T,), kernels.RED_THREADS, src, db)
        host = sums.copy_to_host()
    return Gradients(
        x=dx.reshape(*xd.shape),
        weight=dW,
        bias=db,
        threshold=float(-host[0]),
        surrogate_alpha=float(host[1]),
    )


def psu(x: Any, **kwargs: Any) -> ForwardResult:
    """``forward("psu", x, **kwargs)``."""
    return forward("psu", x, **kwargs)


def ipsu(x: Any, weight: Any, bias: Any, **kwargs: Any) -> ForwardResult:
    """``forward("ipsu", x, weight, bias, **kwargs)``."""
    return forward("ipsu", x, weight, bias, **kwargs)


def rpsu(x: Any, weight: Any, bias: Any, **kwargs: Any) -> ForwardResult:
    """``forward("rpsu", x, weight, bias, **kwargs)``."""
    return forward("rpsu", x, weight, bias, **kwargs)
