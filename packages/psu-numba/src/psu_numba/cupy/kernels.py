"""Loads ``kernels.cu`` into a ``cupy.RawModule`` (compiled by NVRTC on first use, cached by CuPy).

The CUDA C source is the single definition of the GPU kernels of :mod:`psu_numba.cupy`; the unit
tests compile it with ``nvcc`` wherever ``nvcc`` exists, so syntax and type errors show without
a GPU.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

#: Threads per block; ``RED_THREADS`` must equal the ``#define`` in kernels.cu.
THREADS = 256
RED_THREADS = 256

_HOW_TO_FIX = (
    "install CuPy for your CUDA version (`pip install psu-numba[cupy]`, i.e. cupy-cuda12x, or "
    "cupy-cuda11x), an NVIDIA driver, and make sure NVRTC from the CUDA toolkit is found "
    "(CUDA_PATH or the nvidia-cuda-nvrtc wheel)"
)


def source() -> str:
    """The CUDA C source of the kernels."""
    return resources.files("psu_numba.cupy").joinpath("kernels.cu").read_text(encoding="utf-8")


def import_cupy() -> Any:
    """``import cupy`` or a ``RuntimeError`` that says how to install it."""
    try:
        import cupy
    except ImportError as exc:
        raise RuntimeError(f"psu_numba.cupy needs CuPy, which is not importable ({exc}); {_HOW_TO_FIX}") from exc
    return cupy


def available() -> bool:
    """True when CuPy imports and sees at least one CUDA device."""
    try:
        import cupy

        return int(cupy.cuda.runtime.getDeviceCount()) > 0
    except Exception:
        return False


def require() -> Any:
    cupy = import_cupy()
    try:
        count = int(cupy.cuda.runtime.getDeviceCount())
    except Exception as exc:
        raise RuntimeError(
            f"psu_numba.cupy cannot run: the CUDA runtime reports {type(exc).__name__}: {exc}; {_HOW_TO_FIX}"
        ) from exc
    if count == 0:
        raise RuntimeError(f"psu_numba.cupy cannot run: no CUDA device found; {_HOW_TO_FIX}")
    return cupy


@functools.cache
def _module(device_id: int) -> Any:
    cupy = import_cupy()
    try:
        mod = cupy.RawModule(code=source(), options=("--std=c++14",))
        mod.compile()
    except Exception as exc:
        raise RuntimeError(
            f"psu_numba.cupy could not compile its CUDA kernels with NVRTC: {type(exc).__name__}: {exc}; {_HOW_TO_FIX}"
        ) from exc
    return mod


def function(name: str) -> Any:
    """The kernel ``name`` of the module compiled for the current device."""
    cupy = import_cupy()
    return _module(int(cupy.cuda.Device().id)).get_function(name)


def launch(name: str, n_threads: int, args: tuple[Any, ...]) -> None:
    if n_threads <= 0:
        return
    function(name)(((n_threads + THREADS - 1) // THREADS,), (THREADS,), args)


def launch_grid(name: str, grid: tuple[int, ...], args: tuple[Any, ...]) -> None:
    if min(grid) <= 0:
        return
    function(name)(grid, (RED_THREADS,), args)
