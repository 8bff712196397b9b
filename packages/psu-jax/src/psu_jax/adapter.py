"""The ``jax`` conformance adapter: NumPy at the edges, psu_jax's public API inside.

Devices: ``"cpu"`` and ``"cuda"`` (JAX's ``gpu`` platform). float64 runs need
``jax_enable_x64``; the adapter turns it on when it is built, because the suite asks for float64
and JAX would otherwise silently compute in float32.

Shape buckets. JAX compiles one program per input shape, and the suite's two hundred golden
cases come in some forty shapes per variant: compiled one by one they took minutes. So the adapter lays
every case out on the host as ``[T_b, N_b]`` (neuron axes flattened in C order, then time padded
at the end up to a power of two of at least 128, neurons padded at the end up to a power of four
of at least 16) and calls the public API on that; it slices the results back on the host. This
changes no value the suite checks:

* every neuron is causal, so steps appended after ``T`` do not reach steps before it, and the
  learned ``[T, T]`` matrix and bias are padded with zeros outside ``[:T, :T]``;
* neurons are independent, and the sampled draw of neuron ``n`` at step ``t`` is Threefry of the
  counter ``(n, t)`` with ``n`` the flat index, which padding at the end leaves unchanged;
* the cotangent of a padded output is zero, so padded positions add exact zeros to the
  ``dL/dthreshold``, ``dL/dalpha`` and ``dL/dbias`` sums.

A bucket keeps the time-axis method ``choose_method`` picks for the real shape (else the case
runs unpadded), and malformed input (wrong dtype or shapes) is passed through as given, so that
the public API reports it about the caller's own shapes. All reshaping and padding is NumPy on
the host: an eager JAX op on an exact shape would itself compile once per shape.

``split_forward`` (the suite's check of the batching path) pads time only: its pieces are numbered
``b * N_piece + i`` by the vmapped draw, so a piece padded at its end would move the pieces after it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import psu_jax
from psu_core import checks
from psu_jax import random as _random

_PLATFORM = {"cpu": "cpu", "cuda": "gpu"}
_TIME_BUCKET_MIN = 128  # every golden T <= 128 shares one bucket (the dense method's range)
_NEURON_BUCKET_MIN = 16


def _device(device: str) -> jax.Device:
    if device not in _PLATFORM:
        raise ValueError(f"device must be one of {sorted(_PLATFORM)}, got {device!r}")
    try:
        return jax.devices(_PLATFORM[device])[0]
    except RuntimeError as exc:
        raise RuntimeError(f"JAX has no {device} device here: {exc}") from exc


def _bucket(n: int, minimum: int, factor: int) -> int:
    b = minimum
    while b < n:
        b *= factor
    return b


@dataclass(frozen=True)
class _Layout:
    """How a case's arrays sit in their bucket: ``x [T, *neuron_shape]`` as ``[T_b, N_b]``."""

    shape: tuple[int, ...] | None  # x's shape, None when the case is passed through unpadded
    T: int = 0
    N: int = 0
    T_b: int = 0
    N_b: int = 0

    def pad_x(self, a: Any) -> Any:
        """``[T, *neuron_shape]`` -> ``[T_b, N_b]``, zeros after the end of time and of the neurons."""
        if self.shape is None:
            return a
        a = np.reshape(a, (self.T, self.N))
        return np.pad(a, ((0, self.T_b - self.T), (0, self.N_b - self.N)))

    def pad_time(self, a: Any) -> Any:
        """``weight [T, T]`` / ``bias [T]``: zeros after ``T`` along every axis."""
        if self.shape is None or a is None:
            return a
        return np.pad(a, [(0, self.T_b - self.T)] * np.ndim(a))

    def unpad_x(self, a: Any) -> np.ndarray:
        a = _np(a)
        if self.shape is None:
            return a
        return a[: self.T, : self.N].reshape(self.shape)

    def unpad_time(self, a: Any) -> np.ndarray:
        a = _np(a)
        if self.shape is None:
            return a
        return a[tuple(slice(0, self.T) for _ in range(a.ndim))]


def _layout(case: dict[str, Any], platform: str) -> _Layout:
    x, w, b = case["x"], case.get("weight"), case.get("bias")
    if not (isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.floating) and x.ndim >= 1 and x.size > 0):
        return _Layout(None)
    T = x.shape[0]
    N = x.size // T
    if (w is not None and np.shape(w) != (T, T)) or (b is not None and np.shape(b) != (T,)):
        return _Layout(None)
    Tb = _bucket(T, _TIME_BUCKET_MIN, 2)
    Nb = _bucket(N, _NEURON_BUCKET_MIN, 4)
    variant = case["variant"]
    if variant in checks.VARIANTS:
        if psu_jax.choose_method(variant, Tb, Nb, platform) != psu_jax.choose_method(variant, T, N, platform):
            return _Layout(None)
    return _Layout(tuple(x.shape), T, N, Tb, Nb)


def _host(a: Any, dtype: str) -> Any:
    # Floating arrays take the requested dtype, converted on the host (a conversion on the device
    # would compile per shape); anything else passes through untouched so that the bad-input
    # checks see what the caller gave.
    if isinstance(a, np.ndarray) and np.issubdtype(a.dtype, np.floating):
        return np.asarray(a, dtype=jnp.dtype(dtype))
    return a


def _put(a: Any, dtype: str, dev: jax.Device) -> Any:
    return jax.device_put(_host(a, dtype), dev) if isinstance(a, np.ndarray) else a


def _params(case: dict[str, Any]) -> dict[str, Any]:
    return {
        "tau": case["tau"],
        "threshold": case["threshold"],
        "reset_scale": case["reset_scale"],
        "surrogate_alpha": case["surrogate_alpha"],
        "reset": case["reset"],
        "seed": case["seed"],
    }


def _api(variant: str, x: Any, weight: Any, bias: Any, **kw: Any) -> Any:
    """The public function of ``variant``: ``psu(x, ...)``, ``ipsu(x, weight, bias, ...)``, ``rpsu(...)``."""
    if variant == "psu":
        if weight is not None or bias is not None:
            # psu(x) has no weight or bias to give them to (SPEC §11); refuse the case with the
            # words of SPEC §8 rather than Python's TypeError for an unknown keyword.
            checks.check_learned(
                "psu", 0, None if weight is None else np.shape(weight), None if bias is None else np.shape(bias)
            )
        return psu_jax.psu(x, **kw)
    fns: dict[str, Callable[..., Any]] = {"ipsu": psu_jax.ipsu, "rpsu": psu_jax.rpsu}
    if variant not in fns:
        checks.check_variant(variant)  # words the error exactly as every backend does
    return fns[variant](x, weight, bias, **kw)


def _args(case: dict[str, Any], lay: _Layout, dtype: str, dev: jax.Device) -> tuple[Any, Any, Any]:
    """``(x, weight, bias)`` in their bucket on the device; weight/bias None when the case has none."""
    return (
        _put(lay.pad_x(case["x"]), dtype, dev),
        _put(lay.pad_time(case.get("weight")), dtype, dev),
        _put(lay.pad_time(case.get("bias")), dtype, dev),
    )


def _differentiable(v: Any) -> bool:
    return hasattr(v, "dtype") and jnp.issubdtype(v.dtype, jnp.inexact)


def _np(a: Any) -> np.ndarray:
    return np.asarray(jax.device_get(a))


class JaxAdapter:
    """Conformance adapter for psu_jax (functional API, online stepper, Threefry stream)."""

    name = "jax"
    #: SPEC §11's signatures plus ``neuron_offset`` on the functional calls (a JAX key as ``seed``
    #: is a value, not a signature difference).
    api_idioms: dict[str, str] = {
        f"{fn}.neuron_offset": (
            "last keyword neuron_offset=0, the flat index in the whole call of this call's first neuron "
            "(SPEC §6 counter n + neuron_offset): a shard_map shard passes lax.axis_index(axis) * "
            "local_neurons so that a sharded call draws what the whole call draws (jax.vmap and jit "
            "with shardings number the neurons globally by themselves)"
        )
        for fn in ("psu", "ipsu", "rpsu")
    }

    def __init__(self) -> None:
        jax.config.update("jax_enable_x64", True)

    def public_api(self) -> Any:
        return psu_jax

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
        lay = _layout(case, dev.platform)
        with jax.default_device(dev):
            x, w, b = _args(case, lay, dtype, dev)
            out = _api(
                case["variant"], x, w, b, **_params(case),
                return_membrane=True, return_reset=True, validate=case.get("validate", False),
            )  # fmt: skip
            result = {"spikes": lay.unpad_x(out.spikes), "membrane": lay.unpad_x(out.membrane)}
            if out.reset is not None:
                result["reset"] = lay.unpad_x(out.reset)
        return result

    def split_forward(self, case: dict[str, Any], parts: int, *, device: str, dtype: str) -> dict[str, np.ndarray]:
        """The case with ``x`` split in ``parts`` equal pieces along its first neuron axis, stacked as
        ``[parts, T, n1 / parts, ...]`` and run through ONE ``jax.vmap`` of the public API with no
        ``neuron_offset``: the vmapped draw numbers the pieces as one call. Outputs (spikes,
        membrane, reset) reassembled to ``x``'s shape."""
        dev = _device(device)
        x = np.asarray(case["x"])
        if x.ndim < 2 or x.shape[1] % parts:
            raise ValueError(f"x of shape {list(x.shape)} does not split in {parts} along its first neuron axis")
        T = x.shape[0]
        n = x.size // (T * parts)  # neurons per piece, flattened in C order (their numbering)
        Tb = _bucket(T, _TIME_BUCKET_MIN, 2)
        variant = case["variant"]
        if psu_jax.choose_method(variant, Tb, n, dev.platform) != psu_jax.choose_method(variant, T, n, dev.platform):
            Tb = T
        lay = _Layout(tuple(x.shape), T, n, Tb, n)
        pieces = np.moveaxis(x.reshape(T, parts, n), 1, 0)  # [parts, T, n]
        pieces = np.pad(pieces, ((0, 0), (0, Tb - T), (0, 0)))
        with jax.default_device(dev):
            stacked = _put(pieces, dtype, dev)
            w = _put(lay.pad_time(case.get("weight")), dtype, dev)
            b = _put(lay.pad_time(case.get("bias")), dtype, dev)
            params = _params(case)

            def piece(xp: jax.Array) -> Any:
                return _api(variant, xp, w, b, **params, return_membrane=True, return_reset=True)

            out = jax.vmap(piece)(stacked)

        def whole(a: Any) -> np.ndarray:
            a = _np(a)[:, :T]  # [parts, T, n]
            return np.moveaxis(a, 0, 1).reshape(x.shape)

        result = {"spikes": whole(out.spikes), "membrane": whole(out.membrane)}
        if out.reset is not None:
            result["reset"] = whole(out.reset)
        return result

    def vjp(self, case: dict[str, Any], grad_spikes: np.ndarray, *, device: str, dtype: str) -> dict[str, Any]:
        dev = _device(device)
        lay = _layout(case, dev.platform)
        with jax.default_device(dev):
            variant = case["variant"]
            params = _params(case)
            validate = case.get("validate", False)
            x, w, b = _args(case, lay, dtype, dev)
            g = _put(lay.pad_x(np.asarray(grad_spikes, dtype=np.float64)), dtype, dev)
            # threshold and alpha are differentiated as arrays; eager grad keeps their values
            # concrete, so the public API still checks them by value.
            scalars = {}
            for name in ("threshold", "surrogate_alpha"):
                v = params.pop(name)
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    v = _put(np.asarray(v, dtype=np.float64), dtype, dev)
                scalars[name] = v
            learned = {} if w is None and b is None else {"weight": w, "bias": b}

            def loss(diff):
                s = _api(variant, diff["x"], diff.get("weight", w), diff.get("bias", b),
                         threshold=diff["threshold"], surrogate_alpha=diff["surrogate_alpha"],
                         validate=validate, **params)  # fmt: skip
                return jnp.sum(s * g)  # s is in g's dtype

            diff = {"x": x, **scalars, **learned}
            if not all(_differentiable(v) for v in diff.values()):
                loss(diff)  # not differentiable (missing, integer, text): the public API raises
            grads = jax.grad(loss)(diff)
            result: dict[str, Any] = {
                "x": lay.unpad_x(grads["x"]),
                "threshold": float(grads["threshold"]),
                "surrogate_alpha": float(grads["surrogate_alpha"]),
            }
            for k in learned:
                result[k] = lay.unpad_time(grads[k])
        return result

    def online(self, case: dict[str, Any], *, device: str, dtype: str) -> dict[str, np.ndarray]:
        dev = _device(device)
        lay = _layout(case, dev.platform)
        variant = case["variant"]
        with jax.default_device(dev):
            _, w, b = _args(case, lay, dtype, dev)
            # The steps are fed from the host: slicing x on the device would compile per shape.
            x = _host(lay.pad_x(case["x"]), dtype)
            T = int(x.shape[0]) if variant != "psu" else None
            state = psu_jax.init_state(variant, tuple(x.shape[1:]), T=T, dtype=x.dtype, device=dev)
            spikes, membrane, resets = [], [], []  # type: list[jax.Array], list[jax.Array], list[Any]
            for t in range(case["x"].shape[0]):
                state, out = psu_jax.step(state, jax.device_put(x[t], dev), w, b, **_params(case))
                spikes.append(out.spikes)
                membrane.append(out.membrane)
                resets.append(out.reset)
            result = {"spikes": lay.unpad_x(spikes), "membrane": lay.unpad_x(membrane)}
            if case["reset"] == "sampled":
                result["reset"] = lay.unpad_x(resets)
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
            variant = case["variant"]
            params = _params(case)
            x, w, b = _args(case, _Layout(None), dtype, dev)
            g = _put(np.asarray(grad_spikes, dtype=np.float64), dtype, dev)
            learned = () if w is None else (w, b)

            def run(x, *wb):
                return _api(variant, x, *(wb or (None, None)), **params)

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
