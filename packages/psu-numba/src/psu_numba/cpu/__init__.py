"""PSU-family kernels for the CPU, on NumPy arrays (Numba, ``@njit(parallel=True, cache=True)``).

The API of :mod:`psu_numba.api` (its ``NAMES``) on :class:`~psu_numba.cpu.device.CpuDevice`:
``psu``/``ipsu``/``rpsu``, ``init_state``/``step``/``OnlineStepper``, ``forward``/``vjp``,
``threefry2x32``/``uniforms``. Threads: ``numba.set_num_threads`` or ``NUMBA_NUM_THREADS``
(results have the same bits for any thread count). See the package README.
"""

from psu_numba.api import export
from psu_numba.cpu.device import CpuDevice

export(CpuDevice(), globals())
