"""The ``jax`` conformance adapter: NumPy at the edges, psu_jax's public API inside.

Devices: ``"cpu"`` and ``"cuda"`` (JAX's ``gpu`` platform). float64 runs need
``jax_enable_x64``; the adapter turns it on when it is built, because the suite asks for float64
and JAX would otherwise silently compute in float32.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import psu_jax
from psu_jax import online as _online
from psu_jax import random as _random

_PLATFORM = {"cpu": "cpu", "cuda": "gpu"}


def _device(device: str) -> jax.Device:
    if device not in _PLATFORM:
        raise ValueError(f"device must be one of {sorted(_PLATFORM)}, got {device!r}")
    try:
        return jax.devices(_PLATFORM[device])[0]
    except RuntimeError as exc:
        raise RuntimeError(f"JAX has no {device} device here: {exc}") from exc


def _put(a: Any, dtype: str, dev: jax.Device) -> Any:
    # Floating arrays take the requested dtype; anything else passes through untouched so that the
    # bad-input checks see what the caller gave.
    if isinstance(a, np.ndarray):
        if np.issubdtype(a.dtype, np.floating):
            return jax.device_put(jnp.asarray(a, dtype=dtype), dev)
        return jax.device_put(a, dev)
    return a


def _params(case: dict[str, Any]) -> dict[str, Any]:
    return {
        "tau": case["tau"],
        "threshold": case["threshold"],
        "reset_scale": case["reset_scale"],
        "surrogate_alpha": case["surrogate_alpha"],
        "reset": case["reset"],
        "key_or_seed": case["seed"],
    }


def _fn(variant: str) -> Callable[..., Any]:
    fns: dict[str, Callable[..., Any]] = {"psu": psu_jax.psu, "ipsu": psu_jax.ipsu, "rpsu": psu_jax.rpsu}
    if variant not in fns:
        # Let the shared checks word the error exactly as every backend does.
        from psu_core import checks

        checks.check_variant(variant)
    return fns[variant]


def _args(case: dict[str, Any], dtype: str, dev: jax.Device) -> tuple[Any, Any, Any]:
    """``(x, weight, bias)`` on the device; weight/bias None when the case has none."""
    return (
        _put(case["x"], dtype, dev),
        _put(case.get("weight"), dtype, dev),
        _put(case.get("bias"), dtype, dev),
    )


def _differentiable(v: Any) -> bool:
    return hasattr(v, "dtype") and jnp.issubdtype(v.dtype, jnp.inexact)


def _np(a: Any) -> np.ndarray:
    return np.asarray(jax.device_get(a))


class JaxAdapter:
    """Conformance adapter for psu_jax (functional API, online stepper, Threefry stream)."""

    name = "jax"

    def __init__(self) -> None:
        jax.config.update("jax_enable_x64", True)

    def devices(self) -> list[str]:
        found = []
        for name, platform in _PLATFORM.items():
            try:
                if jax.devices(platform):
                    found.append(name)
            except RuntimeError:
                pass
        return found

    def dtypes(self, device: str) -> list[str]:
        if device == "cuda":
            return ["float64", "float32", "bfloat16", "float16"]
        return ["float64", "float32"]

    def forward(self, case: dict[str, Any], *, device: str, dtype: str) -> dict[str, np.ndarray]:
        dev = _device(device)
        with jax.default_device(dev):
            x, w, b = _args(case, dtype, dev)
            out = _fn(case["variant"])(
                x, weight=w, bias=b, **_params(case),
                return_membrane=True, validate=case.get("validate", False),
            )  # fmt: skip
            result = {"spikes": _np(out.spikes), "membrane": _np(out.membrane)}
            if out.reset is not None:
                result["reset"] = _np(out.reset)
        return result

    def vjp(self, case: dict[str, Any], grad_spikes: np.ndarray, *, device: str, dtype: str) -> dict[str, Any]:
        dev = _device(device)
        with jax.default_device(dev):
            fn = _fn(case["variant"])
            params = _params(case)
            validate = case.get("validate", False)
            x, w, b = _args(case, dtype, dev)
            g = _put(np.asarray(grad_spikes, dtype=np.float64), dtype, dev)
            # threshold and alpha are differentiated as arrays; eager grad keeps their values
            # concrete, so the public API still checks them by value.
            scalars = {}
            for name in ("threshold", "surrogate_alpha"):
                v = params.pop(name)
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    v = jax.device_put(jnp.asarray(v, dtype=dtype), dev)
                scalars[name] = v
            learned = {} if w is None and b is None else {"weight": w, "bias": b}

            def loss(diff):
                s = fn(diff["x"], **{**learned, **{k: diff[k] for k in learned}},
                       threshold=diff["threshold"], surrogate_alpha=diff["surrogate_alpha"],
                       validate=validate, **params)  # fmt: skip
                return jnp.sum(s.astype(g.dtype) * g)

            diff = {"x": x, **scalars, **learned}
            if not all(_differentiable(v) for v in diff.values()):
                loss(diff)  # not differentiable (missing, integer, text): the public API raises
            grads = jax.grad(loss)(diff)
            result: dict[str, Any] = {
                "x": _np(grads["x"]),
                "threshold": float(grads["threshold"]),
                "surrogate_alpha": float(grads["surrogate_alpha"]),
            }
            for k in learned:
                result[k] = _np(grads[k])
        return result

    def online(self, case: dict[str, Any], *, device: str, dtype: str) -> dict[str, np.ndarray]:
        dev = _device(device)
        variant = case["variant"]
        with jax.default_device(dev):
            x, w, b = _args(case, dtype, dev)
            num_steps = int(x.shape[0]) if variant != "psu" else None
            state = _online.init_state(variant, tuple(x.shape[1:]), num_steps=num_steps, dtype=x.dtype)
            spikes, membrane, resets = [], [], []  # type: list[jax.Array], list[jax.Array], list[Any]
            for t in range(x.shape[0]):
                state, out = _online.step(state, x[t], weight=w, bias=b, **_params(case))
                spikes.append(out.spikes)
                membrane.append(out.membrane)
                resets.append(out.reset)
            result = {"spikes": _np(jnp.stack(spikes)), "membrane": _np(jnp.stack(membrane))}
            if case["reset"] == "sampled":
                result["reset"] = _np(jnp.stack(resets))
        return result

    def threefry2x32(self, key0, key1, counter0, counter1, *, device: str) -> tuple[np.ndarray, np.ndarray]:
        dev = _device(device)
        with jax.default_device(dev):
            w0, w1 = _random.threefry2x32(
                jnp.asarray(np.asarray(key0, np.uint32)), jnp.asarray(np.asarray(key1, np.uint32)),
                jnp.asarray(np.asarray(counter0, np.uint32)), jnp.asarray(np.asarray(counter1, np.uint32)),
            )  # fmt: skip
            return _np(w0), _np(w1)

    def uniforms(self, seed: int, shape: Sequence[int], *, device: str) -> np.ndarray:
        dev = _device(device)
        with jax.default_device(dev):
            return _np(_random.uniforms(seed, tuple(shape), jnp.float64)).astype(np.float64)

    def prepare(
        self, case: dict[str, Any], grad_spikes: np.ndarray, *, device: str, dtype: str
    ) -> tuple[Callable[[], Any], Callable[[], Any]]:
        """Jitted closures over device-resident inputs; each call blocks until the result is ready."""
        dev = _device(device)
        with jax.default_device(dev):
            fn = _fn(case["variant"])
            params = _params(case)
            x, w, b = _args(case, dtype, dev)
            g = _put(np.asarray(grad_spikes, dtype=np.float64), dtype, dev)
            learned = () if w is None else (w, b)

            def run(x, *wb):
                return fn(x, **dict(zip(("weight", "bias"), wb, strict=False)), **params)

            def loss(g, x, *wb):
                return jnp.sum(run(x, *wb).astype(jnp.float32) * g.astype(jnp.float32))

            args = (x, *learned)
            fwd = jax.jit(run)
            # g is an argument, not a closure constant: XLA would fold a large constant slowly.
            bwd = jax.jit(jax.grad(loss, argnums=tuple(range(1, len(args) + 1))))

        def forward_fn() -> Any:
            return jax.block_until_ready(fwd(*args))

        def vjp_fn() -> Any:
            return jax.block_until_ready(bwd(g, *args))

        return forward_fn, vjp_fn
