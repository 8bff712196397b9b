"""The online (step-by-step) form of SPEC §3: ``init_state`` and ``step``, usable in ``lax.scan``.

Per neuron, with ``a = 1 / tau``, for step ``t``:

    PSU:   h_t = a (h_{t-1} + x_t),     p_t = sigmoid(h_t)
    RPSU:  h_t = a (h_{t-1} + x_t),     p_t = sigmoid(sum_{j<=t} W[t, j] x_j + b_t)
    IPSU:  h_t = sum_{j<=t} W[t, j] x_j + b_t
    all:   r_t = a (r_{t-1} + q_{t-1}),  r_0 = 0,  v_t = h_t - gamma r_t,  s_t = [v_t > theta]

``q`` is ``p`` (expected), the Threefry draw ``[u(n, t) < p_t]`` (sampled) or ``x`` (IPSU).
The state holds ``(t, h, r, q_prev)`` and, for IPSU/RPSU, the inputs seen so far ``[T, ...]``.

Fed the steps of ``X`` in order, ``step`` gives the spikes of the parallel functions exactly and
the membrane within the dtype's tolerance. IPSU and RPSU stop after ``T`` steps: with a concrete
state (outside ``jit``) a step past the end raises ``ValueError``; under ``jit`` the step index is
a traced value that cannot raise, so a step past the end returns NaN spikes and membrane instead.

Example::

    state = init_state("psu", (batch, features))
    step_fn = functools.partial(step, tau=2.0, threshold=1.0)
    state, out = jax.lax.scan(step_fn, state, x)      # out.spikes: [T, batch, features]
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import core as _jax_core

from psu_core import checks
from psu_jax import random as _random
from psu_jax.functional import _seed_for_checks, _static_number, _traceable_scalar

__all__ = ["OnlineState", "StepOutput", "init_state", "step"]


@dataclasses.dataclass(frozen=True)
class OnlineState:
    """State of one online neuron layer (a pytree; ``variant`` and ``num_steps`` are static).

    ``t``: int32 scalar, the next step's index; ``h``, ``r``, ``q_prev``: ``[*neuron_shape]`` in
    the compute dtype (float32 for half precision); ``history``: ``[T, *neuron_shape]`` inputs
    seen so far (IPSU, RPSU) or ``None``.
    """

    t: jax.Array
    h: jax.Array
    r: jax.Array
    q_prev: jax.Array
    history: jax.Array | None
    variant: str
    num_steps: int | None

    @property
    def neuron_shape(self) -> tuple[int, ...]:
        return tuple(self.h.shape)


jax.tree_util.register_dataclass(
    OnlineState,
    data_fields=["t", "h", "r", "q_prev", "history"],
    meta_fields=["variant", "num_steps"],
)


class StepOutput(NamedTuple):
    """One step's result, ``[*neuron_shape]`` in the dtype of ``x_t``."""

    spikes: jax.Array
    membrane: jax.Array
    reset: jax.Array | None  # the drawn R_t in sampled mode, else None


def init_state(
    variant: str,
    neuron_shape: tuple[int, ...],
    *,
    num_steps: int | None = None,
    dtype: Any = jnp.float32,
) -> OnlineState:
    """Zero state before step 0. ``num_steps`` (``T``) is required for IPSU and RPSU."""
    checks.check_variant(variant)
    neuron_shape = tuple(int(d) for d in neuron_shape)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"dtype must be floating (float16, bfloat16, float32, float64), got {jnp.dtype(dtype)}")
    cdt = jnp.promote_types(dtype, jnp.float32)
    history = None
    if variant != "psu":
        if num_steps is None or int(num_steps) < 1:
            raise ValueError(f"num_steps must be an integer >= 1 for variant {variant!r}, got {num_steps!r}")
        num_steps = int(num_steps)
        history = jnp.zeros((num_steps,) + neuron_shape, cdt)
    zero = jnp.zeros(neuron_shape, cdt)
    return OnlineState(jnp.zeros((), jnp.int32), zero, zero, zero, history, variant, num_steps)


@dataclasses.dataclass(frozen=True)
class _StepConfig:
    """Static; ``a``, a fixed ``gamma`` and ``tied`` are traced, as in :mod:`psu_jax.functional`."""

    variant: str
    sampled: bool


def _step_impl(cfg: _StepConfig, state: OnlineState, x_t, threshold, weight, bias, words, a, gamma, tied):
    dtype = x_t.dtype
    cdt = state.h.dtype
    x = x_t.astype(cdt)
    thr = jnp.asarray(threshold).astype(cdt)
    gamma = jnp.where(tied, thr, jnp.asarray(gamma, cdt))
    a = jnp.asarray(a, cdt)
    t = state.t
    history = state.history
    valid = jnp.asarray(True)
    if history is not None:
        num_steps = history.shape[0]
        valid = t < num_steps
        history = jax.lax.dynamic_update_index_in_dim(history, x, jnp.minimum(t, num_steps - 1), 0)
        cols = jnp.arange(num_steps)
        row = jax.lax.dynamic_index_in_dim(weight.astype(cdt), jnp.minimum(t, num_steps - 1), 0, keepdims=False)
        row = jnp.where(cols <= t, row, 0.0)
        partial_sum = jnp.tensordot(row, history, axes=(0, 0), precision=jax.lax.Precision.HIGHEST)
        partial_sum = partial_sum + jax.lax.dynamic_index_in_dim(
            bias.astype(cdt), jnp.minimum(t, num_steps - 1), 0, keepdims=False
        )
    r = a * (state.r + state.q_prev)
    if cfg.variant == "ipsu":
        h = partial_sum
        q = x
        drawn = None
    else:
        h = a * (state.h + x)
        p = jax.nn.sigmoid(h if cfg.variant == "psu" else partial_sum)
        if cfg.sampled:
            u = _random.uniforms_from_words(words, 1, int(np.prod(x.shape, dtype=np.int64)), cdt, t0=t)
            q = (u.reshape(x.shape) < p).astype(cdt)
            drawn = q
        else:
            q = p
            drawn = None
    v = h - gamma * r
    s = (v > thr).astype(cdt)
    if history is not None:
        nan = jnp.asarray(jnp.nan, cdt)
        v = jnp.where(valid, v, nan)
        s = jnp.where(valid, s, nan)
    new_state = OnlineState(t + 1, h, r, q, history, state.variant, state.num_steps)
    out = StepOutput(s.astype(dtype), v.astype(dtype), None if drawn is None else drawn.astype(dtype))
    return new_state, out


_step_jit = jax.jit(_step_impl, static_argnums=(0,))


def step(
    state: OnlineState,
    x_t: Any,
    *,
    weight: Any = None,
    bias: Any = None,
    tau: float = 2.0,
    threshold: Any = 1.0,
    reset_scale: float | None = None,
    surrogate_alpha: Any = 2.0,
    reset: str = "expected",
    key_or_seed: Any = None,
) -> tuple[OnlineState, StepOutput]:
    """Advance one time step: ``x_t`` is ``[*neuron_shape]``. Returns ``(new_state, StepOutput)``.

    Parameters as in :func:`psu_jax.psu` (``weight [T, T]`` and ``bias [T]`` for IPSU/RPSU);
    ``surrogate_alpha`` only matters for gradients and is checked, not used, here. With
    ``reset="sampled"`` pass the same ``key_or_seed`` at every step: draws are indexed by
    ``(seed, t, n)`` and equal the parallel call's.
    """
    if not isinstance(state, OnlineState):
        raise TypeError(f"state must be an OnlineState from init_state, got {type(state).__name__}")
    if not isinstance(x_t, (jax.Array, np.ndarray)) and not isinstance(x_t, _jax_core.Tracer):
        x_t = jnp.asarray(x_t)
    variant = state.variant
    tau = _static_number("tau", tau)
    reset_scale = _static_number("reset_scale", reset_scale)
    thr_check, thr = _traceable_scalar("threshold", threshold, 1.0)
    alpha_check, _ = _traceable_scalar("surrogate_alpha", surrogate_alpha, 2.0)
    x_dtype = jnp.dtype(x_t.dtype)
    checks.validate_call(
        variant,
        x_shape=(state.num_steps or 1,) + tuple(x_t.shape),
        x_dtype=str(x_dtype),
        x_is_floating=bool(jnp.issubdtype(x_dtype, jnp.floating)),
        tau=tau,
        threshold=thr_check,
        reset_scale=reset_scale,
        surrogate_alpha=alpha_check,
        weight_shape=None if weight is None else tuple(jnp.shape(weight)),
        bias_shape=None if bias is None else tuple(jnp.shape(bias)),
        reset=reset,
        seed=_seed_for_checks(reset, key_or_seed),
    )
    if tuple(x_t.shape) != state.neuron_shape:
        raise ValueError(f"x_t must have the state's neuron shape {list(state.neuron_shape)}, got {list(x_t.shape)}")
    if state.num_steps is not None and not isinstance(state.t, _jax_core.Tracer):
        t = int(state.t)
        if t >= state.num_steps:
            raise ValueError(
                f"step {t} is past the end: {variant} has a learned [T, T] matrix with "
                f"T={state.num_steps}, so its online stepper stops after {state.num_steps} steps"
            )
    sampled = reset == "sampled"
    words = _random.seed_words(key_or_seed) if sampled else None
    cfg = _StepConfig(variant, sampled)
    a = np.float64(1.0 / float(tau))
    gamma = np.float64(0.0 if reset_scale is None else float(reset_scale))
    tied = np.bool_(reset_scale is None)
    if weight is not None:
        weight, bias = jnp.asarray(weight), jnp.asarray(bias)
    return _step_jit(cfg, state, x_t, thr, weight, bias, words, a, gamma, tied)
