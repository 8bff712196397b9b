"""Online (step-by-step) PSU-family layers on CUDA device arrays: one kernel launch per step.

Same API as :mod:`psu_numba.cpu.online`; the state's arrays are Numba device arrays and ``x_t``
is any CUDA array of shape ``neuron_shape``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import cuda

from psu_numba import common
from psu_numba.common import Step
from psu_numba.numba_cuda import arrays, kernels
from psu_numba.online_state import OnlineState, check_init, check_step_call

__all__ = ["OnlineState", "OnlineStepper", "init_state", "step"]


def init_state(variant: str, neuron_shape: tuple[int, ...], *, steps: int | None = None,
               dtype: Any = np.float32) -> OnlineState:
    """A zero state on the current device; ``steps = T`` is required for IPSU/RPSU."""
    arrays.require()
    variant, neuron_shape, steps = check_init(variant, neuron_shape, steps)
    dt = np.dtype(dtype)
    if dt not in arrays.SUPPORTED:
        raise TypeError(f"dtype must be float32 or float64 for the CUDA kernels, got {dt}")
    n = common.neuron_count((1, *neuron_shape))

    def zeros(shape: tuple[int, ...]) -> Any:
        return cuda.to_device(np.zeros(shape, dt))

    history = zeros((steps, n)) if steps is not None else None
    return OnlineState(variant, neuron_shape, steps, 0, zeros((n,)), zeros((n,)), zeros((n,)), history)


def step(
    variant: str,
    state: OnlineState,
    x_t: Any,
    weight: Any = None,
    bias: Any = None,
    *,
    tau: float = 2.0,
    threshold: float = 1.0,
    reset_scale: float | None = None,
    surrogate_alpha: float = 2.0,
    reset: str = "expected",
    seed: int | None = None,
) -> Step:
    """Advance ``state`` by one step with ``x_t [*neuron_shape]``; see :func:`psu_numba.cpu.step`.
    Returns device arrays."""
    arrays.require()
    xd = arrays.as_device("x_t", x_t)
    params = check_step_call(
        variant, state, xd, weight, bias, tau=tau, threshold=threshold, reset_scale=reset_scale,
        surrogate_alpha=surrogate_alpha, reset=reset, seed=seed,
    )
    dt = np.dtype(state.h.dtype)
    arrays.check_kernel_dtype("x_t", xd, dt)
    arrays.contiguous("x_t", xd)
    n = state.n
    with arrays.device_of(x_t):
        x1 = xd.reshape(n)
        if params.code == common.PSU:
            w = cuda.to_device(np.zeros((1, 1), dt))
            b = cuda.to_device(np.zeros(1, dt))
            history = cuda.to_device(np.zeros((1, 1), dt))
        else:
            w = arrays.contiguous("weight", arrays.as_device("weight", weight))
            b = arrays.contiguous("bias", arrays.as_device("bias", bias))
            arrays.check_kernel_dtype("weight", w, dt)
            arrays.check_kernel_dtype("bias", b, dt)
            history = state.history
        spikes = cuda.device_array(n, dt)
        membrane = cuda.device_array(n, dt)
        resets = cuda.device_array(n if params.sampled else 1, dt)
        k0, k1 = params.key
        c = dt.type
        arrays.launch(kernels.step_kernel, n, kernels.THREADS, params.code, state.t, x1, history, w, b,
                      c(params.decay), c(params.gamma), c(params.threshold), params.sampled,
                      np.uint64(k0), np.uint64(k1), state.h, state.r, state.q, spikes, membrane, resets)
    state.t += 1
    shape = state.neuron_shape
    return Step(spikes=spikes.reshape(*shape), membrane=membrane.reshape(*shape),
                reset=resets.reshape(*shape) if params.sampled else None)


class OnlineStepper:
    """A stateful online layer on the GPU: fixed parameters plus an :class:`OnlineState`.
    See :class:`psu_numba.cpu.OnlineStepper`."""

    def __init__(
        self,
        variant: str,
        neuron_shape: tuple[int, ...],
        weight: Any = None,
        bias: Any = None,
        *,
        dtype: Any = np.float32,
        tau: float = 2.0,
        threshold: float = 1.0,
        reset_scale: float | None = None,
        surrogate_alpha: float = 2.0,
        reset: str = "expected",
        seed: int | None = None,
    ) -> None:
        steps = None if variant == "psu" else (1 if weight is None else int(weight.shape[0]))
        self.variant = variant
        self.weight = weight
        self.bias = bias
        self.params = dict(tau=tau, threshold=threshold, reset_scale=reset_scale,
                           surrogate_alpha=surrogate_alpha, reset=reset, seed=seed)
        self.state = init_state(variant, neuron_shape, steps=steps, dtype=dtype)
        fake = np.zeros(self.state.neuron_shape, dtype=dtype)
        check_step_call(variant, self.state, fake,
                        None if weight is None else arrays.as_device("weight", weight),
                        None if bias is None else arrays.as_device("bias", bias), **self.params)

    def step(self, x_t: Any) -> Step:
        """One step; see :func:`step`."""
        return step(self.variant, self.state, x_t, self.weight, self.bias, **self.params)

    def reset_state(self) -> None:
        s = self.state
        self.state = init_state(s.variant, s.neuron_shape, steps=s.steps, dtype=s.h.dtype)
