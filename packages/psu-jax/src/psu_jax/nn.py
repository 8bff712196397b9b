"""Flax NNX modules ``PSU``, ``IPSU``, ``RPSU`` over the functional API.

Parameters (SPEC §7):

- ``threshold`` (``theta``) and ``surrogate_alpha`` (``alpha``): each either a learnable scalar
  ``nnx.Param`` or a fixed Python float. By default the threshold is learnable and tied to the
  reset scale (``gamma = theta``, gradient through both, SPEC §5) and alpha is fixed.
- ``weight [T, T]`` (IPSU, RPSU): Kaiming-normal, fan-out, ReLU gain: i.i.d. normal with
  standard deviation ``sqrt(2 / T)`` on every entry (the causal mask is applied on use);
  ``bias [T]``: zeros.

``reference_compat=True`` reproduces the published code: ``gamma`` fixed to the initial
threshold for PSU and to 1.0 for IPSU/RPSU (no gradient through it), a fixed threshold, a
learnable alpha, and the time-folded layout ``[(T*B), ...]`` (time-major blocks) for inputs and
outputs. Each of these can be overridden by its own argument.

Learnable scalars are arrays, and their values cannot be checked under ``jit``: the modules
check them by value when built and the functional API checks their shape (scalar) and dtype
(floating) on every call; a training step that drives ``theta`` or ``alpha`` to ``<= 0`` is not
caught under ``jit``.

Sampled reset (``reset="sampled"``, PSU/RPSU): each call draws a fresh 64-bit seed from the
module's ``rngs`` stream ``"reset"`` (falling back to ``"default"``), or uses ``key_or_seed``
passed to the call (an integer seed gives the draws of psu-core bit for bit).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from psu_core import checks
from psu_jax.functional import ipsu, psu, rpsu

__all__ = ["PSU", "IPSU", "RPSU"]

_UNSET: Any = object()


class _Base(nnx.Module):
    variant = "psu"

    def __init__(
        self,
        num_steps: int | None,
        *,
        tau: float,
        threshold: float,
        reset_scale: Any,
        surrogate_alpha: float,
        reset: str,
        reference_compat: bool,
        learn_threshold: bool | None,
        learn_alpha: bool | None,
        time_folded: bool | None,
        method: str,
        param_dtype: Any,
        rngs: nnx.Rngs | None,
    ) -> None:
        v = self.variant
        checks.check_tau(tau)
        checks.check_positive("threshold", threshold)
        checks.check_positive("surrogate_alpha", surrogate_alpha)
        if reset not in checks.RESETS or (reset == "sampled" and v not in checks.SAMPLED_VARIANTS):
            checks.check_reset(v, reset, 0)
        if reference_compat:
            if reset_scale is _UNSET:
                reset_scale = float(threshold) if v == "psu" else 1.0
            learn_threshold = False if learn_threshold is None else learn_threshold
            learn_alpha = True if learn_alpha is None else learn_alpha
            time_folded = True if time_folded is None else time_folded
        else:
            reset_scale = None if reset_scale is _UNSET else reset_scale
            # The same defaults as psu-torch: alpha learnable as published, threshold fixed unless asked.
            learn_threshold = False if learn_threshold is None else learn_threshold
            learn_alpha = True if learn_alpha is None else learn_alpha
            time_folded = False if time_folded is None else time_folded
        checks.check_reset_scale(reset_scale)
        if time_folded and num_steps is None:
            raise ValueError("num_steps must be given for time_folded inputs [(T*B), ...], got None")
        if num_steps is not None and (isinstance(num_steps, bool) or int(num_steps) < 1):
            raise ValueError(f"num_steps must be an integer >= 1, got {num_steps!r}")
        self.num_steps = None if num_steps is None else int(num_steps)
        self.tau = float(tau)
        self.reset_scale = None if reset_scale is None else float(reset_scale)
        self.reset = reset
        self.reference_compat = bool(reference_compat)
        self.time_folded = bool(time_folded)
        self.method = method
        self.threshold = nnx.Param(jnp.asarray(threshold, param_dtype)) if learn_threshold else float(threshold)
        self.surrogate_alpha = (
            nnx.Param(jnp.asarray(surrogate_alpha, param_dtype)) if learn_alpha else float(surrogate_alpha)
        )
        if reset == "sampled" and rngs is None:
            raise ValueError("rngs must be given for reset='sampled' (each call draws a fresh seed), got None")
        self.rngs: nnx.Rngs | None = rngs if reset == "sampled" else None

    @staticmethod
    def _value(p: Any) -> Any:
        return p[...] if isinstance(p, nnx.Variable) else p

    def _key(self, key_or_seed: Any) -> Any:
        if self.reset != "sampled":
            return None
        if key_or_seed is not None:
            return key_or_seed
        assert self.rngs is not None  # __init__ requires rngs for sampled mode
        return self.rngs.reset()  # the "reset" stream, or "default" when there is none

    def _unfold(self, x: jax.Array) -> tuple[jax.Array, tuple[int, ...] | None]:
        if not self.time_folded or self.num_steps is None:  # __init__: folded implies num_steps
            return x, None
        shape = tuple(x.shape)
        if len(shape) < 1 or shape[0] % self.num_steps:
            raise ValueError(
                f"x must have shape [(T*B), ...] with T={self.num_steps} (time-folded layout), got {list(shape)}"
            )
        return x.reshape((self.num_steps, shape[0] // self.num_steps) + shape[1:]), shape

    def _call(self, fn, x, learned: dict[str, Any], key_or_seed: Any, return_membrane: bool):
        x = jnp.asarray(x)
        x, folded = self._unfold(x)
        out = fn(
            x,
            **learned,
            tau=self.tau,
            threshold=self._value(self.threshold),
            reset_scale=self.reset_scale,
            surrogate_alpha=self._value(self.surrogate_alpha),
            reset=self.reset,
            key_or_seed=self._key(key_or_seed),
            return_membrane=return_membrane,
            method=self.method,
        )
        if folded is None:
            return out
        if return_membrane:
            return type(out)(*(None if a is None else a.reshape(folded) for a in out))
        return out.reshape(folded)


class PSU(_Base):
    """PSU layer: ``S = [A X - gamma B Q > theta]``, ``P = sigmoid(A X)`` (no learned matrix).

    Input ``[T, *neuron_shape]`` (or ``[(T*B), ...]`` with ``time_folded``), output spikes of
    the same shape and dtype.
    """

    variant = "psu"

    def __init__(
        self,
        *,
        tau: float = 2.0,
        threshold: float = 1.0,
        reset_scale: Any = _UNSET,
        surrogate_alpha: float = 2.0,
        reset: str = "expected",
        reference_compat: bool = False,
        learn_threshold: bool | None = None,
        learn_alpha: bool | None = None,
        time_folded: bool | None = None,
        num_steps: int | None = None,
        method: str = "auto",
        param_dtype: Any = jnp.float32,
        rngs: nnx.Rngs | None = None,
    ) -> None:
        super().__init__(
            num_steps, tau=tau, threshold=threshold, reset_scale=reset_scale,
            surrogate_alpha=surrogate_alpha, reset=reset, reference_compat=reference_compat,
            learn_threshold=learn_threshold, learn_alpha=learn_alpha, time_folded=time_folded,
            method=method, param_dtype=param_dtype, rngs=rngs,
        )  # fmt: skip

    def __call__(self, x: Any, *, key_or_seed: Any = None, return_membrane: bool = False):
        return self._call(psu, x, {}, key_or_seed, return_membrane)


class _Learned(_Base):
    def __init__(self, num_steps: int, *, param_dtype: Any, rngs: nnx.Rngs | None, **kw: Any) -> None:
        if num_steps is None or isinstance(num_steps, bool) or int(num_steps) < 1:
            raise ValueError(f"num_steps must be an integer >= 1, got {num_steps!r}")
        if rngs is None:
            raise ValueError("rngs must be given to initialise the [T, T] weight, got None")
        super().__init__(num_steps, param_dtype=param_dtype, rngs=rngs, **kw)
        t = int(num_steps)
        # Kaiming-normal, fan-out, ReLU gain on the [T, T] weight: std = sqrt(2 / T).
        std = math.sqrt(2.0 / t)
        self.weight = nnx.Param(std * jax.random.normal(rngs.params(), (t, t), param_dtype))
        self.bias = nnx.Param(jnp.zeros((t,), param_dtype))

    def _learned(self) -> dict[str, Any]:
        return {"weight": self.weight[...], "bias": self.bias[...]}


class IPSU(_Learned):
    """IPSU layer: ``H = (W ⊙ M) X + b``, ``V = H - gamma B X``, ``S = [V > theta]``.

    ``num_steps`` is ``T`` (the learned matrix is ``[T, T]``). Sampled reset is undefined here.
    """

    variant = "ipsu"

    def __init__(
        self,
        num_steps: int,
        *,
        tau: float = 2.0,
        threshold: float = 1.0,
        reset_scale: Any = _UNSET,
        surrogate_alpha: float = 2.0,
        reset: str = "expected",
        reference_compat: bool = False,
        learn_threshold: bool | None = None,
        learn_alpha: bool | None = None,
        time_folded: bool | None = None,
        method: str = "auto",
        param_dtype: Any = jnp.float32,
        rngs: nnx.Rngs | None = None,
    ) -> None:
        super().__init__(
            num_steps, tau=tau, threshold=threshold, reset_scale=reset_scale,
            surrogate_alpha=surrogate_alpha, reset=reset, reference_compat=reference_compat,
            learn_threshold=learn_threshold, learn_alpha=learn_alpha, time_folded=time_folded,
            method=method, param_dtype=param_dtype, rngs=rngs,
        )  # fmt: skip

    def __call__(self, x: Any, *, return_membrane: bool = False):
        return self._call(ipsu, x, self._learned(), None, return_membrane)


class RPSU(_Learned):
    """RPSU layer: ``H = A X``, ``P = sigmoid((W ⊙ M) X + b)``, ``V = H - gamma B Q``."""

    variant = "rpsu"

    def __init__(
        self,
        num_steps: int,
        *,
        tau: float = 2.0,
        threshold: float = 1.0,
        reset_scale: Any = _UNSET,
        surrogate_alpha: float = 2.0,
        reset: str = "expected",
        reference_compat: bool = False,
        learn_threshold: bool | None = None,
        learn_alpha: bool | None = None,
        time_folded: bool | None = None,
        method: str = "auto",
        param_dtype: Any = jnp.float32,
        rngs: nnx.Rngs | None = None,
    ) -> None:
        super().__init__(
            num_steps, tau=tau, threshold=threshold, reset_scale=reset_scale,
            surrogate_alpha=surrogate_alpha, reset=reset, reference_compat=reference_compat,
            learn_threshold=learn_threshold, learn_alpha=learn_alpha, time_folded=time_folded,
            method=method, param_dtype=param_dtype, rngs=rngs,
        )  # fmt: skip

    def __call__(self, x: Any, *, key_or_seed: Any = None, return_membrane: bool = False):
        return self._call(rpsu, x, self._learned(), key_or_seed, return_membrane)
