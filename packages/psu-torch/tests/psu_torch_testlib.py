"""Helpers for psu-torch's unit tests (a uniquely named module: the repository runs every
package's tests in one pytest session)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from psu_core import checks, reference
from psu_core.api import PSUOutput
from psu_core.tolerances import error_ratio, for_dtype


def require_cuda() -> None:
    """Skip without a CUDA device, or fail when PSU_REQUIRE_DEVICE=1 asks for one."""
    if torch.cuda.is_available():
        return
    if os.environ.get("PSU_REQUIRE_DEVICE") == "1":
        pytest.fail("PSU_REQUIRE_DEVICE=1 but no CUDA device is available")
    pytest.skip("no CUDA device")


def case(rng: np.random.Generator, variant: str, T: int = 6, shape: tuple[int, ...] = (3, 4)):
    """Inputs for one call: x [T, *shape], weight/bias (IPSU/RPSU, non-zero upper triangle), grad."""
    x = rng.normal(size=(T, *shape)) * 1.5
    g = rng.normal(size=x.shape)
    w = rng.normal(size=(T, T)) * 0.5 if variant != "psu" else None
    b = rng.normal(size=T) * 0.3 if variant != "psu" else None
    return x, w, b, g


def params(variant: str, X: torch.Tensor, **kw) -> checks.Params:
    """The checked call the internal forms take, for ``X [T, N]`` and the neuron's keywords."""
    return checks.validate_call(
        variant, x_shape=tuple(X.shape), x_dtype="float64", x_is_floating=True, tau=kw.pop("tau", 2.0),
        threshold=kw.pop("threshold", 1.0), reset_scale=kw.pop("reset_scale", None),
        surrogate_alpha=kw.pop("surrogate_alpha", 2.0), weight_shape=(X.shape[0],) * 2 if variant != "psu" else None,
        bias_shape=(X.shape[0],) if variant != "psu" else None, **kw,
    )  # fmt: skip


def run_stepper(stepper, x: torch.Tensor) -> PSUOutput:
    """Step ``stepper`` (an ``OnlineStepper``) through ``x [T, ...]``; the outputs stacked over time
    (``reset`` None unless sampled)."""
    outs = [stepper.step(x_t) for x_t in x]
    resets = [o.reset for o in outs]
    return PSUOutput(
        torch.stack([o.spikes for o in outs]),
        torch.stack([o.membrane for o in outs]),
        None if resets[0] is None else torch.stack(resets),
    )


# ------------------------------------------------------------------------------------------------
# Half precision: a case on which half-precision arithmetic misses SPEC §9's half tolerances
# ------------------------------------------------------------------------------------------------
#: a = 1/tau = 63/64: every membrane value sums ~64 decaying terms of the input (and, with the
#: threshold as reset scale, subtracts ~64 terms of P), so each rounding of a partial sum shows.
HALF_PARAMS = dict(tau=64 / 63, threshold=1.0, reset_scale=None, surrogate_alpha=2.0)


def half_case(variant: str, dtype: torch.dtype, T: int = 256, N: int = 64):
    """``x [T, N]``, ``weight``/``bias`` (IPSU/RPSU), ``grad_spikes``, all in ``dtype``.

    Generated in float64 and rounded to ``dtype``, so the float64 reference reads exactly the
    numbers the half-precision call reads, and the error measured is the arithmetic's alone. PSU's
    input is about 1 (``A X`` and ``gamma B P`` are then both about 64 and cancel, leaving ``V``
    about 1); IPSU/RPSU's is the usual N(0.3, 1) with ``W ~ N(0, 2/T)``.
    """
    rs = np.random.default_rng([T, N, ("psu", "ipsu", "rpsu").index(variant)])
    mean, sd = (1.0, 0.5) if variant == "psu" else (0.3, 1.0)
    x = torch.tensor(rs.normal(mean, sd, size=(T, N))).to(dtype)
    g = torch.tensor(rs.normal(size=(T, N))).to(dtype)
    w = b = None
    if variant != "psu":
        w = torch.tensor(rs.normal(size=(T, T)) * np.sqrt(2.0 / T)).to(dtype)
        b = torch.tensor(rs.normal(size=T) * 0.1).to(dtype)
    return x, w, b, g


def _f64(t: torch.Tensor | None) -> np.ndarray | None:
    return None if t is None else t.detach().to(torch.float64).numpy()


def half_errors(variant: str, dtype: torch.dtype, inputs, spikes, membrane, grads=None) -> dict[str, float]:
    """Each output's worst error over SPEC §9's tolerance for ``dtype`` (1.0 = the limit) against the
    float64 reference run on the same ``inputs`` (:func:`half_case`), measured as the conformance
    suite does: spikes as the fraction that differ over the fraction allowed, ``dL/dx`` where the
    spikes agree. ``grads`` holds any of ``x``, ``threshold``, ``surrogate_alpha``, ``weight``, ``bias``."""
    x, w, b, g = (_f64(t) for t in inputs)
    tol = for_dtype(str(dtype).removeprefix("torch."))
    ref = reference.forward(variant, x, w, b, **HALF_PARAMS)
    s = _f64(spikes)
    out = {
        "spikes": float((s != ref.spikes).mean()) / tol.spike_mismatch,
        "membrane": error_ratio(_f64(membrane), ref.membrane, tol.membrane),
    }
    if grads:
        rg = reference.vjp(variant, x, g, w, b, **HALF_PARAMS)
        agree = s == ref.spikes
        for name, value in grads.items():
            if name == "x":
                out["dL/dx"] = error_ratio(_f64(value)[agree], rg.x[agree], tol.gradient)
            elif name in ("threshold", "surrogate_alpha"):
                out[f"dL/d{name}"] = error_ratio(_f64(value), getattr(rg, name), tol.scalar_gradient)
            else:
                out[f"dL/d{name}"] = error_ratio(_f64(value), getattr(rg, name), tol.gradient)
    return out
