"""numba-cuda on a NumPy without ``np.row_stack``.

NumPy 2.5 removed ``np.row_stack`` (an alias of ``np.vstack`` since NumPy 2.0 deprecated it), and
numba-cuda up to at least 0.30.4 registers an overload for it when its CUDA target first loads, so
every kernel compilation raises ``AttributeError`` there. pip resolves that pair for a user
(numba 0.68 allows NumPy < 2.6), so psu-numba loads that one module itself, once, with the alias
present for the duration of the import only: NumPy is left exactly as it was.
"""

from __future__ import annotations

import importlib

import numpy as np


def load_cuda_array_overloads() -> None:
    """Import numba-cuda's array overloads (``numba.cuda.np.arrayobj``) with ``np.row_stack``
    aliased to ``np.vstack`` if this NumPy lacks it; nothing to do on NumPy < 2.5."""
    if hasattr(np, "row_stack"):
        return
    np.row_stack = np.vstack
    try:
        importlib.import_module("numba.cuda.np.arrayobj")
    except ImportError:  # Numba's built-in CUDA target (no numba-cuda) has no such module
        pass
    finally:
        del np.row_stack
