"""psu-numba: fused PSU / IPSU / RPSU kernels without a deep-learning framework.

* :mod:`psu_numba.cpu`  — Numba CPU kernels on NumPy arrays (always available);
* :mod:`psu_numba.numba_cuda` — Numba CUDA kernels on CUDA device arrays (extra ``psu-numba[cuda]``);
* :mod:`psu_numba.cupy` — CuPy ``RawModule`` CUDA C kernels (extra ``psu-numba[cupy]``).

The three export the same names, the API of SPEC §11 written once in :mod:`psu_numba.api`:
``psu``/``ipsu``/``rpsu``, ``init_state``/``step``/``OnlineStepper``, plus ``forward``, ``vjp``
(the gradients), ``threefry2x32``/``uniforms``, ``available``, ``empty_like``. Subpackages are
imported on first use, so ``import psu_numba`` works on a machine without CUDA.
"""

from __future__ import annotations

import importlib
from typing import Any

from psu_core.api import PSUOutput, StepOutput
from psu_numba.common import Gradients

__all__ = ["PSUOutput", "StepOutput", "Gradients", "cpu", "numba_cuda", "cupy"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in ("cpu", "numba_cuda", "cupy"):
        return importlib.import_module(f"psu_numba.{name}")
    raise AttributeError(f"module 'psu_numba' has no attribute {name!r}")
