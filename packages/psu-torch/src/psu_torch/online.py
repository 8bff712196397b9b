"""The online (step-by-step) form of SPEC §3: explicit state, one time step per call, no look-ahead.

Per neuron, for PSU::

    h_t = a (h_{t-1} + x_t)             p_t = sigma(h_t)
    r_t = a (r_{t-1} + q_{t-1}),  r_0 = 0,   q = p (expected) or R = [u_t < p_t] (sampled)
    v_t = h_t - gamma r_t               s_t = [v_t > theta]

IPSU and RPSU replace ``h_t`` (IPSU, with ``q = x``) or ``p_t`` (RPSU) by
``sum_{j <= t} W[t, j] x_j + b_t``, so their state keeps the inputs seen so far and their stepper
stops after ``T`` steps (a step past the end raises ``ValueError``). PSU's stepper has no end.

Fed the steps of ``x`` in order, the stepper produces the spikes of the parallel call exactly (the
PSU operations are the ones :func:`psu_torch.functional.psu` runs with ``impl="recurrence"``).
Stepping is for inference: spikes carry no surrogate gradient here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import torch

from psu_core import checks
from psu_torch import random as prandom
from psu_torch._precision import compute_dtype

__all__ = ["OnlineState", "StepOutput", "OnlineStepper"]


@dataclass(frozen=True)
class OnlineState:
    """State after ``t`` steps: ``h`` and ``r`` scaled by ``1/a`` (``h / a``, ``r / a``; IPSU keeps
    ``h`` unscaled), the previous reset input ``q`` (each ``[N]``) and, for IPSU/RPSU, the inputs
    seen so far ``history [T, N]`` (rows ``>= t`` unused)."""

    t: int
    h: torch.Tensor
    r: torch.Tensor
    q: torch.Tensor
    history: torch.Tensor | None = None


class StepOutput(NamedTuple):
    """One step: ``spikes`` and ``membrane`` (shape of ``x_t``), ``reset`` (the draw ``R_t`` in
    sampled mode, else ``None``) and the new ``state``."""

    spikes: torch.Tensor
    membrane: torch.Tensor
    reset: torch.Tensor | None
    state: OnlineState


class OnlineStepper:
    """Step-by-step PSU / IPSU / RPSU with explicit state.

    Example::

        stepper = OnlineStepper("psu", threshold=0.5)
        state = stepper.initial_state(neuron_shape=(128,))
        for x_t in stream:                       # x_t: [128]
            s_t, v_t, _, state = stepper.step(x_t, state)

    Arguments as in :func:`psu_torch.functional.psu`; ``weight [T, T]`` and ``bias [T]`` for
    IPSU/RPSU. Tensors for ``threshold``/``surrogate_alpha`` are read as their current values.
    """

    def __init__(
        self,
        variant: str = "psu",
        weight: torch.Tensor | None = None,
        bias: torch.Tensor | None = None,
        *,
        tau: float = 2.0,
        threshold: float | torch.Tensor = 1.0,
        reset_scale: float | None = None,
        surrogate_alpha: float | torch.Tensor = 2.0,
        reset: str = "expected",
        seed: int | None = None,
    ) -> None:
        threshold = float(threshold.detach()) if isinstance(threshold, torch.Tensor) else threshold
        surrogate_alpha = (
            float(surrogate_alpha.detach()) if isinstance(surrogate_alpha, torch.Tensor) else surrogate_alpha
        )
        T = int(weight.shape[0]) if isinstance(weight, torch.Tensor) and weight.ndim >= 1 else 1
        checks.validate_call(
            variant,
            x_shape=(T,),
            x_dtype="float32",
            x_is_floating=True,
            tau=tau,
            threshold=threshold,
            reset_scale=reset_scale,
            surrogate_alpha=surrogate_alpha,
            weight_shape=None if weight is None else tuple(weight.shape),
            bias_shape=None if bias is None else tuple(bias.shape),
            reset=reset,
            seed=seed,
        )
        self.variant = variant
        self.a = 1.0 / float(tau)
        self.threshold = float(threshold)
        self.gamma = self.threshold if reset_scale is None else float(reset_scale)
        self.seed = int(seed) if reset == "sampled" else None
        self.weight = None if weight is None else torch.tril(weight.detach())
        self.bias = None if bias is None else bias.detach()
        self.T = None if weight is None else T

    def initial_state(
        self,
        neuron_shape: tuple[int, ...] | torch.Size = (),
        *,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> OnlineState:
        """The state before the first step, for inputs ``x_t`` of shape ``neuron_shape``."""
        n = 1
        for d in neuron_shape:
            n *= int(d)
        cd = compute_dtype(dtype)  # the state of a half-precision stream is float32
        zeros = torch.zeros(n, dtype=cd, device=device)
        history = None if self.T is None else torch.zeros((self.T, n), dtype=cd, device=device)
        return OnlineState(0, zeros, zeros, zeros, history)

    def step(self, x_t: torch.Tensor, state: OnlineState | None = None) -> StepOutput:
        """Advance one time step: ``x_t`` (any neuron shape) -> ``(s_t, v_t, R_t, state)``."""
        if not isinstance(x_t, torch.Tensor) or not x_t.is_floating_point():
            dtype = x_t.dtype if isinstance(x_t, torch.Tensor) else type(x_t).__name__
            raise TypeError(f"x must have a floating dtype (float16, bfloat16, float32, float64), got {dtype}")
        if state is None:
            state = self.initial_state(x_t.shape, device=x_t.device, dtype=x_t.dtype)
        t = state.t
        if self.T is not None and t >= self.T:
            raise ValueError(
                f"step must be < T = {self.T} for variant {self.variant!r} (its learned matrix is "
                f"[T, T]), got step {t}"
            )
        cd = state.h.dtype
        x = x_t.reshape(-1).to(cd)
        if x.shape != state.h.shape:
            raise ValueError(f"x must have {state.h.numel()} neurons per step (as the state), got {x.numel()}")
        a, gamma = self.a, self.gamma
        history = state.history
        if history is not None:
            history = history.clone()
            history[t] = x
        # States scaled by 1/a (see psu_torch._eager): h' = h / a, r' = r / a, one fused update each;
        # these are the operations of the parallel recurrence, so spikes and membranes match it bitwise.
        r = torch.add(state.q, state.r, alpha=a) if t else state.r
        if self.variant == "ipsu":
            h = self._mix(history, t, cd)
            v = torch.add(h, r, alpha=-gamma * a)
            s = (v > self.threshold).to(cd)
            prob = None
        else:
            h = torch.add(x, state.h, alpha=a)
            prob = torch.sigmoid(self._mix(history, t, cd) if self.variant == "rpsu" else h * a)
            w = torch.add(h, r, alpha=-gamma)
            s = (w > self.threshold / a).to(cd)
            v = w * a
        draw = None
        if self.variant == "ipsu":
            q = x
        elif self.seed is not None:
            u = prandom.uniform_rows(self.seed, t, t + 1, x.numel(), device=x.device, dtype=cd)[0]
            draw = (u < prob).to(cd)
            q = draw
        else:
            q = prob
        new_state = replace(state, t=t + 1, h=h, r=r, q=q, history=history)
        shape, dtype = x_t.shape, x_t.dtype
        return StepOutput(
            s.to(dtype).reshape(shape),
            v.to(dtype).reshape(shape),
            None if draw is None else draw.to(dtype).reshape(shape),
            new_state,
        )

    def _mix(self, history: Any, t: int, cd: torch.dtype) -> torch.Tensor:
        # sum_{j <= t} W[t, j] x_j + b_t, over the inputs seen so far
        w = self.weight[t, : t + 1].to(device=history.device, dtype=cd)
        return w @ history[: t + 1] + self.bias[t].to(device=history.device, dtype=cd)

    def run(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Step through ``x [T, ...]`` from the initial state; stacks ``(S, V, R)``."""
        state = self.initial_state(x.shape[1:], device=x.device, dtype=x.dtype)
        spikes, membrane, resets = [], [], []
        for t in range(x.shape[0]):
            s, v, r, state = self.step(x[t], state)
            spikes.append(s)
            membrane.append(v)
            resets.append(r)
        R = torch.stack(resets) if self.seed is not None else None
        return torch.stack(spikes), torch.stack(membrane), R
