"""PSU-family kernels for the CPU, on NumPy arrays (Numba, ``@njit(parallel=True, cache=True)``).

``forward``/``vjp`` (parallel form over ``[T, ...]``), ``init_state``/``step``/``OnlineStepper``
(online form), ``threefry2x32``/``uniforms`` (the SPEC §6 stream). See the package README.
"""

from psu_numba.common import ForwardResult, Gradients, Step
from psu_numba.cpu.functional import forward, ipsu, psu, rpsu, vjp
from psu_numba.cpu.online import OnlineState, OnlineStepper, init_state, step
from psu_numba.cpu.random import threefry2x32, uniforms

__all__ = [
    "ForwardResult", "Gradients", "Step", "forward", "vjp", "psu", "ipsu", "rpsu",
    "OnlineState", "OnlineStepper", "init_state", "step", "threefry2x32", "uniforms",
]
