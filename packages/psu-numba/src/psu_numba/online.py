"""The online (step-by-step) form's state and its stateful wrapper (SPEC §3, §11), for every target.

The state of one layer, for ``N`` neurons (the product of ``neuron_shape``):

* ``t``: steps taken so far;
* ``h``: the leaky integral ``h_{t-1}`` (PSU, RPSU) or the mix (IPSU), ``[N]``;
* ``r``: the decayed resets ``r_{t-1} = (B Q)_{t-1}``, ``[N]``;
* ``q``: the last reset event ``q_{t-1}`` (``p``, the draw ``R``, or ``x`` for IPSU), ``[N]``;
* ``history``: ``[T, N]`` inputs seen so far (IPSU, RPSU, whose learned ``[T, T]`` matrix mixes
  the whole history), ``None`` for PSU.

Arrays live where the target computes (NumPy for ``psu_numba.cpu``, device arrays for the GPU
targets). ``step`` is pure: it computes into new arrays and returns a new state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from psu_core import checks
from psu_core.api import StepOutput


@dataclass(frozen=True, eq=False)
class OnlineState:
    """Explicit state of an online PSU-family layer (see the module docstring). ``T`` is the
    horizon of IPSU/RPSU (the stepper stops there), ``None`` for PSU (no end)."""

    variant: str
    neuron_shape: tuple[int, ...]
    T: int | None
    t: int
    h: Any
    r: Any
    q: Any
    history: Any

    @property
    def dtype(self) -> np.dtype:
        """The dtype the state is kept (and the step computed) in."""
        return np.dtype(self.h.dtype)


class OnlineStepper:
    """A stateful online layer: fixed weight, bias and parameters plus the current ``state``.

    ``step(x_t) -> StepOutput`` advances it (see the target's ``step``); ``reset_state()`` starts
    again from zero. IPSU/RPSU take ``weight [T, T]`` and ``bias [T]`` and stop after ``T`` steps.
    Every argument is checked here, so a bad one raises at construction, not mid-stream.
    """

    #: The target's :class:`psu_numba.api.Api`; each target's ``OnlineStepper`` subclass sets it.
    api: Any = None

    def __init__(
        self,
        variant: str,
        neuron_shape: tuple[int, ...],
        weight: Any = None,
        bias: Any = None,
        *,
        tau: float = 2.0,
        threshold: float = 1.0,
        reset_scale: float | None = None,
        surrogate_alpha: float = 2.0,
        reset: str = "expected",
        seed: int | None = None,
        dtype: Any = "float32",
        device: Any = None,
    ) -> None:
        api = self.api
        self.variant = checks.check_variant(variant)
        self.neuron_shape = tuple(int(d) for d in neuron_shape)
        self.params = dict(tau=tau, threshold=threshold, reset_scale=reset_scale, surrogate_alpha=surrogate_alpha,
                           reset=reset, seed=seed)  # fmt: skip
        self.weight, self.bias, T = api.stepper_arguments(variant, self.neuron_shape, weight, bias, dtype, self.params)
        self._init = dict(T=T, dtype=dtype, device=device)
        self.reset_state()

    def reset_state(self) -> None:
        """Back to ``t = 0`` with a zero state."""
        self.state: OnlineState = self.api.init_state(self.variant, self.neuron_shape, **self._init)

    def step(self, x_t: Any) -> StepOutput:
        """One step with input ``x_t [*neuron_shape]``: ``StepOutput(spikes, membrane, reset)``."""
        self.state, out = self.api.step(self.state, x_t, self.weight, self.bias, **self.params)
        return out
