"""The algorithms behind ``method=``, and the choice ``method="auto"`` makes.

* ``"recurrence"`` (:mod:`psu_torch._psu_recurrence`), ``"chunked"`` (:mod:`psu_torch._psu_chunked`),
  ``"dense"`` (:mod:`psu_torch._psu_dense`): eager PyTorch, any device; the first two PSU only.
* ``"triton"`` (:mod:`psu_torch._triton`): the fused kernels, PSU only; CUDA tensors, or CPU tensors
  under ``TRITON_INTERPRET=1``.
* IPSU and RPSU are always GEMMs (:mod:`psu_torch._learned`): ``"auto"`` or ``"dense"``.

Every PSU form has the same signatures, ``forward(X, p, want_v, neuron_offset=0) -> (S, V, R)``
(``neuron_offset``: the whole call's flat index of ``X``'s first neuron, for the sampled draws) and
``backward(X, G, R, p, need_scalars) -> (dL/dX, dL/dtheta, dL/dalpha)``.
"""

from __future__ import annotations

import torch

from psu_torch._precision import compute_dtype
from psu_torch._psu_chunked import psu_backward_chunked, psu_forward_chunked
from psu_torch._psu_dense import psu_backward_dense, psu_forward_dense
from psu_torch._psu_recurrence import psu_backward_recurrence, psu_forward_recurrence

METHODS = ("auto", "recurrence", "chunked", "dense", "triton")
_EAGER = {
    "recurrence": (psu_forward_recurrence, psu_backward_recurrence),
    "chunked": (psu_forward_chunked, psu_backward_chunked),
    "dense": (psu_forward_dense, psu_backward_dense),
}

# The choice of method="auto" on CPU, from measurements on a 2-core Xeon shared with other jobs
# (float32, forward+backward; see README "Speed"):
#
# * Small problems (T * N < 2^18) are overhead-bound: the dense form's dozen operations win.
# * The recurrence issues ~20 operations per step on rows of at most 32768 neurons (PyTorch's grain
#   size: wider inputs run as column slices, psu_torch._psu_recurrence.SLICE), so every operation
#   runs on one thread in cache and costs little more than its dispatch. Operations split across
#   threads end in a barrier, which on a busy machine waits for a descheduled thread (~5 ms per
#   1M-element add with 2 threads under load); the slices avoid them. Measured at T * N = 2^23,
#   forward+backward against the dense formulation: 7x at T = 8 (the chunked form: 1.7x), 6.5x at
#   T = 64 (chunked 1.0x), 6.5x at T = 256.
_RECURRENCE_MIN_ELEMENTS = 1 << 18
_DENSE_MAX_T = 512


def choose_psu_method(T: int, N: int) -> str:
    """The PSU form ``method="auto"`` runs on CPU: ``"recurrence"``, ``"dense"`` or ``"chunked"``."""
    if T * N < _RECURRENCE_MIN_ELEMENTS:
        return "dense" if T <= _DENSE_MAX_T else "chunked"
    return "recurrence"


def resolve(method: str, X: torch.Tensor) -> str:
    """``method`` with ``"auto"`` replaced by the CPU choice for ``X [T, N]``."""
    return choose_psu_method(X.shape[0], X.shape[1]) if method == "auto" else method


def keeps_intermediates(method: str, X: torch.Tensor) -> bool:
    """Whether an eager PSU call keeps the dense form's intermediates for backward
    (:func:`psu_torch._psu_dense.psu_forward_dense_saving`) instead of only ``X``: the dense form on
    an overhead-bound input (``T * N < 2^18``, a few MiB kept), where the backward's recompute (two
    GEMMs, two causality checks, two sigmoids) costs more than the memory. The custom ops (traced
    calls) always recompute."""
    return method == "dense" and X.shape[0] * X.shape[1] < _RECURRENCE_MIN_ELEMENTS


def psu_form(method: str, X: torch.Tensor):
    """``(forward, backward, dtype)``: the PSU form of ``method`` for ``X [T, N]`` and the dtype to
    hand it ``X`` and ``G`` in (the compute dtype; the Triton kernels upcast in registers)."""
    # "auto" is resolved inside the operator, so that torch.compile never traces the choice.
    method = resolve(method, X)
    if method in _EAGER:
        forward, backward = _EAGER[method]
        return forward, backward, compute_dtype(X.dtype)
    if method == "triton":
        from psu_torch import _triton  # on use: triton is an optional dependency

        # The kernels read half precision as it is (half the memory traffic) and upcast in registers.
        return _triton.psu_forward, _triton.psu_backward, X.dtype
    raise ValueError(f"method must be one of {METHODS}, got {method!r}")
