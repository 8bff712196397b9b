"""PSU-family kernels for NVIDIA GPUs through Numba CUDA, on CUDA device arrays.

The API of :mod:`psu_numba.api` (its ``NAMES``, as in :mod:`psu_numba.cpu`) on
:class:`~psu_numba.numba_cuda.device.NumbaCudaDevice`. ``available()`` is True on a usable GPU or
under ``NUMBA_ENABLE_CUDASIM=1``. Importing works without CUDA; calls then raise a
``RuntimeError`` that says what is missing. Kernels run on the device holding ``x``; the
caller's current device is restored.
"""

from psu_numba.api import export
from psu_numba.numba_cuda.device import NumbaCudaDevice
from psu_numba.numba_cuda.numpy_compat import load_cuda_array_overloads

load_cuda_array_overloads()  # before any kernel compiles (they compile lazily, at first call)
export(NumbaCudaDevice(), globals())
