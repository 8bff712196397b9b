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
# * The recurrence issues ~25 operations per step. While a row fits in one thread's share of work
#   (N <= 32768, PyTorch's grain size, or one intra-op thread) that costs only dispatch, and the
#   recurrence is fastest: 4-6x the dense formulation at T = 256, N = 2^15.
# * Rows longer than the grain size are split across threads, and every operation then ends in a
#   thread barrier; on a busy machine each barrier can wait for a descheduled thread (measured:
#   ~5 ms per 1M-element add with 2 threads under load, against 1 ms with one). The chunked form
#   does the same work in ~20 operations per 32 steps, so it is chosen there (2.2x the dense
#   formulation at T = 8, N = 2^20 with 2 threads under load, where the recurrence fell to 0.8x).
_RECURRENCE_MIN_ELEMENTS = 1 << 18
_DENSE_MAX_T = 512
_GRAIN_SIZE = 32768


def choose_psu_method(T: int, N: int, threads: int | None = None) -> str:
    """The PSU form ``method="auto"`` runs on CPU: ``"recurrence"``, ``"dense"`` or ``"chunked"``."""
    threads = torch.get_num_threads() if threads is None else threads
    if T * N < _RECURRENCE_MIN_ELEMENTS:
        return "dense" if T <= _DENSE_MAX_T else "chunked"
    if threads == 1 or N <= _GRAIN_SIZE:
        return "recurrence"
    return "chunked"


def psu_form(method: str, X: torch.Tensor):
    """``(forward, backward, dtype)``: the PSU form of ``method`` for ``X [T, N]`` and the dtype to
    hand it ``X`` and ``G`` in (the compute dtype; the Triton kernels upcast in registers)."""
    if method == "auto":
        # Resolved inside the operator, so that torch.compile never traces the choice.
        method = choose_psu_method(X.shape[0], X.shape[1])
    if method in _EAGER:
        forward, backward = _EAGER[method]
        return forward, backward, compute_dtype(X.dtype)
    if method == "triton":
        from psu_torch import _triton  # on use: triton is an optional dependency

        # The kernels read half precision as it is (half the memory traffic) and upcast in registers.
        return _triton.psu_forward, _triton.psu_backward, X.dtype
    raise ValueError(f"method must be one of {METHODS}, got {method!r}")
