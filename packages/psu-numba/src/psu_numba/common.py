"""What the three implementations share on the Python side: argument checks and result types.

Every public entry point (``psu_numba.cpu``, ``psu_numba.numba_cuda``, ``psu_numba.cupy``) checks its
call with :func:`psu_core.checks.validate_call` (SPEC §8) before touching the data, then hands
plain scalars to its kernels through a :class:`Params`.
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

#: Dtypes the kernels are compiled for. float16 input is computed in float32 (SPEC: float32
#: accumulation for half precision) and the results are cast back to float16.
KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class ForwardResult(NamedTuple):
    """Forward outputs, each ``[T, *neuron_shape]`` in the dtype of ``x``.

    ``membrane`` is ``V`` when ``return_membrane=True``, else ``None``; ``reset`` is the drawn
    ``R`` (0/1) when ``reset="sampled"`` and ``return_reset=True``, else ``None``.
    """

    spikes: Any
    membrane: Any
    reset: Any


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


class Step(NamedTuple):
    """One online step: ``spikes`` and ``membrane`` ``[*neuron_shape]``; ``reset`` the draw ``R_t``
    in sampled mode, else ``None``."""

    spikes: Any
    membrane: Any
    reset: Any


@dataclass(frozen=True)
class Params(checks.Params):
    """A checked call (:class:`psu_core.checks.Params`) plus the variant code the kernels branch on."""

    @property
    def code(self) -> int:
        return VARIANT_CODES[self.variant]


def _shape(a: Any) -> tuple[int, ...] | None:
    return None if a is None else tuple(int(d) for d in a.shape)


def is_floating(dtype: Any) -> bool:
    try:
        return bool(np.issubdtype(np.dtype(dtype), np.floating))
    except TypeError:
        return False


def check_call(
    variant: Any,
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
) -> Params:
    """Run SPEC §8's checks on array metadata only (no pass over the data); return the scalars.

    ``x``, ``weight`` and ``bias`` are any objects with ``shape`` and ``dtype`` (NumPy arrays,
    Numba/CuPy device arrays).
    """
    params = checks.validate_call(
        variant,
        x_shape=tuple(x.shape),
        x_dtype=str(x.dtype),
        x_is_floating=is_floating(x.dtype),
        tau=tau,
        threshold=threshold,
        reset_scale=reset_scale,
        surrogate_alpha=surrogate_alpha,
        weight_shape=_shape(weight),
        bias_shape=_shape(bias),
        reset=reset,
        seed=seed,
    )
    return Params(**dataclasses.asdict(params))


def compute_dtype(dtype: Any) -> np.dtype:
    """The dtype a kernel runs in for input ``dtype``: itself for float32/64, float32 for half."""
    d = np.dtype(dtype)
    return d if d in KERNEL_DTYPES else np.dtype(np.float32)


def neuron_count(shape: tuple[int, ...]) -> int:
    return int(math.prod(shape[1:])) if len(shape) > 1 else 1


def check_grad_shape(grad_shape: tuple[int, ...], x_shape: tuple[int, ...]) -> None:
    if tuple(grad_shape) != tuple(x_shape):
        raise ValueError(f"grad_spikes must have the shape of x {list(x_shape)}, got {list(grad_shape)}")


def check_neurons_for_sampling(params: Params, n: int) -> None:
    # The counter word holding the neuron index is 32 bits wide (SPEC §6).
    if params.sampled and n > 2**32:
        raise ValueError(f"x must have at most 2**32 neurons for reset='sampled', got {n}")


#: Neurons per block of the CPU forward kernel: its state rows (h, r, q, v) stay in L1 for any T.
FORWARD_BLOCK = 1024


def block_size(T: int) -> int:
    """Neurons per CPU block: the block's state rows stay in L1 and its ``[T, block]`` backward
    scratch within L2."""
    b = 32768 // max(T, 1)
    return int(max(16, min(1024, b - b % 16)))


def chunk_count(n_blocks: int, T: int, learned: bool) -> int:
    """Parallel chunks for the backward kernel; depends on the problem only, never on the thread
    count, so reductions add in the same order on every machine (same bits for any
    ``NUMBA_NUM_THREADS``). IPSU/RPSU keep one float64 ``[T, T]`` partial per chunk, so fewer."""
    cap = 64
    if learned:
        cap = max(1, min(cap, (1 << 21) // max(T * T, 1)))
    return max(1, min(n_blocks, cap))
