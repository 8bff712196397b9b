"""Flax NNX modules ``PSU``, ``IPSU``, ``RPSU`` over the functional API (SPEC §7, §11).

Each maps ``x [T, *neuron_shape]`` (or ``[(T*B), ...]`` with ``time_folded``) to spikes of the
same shape and dtype; ``return_membrane=True`` on a call returns ``PSUOutput(spikes, membrane,
None)`` instead (the membrane under ``stop_gradient``). Parameters:

- ``surrogate_alpha`` (``alpha``): a learnable scalar ``nnx.Param`` (initial value 2.0, as
  published), or a fixed Python float with ``learn_alpha=False``.
- ``threshold`` (``theta``): a fixed Python float, or a learnable scalar ``nnx.Param`` with
  ``learn_threshold=True``. With ``reset_scale=None`` (the default) the reset scale is tied to it,
  ``gamma = theta``, so a learned threshold also moves the reset term and receives the gradient of
  SPEC §5 through it; a number fixes ``gamma`` (no gradient).
- ``weight [T, T]`` (IPSU, RPSU): Kaiming-normal, fan-out, ReLU gain: i.i.d. normal with
  standard deviation ``sqrt(2 / T)`` on every entry (the causal mask is applied on use);
  ``bias [T]``: zeros.

``reference_compat=True`` is the published code's preset (SPEC §7): the reset scale tied to the
threshold for PSU (``reset_scale=None``) and fixed to 1.0 for IPSU and RPSU, and the time-folded
layout ``[(T*B), ...]`` (time-major blocks) for inputs and outputs, which needs ``T`` (PSU's
keyword; IPSU's and RPSU's first argument). Its learnable alpha and fixed threshold are the
defaults anyway. ``reset_scale`` and ``time_folded`` given explicitly override the preset.

Learnable scalars are arrays, and their values cannot be checked under ``jit``: the modules
check them by value when built and the functional API checks their shape (scalar) and dtype
(floating) on every call; a training step that drives ``theta`` or ``alpha`` to ``<= 0`` is not
caught under ``jit``.

Sampled reset (``reset="sampled"``, PSU/RPSU): each call draws a fresh JAX key from the module's
``rngs`` stream ``"reset"`` (falling back to ``"default"``), or uses the ``seed`` passed to the
call (an integer seed gives the draws of psu-core bit for bit; a JAX key is used as given). A call
also takes ``neuron_offset`` (:func:`psu_jax.psu`), for a ``shard_map`` shard; in the time-folded
layout the neurons are those of ``[T, B, ...]``.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from psu_core import checks
from psu_core.api import PSUOutput
from psu_jax.functional import ipsu, psu, rpsu

__all__ = ["PSU", "IPSU", "RPSU"]

_UNSET: Any = object()


def _check_T(T: Any) -> int | None:
    if T is not None and (isinstance(T, bool) or not isinstance(T, int) or T < 1):
        raise ValueError(f"T must be an integer >= 1, got {T!r}")
    return T


class _Base(nnx.Module):
    variant = "psu"

    def __init__(
        self,
        T: int | None,
        *,
        tau: float,
        threshold: float,
        reset_scale: Any,
        surrogate_alpha: float,
        reset: str,
        reference_compat: bool,
        learn_threshold: bool,
        learn_alpha: bool,
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
        if reset_scale is _UNSET:
            reset_scale = 1.0 if reference_compat and v != "psu" else None
        checks.check_reset_scale(reset_scale)
        time_folded = bool(reference_compat) if time_folded is None else bool(time_folded)
        T = _check_T(T)
        if time_folded and T is None:
            raise ValueError("T must be given for time-folded inputs [(T*B), ...], got None")
        self.T = T
        self.tau = float(tau)
        self.reset_scale = None if reset_scale is None else float(reset_scale)
        self.reset = reset
        self.reference_compat = bool(reference_compat)
        self.time_folded = time_folded
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

    def _seed(self, seed: Any) -> Any:
        if self.reset != "sampled":
            return None
        if seed is not None:
            return seed
        assert self.rngs is not None  # __init__ requires rngs for sampled mode
        return self.rngs.reset()  # the "reset" stream, or "default" when there is none

    def _unfold(self, x: jax.Array) -> tuple[jax.Array, tuple[int, ...] | None]:
        if not self.time_folded or self.T is None:  # __init__: folded implies T
            return x, None
        shape = tuple(x.shape)
        if len(shape) < 1 or shape[0] % self.T:
            raise ValueError(f"x must have shape [(T*B), ...] with T={self.T} (time-folded layout), got {list(shape)}")
        return x.reshape((self.T, shape[0] // self.T) + shape[1:]), shape

    def _call(self, fn, x, learned: tuple[Any, ...], seed: Any, return_membrane: bool, neuron_offset: Any = 0):
        x, folded = self._unfold(jnp.asarray(x))
        out = fn(
            x,
            *learned,
            tau=self.tau,
            threshold=self._value(self.threshold),
            reset_scale=self.reset_scale,
            surrogate_alpha=self._value(self.surrogate_alpha),
            reset=self.reset,
            seed=self._seed(seed),
            method=self.method,
            return_membrane=return_membrane,
            neuron_offset=neuron_offset,
        )
        fold = (lambda a: a) if folded is None else (lambda a: a.reshape(folded))
        if return_membrane:
            return PSUOutput(fold(out.spikes), fold(out.membrane), None)
        return fold(out)


class PSU(_Base):
    """PSU layer: ``S = [A X - gamma B Q > theta]``, ``P = sigmoid(A X)`` (no learned matrix).

    Input ``[T, *neuron_shape]`` (or ``[(T*B), ...]`` with ``time_folded``, which needs ``T``),
    output spikes of the same shape and dtype, or ``PSUOutput(spikes, membrane, None)`` with
    ``return_membrane=True``. A sampled layer takes ``seed`` per call (else it draws one) and
    ``neuron_offset`` (:func:`psu_jax.psu`).
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
        learn_threshold: bool = False,
        learn_alpha: bool = True,
        time_folded: bool | None = None,
        T: int | None = None,
        method: str = "auto",
        param_dtype: Any = jnp.float32,
        rngs: nnx.Rngs | None = None,
    ) -> None:
        super().__init__(
            T, tau=tau, threshold=threshold, reset_scale=reset_scale,
            surrogate_alpha=surrogate_alpha, reset=reset, reference_compat=reference_compat,
            learn_threshold=learn_threshold, learn_alpha=learn_alpha, time_folded=time_folded,
            method=method, param_dtype=param_dtype, rngs=rngs,
        )  # fmt: skip

    def __call__(self, x: Any, *, seed: Any = None, return_membrane: bool = False, neuron_offset: Any = 0):
        return self._call(psu, x, (), seed, return_membrane, neuron_offset)


class _Learned(_Base):
    def __init__(self, T: int, *, param_dtype: Any, rngs: nnx.Rngs | None, **kw: Any) -> None:
        if _check_T(T) is None:
            raise ValueError("T must be an integer >= 1 (the learned matrix is [T, T]), got None")
        if rngs is None:
            raise ValueError("rngs must be given to initialise the [T, T] weight, got None")
        super().__init__(T, param_dtype=param_dtype, rngs=rngs, **kw)
        # Kaiming-normal, fan-out, ReLU gain on the [T, T] weight: std = sqrt(2 / T).
        std = math.sqrt(2.0 / T)
        self.weight = nnx.Param(std * jax.random.normal(rngs.params(), (T, T), param_dtype))
        self.bias = nnx.Param(jnp.zeros((T,), param_dtype))

    def _learned(self) -> tuple[Any, Any]:
        return self.weight[...], self.bias[...]


class IPSU(_Learned):
    """IPSU layer: ``H = (W ⊙ M) X + b``, ``V = H - gamma B X``, ``S = [V > theta]``.

    ``T`` is the number of time steps (the learned matrix is ``[T, T]``). Sampled reset is
    undefined here (SPEC §6). Input and output as :class:`PSU`.
    """

    variant = "ipsu"

    def __init__(
        self,
        T: int,
        *,
        tau: float = 2.0,
        threshold: float = 1.0,
        reset_scale: Any = _UNSET,
        surrogate_alpha: float = 2.0,
        reset: str = "expected",
        reference_compat: bool = False,
        learn_threshold: bool = False,
        learn_alpha: bool = True,
        time_folded: bool | None = None,
        method: str = "auto",
        param_dtype: Any = jnp.float32,
        rngs: nnx.Rngs | None = None,
    ) -> None:
        super().__init__(
            T, tau=tau, threshold=threshold, reset_scale=reset_scale,
            surrogate_alpha=surrogate_alpha, reset=reset, reference_compat=reference_compat,
            learn_threshold=learn_threshold, learn_alpha=learn_alpha, time_folded=time_folded,
            method=method, param_dtype=param_dtype, rngs=rngs,
        )  # fmt: skip

    def __call__(self, x: Any, *, return_membrane: bool = False):
        return self._call(ipsu, x, self._learned(), None, return_membrane)


class RPSU(_Learned):
    """RPSU layer: ``H = A X``, ``P = sigmoid((W ⊙ M) X + b)``, ``V = H - gamma B Q``.

    ``T`` is the number of time steps (the learned matrix is ``[T, T]``). Input, output and
    ``seed`` as :class:`PSU`.
    """

    variant = "rpsu"

    def __init__(
        self,
        T: int,
        *,
        tau: float = 2.0,
        threshold: float = 1.0,
        reset_scale: Any = _UNSET,
        surrogate_alpha: float = 2.0,
        reset: str = "expected",
        reference_compat: bool = False,
        learn_threshold: bool = False,
        learn_alpha: bool = True,
        time_folded: bool | None = None,
        method: str = "auto",
        param_dtype: Any = jnp.float32,
        rngs: nnx.Rngs | None = None,
    ) -> None:
        super().__init__(
            T, tau=tau, threshold=threshold, reset_scale=reset_scale,
            surrogate_alpha=surrogate_alpha, reset=reset, reference_compat=reference_compat,
            learn_threshold=learn_threshold, learn_alpha=learn_alpha, time_folded=time_folded,
            method=method, param_dtype=param_dtype, rngs=rngs,
        )  # fmt: skip

    def __call__(self, x: Any, *, seed: Any = None, return_membrane: bool = False, neuron_offset: Any = 0):
        return self._call(rpsu, x, self._learned(), seed, return_membrane, neuron_offset)
