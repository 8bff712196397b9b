"""PSU-family kernels for NVIDIA GPUs as CUDA C (``kernels.cu``) through ``cupy.RawModule``.

Same API as :mod:`psu_numba.cpu`: ``forward``/``vjp``, ``init_state``/``step``/``OnlineStepper``,
``threefry2x32``/``uniforms``; plus ``available()`` and ``empty_like``. Importing works without
CuPy or CUDA; calls then raise a ``RuntimeError`` that says what is missing and how to fix it.
"""

from psu_numba.common import ForwardResult, Gradients, Step
from psu_numba.cupy.functional import empty_like, forward, ipsu, psu, rpsu, vjp
from psu_numba.cupy.kernels import available, source
from psu_numba.cupy.online import OnlineState, OnlineStepper, init_state, step
from psu_numba.cupy.random import threefry2x32, uniforms

__all__ = [
    "ForwardResult", "Gradients", "Step", "available", "source", "empty_like", "forward", "vjp",
    "psu", "ipsu", "rpsu", "OnlineState", "OnlineStepper", "init_state", "step", "threefry2x32",
    "uniforms",
]
