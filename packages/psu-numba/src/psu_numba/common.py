"""What every target shares below the public API: the checked call, result types, kernel launches.

Every public entry point checks its call with :func:`psu_core.checks.validate_call` (SPEC §8) on
array metadata only, then hands the kernels plain scalars through a :class:`Launch`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from psu_core import checks

#: Variant codes the kernels branch on (one compiled kernel serves all three variants).
PSU, IPSU, RPSU = 0, 1, 2
VARIANT_CODES = {"psu": PSU, "ipsu": IPSU, "rpsu": RPSU}


class Gradients(NamedTuple):
    """Vector-Jacobian product (SPEC §5).

    ``x``: dL/dX, like ``x``; ``weight`` ``[T, T]`` (zero above the diagonal) and ``bias`` ``[T]``
    for IPSU/RPSU, ``None`` for PSU; ``threshold`` and ``surrogate_alpha``: Python floats.
    """

    x: Any
    weight: Any
    bias: Any
    threshold: float
    surrogate_alpha: float


@dataclass(frozen=True)
class Params(checks.Params):
    """A checked call (:class:`psu_core.checks.Params`) plus the variant code the kernels branch on."""

    @property
    def code(self) -> int:
        return VARIANT_CODES[self.variant]

    @classmethod
    def of(cls, params: checks.Params) -> Params:
        return cls(**dataclasses.asdict(params))


@dataclass(frozen=True)
class Launch:
    """One kernel call: the checked parameters, the dtype the kernel runs in, and its operands.

    ``x`` is ``[T, N]`` (C order, a time step is a row of neurons), or ``x_t [N]`` for an online
    step; ``w`` ``[T, T]`` and ``b`` ``[T]`` for IPSU/RPSU, ``[1, 1]`` and ``[1]`` zeros for PSU
    (the kernels take one signature). ``T`` is the horizon (1 for a PSU step), ``n`` the neurons.
    """

    params: Params
    dtype: np.dtype
    x: Any
    w: Any
    b: Any

    @property
    def T(self) -> int:
        return self.params.T

    @property
    def n(self) -> int:
        return self.params.n

    @property
    def learned(self) -> bool:
        return self.params.code != PSU

    @property
    def scalars(self) -> tuple[Any, ...]:
        """``(a_hi, a_lo, gamma, theta, alpha, k0, k1)``: the floats in the kernel dtype (so float32
        work stays in float32), the decay ``a = 1/tau`` split as ``a_hi = dtype(a)``, ``a_lo =
        dtype(a - a_hi)`` (0 in float64; SPEC §9: the kernels apply both with one rounding, so
        float32's rounding of ``a`` does not compound over T steps), the Threefry key words as
        uint64."""
        p, cast = self.params, self.dtype.type
        k0, k1 = p.key
        a_hi = cast(p.decay)
        a_lo = cast(p.decay - float(a_hi))
        return a_hi, a_lo, cast(p.gamma), cast(p.threshold), cast(p.surrogate_alpha), np.uint64(k0), np.uint64(k1)


def shape_of(a: Any) -> tuple[int, ...] | None:
    return None if a is None else tuple(int(d) for d in a.shape)


def is_floating(dtype: Any) -> bool:
    """A floating dtype of SPEC §8 (float16/32/64 and ``ml_dtypes.bfloat16``)."""
    return checks.numpy_is_floating(dtype)


def neuron_count(shape: tuple[int, ...]) -> int:
    """``N``: the product of ``shape`` (a neuron shape; 1 for ``()``)."""
    return int(math.prod(shape))


def check_neurons_for_sampling(params: checks.Params, n: int) -> None:
    # The counter word holding the neuron index is 32 bits wide (SPEC §6).
    if params.sampled and n > 2**32:
        raise ValueError(f"x must have at most 2**32 neurons for reset='sampled', got {n}")
