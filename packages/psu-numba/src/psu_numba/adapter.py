"""Conformance adapters (entry-point group ``psu.backends``): ``numba-cpu``, ``numba-cuda``, ``cupy``.

Each speaks NumPy at its edges and calls the public API of its implementation
(``psu_numba.cpu`` / ``psu_numba.numba_cuda`` / ``psu_numba.cupy``): ``forward``, ``vjp`` and, for
``online``, ``OnlineStepper``. Floating arrays of a case are converted to the requested dtype
(and moved to the device, explicitly, for the GPU adapters); non-floating arrays and every
parameter pass through unchanged, so bad input reaches the public API and raises there.

Devices:

* ``numba-cpu``: ``["cpu"]``.
* ``numba-cuda``: ``["cuda"]`` when ``numba.cuda.is_available()``, which includes Numba's CUDA
  simulator (``NUMBA_ENABLE_CUDASIM=1``): under the simulator the kernels run as Python on the
  CPU, which is how ``conformance(numba-cuda)`` runs on machines without a GPU. ``[]`` when
  Numba has no CUDA (no driver, no GPU, simulator off).
* ``cupy``: ``["cuda"]`` when CuPy imports and sees a device, else ``[]``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from psu_numba import common

_FLOAT_KEYS = ("x", "weight", "bias")


def _convert(case: dict[str, Any], dtype: str, move: Callable[[np.ndarray], Any]) -> dict[str, Any]:
    out = {}
    for k in _FLOAT_KEYS:
        v = case.get(k)
        if isinstance(v, np.ndarray) and np.issubdtype(v.dtype, np.floating):
            v = move(np.ascontiguousarray(v, dtype=dtype))
        elif isinstance(v, np.ndarray):
            v = move(v)
        out[k] = v
    return out


def _params(case: dict[str, Any]) -> dict[str, Any]:
    return {
        k: case[k]
        for k in ("tau", "threshold", "reset_scale", "surrogate_alpha", "reset", "seed")
        if k in case
    }


class _Adapter:
    """Shared adapter logic; subclasses set ``name``, the API module and array movement."""

    name = ""
    _device = "cpu"

    def _api(self) -> Any:
        raise NotImplementedError

    def _to(self, a: np.ndarray) -> Any:
        return a

    def _host(self, a: Any) -> np.ndarray:
        return np.asarray(a)

    def _sync(self) -> None:
        pass

    def devices(self) -> list[str]:
        raise NotImplementedError

    def dtypes(self, device: str) -> list[str]:
        return ["float64", "float32"] if device == self._device else []

    def forward(self, case: dict[str, Any], *, device: str, dtype: str) -> dict[str, np.ndarray]:
        arrs = _convert(case, dtype, self._to)
        sampled = case.get("reset") == "sampled"
        res = self._api().forward(
            case["variant"], arrs["x"], arrs["weight"], arrs["bias"], **_params(case),
            return_membrane=True, return_reset=sampled, validate=case.get("validate", False),
        )
        out = {"spikes": self._host(res.spikes), "membrane": self._host(res.membrane)}
        if sampled:
            out["reset"] = self._host(res.reset)
        return out

    def vjp(self, case: dict[str, Any], grad_spikes: np.ndarray, *, device: str, dtype: str) -> dict[str, Any]:
        arrs = _convert(case, dtype, self._to)
        g = grad_spikes
        if isinstance(g, np.ndarray) and np.issubdtype(g.dtype, np.floating):
            g = self._to(np.ascontiguousarray(g, dtype=dtype))
        res = self._api().vjp(
            case["variant"], arrs["x"], g, arrs["weight"], arrs["bias"], **_params(case),
            validate=case.get("validate", False),
        )
        out: dict[str, Any] = {
            "x": self._host(res.x),
            "threshold": float(res.threshold),
            "surrogate_alpha": float(res.surrogate_alpha),
        }
        if case["variant"] != "psu":
            out["weight"] = self._host(res.weight)
            out["bias"] = self._host(res.bias)
        return out

    def online(self, case: dict[str, Any], *, device: str, dtype: str) -> dict[str, np.ndarray]:
        arrs = _convert(case, dtype, self._to)
        x = np.ascontiguousarray(case["x"], dtype=dtype)
        stepper = self._api().OnlineStepper(
            case["variant"], x.shape[1:], arrs["weight"], arrs["bias"], dtype=dtype, **_params(case)
        )
        spikes, membrane, resets = [], [], []
        for t in range(x.shape[0]):
            st = stepper.step(self._to(np.ascontiguousarray(x[t])))
            spikes.append(self._host(st.spikes))
            membrane.append(self._host(st.membrane))
            if st.reset is not None:
                resets.append(self._host(st.reset))
        out = {"spikes": np.stack(spikes), "membrane": np.stack(membrane)}
        if case.get("reset") == "sampled":
            out["reset"] = np.stack(resets)
        return out

    def threefry2x32(self, key0, key1, counter0, counter1, *, device: str):  # type: ignore[no-untyped-def]
        w0, w1 = self._api().threefry2x32(*(self._to(np.ascontiguousarray(v, dtype=np.uint32))
                                            for v in (key0, key1, counter0, counter1)))
        return self._host(w0), self._host(w1)

    def uniforms(self, seed: int, shape: Sequence[int], *, device: str) -> np.ndarray:
        return self._host(self._api().uniforms(seed, tuple(shape)))

    def prepare(self, case: dict[str, Any], grad_spikes: np.ndarray, *, device: str, dtype: str):  # type: ignore[no-untyped-def]
        """Benchmark closures on device-resident, dtype-converted inputs with preallocated outputs:
        ``forward_fn()`` computes the spikes, ``vjp_fn()`` forward+backward; both synchronise."""
        api = self._api()
        arrs = _convert(case, dtype, self._to)
        g = self._to(np.ascontiguousarray(grad_spikes, dtype=dtype))
        params = _params(case)
        variant = case["variant"]
        x = arrs["x"]
        spikes = api.empty_like(x) if hasattr(api, "empty_like") else np.empty_like(x)
        dx = api.empty_like(x) if hasattr(api, "empty_like") else np.empty_like(x)

        def forward_fn() -> Any:
            res = api.forward(variant, x, arrs["weight"], arrs["bias"], **params, out=spikes)
            self._sync()
            return res

        def vjp_fn() -> Any:
            res = api.vjp(variant, x, g, arrs["weight"], arrs["bias"], **params, out=dx)
            self._sync()
            return res

        return forward_fn, vjp_fn


class NumbaCpuAdapter(_Adapter):
    """``numba-cpu``: the Numba CPU kernels on NumPy arrays."""

    name = "numba-cpu"
    _device = "cpu"

    def _api(self) -> Any:
        from psu_numba import cpu

        return cpu

    def devices(self) -> list[str]:
        return ["cpu"]


class NumbaCudaAdapter(_Adapter):
    """``numba-cuda``: Numba CUDA kernels; ``["cuda"]`` on a GPU or under ``NUMBA_ENABLE_CUDASIM=1``."""

    name = "numba-cuda"
    _device = "cuda"

    def _api(self) -> Any:
        from psu_numba import numba_cuda

        return numba_cuda

    def devices(self) -> list[str]:
        from psu_numba.numba_cuda import available

        return ["cuda"] if available() else []

    def _to(self, a: np.ndarray) -> Any:
        from numba import cuda

        return cuda.to_device(a)

    def _host(self, a: Any) -> np.ndarray:
        return a.copy_to_host() if hasattr(a, "copy_to_host") else np.asarray(a)

    def _sync(self) -> None:
        from numba import cuda

        cuda.synchronize()


class CupyAdapter(_Adapter):
    """``cupy``: CuPy ``RawModule`` CUDA C kernels; ``["cuda"]`` when CuPy sees a GPU."""

    name = "cupy"
    _device = "cuda"

    def _api(self) -> Any:
        from psu_numba import cupy as api

        return api

    def devices(self) -> list[str]:
        from psu_numba.cupy import available

        return ["cuda"] if available() else []

    def _to(self, a: np.ndarray) -> Any:
        import cupy

        return cupy.asarray(a)

    def _host(self, a: Any) -> np.ndarray:
        import cupy

        return cupy.asnumpy(a)

    def _sync(self) -> None:
        import cupy

        cupy.cuda.get_current_stream().synchronize()


# Entry points name these zero-argument factories.
def numba_cpu() -> NumbaCpuAdapter:
    return NumbaCpuAdapter()


def numba_cuda() -> NumbaCudaAdapter:
    return NumbaCudaAdapter()


def cupy_adapter() -> CupyAdapter:
    return CupyAdapter()


__all__ = ["NumbaCpuAdapter", "NumbaCudaAdapter", "CupyAdapter", "common"]
