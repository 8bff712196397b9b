"""The public API of psu-numba (SPEC §11), written once for its three targets.

An :class:`Api` binds this API to one target's :class:`~psu_numba.device.Device`;
``psu_numba.cpu``, ``psu_numba.numba_cuda`` and ``psu_numba.cupy`` export the methods of theirs,
so the three modules have the same names, parameters and results:

* ``psu(x)``, ``ipsu(x, weight, bias)``, ``rpsu(x, weight, bias)``: spikes, or
  :class:`psu_core.api.PSUOutput` when ``return_membrane``/``return_reset``;
* ``forward(variant, ...)``: always a ``PSUOutput``, with optional preallocated outputs;
* ``vjp(variant, x, grad_spikes, ...)``: the gradients (Numba has no autodiff; this is how users
  get them): :class:`~psu_numba.common.Gradients`;
* ``init_state``, ``step`` (pure), ``OnlineStepper``: the online form;
* ``threefry2x32``, ``uniforms``: the SPEC §6 stream; ``available()``, ``empty_like(x)``.

Shapes: ``x`` is ``[T, *neuron_shape]`` (time first), computed as ``[T, N]`` in C order;
``weight`` ``[T, T]`` (only its lower triangle is used) and ``bias`` ``[T]`` for IPSU/RPSU.
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import Any

import numpy as np

from psu_core import checks
from psu_core.api import PSUOutput, StepOutput
from psu_numba import online
from psu_numba.common import (
    PSU,
    Gradients,
    Launch,
    Params,
    check_neurons_for_sampling,
    is_floating,
    neuron_count,
    shape_of,
)
from psu_numba.device import Device
from psu_numba.online import OnlineState

_U32 = np.dtype(np.uint32)

#: What each target module exports: SPEC §11's names, then psu-numba's own.
NAMES = ("psu", "ipsu", "rpsu", "init_state", "step", "OnlineStepper", "PSUOutput", "StepOutput", "OnlineState",
         "forward", "vjp", "Gradients", "threefry2x32", "uniforms", "available", "empty_like", "METHODS")  # fmt: skip


def export(device: Device, namespace: dict[str, Any]) -> None:
    """Fill a target module's ``namespace`` with the API bound to ``device`` (and its ``__all__``)."""
    api = Api(device)
    shared = dict(PSUOutput=PSUOutput, StepOutput=StepOutput, OnlineState=OnlineState, Gradients=Gradients)
    namespace.update({name: shared[name] if name in shared else getattr(api, name) for name in NAMES})
    namespace["__all__"] = list(NAMES)
    namespace["_api"] = api  # for the conformance adapters and tests: the target's Device is api.device


class Api:
    """The public API on one target. ``METHODS`` lists what ``method=`` accepts."""

    def __init__(self, device: Device) -> None:
        self.device = device
        self.METHODS = ("auto", *device.methods)
        self.OnlineStepper = type("OnlineStepper", (online.OnlineStepper,), {"api": self, "__module__": device.module})

    # ------------------------------------------------------------------------ functional (SPEC §2)

    def psu(
        self,
        x: Any,
        *,
        tau: float = 2.0,
        threshold: float = 1.0,
        reset_scale: float | None = None,
        surrogate_alpha: float = 2.0,
        reset: str = "expected",
        seed: int | None = None,
        method: str = "auto",
        return_membrane: bool = False,
        return_reset: bool = False,
        validate: bool = False,
    ) -> Any:
        """PSU: ``H = A X``, ``P = sigmoid(H)``, ``V = H - gamma B Q``, ``S = [V > threshold]``.

        ``x [T, *neuron_shape]`` -> spikes ``[T, *neuron_shape]`` in the dtype of ``x``, or
        ``PSUOutput(spikes, membrane, reset)`` when ``return_membrane``/``return_reset``. See
        :meth:`forward` for the parameters.
        """
        out = self.forward("psu", x, tau=tau, threshold=threshold, reset_scale=reset_scale,
                           surrogate_alpha=surrogate_alpha, reset=reset, seed=seed, method=method,
                           return_membrane=return_membrane, return_reset=return_reset, validate=validate)  # fmt: skip
        return out if (return_membrane or return_reset) else out.spikes

    def ipsu(
        self,
        x: Any,
        weight: Any,
        bias: Any,
        *,
        tau: float = 2.0,
        threshold: float = 1.0,
        reset_scale: float | None = None,
        surrogate_alpha: float = 2.0,
        reset: str = "expected",
        seed: int | None = None,
        method: str = "auto",
        return_membrane: bool = False,
        return_reset: bool = False,
        validate: bool = False,
    ) -> Any:
        """IPSU: ``H = (W ⊙ M) X + b``, ``V = H - gamma B X``; ``weight [T, T]``, ``bias [T]``.
        Outputs as :meth:`psu`."""
        out = self.forward("ipsu", x, weight, bias, tau=tau, threshold=threshold, reset_scale=reset_scale,
                           surrogate_alpha=surrogate_alpha, reset=reset, seed=seed, method=method,
                           return_membrane=return_membrane, return_reset=return_reset, validate=validate)  # fmt: skip
        return out if (return_membrane or return_reset) else out.spikes

    def rpsu(
        self,
        x: Any,
        weight: Any,
        bias: Any,
        *,
        tau: float = 2.0,
        threshold: float = 1.0,
        reset_scale: float | None = None,
        surrogate_alpha: float = 2.0,
        reset: str = "expected",
        seed: int | None = None,
        method: str = "auto",
        return_membrane: bool = False,
        return_reset: bool = False,
        validate: bool = False,
    ) -> Any:
        """RPSU: ``H = A X``, ``P = sigmoid((W ⊙ M) X + b)``, ``V = H - gamma B Q``;
        ``weight [T, T]``, ``bias [T]``. Outputs as :meth:`psu`."""
        out = self.forward("rpsu", x, weight, bias, tau=tau, threshold=threshold, reset_scale=reset_scale,
                           surrogate_alpha=surrogate_alpha, reset=reset, seed=seed, method=method,
                           return_membrane=return_membrane, return_reset=return_reset, validate=validate)  # fmt: skip
        return out if (return_membrane or return_reset) else out.spikes

    def forward(
        self,
        variant: str,
        x: Any,
        weight: Any = None,
        bias: Any = None,
        *,
        tau: float = 2.0,
        threshold: float = 1.0,
        reset_scale: float | None = None,
        surrogate_alpha: float = 2.0,
        reset: str = "expected",
        seed: int | None = None,
        method: str = "auto",
        return_membrane: bool = False,
        return_reset: bool = False,
        validate: bool = False,
        out: Any = None,
        membrane_out: Any = None,
    ) -> PSUOutput:
        """Spikes (and on request the membrane and the drawn resets) of one PSU-family layer.

        ``x [T, *neuron_shape]`` -> ``S = [V > threshold]`` with (SPEC §2)

        * PSU:  ``H = A X``, ``P = sigmoid(H)``, ``V = H - gamma B Q``;
        * IPSU: ``H = (W ⊙ M) X + b``, ``V = H - gamma B X``;
        * RPSU: ``H = A X``, ``P = sigmoid((W ⊙ M) X + b)``, ``V = H - gamma B Q``;

        computed as one pass over time (SPEC §3). ``Q = P`` for ``reset="expected"``, or the draws
        ``R = [u < P]`` of the SPEC §6 Threefry stream for ``reset="sampled"`` (PSU/RPSU, ``seed``
        required). ``gamma = threshold`` when ``reset_scale is None``. ``surrogate_alpha`` only
        matters for :meth:`vjp`; it is checked here so both calls accept the same arguments.
        ``method``: one of ``METHODS``. ``validate=True`` scans ``x`` for NaN/inf first.
        ``out``/``membrane_out``: optional preallocated C-contiguous outputs (the shape of ``x``,
        the kernel dtype).

        Returns ``PSUOutput(spikes, membrane, reset)``: ``[T, *neuron_shape]`` in the dtype of
        ``x``, ``None`` where not asked. Raises ``TypeError`` for a non-floating ``x``,
        ``ValueError`` naming the argument for anything else (SPEC §8).
        """
        dev = self.device
        x, weight, bias, p, dt = self._check(variant, x, weight, bias, method, validate, dict(
            tau=tau, threshold=threshold, reset_scale=reset_scale, surrogate_alpha=surrogate_alpha, reset=reset,
            seed=seed))  # fmt: skip
        want_m, want_r = bool(return_membrane), bool(return_reset and p.sampled)
        with dev.scope(x):
            k = self._launch(x, weight, bias, p, dt)
            spikes = self._output("out", out, x, dt)
            membrane = self._output("membrane_out", membrane_out, x, dt) if want_m else dev.empty((1, 1), dt)
            resets = dev.empty((p.T, p.n), dt) if want_r else dev.empty((1, 1), dt)
            dev.forward(k, spikes, membrane, resets, want_m, want_r)
        shape = tuple(x.shape)
        return PSUOutput(
            dev.result(spikes, shape, x.dtype),
            dev.result(membrane, shape, x.dtype) if want_m else None,
            dev.result(resets, shape, x.dtype) if want_r else None,
        )

    def vjp(
        self,
        variant: str,
        x: Any,
        grad_spikes: Any,
        weight: Any = None,
        bias: Any = None,
        *,
        tau: float = 2.0,
        threshold: float = 1.0,
        reset_scale: float | None = None,
        surrogate_alpha: float = 2.0,
        reset: str = "expected",
        seed: int | None = None,
        method: str = "auto",
        validate: bool = False,
        out: Any = None,
    ) -> Gradients:
        """Vector-Jacobian product of the spikes with ``G = grad_spikes`` (SPEC §4, §5).

        Gradients flow through the spikes only: the membrane and the reset draws are outputs to
        inspect (SPEC §11), so there is no cotangent for them. The forward pass is recomputed in
        the same kernel. With ``gV = G ⊙ dS/dV``, ``dS/dV = alpha / (2 (1 + (pi/2 alpha (V - theta))^2))``:

        * PSU:  dL/dX = ``Aᵀ (gV - gamma (Bᵀ gV) ⊙ P')``
        * IPSU: dL/dX = ``(W ⊙ M)ᵀ gV - gamma Bᵀ gV``; dL/dW = ``(gV Xᵀ) ⊙ M``; dL/db = ``sum_n gV``
        * RPSU: ``gZ = -gamma (Bᵀ gV) ⊙ P'``; dL/dX = ``Aᵀ gV + (W ⊙ M)ᵀ gZ``;
          dL/dW = ``(gZ Xᵀ) ⊙ M``; dL/db = ``sum_n gZ``
        * dL/dalpha = ``sum G ⊙ dS/dalpha``; dL/dtheta = ``-sum gV`` minus ``sum gV ⊙ (B Q)``
          when ``gamma`` is tied to the threshold. Sampled mode is straight-through (``dR/dP = 1``).
        * ``P' = sigmoid(z) sigmoid(-z)`` from the logit ``z`` (``H`` for PSU, the mix for RPSU),
          never ``P (1 - P)`` of a rounded ``P`` (SPEC §5).

        ``grad_spikes`` has the shape of ``x``; ``out`` is an optional preallocated dL/dX. Sums over
        neurons are float64 in a fixed order (on the CPU, dL/dW from ``GEMM_MIN_T`` steps on is a
        BLAS product in the dtype of ``x``): a repeated call gives the same bits.

        Returns ``Gradients(x, weight, bias, threshold, surrogate_alpha)``: arrays in the dtype of
        ``x`` (``weight``/``bias`` ``None`` for PSU), the two scalars as Python floats.
        """
        dev = self.device
        x, weight, bias, p, dt = self._check(variant, x, weight, bias, method, validate, dict(
            tau=tau, threshold=threshold, reset_scale=reset_scale, surrogate_alpha=surrogate_alpha, reset=reset,
            seed=seed))  # fmt: skip
        g = dev.view("grad_spikes", grad_spikes)
        if shape_of(g) != shape_of(x):
            raise ValueError(f"grad_spikes must have the shape of x {list(x.shape)}, got {list(g.shape)}")
        if not is_floating(g.dtype):
            raise TypeError(f"grad_spikes must have a floating dtype, got {g.dtype}")
        with dev.scope(x):
            k = self._launch(x, weight, bias, p, dt)
            dx = self._output("out", out, x, dt)
            dW, db, sum_theta, sum_alpha = dev.vjp(k, dev.operand("grad_spikes", g, dt, (p.T, p.n)), dx)
        return Gradients(
            x=dev.result(dx, tuple(x.shape), x.dtype),
            weight=None if dW is None else dev.result(dW, (p.T, p.T), x.dtype),
            bias=None if db is None else dev.result(db, (p.T,), x.dtype),
            threshold=float(-sum_theta),
            surrogate_alpha=float(sum_alpha),
        )

    # ------------------------------------------------------------------------ online (SPEC §3)

    def init_state(
        self, variant: str, neuron_shape: Any, *, T: int | None = None, dtype: Any = "float32", device: Any = None
    ) -> OnlineState:
        """A zero state for ``neuron_shape`` neurons; ``T`` (the horizon) is required for IPSU/RPSU.

        ``dtype`` is the input's dtype (the state is kept in the dtype the kernels run in);
        ``device``: where the state lives (``None``: the current device).
        """
        dev = self.device
        variant = checks.check_variant(variant)
        shape = tuple(int(d) for d in neuron_shape)
        if any(d < 0 for d in shape):
            raise ValueError(f"neuron_shape must be non-negative, got {list(shape)}")
        if variant == "psu":
            T = None
        elif isinstance(T, bool) or not isinstance(T, numbers.Integral) or T < 1:
            raise ValueError(f"T must be an integer >= 1 for variant {variant!r} (the [T, T] horizon), got {T!r}")
        dev.require()
        dt = dev.kernel_dtype("dtype", dtype)
        n = neuron_count(shape)
        with dev.placement(device):
            h, r, q = (dev.zeros((n,), dt) for _ in range(3))
            history = None if T is None else dev.zeros((int(T), n), dt)
        return OnlineState(variant, shape, None if T is None else int(T), 0, h, r, q, history)

    def step(
        self,
        state: OnlineState,
        x_t: Any,
        weight: Any = None,
        bias: Any = None,
        *,
        tau: float = 2.0,
        threshold: float = 1.0,
        reset_scale: float | None = None,
        surrogate_alpha: float = 2.0,
        reset: str = "expected",
        seed: int | None = None,
    ) -> tuple[OnlineState, StepOutput]:
        """One online step (SPEC §3), pure: returns ``(new_state, StepOutput(spikes, membrane,
        reset))`` for input ``x_t [*neuron_shape]``; ``state`` is left as it was.

        ``r_t = a (r_{t-1} + q_{t-1})``; PSU/RPSU ``h_t = a (h_{t-1} + x_t)``, IPSU
        ``h_t = b_t + sum_{j<=t} W[t, j] x_j``; RPSU ``p_t = sigmoid(b_t + sum_{j<=t} W[t, j] x_j)``,
        PSU ``p_t = sigmoid(h_t)``; ``v_t = h_t - gamma r_t``; ``s_t = [v_t > theta]``. In sampled
        mode the draw ``R_t = [u(t, n) < p_t]`` (the stream of the parallel form) is ``reset``. Fed
        ``x[0], x[1], ...`` it matches :meth:`forward` as SPEC §3 says: on the golden vectors the
        golden spikes and the membrane within SPEC §9; elsewhere spikes may differ only where
        ``|V - theta|`` is within the dtype's membrane tolerance. On the CPU it runs the same
        arithmetic as :meth:`forward` for PSU, and for IPSU/RPSU with ``T`` below the BLAS
        threshold (``psu_numba.cpu.device.GEMM_MIN_T``), and then gives the same bits. IPSU/RPSU
        raise ``ValueError`` past step ``T``. Outputs are ``[*neuron_shape]`` in the dtype of ``x_t``.
        """
        dev = self.device
        dev.require()
        x = dev.view("x_t", x_t)
        weight, bias = dev.view("weight", weight), dev.view("bias", bias)
        p = self._check_step(state.variant, state.t, state.T, state.neuron_shape, x.shape, x.dtype, weight, bias,
                             dict(tau=tau, threshold=threshold, reset_scale=reset_scale,
                                  surrogate_alpha=surrogate_alpha, reset=reset, seed=seed))  # fmt: skip
        dt, n, learned = state.dtype, p.n, p.code != PSU
        with dev.scope(state.h):
            x1 = dev.operand("x_t", x, dt, (n,))
            if learned:
                w, b = dev.operand("weight", weight, dt, (p.T, p.T)), dev.operand("bias", bias, dt, (p.T,))
                history = dev.copy(state.history)
            else:
                w, b, history = dev.zeros((1, 1), dt), dev.zeros((1,), dt), dev.zeros((1, 1), dt)
            h, r, q = dev.copy(state.h), dev.copy(state.r), dev.copy(state.q)
            spikes, membrane, resets = dev.empty((n,), dt), dev.empty((n,), dt), dev.empty((n if p.sampled else 1,), dt)
            dev.step(Launch(p, dt, x1, w, b), state.t, history, h, r, q, spikes, membrane, resets)
        new = dataclasses.replace(state, t=state.t + 1, h=h, r=r, q=q, history=history if learned else None)
        shape = state.neuron_shape
        return new, StepOutput(
            dev.result(spikes, shape, x.dtype),
            dev.result(membrane, shape, x.dtype),
            dev.result(resets, shape, x.dtype) if p.sampled else None,
        )

    def stepper_arguments(
        self, variant: str, neuron_shape: tuple[int, ...], weight: Any, bias: Any, dtype: Any, neuron: dict[str, Any]
    ) -> tuple[Any, Any, int | None]:
        """For an ``OnlineStepper``: every argument checked as its first step will be, the weight and
        bias made ready for the kernels once, and the horizon ``T`` (from ``weight``)."""
        dev = self.device
        dev.require()
        dt = dev.kernel_dtype("dtype", dtype)
        weight, bias = dev.view("weight", weight), dev.view("bias", bias)
        T = None if weight is None or variant == "psu" else int(weight.shape[0])
        p = self._check_step(variant, 0, T, neuron_shape, neuron_shape, dt, weight, bias, neuron)
        if p.code == PSU:
            return None, None, None
        with dev.scope(weight):
            return dev.operand("weight", weight, dt, (p.T, p.T)), dev.operand("bias", bias, dt, (p.T,)), p.T

    # ------------------------------------------------------------------------ the SPEC §6 stream

    def threefry2x32(self, key0: Any, key1: Any, counter0: Any, counter1: Any) -> tuple[Any, Any]:
        """Threefry-2x32 with 20 rounds (Random123), element-wise over integer arrays; returns two
        ``uint32`` arrays of their shape. The CPU broadcasts and casts; the GPUs take four
        equal-shaped ``uint32`` device arrays."""
        dev = self.device
        dev.require()
        names = ("key0", "key1", "counter0", "counter1")
        words = [dev.view(name, v) for name, v in zip(names, (key0, key1, counter0, counter1), strict=True)]
        for name, w in zip(names, words, strict=True):
            if not np.issubdtype(np.dtype(w.dtype), np.integer):
                raise TypeError(f"{name} must be an integer array, got {w.dtype}")
        shape = tuple(np.broadcast_shapes(*(tuple(w.shape) for w in words)))
        size = neuron_count(shape)
        with dev.scope(words[0]):
            flat = [dev.operand(name, w, _U32, shape).reshape((size,)) for name, w in zip(names, words, strict=True)]
            out0, out1 = dev.empty((size,), _U32), dev.empty((size,), _U32)
            dev.threefry(*flat, out0, out1)
        return out0.reshape(shape), out1.reshape(shape)

    def uniforms(self, seed: int, shape: Any) -> Any:
        """``u[t, n] = (w0 >> 8) * 2**-24`` for ``shape = (T, *neuron_shape)`` (float64, SPEC §6)."""
        dev = self.device
        dev.require()
        seed = checks.check_seed(seed)
        shape = tuple(int(d) for d in shape)
        n = neuron_count(shape[1:])
        if n > 2**32:
            raise ValueError(f"shape must have at most 2**32 neurons, got {n}")
        out = dev.empty((shape[0], n), np.float64)
        dev.uniforms(seed & 0xFFFFFFFF, seed >> 32, out)
        return out.reshape(shape)

    # ------------------------------------------------------------------------ helpers

    def available(self) -> bool:
        """True when this target can run now."""
        return self.device.available()

    def empty_like(self, x: Any) -> Any:
        """A new array of this target with the shape and dtype of ``x`` (for ``out=``)."""
        return self.device.empty(tuple(x.shape), np.dtype(x.dtype))

    def _check(self, variant: Any, x: Any, weight: Any, bias: Any, method: Any, validate: bool,
               neuron: dict[str, Any]) -> tuple[Any, Any, Any, Params, np.dtype]:  # fmt: skip
        """SPEC §8 on the arrays' metadata (no pass over the data unless ``validate``)."""
        dev = self.device
        if method not in self.METHODS:
            raise ValueError(f"method must be one of {self.METHODS} for {dev.module}, got {method!r}")
        dev.require()
        x, weight, bias = dev.view("x", x), dev.view("weight", weight), dev.view("bias", bias)
        p = Params.of(checks.validate_call(
            variant, x_shape=tuple(x.shape), x_dtype=str(x.dtype), x_is_floating=is_floating(x.dtype),
            weight_shape=shape_of(weight), bias_shape=shape_of(bias), **neuron))  # fmt: skip
        check_neurons_for_sampling(p, p.n)
        dt = dev.kernel_dtype("x", x.dtype)
        if validate:
            checks.check_finite(dev.all_finite(x))
        return x, weight, bias, p, dt

    def _check_step(self, variant: str, t: int, horizon: int | None, neuron_shape: Any, x_shape: Any, x_dtype: Any,
                    weight: Any, bias: Any, neuron: dict[str, Any]) -> Params:  # fmt: skip
        p = Params.of(checks.validate_step(
            variant, t=t, horizon=horizon, neuron_shape=neuron_shape, x_shape=tuple(x_shape), x_dtype=str(x_dtype),
            x_is_floating=is_floating(x_dtype), weight_shape=shape_of(weight), bias_shape=shape_of(bias), **neuron))  # fmt: skip
        check_neurons_for_sampling(p, p.n)
        return p

    def _launch(self, x: Any, weight: Any, bias: Any, p: Params, dt: np.dtype) -> Launch:
        dev = self.device
        if p.code == PSU:
            w, b = dev.zeros((1, 1), dt), dev.zeros((1,), dt)
        else:
            w, b = dev.operand("weight", weight, dt, (p.T, p.T)), dev.operand("bias", bias, dt, (p.T,))
        return Launch(p, dt, dev.operand("x", x, dt, (p.T, p.n)), w, b)

    def _output(self, name: str, out: Any, x: Any, dt: np.dtype) -> Any:
        """A ``[T, N]`` output: new, or the caller's ``out`` checked against ``x``."""
        dev = self.device
        T, n = int(x.shape[0]), neuron_count(tuple(x.shape[1:]))
        if out is None:
            return dev.empty((T, n), dt)
        o = dev.buffer(name, out)
        if shape_of(o) != shape_of(x) or np.dtype(o.dtype) != dt or not dev.contiguous(o):
            raise ValueError(f"{name} must be a C-contiguous {dt} array of shape {list(x.shape)}, "
                             f"got {o.dtype} {list(o.shape)}")  # fmt: skip
        return o.reshape((T, n))
