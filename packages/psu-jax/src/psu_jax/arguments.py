"""Argument handling shared by the functional and online APIs (SPEC §8 through ``psu_core.checks``).

JAX adds one question to every check: does the argument have a value now? Under ``jit`` an array
argument is an abstract tracer. So:

* ``tau`` and ``reset_scale`` select the computation's constants and must be concrete numbers;
* every scalar follows SPEC §8's one rule (``psu_core.checks.scalar_value``): a Python or NumPy
  real number or a 0-d array of an integer or floating dtype (JAX's or NumPy's); ``bool``,
  complex and arrays with an axis (``[1]`` included) are ``ValueError`` naming the argument;
* ``threshold`` and ``surrogate_alpha`` may be traced (learnable): a concrete value, also inside
  eager ``grad``, is checked by value; a traced one by the rule's shape and dtype only, with a
  valid stand-in handed to ``psu_core.checks``;
* ``seed`` is an integer in ``[0, 2**64)`` or a JAX PRNG key (checked in
  :func:`psu_jax.random.seed_words`);
* ``neuron_offset`` is an integer ``>= 0`` with ``neuron_offset + N <= 2**32``, checked by value
  when concrete; a traced one (e.g. ``lax.axis_index(axis) * local_neurons`` under ``shard_map``)
  is checked for shape ``()`` and an integer dtype only.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import core as _jax_core

from psu_core import checks
from psu_jax import random as _random
from psu_jax.recurrence import Decay, decay_scalars

try:  # moved to jax.extend.core in newer JAX
    from jax.extend.core import concrete_or_error as _concrete_or_error
except ImportError:  # pragma: no cover - older JAX
    from jax.core import concrete_or_error as _concrete_or_error

__all__ = ["Checked", "check", "check_neuron_offset", "concrete", "is_traced", "as_array"]

_ABSTRACT = object()


def concrete(v: Any) -> Any:
    """The value of ``v``, or ``_ABSTRACT`` when it is traced without a value (under ``jit``).

    Tracers of eager ``grad``/``vjp`` carry a concrete primal and are checked like plain values.
    """
    if not isinstance(v, _jax_core.Tracer):
        return v
    try:
        return _concrete_or_error(None, v)
    except jax.errors.ConcretizationTypeError:
        return _ABSTRACT


def is_traced(v: Any) -> bool:
    """True when ``v`` has no value now (abstract under ``jit``)."""
    return concrete(v) is _ABSTRACT


def as_array(x: Any) -> Any:
    """``x`` as an array, left as it is when it already is one (a NumPy array stays on the host)."""
    return x if isinstance(x, (jax.Array, np.ndarray, _jax_core.Tracer)) else jnp.asarray(x)


def _static_number(name: str, value: Any) -> Any:
    """A concrete ``value`` as it is: ``psu_core.checks`` applies the one scalar rule to it."""
    if value is None:
        return None
    if is_traced(value):
        raise TypeError(
            f"{name} must be a concrete number (it is static under jit), got a traced value; "
            "pass it as a Python float, e.g. close over it or mark it static"
        )
    return concrete(value)


def _traceable_scalar(name: str, value: Any, stand_in: float) -> Any:
    """The value ``psu_core.checks`` sees: ``value`` itself when it has one, or ``stand_in`` when it
    is traced, after the scalar rule has seen a stand-in of its shape and dtype (all it has)."""
    if is_traced(value):
        checks.scalar_value(name, np.zeros(value.shape, value.dtype))
        return stand_in
    return concrete(value)


def check_neuron_offset(neuron_offset: Any, num_neurons: int) -> Any:
    """``neuron_offset`` as the uint32 scalar to add to every counter word ``n`` (SPEC §6): a host
    ``np.uint32`` when concrete, else the traced value cast to uint32. ``ValueError`` unless it
    is an integer ``>= 0`` with ``neuron_offset + num_neurons <= 2**32``."""
    if is_traced(neuron_offset):
        if neuron_offset.shape != () or not jnp.issubdtype(neuron_offset.dtype, jnp.integer):
            raise ValueError(
                "neuron_offset must be an integer scalar (the flat index of this call's first neuron in "
                f"the whole call), got a traced array of dtype {neuron_offset.dtype} and shape {neuron_offset.shape}"
            )
        return jnp.asarray(neuron_offset).astype(jnp.uint32)
    value = concrete(neuron_offset)
    if isinstance(value, (jax.Array, np.ndarray)) and value.shape == () and jnp.issubdtype(value.dtype, jnp.integer):
        value = int(value)
    return np.uint32(checks.check_neuron_offset(value, num_neurons))


def _seed_for_checks(reset: Any, seed: Any) -> Any:
    if reset != "sampled" or seed is None:
        return seed
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, (bool, np.bool_)):
        return int(seed)
    if isinstance(seed, (jax.Array, np.ndarray, _jax_core.Tracer)):
        return 0  # a JAX key: checked in psu_jax.random.seed_words
    return seed  # anything else: psu_core reports it


def _shape(a: Any) -> tuple[int, ...] | None:
    return None if a is None else tuple(jnp.shape(a))


class Checked(NamedTuple):
    """A checked call: ``params`` (T, neuron shape, decay, tie, mode; its ``threshold`` and
    ``surrogate_alpha`` are stand-ins when those are traced), the ``threshold`` and
    ``surrogate_alpha`` to compute with (numbers or arrays, possibly traced) and ``words``, the
    SPEC §6 key as ``uint32[2]`` in sampled mode (else None), and ``offset``, the checked
    ``neuron_offset`` as uint32 in sampled mode (else None: expected mode checks and ignores it)."""

    params: checks.Params
    threshold: Any
    surrogate_alpha: Any
    words: jax.Array | None
    offset: Any = None

    def scalars(self, dtype: Any) -> tuple[Decay, np.float64, np.bool_]:
        """``(a, fixed gamma, tied)`` as host scalars, ``a`` the :class:`~psu_jax.recurrence.Decay`
        in the compute ``dtype``: traced arguments of the compiled programs, so that calls
        differing only in ``tau`` or ``reset_scale`` share one program."""
        p = self.params
        gamma = 0.0 if p.tied else p.reset_scale
        return decay_scalars(p.decay, dtype), np.float64(gamma), np.bool_(p.tied)


def check(
    variant: str,
    x: Any,
    weight: Any,
    bias: Any,
    *,
    tau: Any,
    threshold: Any,
    reset_scale: Any,
    surrogate_alpha: Any,
    reset: Any,
    seed: Any,
    step: tuple[int, int | None, tuple[int, ...]] | None = None,
    neuron_offset: Any = 0,
) -> Checked:
    """Check a call on ``x [T, *neuron_shape]`` (``checks.validate_call``, then ``neuron_offset``)
    or, with ``step = (t, horizon, neuron_shape)``, one online step on ``x [*neuron_shape]``
    (``checks.validate_step``)."""
    x_dtype = jnp.dtype(x.dtype)
    common = dict(
        x_shape=tuple(x.shape), x_dtype=str(x_dtype), x_is_floating=bool(jnp.issubdtype(x_dtype, jnp.floating)),
        tau=_static_number("tau", tau), threshold=_traceable_scalar("threshold", threshold, 1.0),
        reset_scale=_static_number("reset_scale", reset_scale),
        surrogate_alpha=_traceable_scalar("surrogate_alpha", surrogate_alpha, 2.0),
        weight_shape=_shape(weight), bias_shape=_shape(bias), reset=reset, seed=_seed_for_checks(reset, seed),
    )  # fmt: skip
    if step is None:
        params = checks.validate_call(variant, **common)
    else:
        t, horizon, neuron_shape = step
        params = checks.validate_step(variant, t=t, horizon=horizon, neuron_shape=neuron_shape, **common)
    offset = None
    if step is None:
        if params.sampled and params.n > _random.COUNTER_LIMIT:
            raise ValueError(f"x: sampled reset needs at most 2**32 neurons, got {params.n}")
        # Expected mode draws nothing: the offset is checked as a counter word, not against N.
        offset = check_neuron_offset(neuron_offset, params.n if params.sampled else 1)
    words = _random.seed_words(seed) if params.sampled else None
    return Checked(params, threshold, surrogate_alpha, words, offset if params.sampled else None)
