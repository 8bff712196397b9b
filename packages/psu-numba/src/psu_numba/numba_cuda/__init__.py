"""PSU-family kernels for NVIDIA GPUs through Numba CUDA, on CUDA device arrays.

Same API as :mod:`psu_numba.cpu`: ``forward``/``vjp``, ``init_state``/``step``/``OnlineStepper``,
``threefry2x32``/``uniforms``; plus ``available()`` (True on a usable GPU or under
``NUMBA_ENABLE_CUDASIM=1``) and ``empty_like``. Importing works without CUDA; calls then raise a
``RuntimeError`` that says what is missing.
"""

from psu_numba.common import ForwardResult, Gradients, Step
from psu_numba.numba_cuda.arrays import available
from psu_numba.numba_cuda.functional import empty_like, forward, ipsu, psu, rpsu, vjp
from psu_numba.numba_cuda.numpy_compat import load_cuda_array_overloads
from psu_numba.numba_cuda.online import OnlineState, OnlineStepper, init_state, step
from psu_numba.numba_cuda.random import threefry2x32, uniforms

load_cuda_array_overloads()  # before any kernel compiles (they compile lazily, at first call)

__all__ = [
    "ForwardResult", "Gradients", "Step", "available", "empty_like", "forward", "vjp", "psu", "ipsu",
    "rpsu", "OnlineState", "OnlineStepper", "init_state", "step", "threefry2x32", "uniforms",
]
