"""The bad-input contract of SPEC §8, written once for every Python backend.

Backends call :func:`validate_call` (a whole input) or :func:`validate_step` (one online step) with
shapes and plain scalars before computing; neither touches the data, so they cost nothing next to
the neuron itself. Both return the checked call as a :class:`Params`, which internal code passes
around instead of long parameter lists. Non-finite input values are only looked for when the caller
opts in (``validate=True``); the backend computes ``all_finite`` in its own framework and hands the
verdict to :func:`check_finite`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

VARIANTS = ("psu", "ipsu", "rpsu")
RESETS = ("expected", "sampled")
SAMPLED_VARIANTS = ("psu", "rpsu")
SEED_LIMIT = 2**64


def scalar_value(name: str, value: Any, requirement: str = "a finite number") -> float:
    """One scalar rule for every backend (SPEC §8): a scalar parameter is a real number -- a Python
    ``int``/``float``, a NumPy real scalar, or a **0-d** array or tensor of an integer or floating
    dtype (NumPy's or the framework's), read with ``float()``. ``bool``, complex values and arrays
    with any axis (``[1]`` included) are refused with ``ValueError`` naming ``name``."""
    shape = getattr(value, "shape", None)
    if shape is not None and not isinstance(value, numbers.Number):
        dtype = str(getattr(value, "dtype", "")).removeprefix("torch.")
        if tuple(shape) != ():
            raise ValueError(
                f"{name} must be {requirement} (a Python number or a 0-d array), got an array of shape {list(shape)}"
            )
        if "bool" in dtype or "complex" in dtype:
            raise ValueError(f"{name} must be {requirement}, got a 0-d array of dtype {dtype}")
        try:
            return float(value)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{name} must be {requirement}, got {value!r}") from error
    # bool is an int subclass; a flag passed where a number belongs is a mistake, not 1.0.
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be {requirement}, got {value!r} of type {type(value).__name__}")
    return float(value)


def _real(name: str, value: Any, requirement: str) -> float:
    return scalar_value(name, value, requirement)


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


#: Threefry counter words are 32 bits wide (SPEC §6): every neuron index must stay below this.
COUNTER_LIMIT = 2**32


def check_neuron_offset(neuron_offset: Any, n_neurons: int) -> int:
    """``neuron_offset`` (SPEC §6: the flat index of a split call's first neuron in the whole call)
    is an integer ``>= 0`` with ``neuron_offset + n_neurons <= 2**32``: every counter word
    ``n + neuron_offset`` must be a 32-bit word. Returns it as an int; ``ValueError`` otherwise."""
    if isinstance(neuron_offset, bool) or not isinstance(neuron_offset, numbers.Integral):
        raise ValueError(
            f"neuron_offset must be an integer >= 0 (the flat index of this call's first neuron in the whole "
            f"call), got {neuron_offset!r} of type {type(neuron_offset).__name__}"
        )
    offset = int(neuron_offset)
    if offset < 0 or offset + n_neurons > COUNTER_LIMIT:
        raise ValueError(
            f"neuron_offset must be >= 0 with neuron_offset + N <= 2**32 (the Threefry counter word "
            f"n + neuron_offset of each of this call's N = {n_neurons} neurons must be < 2**32), got {offset}"
        )
    return offset


def numpy_is_floating(dtype: Any) -> bool:
    """True for NumPy's floating dtypes and for ``ml_dtypes.bfloat16`` (kind ``'V'`` to NumPy, but a
    floating format: SPEC §8 lists it). Backends on NumPy compute a bfloat16 input in float32."""
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        return False
    return bool(np.issubdtype(dtype, np.floating)) or dtype.name == "bfloat16"


def numpy_compute_dtype(dtype: Any, at_least: Any = np.float32) -> np.dtype:
    """The dtype a NumPy backend computes a floating ``dtype`` in: ``at_least`` for float16 and
    bfloat16 (SPEC §9: half precision accumulates in float32), else the dtype itself."""
    dtype = np.dtype(dtype)
    if dtype.name in ("float16", "bfloat16"):
        return np.dtype(at_least)
    return dtype


def check_floating(name: str, dtype: str, is_floating: bool) -> None:
    """Inputs must have a floating dtype (``TypeError``)."""
    if not is_floating:
        raise TypeError(f"{name} must have a floating dtype (float16, bfloat16, float32, float64), got {dtype}")


def check_x(x_shape: Sequence[int], x_dtype: str, x_is_floating: bool) -> int:
    """``x`` must be floating, of rank >= 1, with at least one time step. Returns ``T``."""
    check_floating("x", x_dtype, x_is_floating)
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


@dataclass(frozen=True)
class Params:
    """A checked call (SPEC §1, §6): the variant, ``T``, the neuron shape and the scalars.

    ``threshold`` and ``surrogate_alpha`` are the checked values as floats; a backend whose
    threshold is a learned tensor checks a stand-in and keeps its tensor beside this.
    """

    variant: str
    T: int
    neuron_shape: tuple[int, ...]
    tau: float
    threshold: float
    reset_scale: float | None
    surrogate_alpha: float
    reset: str
    seed: int | None  # None in expected mode (a seed given there is ignored)

    @property
    def decay(self) -> float:
        """``a = 1 / tau``: the decay and the input gain."""
        return 1.0 / self.tau

    @property
    def tied(self) -> bool:
        """``reset_scale=None``: ``gamma`` is the threshold, and receives its gradient (SPEC §2)."""
        return self.reset_scale is None

    @property
    def gamma(self) -> float:
        """The reset scale: ``threshold`` when tied."""
        return self.threshold if self.reset_scale is None else self.reset_scale

    @property
    def sampled(self) -> bool:
        return self.reset == "sampled"

    @property
    def key(self) -> tuple[int, int]:
        """Threefry key ``(seed & 0xFFFFFFFF, seed >> 32)`` (SPEC §6); ``(0, 0)`` in expected mode."""
        if self.seed is None:
            return 0, 0
        return self.seed & 0xFFFFFFFF, self.seed >> 32

    @property
    def n(self) -> int:
        """Neurons: the product of ``neuron_shape`` (1 for a rank-1 input)."""
        return math.prod(self.neuron_shape)


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
) -> Params:
    """Check one call against SPEC §8; raise ``TypeError``/``ValueError`` or return its :class:`Params`.

    The checks run in a fixed order (variant, x, scalars, learned parameters, reset) so that
    every backend reports the same first problem for the same bad call.
    """
    variant = check_variant(variant)
    T = check_x(x_shape, x_dtype, x_is_floating)
    tau_ = check_tau(tau)
    threshold_ = check_positive("threshold", threshold)
    reset_scale_ = check_reset_scale(reset_scale)
    alpha_ = check_positive("surrogate_alpha", surrogate_alpha)
    check_learned(variant, T, weight_shape, bias_shape)
    seed_ = check_reset(variant, reset, seed)
    return Params(variant, T, tuple(int(d) for d in x_shape[1:]), tau_, threshold_, reset_scale_, alpha_, reset, seed_)


def validate_step(
    variant: str,
    *,
    t: int,
    horizon: int | None,
    neuron_shape: Sequence[int],
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
) -> Params:
    """Check one online step (SPEC §3, §8): the call as :func:`validate_call` checks a whole input of
    the state's horizon (``T`` for IPSU/RPSU, 1 for PSU), then ``x_t`` against the state's neuron
    shape, then no step past the horizon. Returns the :class:`Params` (``T`` is the horizon)."""
    shape = tuple(int(d) for d in neuron_shape)
    check_floating("x_t", x_dtype, x_is_floating)
    params = validate_call(
        variant, x_shape=(horizon or 1, *shape), x_dtype=x_dtype, x_is_floating=x_is_floating, tau=tau,
        threshold=threshold, reset_scale=reset_scale, surrogate_alpha=surrogate_alpha,
        weight_shape=weight_shape, bias_shape=bias_shape, reset=reset, seed=seed,
    )  # fmt: skip
    if tuple(int(d) for d in x_shape) != shape:
        raise ValueError(f"x_t must have shape {list(shape)} (the state's neuron shape), got {list(x_shape)}")
    if horizon is not None and t >= horizon:
        raise ValueError(f"step {t} is past the end: {variant} was built for T={horizon} steps")
    return params


def check_finite(all_finite: bool, name: str = "x") -> None:
    """Raise when a ``validate=True`` scan found NaN or infinity in ``name``."""
    if not all_finite:
        raise ValueError(f"{name} must contain only finite values (validate=True), got NaN or infinity")
