"""Forward and vector-Jacobian product of PSU, IPSU and RPSU on NumPy arrays (Numba CPU kernels).

Shapes: ``x`` is ``[T, *neuron_shape]`` (time first), viewed as ``[T, N]`` in C order;
``weight`` ``[T, T]`` and ``bias`` ``[T]`` for IPSU/RPSU. float32 and float64 run natively;
float16 runs in float32 and its results are cast back. Kernels are compiled on first use per
dtype and cached on disk (``cache=True``).

Parallelism: ``numba.set_num_threads`` (or ``NUMBA_NUM_THREADS``) sets the thread count. The
split of the work into chunks depends only on the problem size, so results have the same bits
for any number of threads.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from psu_numba import common
from psu_numba.common import ForwardResult, Gradients, Params
from psu_numba.cpu import kernels

__all__ = ["forward", "vjp", "psu", "ipsu", "rpsu"]

_NO_SEED = np.uint64(0)


def _as_array(name: str, a: Any) -> np.ndarray:
    if a is None:
        return None  # type: ignore[return-value]
    if not isinstance(a, np.ndarray):
        if hasattr(a, "__cuda_array_interface__"):
            raise TypeError(
                f"{name} is a CUDA device array; psu_numba.cpu takes NumPy arrays "
                "(use psu_numba.numba_cuda or psu_numba.cupy for device arrays)"
            )
        a = np.asarray(a)
    return a


def _prepare(variant, x, weight, bias, *, tau, threshold, reset_scale, surrogate_alpha, reset, seed,
             validate):
    x = _as_array("x", x)
    weight = _as_array("weight", weight)
    bias = _as_array("bias", bias)
    params = common.check_call(
        variant, x, weight, bias, tau=tau, threshold=threshold, reset_scale=reset_scale,
        surrogate_alpha=surrogate_alpha, reset=reset, seed=seed,
    )
    n = common.neuron_count(x.shape)
    common.check_neurons_for_sampling(params, n)
    if validate:
        from psu_core import checks

        checks.check_finite(bool(np.isfinite(x).all()))
    dt = common.compute_dtype(x.dtype)
    x2 = np.ascontiguousarray(x.reshape(params.T, n), dtype=dt)
    if params.code == common.PSU:
        w = np.zeros((1, 1), dt)
        b = np.zeros(1, dt)
    else:
        w = np.ascontiguousarray(weight, dtype=dt)
        b = np.ascontiguousarray(bias, dtype=dt)
    return params, x, x2, w, b, dt


def _scalars(params: Params, dt: np.dtype):
    cast = dt.type
    k0, k1 = params.key
    return (cast(params.decay), cast(params.gamma), cast(params.threshold), cast(params.surrogate_alpha),
            np.uint64(k0), np.uint64(k1))


def _out_buffer(name: str, out: Any, shape: tuple[int, ...], dtype: np.dtype, rows: int, n: int) -> np.ndarray:
    """A caller's output array, checked and viewed as ``[T, N]``, or a new one."""
    if out is None:
        return np.empty((rows, n), dtype)
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array, got {type(out).__name__}")
    if tuple(out.shape) != tuple(shape) or out.dtype != dtype or not out.flags.c_contiguous:
        raise ValueError(
            f"{name} must be a C-contiguous {dtype} array of shape {list(shape)}, "
            f"got {out.dtype} {list(out.shape)}{'' if out.flags.c_contiguous else ' (not contiguous)'}"
        )
    if not out.flags.writeable:
        raise ValueError(f"{name} must be writeable")
    return out.reshape(rows, n)


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
    out: np.ndarray | None = None,
    membrane_out: np.ndarray | None = None,
) -> ForwardResult:
    """Spikes (and on request the membrane and the drawn resets) of one PSU-family layer.

    ``x [T, *neuron_shape]`` -> ``S = [V > threshold]`` with (SPEC §2)

    * PSU:  ``H = A X``, ``P = sigmoid(H)``, ``V = H - gamma B Q``;
    * IPSU: ``H = (W ⊙ M) X + b``, ``V = H - gamma B X``;
    * RPSU: ``H = A X``, ``P = sigmoid((W ⊙ M) X + b)``, ``V = H - gamma B Q``;

    computed as one pass over time (SPEC §3). ``Q = P`` for ``reset="expected"``, or the draws
    ``R = [u < P]`` of the SPEC §6 Threefry stream for ``reset="sampled"`` (PSU/RPSU, ``seed``
    required). ``gamma = threshold`` when ``reset_scale is None``. ``surrogate_alpha`` only
    matters for :func:`vjp`; it is checked here so both calls accept the same arguments.

    Args:
        variant: ``"psu"``, ``"ipsu"`` or ``"rpsu"``.
        x: input current, floating NumPy array ``[T, ...]``.
        weight, bias: ``[T, T]`` and ``[T]`` for IPSU/RPSU (only the lower triangle of
            ``weight`` is used), ``None`` for PSU.
        return_membrane: also return ``V``.
        return_reset: in sampled mode also return ``R``.
        validate: scan ``x`` for NaN/inf first (a pass over the data).
        out, membrane_out: optional preallocated C-contiguous outputs (shape and dtype of
            ``x``; float32/float64 only).

    Returns:
        :class:`~psu_numba.common.ForwardResult` ``(spikes, membrane, reset)``; arrays
        ``[T, *neuron_shape]`` in the dtype of ``x``, ``None`` where not requested.

    Raises:
        TypeError: ``x`` is not floating. ValueError: any other bad argument (SPEC §8).
    """
    params, x, x2, w, b, dt = _prepare(
        variant, x, weight, bias, tau=tau, threshold=threshold, reset_scale=reset_scale,
        surrogate_alpha=surrogate_alpha, reset=reset, seed=seed, validate=validate,
    )
    T, n = x2.shape
    shape = tuple(x.shape)
    spikes = _out_buffer("out", out, shape, dt, T, n)
    want_r = bool(return_reset and params.sampled)
    membrane = _out_buffer("membrane_out", membrane_out, shape, dt, T, n) if return_membrane else np.empty((1, 1), dt)
    resets = np.empty((T, n), dt) if want_r else np.empty((1, 1), dt)
    a, gamma, theta, _, k0, k1 = _scalars(params, dt)
    kernels.forward_kernel(
        params.code, x2, w, b, a, gamma, theta, params.sampled, k0, k1, common.FORWARD_BLOCK,
        spikes, membrane, resets, bool(return_membrane), want_r,
    )
    out_dtype = x.dtype

    def back(arr: np.ndarray) -> np.ndarray:
        return arr.reshape(shape).astype(out_dtype, copy=False)

    return ForwardResult(
        spikes=back(spikes),
        membrane=back(membrane) if return_membrane else None,
        reset=back(resets) if want_r else None,
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
    out: np.ndarray | None = None,
) -> Gradients:
    """Vector-Jacobian product of :func:`forward` with ``G = grad_spikes`` (SPEC §4, §5).

    The forward pass is recomputed inside the same kernel (nothing is saved between calls).
    With ``gV = G ⊙ dS/dV``, ``dS/dV = alpha / (2 (1 + (pi/2 alpha (V - theta))^2))``:

    * PSU:  dL/dX = ``Aᵀ (gV - gamma (Bᵀ gV) ⊙ P ⊙ (1 - P))``
    * IPSU: dL/dX = ``(W ⊙ M)ᵀ gV - gamma Bᵀ gV``; dL/dW = ``(gV Xᵀ) ⊙ M``; dL/db = ``sum_n gV``
    * RPSU: ``gZ = -gamma (Bᵀ gV) ⊙ P ⊙ (1 - P)``; dL/dX = ``Aᵀ gV + (W ⊙ M)ᵀ gZ``;
      dL/dW = ``(gZ Xᵀ) ⊙ M``; dL/db = ``sum_n gZ``
    * dL/dalpha = ``sum G ⊙ dS/dalpha``; dL/dtheta = ``-sum gV`` minus ``sum gV ⊙ (B Q)``
      when ``gamma`` is tied to the threshold. Sampled mode is straight-through (``dR/dP = 1``).

    ``grad_spikes`` has the shape of ``x``. Scalar and ``[T, T]``/``[T]`` gradients are summed in
    float64 in a fixed order. ``out`` is an optional preallocated dL/dX buffer.

    Returns:
        :class:`~psu_numba.common.Gradients` ``(x, weight, bias, threshold, surrogate_alpha)``;
        ``weight``/``bias`` (summed in float64, returned in the dtype of ``x``) are ``None``
        for PSU.
    """
    params, x, x2, w, b, dt = _prepare(
        variant, x, weight, bias, tau=tau, threshold=threshold, reset_scale=reset_scale,
        surrogate_alpha=surrogate_alpha, reset=reset, seed=seed, validate=validate,
    )
    g = _as_array("grad_spikes", grad_spikes)
    common.check_grad_shape(tuple(g.shape), tuple(x.shape))
    if not common.is_floating(g.dtype):
        raise TypeError(f"grad_spikes must have a floating dtype, got {g.dtype}")
    T, n = x2.shape
    g2 = np.ascontiguousarray(g.reshape(T, n), dtype=dt)
    dx = _out_buffer("out", out, tuple(x.shape), dt, T, n)
    block = common.block_size(T)
    learned = params.code != common.PSU
    n_chunks = common.chunk_count((n + block - 1) // block, T, learned)
    dw_part = np.zeros((n_chunks, T, T) if learned else (1, 1, 1), np.float64)
    db_part = np.zeros((n_chunks, T) if learned else (1, 1), np.float64)
    scalar_part = np.zeros((n_chunks, 2), np.float64)
    a, gamma, theta, alpha, k0, k1 = _scalars(params, dt)
    kernels.vjp_kernel(
        params.code, x2, g2, w, b, a, gamma, theta, alpha, params.tied, params.sampled, k0, k1,
        block, n_chunks, dx, dw_part, db_part, scalar_part,
    )
    sums = scalar_part.sum(axis=0)  # chunk order is fixed: same bits on every run
    out_dtype = x.dtype
    dW = db = None
    if learned:
        dW = dw_part.sum(axis=0).astype(out_dtype)
        db = db_part.sum(axis=0).astype(out_dtype)
    return Gradients(
        x=dx.reshape(x.shape).astype(out_dtype, copy=False),
        weight=dW,
        bias=db,
        threshold=float(-sums[0]),
        surrogate_alpha=float(sums[1]),
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
