"""The online (step-by-step) form of SPEC §3 and §11: a pure :func:`step` on an explicit state, and
:class:`OnlineStepper`, its stateful wrapper.

Per neuron, for PSU::

    h_t = a (h_{t-1} + x_t)             p_t = sigma(h_t)
    r_t = a (r_{t-1} + q_{t-1}),  r_0 = 0,   q = p (expected) or R = [u_t < p_t] (sampled)
    v_t = h_t - gamma r_t               s_t = [v_t > theta]

IPSU and RPSU replace ``h_t`` (IPSU, with ``q = x``) or ``p_t`` (RPSU) by
``sum_{j <= t} W[t, j] x_j + b_t``, so their state keeps the inputs seen so far and a step past the
horizon ``T`` raises ``ValueError``. PSU has no end.

Fed the steps of ``x`` in order, the PSU steps produce the spikes and membranes of the parallel
call with ``method="recurrence"`` bit for bit (the same operations, :mod:`psu_torch._psu_recurrence`).
Against other parallel computations (other methods; IPSU and RPSU, whose parallel form is a GEMM)
the float32 results agree as SPEC §3 says: spikes differ only where the float64 reference's
membrane is within the dtype's tolerance band of the threshold, membranes within SPEC §9.
Stepping is for inference: outputs carry no gradient. The state computes in float32 for a
half-precision stream (:mod:`psu_torch._precision`); outputs come in the dtype of ``x_t``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from psu_core import checks
from psu_core.api import StepOutput
from psu_torch import random as prandom
from psu_torch._decay import decay_add, split
from psu_torch._precision import compute_dtype
from psu_torch.functional import scalar_value

__all__ = ["OnlineState", "StepOutput", "init_state", "step", "OnlineStepper"]


@dataclass(frozen=True)
class OnlineState:
    """The state after ``t`` steps (immutable: :func:`step` returns a new one).

    ``h`` and ``r`` are scaled by ``1/a`` (``h / a``, ``r / a``; IPSU keeps ``h`` unscaled), ``q`` is
    the previous reset input, each ``[N]`` (``N`` the product of ``neuron_shape``); ``history
    [T, N]`` holds the inputs seen so far for IPSU/RPSU (rows ``>= t`` unused). ``T`` is the horizon
    (``None`` for PSU). The tensors' dtype is the one the steps compute in.
    """

    variant: str
    neuron_shape: tuple[int, ...]
    T: int | None
    t: int
    h: torch.Tensor
    r: torch.Tensor
    q: torch.Tensor
    history: torch.Tensor | None = None


def _dtype(dtype: Any) -> torch.dtype:
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype, None)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating torch dtype or its name (e.g. 'float32'), got {dtype!r}")
    return dtype


def init_state(
    variant: str,
    neuron_shape: Any,
    *,
    T: int | None = None,
    dtype: torch.dtype | str = torch.float32,
    device: torch.device | str | None = None,
) -> OnlineState:
    """A zero state for inputs ``x_t`` of shape ``neuron_shape``.

    ``T`` is the horizon, required for IPSU/RPSU (their ``[T, T]`` matrix) and ignored for PSU;
    ``dtype`` is the stream's dtype (half precision keeps a float32 state); ``device=None`` is
    torch's default device.
    """
    variant = checks.check_variant(variant)
    if variant != "psu" and (not isinstance(T, int) or isinstance(T, bool) or T < 1):
        raise ValueError(f"T must be an integer >= 1 for variant {variant!r} (the [T, T] horizon), got {T!r}")
    shape = tuple(int(d) for d in neuron_shape)
    n = math.prod(shape)
    cd = compute_dtype(_dtype(dtype))
    zeros = torch.zeros(n, dtype=cd, device=device)
    horizon = None if variant == "psu" else T
    history = None if horizon is None else torch.zeros((horizon, n), dtype=cd, device=zeros.device)
    return OnlineState(variant, shape, horizon, 0, zeros, zeros, zeros, history)


def _shape(name: str, arr: Any) -> tuple[int, ...] | None:
    if arr is None:
        return None
    if not isinstance(arr, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor or None, got {type(arr).__name__}")
    return tuple(arr.shape)


def step(
    state: OnlineState,
    x_t: torch.Tensor,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    *,
    tau: float = 2.0,
    threshold: float | torch.Tensor = 1.0,
    reset_scale: float | None = None,
    surrogate_alpha: float | torch.Tensor = 2.0,
    reset: str = "expected",
    seed: int | None = None,
) -> tuple[OnlineState, StepOutput]:
    """One time step (SPEC §3), pure: returns the new state and ``StepOutput(spikes, membrane,
    reset)``, each ``[*neuron_shape]`` in ``x_t.dtype`` (``reset``: the draw ``R_t`` in sampled mode,
    else ``None``); ``state`` is left as it was.

    Arguments as in :func:`psu_torch.functional.psu` (tensor ``threshold``/``surrogate_alpha`` are
    read as their current values); ``weight [T, T]`` and ``bias [T]`` for IPSU/RPSU. The call is
    checked as a call on ``T`` steps would be, then ``x_t`` against the state's neuron shape, then
    the step against the horizon (SPEC §8).
    """
    if not isinstance(x_t, torch.Tensor):
        raise TypeError(f"x_t must be a torch.Tensor, got {type(x_t).__name__}")
    p = checks.validate_step(
        state.variant, t=state.t, horizon=state.T, neuron_shape=state.neuron_shape, x_shape=tuple(x_t.shape),
        x_dtype=str(x_t.dtype).removeprefix("torch."), x_is_floating=x_t.is_floating_point(), tau=tau,
        threshold=scalar_value("threshold", threshold), reset_scale=reset_scale,
        surrogate_alpha=scalar_value("surrogate_alpha", surrogate_alpha), weight_shape=_shape("weight", weight),
        bias_shape=_shape("bias", bias), reset=reset, seed=seed,
    )  # fmt: skip
    with torch.no_grad():
        new_state, s, v, draw = _advance(state, x_t, weight, bias, p)
    shape, dtype = x_t.shape, x_t.dtype
    out = StepOutput(
        s.to(dtype).reshape(shape), v.to(dtype).reshape(shape), None if draw is None else draw.to(dtype).reshape(shape)
    )
    return new_state, out


def _mix(weight: torch.Tensor, bias: torch.Tensor, history: torch.Tensor, t: int) -> torch.Tensor:
    """``sum_{j <= t} W[t, j] x_j + b_t`` over the inputs seen so far."""
    w = weight[t, : t + 1].to(device=history.device, dtype=history.dtype)
    return w @ history[: t + 1] + bias[t].to(device=history.device, dtype=history.dtype)


def _advance(state: OnlineState, x_t: torch.Tensor, weight, bias, p: checks.Params):
    """The step's arithmetic: ``(new state, s, v, R or None)``, in the state's dtype."""
    t, a, gamma = state.t, p.decay, p.gamma
    cd = state.h.dtype
    x = x_t.reshape(-1).to(cd)
    history = state.history
    if history is not None:
        history = history.clone()  # the given state keeps its own
        history[t] = x
    # States scaled by 1/a, as in the parallel recurrence (psu_torch._psu_recurrence): h' = h / a,
    # r' = r / a, the same updates (a split in float32), so spikes and membranes match it bit for bit.
    a2 = split(a, cd)
    r = decay_add(state.q, state.r, a2, out=None) if t else state.r
    prob = draw = None
    if p.variant == "ipsu":
        h = _mix(weight, bias, history, t)
        v = torch.add(h, r, alpha=-gamma * a)
        s = v > p.threshold
        q = x
    else:
        h = decay_add(x, state.h, a2, out=None)
        prob = torch.sigmoid(_mix(weight, bias, history, t) if p.variant == "rpsu" else h * a)
        w = torch.add(h, r, alpha=-gamma)
        s = w > p.threshold / a
        v = w * a
        q = prob
        if p.sampled:
            u = prandom.uniform_rows(p.seed, t, t + 1, x.numel(), device=x.device, dtype=cd)[0]
            draw = (u < prob).to(cd)
            q = draw
    new = OnlineState(state.variant, state.neuron_shape, state.T, t + 1, h, r, q, history)
    return new, s, v, draw


class OnlineStepper:
    """The stateful wrapper of :func:`init_state` and :func:`step`: ``.step(x_t) -> StepOutput``.

    Holds the layer's ``weight``/``bias`` (IPSU/RPSU: their horizon ``T = weight.shape[0]``) and
    parameters, and the current ``.state``; ``.reset_state()`` starts again from zero. Arguments as
    in :func:`step` and :func:`init_state`, checked at construction.

    Example::

        stepper = OnlineStepper("psu", (128,), threshold=0.5)
        for x_t in stream:                       # x_t: [128]
            s_t, v_t, _ = stepper.step(x_t)
    """

    def __init__(
        self,
        variant: str,
        neuron_shape: Any,
        weight: torch.Tensor | None = None,
        bias: torch.Tensor | None = None,
        *,
        tau: float = 2.0,
        threshold: float | torch.Tensor = 1.0,
        reset_scale: float | None = None,
        surrogate_alpha: float | torch.Tensor = 2.0,
        reset: str = "expected",
        seed: int | None = None,
        dtype: torch.dtype | str = torch.float32,
        device: torch.device | str | None = None,
    ) -> None:
        self.variant = checks.check_variant(variant)
        self.neuron_shape = tuple(int(d) for d in neuron_shape)
        self.weight, self.bias = weight, bias
        self.params = dict(tau=tau, threshold=threshold, reset_scale=reset_scale, surrogate_alpha=surrogate_alpha,
                           reset=reset, seed=seed)  # fmt: skip
        w_shape = _shape("weight", weight)
        horizon = w_shape[0] if w_shape else None
        dtype = _dtype(dtype)
        # The checks a step makes, now: the same rules and messages as a call on T steps.
        checks.validate_step(
            self.variant, t=0, horizon=horizon, neuron_shape=self.neuron_shape, x_shape=self.neuron_shape,
            x_dtype=str(dtype).removeprefix("torch."), x_is_floating=True, tau=tau,
            threshold=scalar_value("threshold", threshold), reset_scale=reset_scale,
            surrogate_alpha=scalar_value("surrogate_alpha", surrogate_alpha), weight_shape=w_shape,
            bias_shape=_shape("bias", bias), reset=reset, seed=seed,
        )  # fmt: skip
        self._init = dict(T=horizon, dtype=dtype, device=device)
        self.reset_state()

    def reset_state(self) -> None:
        """Start again from the zero state."""
        self.state = init_state(self.variant, self.neuron_shape, **self._init)

    def step(self, x_t: torch.Tensor) -> StepOutput:
        """Advance one time step: ``x_t [*neuron_shape]`` -> ``StepOutput(spikes, membrane, reset)``."""
        self.state, out = step(self.state, x_t, self.weight, self.bias, **self.params)
        return out
