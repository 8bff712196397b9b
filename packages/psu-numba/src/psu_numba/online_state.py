"""Backend-neutral parts of the online (step-by-step) API: the state and its checks (SPEC §3).

The state of one layer, for ``N`` neurons (the product of ``neuron_shape``):

* ``t``: steps taken so far;
* ``h``: the leaky integral ``h_{t-1}`` (PSU, RPSU), ``[N]``;
* ``r``: the decayed resets ``r_{t-1} = (B Q)_{t-1}``, ``[N]``;
* ``q``: the last reset event ``q_{t-1}`` (``p``, the draw ``R``, or ``x`` for IPSU), ``[N]``;
* ``history``: ``[T, N]`` inputs seen so far (IPSU, RPSU, whose learned ``[T, T]`` matrix mixes
  the whole history), ``None`` for PSU.

Arrays live where the backend computes (NumPy for ``psu_numba.cpu``, device arrays for the GPU
backends); a step updates them in place.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from psu_numba import common
from psu_numba.common import Params


@dataclass
class OnlineState:
    """Explicit state of an online PSU-family layer (see the module docstring)."""

    variant: str
    neuron_shape: tuple[int, ...]
    steps: int | None  # T for IPSU/RPSU (the stepper stops there); None for PSU
    t: int
    h: Any
    r: Any
    q: Any
    history: Any

    @property
    def n(self) -> int:
        return common.neuron_count((1, *self.neuron_shape))


def check_step_call(
    variant: Any,
    state: OnlineState,
    x_t: Any,
    weight: Any,
    bias: Any,
    *,
    tau: Any,
    threshold: Any,
    reset_scale: Any,
    surrogate_alpha: Any,
    reset: Any,
    seed: Any,
) -> Params:
    """SPEC §8 checks for one step, as for a whole input of the state's horizon; then the step's
    own checks: ``x_t`` shape, state variant, and no step past ``T`` for IPSU/RPSU."""
    horizon = state.steps if state.steps is not None else 1
    fake_x = SimpleNamespace(shape=(horizon, *state.neuron_shape), dtype=x_t.dtype)
    params = common.check_call(
        variant, fake_x, weight, bias, tau=tau, threshold=threshold, reset_scale=reset_scale,
        surrogate_alpha=surrogate_alpha, reset=reset, seed=seed,
    )
    if variant != state.variant:
        raise ValueError(f"variant must be the state's variant {state.variant!r}, got {variant!r}")
    if tuple(x_t.shape) != tuple(state.neuron_shape):
        raise ValueError(f"x_t must have shape {list(state.neuron_shape)}, got {list(x_t.shape)}")
    if state.steps is not None and state.t >= state.steps:
        raise ValueError(
            f"step {state.t} is past the end: {variant} was built for T={state.steps} steps"
        )
    common.check_neurons_for_sampling(params, state.n)
    return params


def check_init(variant: Any, neuron_shape: Any, steps: Any) -> tuple[str, tuple[int, ...], int | None]:
    from psu_core import checks

    variant = checks.check_variant(variant)
    neuron_shape = tuple(int(d) for d in neuron_shape)
    if any(d < 0 for d in neuron_shape):
        raise ValueError(f"neuron_shape must be non-negative, got {list(neuron_shape)}")
    if variant == "psu":
        if steps is not None:
            raise ValueError(f"steps must be None for variant 'psu' (its stepper has no end), got {steps!r}")
        return variant, neuron_shape, None
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an integer T >= 1 for variant {variant!r}, got {steps!r}")
    return variant, neuron_shape, steps
