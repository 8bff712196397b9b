"""The compute dtype: half precision (float16, bfloat16) is computed and accumulated in float32.

Every path follows one rule: inputs in half precision are upcast to float32 where they are read
(the eager operators upcast ``X``, ``W``, ``b`` and ``G`` on entry; the Triton kernels load half
values and convert them in registers), the ``[T, T]`` GEMMs, recurrences and sums run in float32,
and only the outputs (spikes, membrane, gradients) are rounded back to the dtype of the input they
belong to. float32 and float64 are computed in their own dtype.
"""

from __future__ import annotations

import torch

HALF = (torch.float16, torch.bfloat16)


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float32 for float16 and bfloat16; any other floating dtype unchanged."""
    return torch.float32 if dtype in HALF else dtype
