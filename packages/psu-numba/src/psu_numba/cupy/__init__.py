"""PSU-family kernels for NVIDIA GPUs as CUDA C (``kernels.cu``) through ``cupy.RawModule``.

The API of :mod:`psu_numba.api` (its ``NAMES``, as in :mod:`psu_numba.cpu`) on
:class:`~psu_numba.cupy.device.CupyDevice`; inputs are CuPy arrays or any CUDA array with
``__cuda_array_interface__`` or DLPack, results are CuPy arrays. Importing works without CuPy or
CUDA; calls then raise a ``RuntimeError`` that says what is missing and how to fix it.
"""

from psu_numba.api import export
from psu_numba.cupy.device import CupyDevice

export(CupyDevice(), globals())
