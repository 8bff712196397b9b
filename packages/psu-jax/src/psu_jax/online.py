"""The online (step-by-step) form of SPEC §3 and §11: the pure :func:`init_state` and :func:`step`,
usable inside ``lax.scan``, and the stateful :class:`OnlineStepper`.

Per neuron, with ``a = 1 / tau``, for step ``t``:

    PSU:   h_t = a (h_{t-1} + x_t),     p_t = sigmoid(h_t)
    RPSU:  h_t = a (h_{t-1} + x_t),     p_t = sigmoid(sum_{j<=t} W[t, j] x_j + b_t)
    IPSU:  h_t = sum_{j<=t} W[t, j] x_j + b_t
    all:   r_t = a (r_{t-1} + q_{t-1}),  r_0 = 0,  v_t = h_t - gamma r_t,  s_t = [v_t > theta]

``q`` is ``p`` (expected), the Threefry draw ``[u(n, t) < p_t]`` (sampled) or ``x`` (IPSU).
The state holds ``(t, h, r, q_prev)`` and, for IPSU/RPSU, the inputs seen so far ``[T, ...]``.

Fed the steps of ``X`` in order, ``step`` gives the membrane of the parallel functions within the
dtype's tolerance (SPEC §3, §9) and their spikes except where the membrane is that close to the
threshold: the two are different float32 computations, so a spike may differ only where the
float64 reference's ``|V - theta|`` is within the membrane tolerance band (atol + rtol |V|, scaled
by the call's conditioning); on the golden vectors, which keep every ``V`` out of that band, the
spikes are the golden ones exactly. PSU's step runs the recurrence of ``method="scan"``; the two
agree to a rounding or two (XLA may fuse a multiply-add in one program and not the other; tested). It is for inference: its spikes are a plain comparison
(no surrogate gradient) and its membrane and draws are under ``stop_gradient``. IPSU and RPSU stop
after ``T`` steps: with a concrete state (outside ``jit``) a step past the end raises
``ValueError``; under ``jit`` the step index is a traced value that cannot raise, so a step past
the end returns NaN spikes and membrane instead.

Example::

    state = init_state("psu", (batch, features))
    state, out = jax.lax.scan(functools.partial(step, threshold=0.5), state, x)  # out.spikes [T, batch, features]

    stepper = OnlineStepper("rpsu", (batch, features), weight, bias, threshold=0.5)
    out = stepper.step(x[0])                                                     # StepOutput
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import core as _jax_core

from psu_core import checks
from psu_core.api import StepOutput
from psu_jax import arguments
from psu_jax import random as _random
from psu_jax.recurrence import scale

__all__ = ["OnlineState", "StepOutput", "OnlineStepper", "init_state", "step"]


@dataclasses.dataclass(frozen=True)
class OnlineState:
    """State of one online neuron layer (a pytree; ``variant`` and ``T`` are static).

    ``t``: int32 scalar, the next step's index; ``h``, ``r``, ``q_prev``: ``[*neuron_shape]`` in
    the compute dtype (float32 for half precision); ``history``: ``[T, *neuron_shape]`` inputs
    seen so far (IPSU, RPSU) or ``None``. ``T``: the horizon (IPSU, RPSU) or ``None`` (PSU).
    """

    t: jax.Array
    h: jax.Array
    r: jax.Array
    q_prev: jax.Array
    history: jax.Array | None
    variant: str
    T: int | None

    @property
    def neuron_shape(self) -> tuple[int, ...]:
        return tuple(self.h.shape)


jax.tree_util.register_dataclass(
    OnlineState,
    data_fields=["t", "h", "r", "q_prev", "history"],
    meta_fields=["variant", "T"],
)


def init_state(
    variant: str,
    neuron_shape: tuple[int, ...],
    *,
    T: int | None = None,
    dtype: Any = jnp.float32,
    device: Any = None,
) -> OnlineState:
    """The zero state before step 0 of ``neuron_shape`` neurons.

    ``T``: the horizon, required for IPSU and RPSU (their ``[T, T]`` matrix); PSU has no end and
    ignores it. ``dtype``: of the inputs to come (half precision is held in float32).
    ``device``: a ``jax.Device`` or ``Sharding``; ``None`` is JAX's default device. The state is
    committed there, as every state ``step`` returns is, so that eager steps compile once (inside
    ``jit`` with ``device=None`` it is left to the program).
    """
    variant = checks.check_variant(variant)
    shape = tuple(int(d) for d in neuron_shape)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"dtype must be floating (float16, bfloat16, float32, float64), got {jnp.dtype(dtype)}")
    cdt = jnp.promote_types(dtype, jnp.float32)
    history = None
    if variant == "psu":
        T = None
    else:
        if isinstance(T, bool) or not isinstance(T, (int, np.integer)) or T < 1:
            raise ValueError(f"T must be an integer >= 1 for variant {variant!r} (the [T, T] horizon), got {T!r}")
        T = int(T)
        history = jnp.zeros((T, *shape), cdt)
    zero = jnp.zeros(shape, cdt)
    state = OnlineState(jnp.zeros((), jnp.int32), zero, zero, zero, history, variant, T)
    if device is None:
        if isinstance(zero, _jax_core.Tracer):
            return state  # built inside jit: placement is the program's
        device = zero.device
    return jax.device_put(state, device)


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
    a = type(a)(*(jnp.asarray(v, cdt) for v in a))
    t = state.t
    history = state.history
    valid = jnp.asarray(True)
    if history is not None:
        T = history.shape[0]
        valid = t < T
        history = jax.lax.dynamic_update_index_in_dim(history, x, jnp.minimum(t, T - 1), 0)
        cols = jnp.arange(T)
        row = jax.lax.dynamic_index_in_dim(weight.astype(cdt), jnp.minimum(t, T - 1), 0, keepdims=False)
        row = jnp.where(cols <= t, row, 0.0)
        partial_sum = jnp.tensordot(row, history, axes=(0, 0), precision=jax.lax.Precision.HIGHEST)
        partial_sum = partial_sum + jax.lax.dynamic_index_in_dim(
            bias.astype(cdt), jnp.minimum(t, T - 1), 0, keepdims=False
        )
    r = scale(state.r + state.q_prev, a)
    if cfg.variant == "ipsu":
        h = partial_sum
        q = x
        drawn = None
    else:
        h = scale(state.h + x, a)
        p = jax.nn.sigmoid(h if cfg.variant == "psu" else partial_sum)
        if cfg.sampled:
            # x[None] is the data the draw belongs to: under vmap, mapped states number their
            # neurons as one step on the whole (psu_jax.random).
            u = _random.uniforms_like(x[None], words, _random.neuron_index(x.shape), cdt, t0=t)[0]
            q = (u < p).astype(cdt)
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
    new_state = OnlineState(t + 1, h, r, q, history, state.variant, state.T)
    v, drawn = jax.lax.stop_gradient((v, drawn))  # outputs to inspect (SPEC §11)
    out = StepOutput(s.astype(dtype), v.astype(dtype), None if drawn is None else drawn.astype(dtype))
    return new_state, out


_step_jit = jax.jit(_step_impl, static_argnums=(0,))


def step(
    state: OnlineState,
    x_t: Any,
    weight: Any = None,
    bias: Any = None,
    *,
    tau: float = 2.0,
    threshold: Any = 1.0,
    reset_scale: float | None = None,
    surrogate_alpha: Any = 2.0,
    reset: str = "expected",
    seed: Any = None,
) -> tuple[OnlineState, StepOutput]:
    """Advance one time step, purely: returns ``(new_state, StepOutput(spikes, membrane, reset))``
    for ``x_t [*neuron_shape]``, each output ``[*neuron_shape]`` in ``x_t``'s dtype (``reset``: the
    draw ``R_t`` in sampled mode, else None). ``state`` is not changed, so a state can be kept,
    branched or replayed.

    Parameters as in :func:`psu_jax.psu` (``weight [T, T]`` and ``bias [T]`` for IPSU/RPSU);
    ``surrogate_alpha`` only matters for gradients and is checked, not used, here. With
    ``reset="sampled"`` pass the same ``seed`` (an integer or a JAX key) at every step: draws are
    indexed by ``(seed, t, n)`` and equal the parallel call's.
    """
    if not isinstance(state, OnlineState):
        raise TypeError(f"state must be an OnlineState from init_state, got {type(state).__name__}")
    x_t = arguments.as_array(x_t)
    # The end of T is checked only when the step index has a value (a traced one yields NaN).
    t = 0 if state.T is None or arguments.is_traced(state.t) else int(state.t)
    c = arguments.check(
        state.variant, x_t, weight, bias, tau=tau, threshold=threshold, reset_scale=reset_scale,
        surrogate_alpha=surrogate_alpha, reset=reset, seed=seed, step=(t, state.T, state.neuron_shape),
    )  # fmt: skip
    if weight is not None:
        weight, bias = jnp.asarray(weight), jnp.asarray(bias)
    cfg = _StepConfig(state.variant, c.params.sampled)
    return _step_jit(cfg, state, x_t, c.threshold, weight, bias, c.words, *c.scalars(state.h.dtype))


class OnlineStepper:
    """The stateful wrapper of :func:`init_state` and :func:`step`: ``.step(x_t) -> StepOutput``.

    Holds the layer's ``weight`` and ``bias`` (IPSU, RPSU: the horizon ``T`` is
    ``weight.shape[0]``), its parameters and the current ``.state``; ``.reset_state()`` starts
    again from zero. The parameters are checked when it is built, as a call on an input of ``T``
    steps would check them. ``dtype`` and ``device`` as in :func:`init_state`.
    """

    def __init__(
        self,
        variant: str,
        neuron_shape: tuple[int, ...],
        weight: Any = None,
        bias: Any = None,
        *,
        tau: float = 2.0,
        threshold: Any = 1.0,
        reset_scale: float | None = None,
        surrogate_alpha: Any = 2.0,
        reset: str = "expected",
        seed: Any = None,
        dtype: Any = jnp.float32,
        device: Any = None,
    ) -> None:
        self.variant = checks.check_variant(variant)
        self.neuron_shape = tuple(int(d) for d in neuron_shape)
        self.params = dict(tau=tau, threshold=threshold, reset_scale=reset_scale, surrogate_alpha=surrogate_alpha,
                           reset=reset, seed=seed)  # fmt: skip
        shape = None if weight is None else jnp.shape(weight)
        T = int(shape[0]) if shape else None  # the check below words a missing or malformed weight
        arguments.check(variant, jax.ShapeDtypeStruct((T or 1, *self.neuron_shape), dtype), weight, bias, **self.params)
        if weight is not None:  # on the device once, not at every step
            weight, bias = jax.device_put((jnp.asarray(weight), jnp.asarray(bias)), device)
        self.weight, self.bias = weight, bias
        self._init = dict(T=T, dtype=dtype, device=device)
        self.reset_state()

    def reset_state(self) -> None:
        """Start again from the zero state (step 0)."""
        self.state = init_state(self.variant, self.neuron_shape, **self._init)

    def step(self, x_t: Any) -> StepOutput:
        """Advance one step with input ``x_t [*neuron_shape]``."""
        self.state, out = step(self.state, x_t, self.weight, self.bias, **self.params)
        return out
