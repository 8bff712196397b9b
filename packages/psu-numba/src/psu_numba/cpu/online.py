"""Online (step-by-step) PSU-family layers on NumPy arrays: one Numba kernel per time step.

``state = init_state(variant, neuron_shape, steps=T, dtype=np.float32)`` makes the explicit state
(:class:`~psu_numba.online_state.OnlineState`); ``step(variant, state, x_t, weight, bias, **params)``
advances it by one step in place and returns ``(spikes, membrane, reset)`` for that step, each
``[*neuron_shape]``. Fed ``x[0], x[1], ...`` it gives the spikes of :func:`psu_numba.cpu.forward`
exactly and its membrane within rounding (SPEC §3). :class:`OnlineStepper` bundles the state with
fixed parameters.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from psu_numba import common
from psu_numba.common import Step
from psu_numba.cpu import kernels
from psu_numba.online_state import OnlineState, check_init, check_step_call

__all__ = ["OnlineState", "OnlineStepper", "init_state", "step"]


def init_state(variant: str, neuron_shape: tuple[int, ...], *, steps: int | None = None,
               dtype: Any = np.float32) -> OnlineState:
    """A zero state for ``neuron_shape`` neurons; ``steps = T`` is required for IPSU/RPSU.

    ``dtype`` is the input dtype; the state is kept in the compute dtype (float32 for float16).
    """
    variant, neuron_shape, steps = check_init(variant, neuron_shape, steps)
    dt = common.compute_dtype(dtype)
    n = common.neuron_count((1, *neuron_shape))
    history = np.zeros((steps, n), dt) if steps is not None else None
    return OnlineState(variant, neuron_shape, steps, 0, np.zeros(n, dt), np.zeros(n, dt), np.zeros(n, dt), history)


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
    """Advance ``state`` by one time step with input ``x_t [*neuron_shape]`` (SPEC §3).

    ``r_t = a (r_{t-1} + q_{t-1})``; PSU/RPSU ``h_t = a (h_{t-1} + x_t)``, IPSU
    ``h_t = b_t + sum_{j<=t} W[t, j] x_j``; RPSU ``p_t = sigmoid(b_t + sum_{j<=t} W[t, j] x_j)``,
    PSU ``p_t = sigmoid(h_t)``; ``v_t = h_t - gamma r_t``; ``s_t = [v_t > theta]``. In sampled
    mode the draw ``R_t = [u(t, n) < p_t]`` (the same stream as the parallel form) is returned as
    ``reset``. IPSU/RPSU raise ``ValueError`` past step ``T``.
    """
    x_t = x_t if isinstance(x_t, np.ndarray) else np.asarray(x_t)
    params = check_step_call(
        variant, state, x_t, weight, bias, tau=tau, threshold=threshold, reset_scale=reset_scale,
        surrogate_alpha=surrogate_alpha, reset=reset, seed=seed,
    )
    if not common.is_floating(x_t.dtype):
        raise TypeError(f"x_t must have a floating dtype, got {x_t.dtype}")
    dt = state.h.dtype
    cast = dt.type
    n = state.n
    x1 = np.ascontiguousarray(x_t.reshape(n), dtype=dt)
    if params.code == common.PSU:
        w, b, history = np.zeros((1, 1), dt), np.zeros(1, dt), np.zeros((1, 1), dt)
    else:
        w = np.ascontiguousarray(weight, dtype=dt)
        b = np.ascontiguousarray(bias, dtype=dt)
        history = state.history
    spikes = np.empty(n, dt)
    membrane = np.empty(n, dt)
    resets = np.empty(n if params.sampled else 1, dt)
    k0, k1 = params.key
    kernels.step_kernel(
        params.code, state.t, x1, history, w, b, cast(params.decay), cast(params.gamma),
        cast(params.threshold), params.sampled, np.uint64(k0), np.uint64(k1),
        state.h, state.r, state.q, spikes, membrane, resets,
    )
    state.t += 1
    shape = state.neuron_shape
    out_dtype = x_t.dtype
    return Step(
        spikes=spikes.reshape(shape).astype(out_dtype, copy=False),
        membrane=membrane.reshape(shape).astype(out_dtype, copy=False),
        reset=resets.reshape(shape).astype(out_dtype, copy=False) if params.sampled else None,
    )


class OnlineStepper:
    """A stateful online layer: fixed parameters plus an :class:`OnlineState`.

    >>> stepper = OnlineStepper("psu", (4, 3), tau=2.0, threshold=1.0)
    >>> s_t, v_t, _ = stepper.step(x[t])        # doctest: +SKIP

    IPSU/RPSU take ``weight [T, T]`` and ``bias [T]`` and stop after ``T`` steps.
    """

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
        steps = None if weight is None or variant == "psu" else int(np.shape(weight)[0])
        if variant != "psu" and weight is None:
            steps = 1  # let the argument checks name the missing weight
        self.variant = variant
        self.weight = weight
        self.bias = bias
        self.params = dict(tau=tau, threshold=threshold, reset_scale=reset_scale,
                           surrogate_alpha=surrogate_alpha, reset=reset, seed=seed)
        self.state = init_state(variant, neuron_shape, steps=steps, dtype=dtype)
        # Check the whole call now, so a bad argument raises at construction, not mid-stream.
        fake = np.zeros(self.state.neuron_shape, dtype=dtype)
        check_step_call(variant, self.state, fake, weight, bias, **self.params)

    def step(self, x_t: Any) -> Step:
        """One step; see :func:`step`."""
        return step(self.variant, self.state, x_t, self.weight, self.bias, **self.params)

    def reset_state(self) -> None:
        """Back to ``t = 0`` with zero state."""
        s = self.state
        self.state = init_state(s.variant, s.neuron_shape, steps=s.steps, dtype=s.h.dtype)
