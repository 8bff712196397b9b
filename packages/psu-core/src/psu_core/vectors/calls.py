"""The JSON encoding of a call (SPEC §10): how ``bad_input.json`` writes calls, and how the conformance
suite's exec protocol sends them to a port in any language.

A call is ``{"variant", "x", "weight", "bias", "tau", "threshold", "reset_scale",
"surrogate_alpha", "reset", "seed", "validate"}`` with

* arrays ``{"shape": [...], "data": [...]}`` (C order); a floating array's values are float64, a
  non-floating one adds ``"dtype"`` (a NumPy dtype name such as ``"int64"``) and integer values;
* a float that is not finite (in an array or a scalar) as the string ``"NaN"``, ``"Infinity"`` or
  ``"-Infinity"``, since JSON has no such numbers;
* the seed ``null`` or a decimal string (``"18446744073709551615"``, ``"-1"``): exact in every
  JSON reader, which a number >= 2**53 is not.

Any other value (a wrong type on purpose) is written as itself.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
ARRAYS = ("x", "weight", "bias", "grad_spikes")
FLOATS = ("tau", "threshold", "reset_scale", "surrogate_alpha")


def encode_float(v: float) -> float | str:
    """A float64 as JSON: itself when finite, else ``"NaN"``/``"Infinity"``/``"-Infinity"``."""
    if math.isfinite(v):
        return v
    return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")


def decode_float(v: Any) -> Any:
    """The inverse of :func:`encode_float`; any other value is returned as it is."""
    return NON_FINITE[v] if isinstance(v, str) and v in NON_FINITE else v


def encode_array(a: Any) -> dict[str, Any]:
    """``{"shape", "data"}`` for a floating array; ``{"shape", "data", "dtype"}`` for any other."""
    a = np.asarray(a)
    if np.issubdtype(a.dtype, np.floating):
        return {"shape": list(a.shape), "data": [encode_float(v) for v in a.astype(np.float64).ravel().tolist()]}
    return {"shape": list(a.shape), "data": a.ravel().tolist(), "dtype": str(a.dtype)}


def decode_array(obj: dict[str, Any]) -> np.ndarray:
    """The inverse of :func:`encode_array`: float64, or the ``dtype`` the object names."""
    if "dtype" in obj:
        return np.asarray(obj["data"], dtype=obj["dtype"]).reshape(obj["shape"])
    return np.asarray([decode_float(v) for v in obj["data"]], dtype=np.float64).reshape(obj["shape"])


def encode_seed(seed: Any) -> Any:
    """An integer seed (bad ones too: -1, 2**64) as a decimal string; anything else as it is."""
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return str(int(seed))
    return encode_value(seed)


def decode_seed(seed: Any) -> Any:
    if isinstance(seed, str) and seed.lstrip("-").isdigit():
        return int(seed)
    return seed


def encode_value(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return encode_array(v)
    if isinstance(v, (float, np.floating)):
        return encode_float(float(v))
    if isinstance(v, np.integer):
        return int(v)
    return v


def encode_call(call: dict[str, Any]) -> dict[str, Any]:
    """A call (any subset of its keys) as JSON values."""
    return {k: encode_seed(v) if k == "seed" else encode_value(v) for k, v in call.items()}


def decode_call(obj: dict[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`encode_call`: NumPy arrays, Python floats and integer seeds."""
    out: dict[str, Any] = {}
    for k, v in obj.items():
        if k in ARRAYS and isinstance(v, dict):
            out[k] = decode_array(v)
        elif k in FLOATS:
            out[k] = decode_float(v)
        elif k == "seed":
            out[k] = decode_seed(v)
        else:
            out[k] = v
    return out
