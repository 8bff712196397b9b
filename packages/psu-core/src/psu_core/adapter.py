"""The ``reference`` conformance adapter: psu-core's float64 reference, through its public API.

Registered under the entry-point group ``psu.backends`` so that the conformance suite runs on the
oracle itself (``--psu-backend reference --psu-device cpu``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from psu_core import reference, rng


def _cast(a: Any, dtype: str) -> Any:
    # Floating arrays take the requested dtype; anything else passes through untouched so that the
    # bad-input checks see what the caller gave (an integer x must reach the API as an integer).
    if isinstance(a, np.ndarray) and np.issubdtype(a.dtype, np.floating):
        return a.astype(dtype)
    return a


def _split(case: dict[str, Any], dtype: str) -> tuple[str, Any, Any, Any, dict[str, Any]]:
    params = {k: case[k] for k in ("tau", "threshold", "reset_scale", "surrogate_alpha", "reset", "seed")}
    params["validate"] = case.get("validate", False)
    return (
        case["variant"],
        _cast(case["x"], dtype),
        _cast(case.get("weight"), dtype),
        _cast(case.get("bias"), dtype),
        params,
    )


#: How the reference's public API differs from SPEC §11, and why (the ``api`` group shows these).
_FLOAT64_ONLY = "the reference computes in float64 on the CPU only: its state is float64, on 'cpu'"
API_IDIOMS = {
    f"{name}.{param}": _FLOAT64_ONLY for name in ("init_state", "OnlineStepper") for param in ("dtype", "device")
}


class ReferenceAdapter:
    """Conformance adapter for :mod:`psu_core.reference` (CPU, float64 only)."""

    name = "reference"
    api_idioms = API_IDIOMS

    def public_api(self) -> Any:
        return reference

    def devices(self) -> list[str]:
        return ["cpu"]

    def dtypes(self, device: str) -> list[str]:
        return ["float64"]

    def forward(self, case: dict[str, Any], *, device: str, dtype: str) -> dict[str, np.ndarray]:
        variant, x, w, b, params = _split(case, dtype)
        out = reference.forward(variant, x, w, b, **params)
        result = {"spikes": out.spikes, "membrane": out.membrane}
        if out.reset is not None:
            result["reset"] = out.reset
        return result

    def vjp(self, case: dict[str, Any], grad_spikes: np.ndarray, *, device: str, dtype: str) -> dict[str, Any]:
        variant, x, w, b, params = _split(case, dtype)
        g = reference.vjp(variant, x, _cast(grad_spikes, dtype), w, b, **params)
        result: dict[str, Any] = {"x": g.x, "threshold": g.threshold, "surrogate_alpha": g.surrogate_alpha}
        if variant != "psu":
            result["weight"], result["bias"] = g.weight, g.bias
        return result

    def online(self, case: dict[str, Any], *, device: str, dtype: str) -> dict[str, np.ndarray]:
        variant, x, w, b, params = _split(case, dtype)
        params.pop("validate")
        x = np.asarray(x)
        state = reference.init_state(variant, x.shape[1:], T=None if w is None else np.shape(w)[0])
        outs = []
        for t in range(x.shape[0]):
            state, out = reference.step(state, x[t], w, b, **params)
            outs.append(out)
        result = {"spikes": np.stack([o.spikes for o in outs]), "membrane": np.stack([o.membrane for o in outs])}
        if params["reset"] == "sampled":
            result["reset"] = np.stack([o.reset for o in outs])
        return result

    def threefry2x32(self, key0, key1, counter0, counter1, *, device: str) -> tuple[np.ndarray, np.ndarray]:
        return rng.threefry2x32(key0, key1, counter0, counter1)

    def uniforms(self, seed: int, shape: tuple[int, ...], *, device: str) -> np.ndarray:
        return rng.uniforms(seed, shape)
