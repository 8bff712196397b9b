"""Conformance adapters (entry-point group ``psu.backends``): ``numba-cpu``, ``numba-cuda``, ``cupy``.

One adapter, :class:`Adapter`, speaks NumPy at its edges and calls the public API of its target
(``psu_numba.cpu`` / ``psu_numba.numba_cuda`` / ``psu_numba.cupy``): ``forward``, ``vjp`` and
``OnlineStepper``. Floating arrays of a case are converted to the requested dtype and moved to the
target, explicitly, by the target's Device; non-floating arrays and every parameter pass through
unchanged, so bad input reaches the public API and raises there. The per-target part is a name,
the module, and the device the target runs on.

Devices:

* ``numba-cpu``: ``["cpu"]``.
* ``numba-cuda``: ``["cuda"]`` when ``numba.cuda.is_available()``, which includes Numba's CUDA
  simulator (``NUMBA_ENABLE_CUDASIM=1``): under the simulator the kernels run as Python on the
  CPU, which is how ``conformance(numba-cuda)`` runs on machines without a GPU. ``[]`` when
  Numba has no CUDA (no driver, no GPU, simulator off).
* ``cupy``: ``["cuda"]`` when CuPy imports and sees a device, else ``[]``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

import numpy as np

from psu_numba.device import Device

_NEURON_KEYS = ("tau", "threshold", "reset_scale", "surrogate_alpha", "reset", "seed")


def _params(case: dict[str, Any]) -> dict[str, Any]:
    return {k: case[k] for k in _NEURON_KEYS if k in case}


class Adapter:
    """The adapter of one target: ``name`` (the entry point), ``target`` (the module under
    ``psu_numba``) and ``device`` (where it runs) are the per-target part."""

    name = ""
    target = ""
    device = "cpu"
    #: Differences from SPEC §11 (none: the targets follow it).
    api_idioms: dict[str, str] = {}

    def public_api(self) -> ModuleType:
        return importlib.import_module(f"psu_numba.{self.target}")

    def _dev(self) -> Device:
        return self.public_api()._api.device  # type: ignore[no-any-return]

    def _to(self, a: Any, dtype: str | None = None) -> Any:
        """A case array on the target: floating ones in ``dtype``; others (an integer ``x`` sent
        to the bad-input checks) unchanged; ``None`` stays ``None``."""
        if not isinstance(a, np.ndarray):
            return a
        if dtype is not None and np.issubdtype(a.dtype, np.floating):
            a = a.astype(dtype)
        # np.require, not np.ascontiguousarray: the latter makes a 0-d array 1-d (a rank-1 x's steps)
        return self._dev().to_target(np.require(a, requirements="C"))

    def _arrays(self, case: dict[str, Any], dtype: str) -> tuple[Any, Any, Any]:
        return self._to(case.get("x"), dtype), self._to(case.get("weight"), dtype), self._to(case.get("bias"), dtype)

    def devices(self) -> list[str]:
        return [self.device] if self._dev().available() else []

    def dtypes(self, device: str) -> list[str]:
        return ["float64", "float32"] if device == self.device else []

    def forward(self, case: dict[str, Any], *, device: str, dtype: str) -> dict[str, np.ndarray]:
        x, w, b = self._arrays(case, dtype)
        sampled = case.get("reset") == "sampled"
        res = self.public_api().forward(
            case["variant"], x, w, b, **_params(case), return_membrane=True, return_reset=sampled,
            validate=case.get("validate", False),
        )  # fmt: skip
        host = self._dev().to_host
        out = {"spikes": host(res.spikes), "membrane": host(res.membrane)}
        if sampled:
            out["reset"] = host(res.reset)
        return out

    def vjp(self, case: dict[str, Any], grad_spikes: np.ndarray, *, device: str, dtype: str) -> dict[str, Any]:
        x, w, b = self._arrays(case, dtype)
        res = self.public_api().vjp(
            case["variant"],
            x,
            self._to(grad_spikes, dtype),
            w,
            b,
            **_params(case),
            validate=case.get("validate", False),
        )
        host = self._dev().to_host
        out: dict[str, Any] = {"x": host(res.x), "threshold": res.threshold, "surrogate_alpha": res.surrogate_alpha}
        if case["variant"] != "psu":
            out["weight"], out["bias"] = host(res.weight), host(res.bias)
        return out

    def online(self, case: dict[str, Any], *, device: str, dtype: str) -> dict[str, np.ndarray]:
        _, w, b = self._arrays(case, dtype)
        x = np.asarray(case["x"], dtype=dtype)
        stepper = self.public_api().OnlineStepper(case["variant"], x.shape[1:], w, b, **_params(case), dtype=dtype)
        host = self._dev().to_host
        steps = [stepper.step(self._to(np.asarray(x[t]))) for t in range(x.shape[0])]  # x[t] of a [T] x is 0-d
        out = {
            "spikes": np.stack([host(s.spikes) for s in steps]),
            "membrane": np.stack([host(s.membrane) for s in steps]),
        }
        if case.get("reset") == "sampled":
            out["reset"] = np.stack([host(s.reset) for s in steps])
        return out

    def threefry2x32(self, key0, key1, counter0, counter1, *, device: str):  # type: ignore[no-untyped-def]
        words = (self._to(np.asarray(v, dtype=np.uint32)) for v in (key0, key1, counter0, counter1))
        w0, w1 = self.public_api().threefry2x32(*words)
        return self._dev().to_host(w0), self._dev().to_host(w1)

    def uniforms(self, seed: int, shape: Sequence[int], *, device: str) -> np.ndarray:
        return self._dev().to_host(self.public_api().uniforms(seed, tuple(shape)))

    def prepare(self, case: dict[str, Any], grad_spikes: np.ndarray, *, device: str, dtype: str
                ) -> tuple[Callable[[], Any], Callable[[], Any]]:  # fmt: skip
        """Benchmark closures on target-resident, dtype-converted inputs with preallocated outputs:
        ``forward_fn()`` computes the spikes, ``vjp_fn()`` forward+backward; both synchronise."""
        api, dev = self.public_api(), self._dev()
        x, w, b = self._arrays(case, dtype)
        g = self._to(grad_spikes, dtype)
        params, variant = _params(case), case["variant"]
        spikes, dx = api.empty_like(x), api.empty_like(x)

        def forward_fn() -> Any:
            res = api.forward(variant, x, w, b, **params, out=spikes)
            dev.synchronize()
            return res

        def vjp_fn() -> Any:
            res = api.vjp(variant, x, g, w, b, **params, out=dx)
            dev.synchronize()
            return res

        return forward_fn, vjp_fn


class NumbaCpuAdapter(Adapter):
    """``numba-cpu``: the Numba CPU kernels on NumPy arrays."""

    name, target, device = "numba-cpu", "cpu", "cpu"


class NumbaCudaAdapter(Adapter):
    """``numba-cuda``: Numba CUDA kernels; ``["cuda"]`` on a GPU or under ``NUMBA_ENABLE_CUDASIM=1``."""

    name, target, device = "numba-cuda", "numba_cuda", "cuda"


class CupyAdapter(Adapter):
    """``cupy``: CuPy ``RawModule`` CUDA C kernels; ``["cuda"]`` when CuPy sees a GPU."""

    name, target, device = "cupy", "cupy", "cuda"


__all__ = ["Adapter", "NumbaCpuAdapter", "NumbaCudaAdapter", "CupyAdapter"]
