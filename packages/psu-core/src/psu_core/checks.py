"""The bad-input contract of SPEC §8, written once for every Python backend.

Backends call :func:`validate_call` with shapes and plain scalars before computing; it never
touches the data, so it costs nothing next to the neuron itself. Non-finite input values are
only looked for when the caller opts in (``validate=True``); the backend computes
``all_finite`` in its own framework and hands the verdict to :func:`check_finite`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

VARIANTS = ("psu", "ipsu", "rpsu")
RESETS = ("expected", "sampled")
SAMPLED_VARIANTS = ("psu", "rpsu")
SEED_LIMIT = 2**64


def _real(name: str, value: Any, requirement: str) -> float:
    # bool is an int subclass; a flag passed where a number belongs is a mistake, not 1.0.
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be {requirement}, got {value!r} of type {type(value).__name__}")
    return float(value)


def check_tau(tau: Any) -> float:
    """``tau`` must be a finite real number greater than 1."""
    requirement = "a finite number > 1"
    value = _real("tau", tau, requirement)
    if not (math.isfinite(value) and value > 1.0):
        raise ValueError(f"tau must be {requirement}, got {tau!r}")
    return value


def check_positive(name: str, value: Any) -> float:
    """``threshold`` and ``surrogate_alpha`` must be finite and strictly positive."""
    requirement = "a finite number > 0"
    v = _real(name, value, requirement)
    if not (math.isfinite(v) and v > 0.0):
        raise ValueError(f"{name} must be {requirement}, got {value!r}")
    return v


def check_reset_scale(reset_scale: Any) -> float | None:
    """``reset_scale`` is ``None`` (tied to the threshold) or a finite number ``>= 0``."""
    if reset_scale is None:
        return None
    requirement = "None (tied to threshold) or a finite number >= 0"
    v = _real("reset_scale", reset_scale, requirement)
    if not (math.isfinite(v) and v >= 0.0):
        raise ValueError(f"reset_scale must be {requirement}, got {reset_scale!r}")
    return v


def check_variant(variant: Any) -> str:
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    return str(variant)


def check_reset(variant: str, reset: Any, seed: Any) -> int | None:
    """Check the reset mode and, in sampled mode, the seed; returns the seed as an int or None."""
    if reset not in RESETS:
        raise ValueError(f"reset must be one of {RESETS}, got {reset!r}")
    if reset == "expected":
        return None
    if variant not in SAMPLED_VARIANTS:
        raise ValueError(
            f"reset must be 'expected' for variant {variant!r} ('sampled' is defined for "
            f"{SAMPLED_VARIANTS} only: the {variant} reset term decays the input, not a probability), "
            f"got {reset!r}"
        )
    return check_seed(seed)


def check_seed(seed: Any) -> int:
    """A seed is an integer in ``[0, 2**64)``."""
    requirement = "an integer in [0, 2**64) when reset='sampled'"
    if seed is None:
        raise ValueError(f"seed must be {requirement}, got None")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ValueError(f"seed must be {requirement}, got {seed!r} of type {type(seed).__name__}")
    value = int(seed)
    if not 0 <= value < SEED_LIMIT:
        raise ValueError(f"seed must be {requirement}, got {value}")
    return value


def check_x(x_shape: Sequence[int], x_dtype: str, x_is_floating: bool) -> int:
    """``x`` must be floating, of rank >= 1, with at least one time step. Returns ``T``."""
    if not x_is_floating:
        raise TypeError(f"x must have a floating dtype (float16, bfloat16, float32, float64), got {x_dtype}")
    shape = tuple(int(d) for d in x_shape)
    if len(shape) < 1:
        raise ValueError(f"x must have shape [T, ...] with rank >= 1, got shape {shape}")
    if shape[0] < 1:
        raise ValueError(f"x must have at least one time step (x.shape[0] >= 1), got shape {shape}")
    return shape[0]


def check_learned(variant: str, T: int, weight_shape: Sequence[int] | None, bias_shape: Sequence[int] | None) -> None:
    """IPSU and RPSU need ``weight [T, T]`` and ``bias [T]``; PSU takes neither."""
    if variant == "psu":
        for name, shape in (("weight", weight_shape), ("bias", bias_shape)):
            if shape is not None:
                raise ValueError(f"{name} must be None for variant 'psu', got an array of shape {tuple(shape)}")
        return
    expected = {"weight": (T, T), "bias": (T,)}
    for name, shape in (("weight", weight_shape), ("bias", bias_shape)):
        if shape is None:
            raise ValueError(
                f"{name} must be an array of shape {list(expected[name])} for variant {variant!r}, got None"
            )
        got = tuple(int(d) for d in shape)
        if got != expected[name]:
            raise ValueError(f"{name} must have shape {list(expected[name])} for an input with T={T}, got {list(got)}")


def validate_call(
    variant: str,
    *,
    x_shape: Sequence[int],
    x_dtype: str,
    x_is_floating: bool,
    tau: Any,
    threshold: Any,
    reset_scale: Any,
    surrogate_alpha: Any,
    weight_shape: Sequence[int] | None = None,
    bias_shape: Sequence[int] | None = None,
    reset: Any = "expected",
    seed: Any = None,
) -> int:
    """Check one call against SPEC §8; raise ``TypeError``/``ValueError`` or return ``T``.

    The checks run in a fixed order (variant, x, scalars, learned parameters, reset) so that
    every backend reports the same first problem for the same bad call.
    """
    variant = check_variant(variant)
    T = check_x(x_shape, x_dtype, x_is_floating)
    check_tau(tau)
    check_positive("threshold", threshold)
    check_reset_scale(reset_scale)
    check_positive("surrogate_alpha", surrogate_alpha)
    check_learned(variant, T, weight_shape, bias_shape)
    check_reset(variant, reset, seed)
    return T


def check_finite(all_finite: bool, name: str = "x") -> None:
    """Raise when a ``validate=True`` scan found NaN or infinity in ``name``."""
    if not all_finite:
        raise ValueError(f"{name} must contain only finite values (validate=True), got NaN or infinity")
