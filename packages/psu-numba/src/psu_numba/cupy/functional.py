"""Forward and vector-Jacobian product of PSU, IPSU and RPSU on CUDA arrays (CuPy RawModule).

The same API and equations as :mod:`psu_numba.cpu.functional`. Inputs are CUDA arrays
(CuPy, or anything with ``__cuda_array_interface__`` or DLPack: PyTorch, JAX, Numba), read
without a copy, float32 or float64, C-contiguous; results are CuPy arrays. Kernels run on the
device holding ``x`` and the caller's current device is restored. Host arrays are refused.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from psu_numba import common
from psu_numba.common import ForwardResult, Gradients
from psu_numba.cupy import arrays, kernels

__all__ = ["forward", "vjp", "psu", "ipsu", "rpsu", "empty_like"]

_I32, _I64, _U32 = np.int32, np.int64, np.uint32


def empty_like(x: Any) -> Any:
    """A new CuPy array with the shape and dtype of ``x`` (for ``out=``)."""
    cupy = kernels.import_cupy()
    return cupy.empty(tuple(x.shape), np.dtype(x.dtype))


def _prepare(variant, x, weight, bias, *, tau, threshold, reset_scale, surrogate_alpha, reset, seed,
             validate):
    cupy = kernels.require()
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
    with arrays.device_of(x):
        if params.code == common.PSU:
            w = cupy.zeros((1, 1), dt)
            b = cupy.zeros(1, dt)
        else:
            w = arrays.contiguous("weight", weight)
            b = arrays.contiguous("bias", bias)
            arrays.check_kernel_dtype("weight", w, dt)
            arrays.check_kernel_dtype("bias", b, dt)
        if validate:
            from psu_core import checks

            checks.check_finite(bool(cupy.isfinite(x).all()))
    return cupy, params, x, w, b, dt, n


def _out(cupy: Any, name: str, out: Any, shape: tuple[int, ...], dt: np.dtype) -> Any:
    if out is None:
        return cupy.empty(shape, dt)
    o = arrays.as_device(name, out)
    if tuple(o.shape) != tuple(shape) or np.dtype(o.dtype) != dt or not o.flags.c_contiguous:
        raise ValueError(f"{name} must be a C-contiguous {dt} device array of shape {list(shape)}, "
                         f"got {o.dtype} {list(o.shape)}")
    return o


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
    Returns CuPy arrays ``[T, *neuron_shape]`` in the dtype of ``x``."""
    cupy, params, x, w, b, dt, n = _prepare(
        variant, x, weight, bias, tau=tau, threshold=threshold, reset_scale=reset_scale,
        surrogate_alpha=surrogate_alpha, reset=reset, seed=seed, validate=validate,
    )
    shape = tuple(x.shape)
    c = dt.type
    k0, k1 = params.key
    want_r = bool(return_reset and params.sampled)
    with arrays.device_of(x):
        spikes = _out(cupy, "out", out, shape, dt)
        membrane = _out(cupy, "membrane_out", membrane_out, shape, dt) if return_membrane else cupy.empty(1, dt)
        resets = cupy.empty(shape, dt) if want_r else cupy.empty(1, dt)
        kernels.launch(f"psu_forward_{_suffix(dt)}", n, (
            _I32(params.code), x, w, b, _I32(params.T), _I64(n), c(params.decay), c(params.gamma),
            c(params.threshold), _I32(params.sampled), _U32(k0), _U32(k1), spikes, membrane, resets,
            _I32(bool(return_membrane)), _I32(want_r),
        ))
    return ForwardResult(spikes=spikes, membrane=membrane if return_membrane else None,
                         reset=resets if want_r else None)


def _suffix(dt: np.dtype) -> str:
    return "f32" if dt == np.float32 else "f64"


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
    ``x``, ``weight``, ``bias`` come back as CuPy arrays; ``threshold`` and ``surrogate_alpha`` as
    Python floats. Fixed-order float64 reductions, no atomics: same bits every call."""
    cupy, params, x, w, b, dt, n = _prepare(
        variant, x, weight, bias, tau=tau, threshold=threshold, reset_scale=reset_scale,
        surrogate_alpha=surrogate_alpha, reset=reset, seed=seed, validate=validate,
    )
    g = arrays.as_device("grad_spikes", grad_spikes)
    common.check_grad_shape(tuple(g.shape), tuple(x.shape))
    arrays.check_kernel_dtype("grad_spikes", g, dt)
    arrays.contiguous("grad_spikes", g)
    T = params.T
    c = dt.type
    k0, k1 = params.key
    sfx = _suffix(dt)
    learned = params.code != common.PSU
    with arrays.device_of(x):
        dx = _out(cupy, "out", out, tuple(x.shape), dt)
        gv = cupy.empty((T, n), dt)
        pp = cupy.empty((T, n) if params.code != common.IPSU else (1,), dt)
        partial = cupy.empty((2, n), np.float64)
        kernels.launch(f"psu_vjp_{sfx}", n, (
            _I32(params.code), x, g, w, b, _I32(T), _I64(n), c(params.decay), c(params.gamma),
            c(params.threshold), c(params.surrogate_alpha), _I32(params.tied), _I32(params.sampled),
            _U32(k0), _U32(k1), dx, gv, pp, partial,
        ))
        sums = cupy.zeros(2, np.float64)
        kernels.launch_grid("psu_rowsum_partial", (2,) if n > 0 else (0,), (partial, _I64(n), sums))
        dW = db = None
        if learned:
            src = gv if params.code == common.IPSU else pp
            dW = cupy.zeros((T, T), dt)
            db = cupy.zeros(T, dt)
            if n > 0:
                kernels.launch_grid(f"psu_rowdot_{sfx}", (T, T), (src, x, _I32(T), _I64(n), dW, _I32(1)))
                kernels.launch_grid(f"psu_rowsum_{sfx}", (T,), (src, _I64(n), db))
        host = cupy.asnumpy(sums)
    return Gradients(x=dx, weight=dW, bias=db, threshold=float(-host[0]), surrogate_alpha=float(host[1]))


def psu(x: Any, **kwargs: Any) -> ForwardResult:
    """``forward("psu", x, **kwargs)``."""
    return forward("psu", x, **kwargs)


def ipsu(x: Any, weight: Any, bias: Any, **kwargs: Any) -> ForwardResult:
    """``forward("ipsu", x, weight, bias, **kwargs)``."""
    return forward("ipsu", x, weight, bias, **kwargs)


def rpsu(x: Any, weight: Any, bias: Any, **kwargs: Any) -> ForwardResult:
    """``forward("rpsu", x, weight, bias, **kwargs)``."""
    return forward("rpsu", x, weight, bias, **kwargs)
