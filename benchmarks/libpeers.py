"""Peers from the spiking-network libraries people use today, each run as its users run it.

Each peer offers the hook of :mod:`benchmarks.peers`, ``prepare(case, grad_spikes, *, device,
dtype) -> (forward_fn, vjp_fn)``, over ``x`` ``[T, N]`` (time first). None of them has PSU
variants: the same neuron is timed in every variant's group. ``forward_fn`` runs without
gradients; ``vjp_fn`` runs the forward with gradients and one backward pass seeded with the
upstream gradient ``G`` ``[T, N]``, returning dL/dx and dL/d(every trainable parameter).
A peer whose package is not importable reports why through :meth:`LibraryPeer.missing`; the
harness lists it as skipped, never drops it silently.

``spikingjelly-lif`` — SpikingJelly ``neuron.LIFNode(tau, decay_input=True, v_threshold=theta,
    v_reset=0.0, surrogate_function=surrogate.ATan(alpha), detach_reset=False, step_mode='m')``,
    ``functional.reset_net`` before each call. Its dynamics equal ``lif-loop-torch``'s
    (``h = h + (x_t - h)/tau``, hard reset to 0, differentiated through the reset), except that
    it fires at ``h >= theta`` (ours ``>``). SpikingJelly 2.0 has no ``backend=`` argument any
    more: on a CPU tensor the multi-step call dispatches to its Torch implementation (a custom
    op ``torch.ops.sj_lif`` looping over T in Python, with a hand-written backward); on CUDA it
    picks its CUDA/Triton kernels itself.
``spikingjelly-psn`` — ``neuron.PSN(T, surrogate_function=surrogate.ATan(alpha))``:
    ``H = W X + b`` with a learned dense ``W`` ``[T, T]`` and ``b`` ``[T]``, ``S = heaviside(H)``
    (Fang et al., NeurIPS 2023). Default initialisation (Kaiming-uniform ``W``, ``b = -1``).
``spikingjelly-masked-psn`` — ``neuron.MaskedPSN(k=4, T, lambda_init=1.0,
    surrogate_function=surrogate.ATan(alpha), step_mode='m')``: ``H = (W * M_k) X + b`` with
    the band mask ``M_k`` (``j <= i <= j + k - 1``) fully applied (``lambda = 1``, the state at
    the end of its progressive masking). The product is still a dense ``[T, T] @ [T, N]``
    matmul, so its cost does not depend on ``k``.
``snntorch-leaky`` — snnTorch ``Leaky(beta=1 - 1/tau, threshold=theta,
    spike_grad=surrogate.atan(alpha), reset_mechanism='zero')`` looped over time as its
    tutorials do (``mem = lif.init_leaky(); for t: spk, mem = lif(x[t], mem)``), fed
    ``x / tau`` (the input scale folded into the input, as a preceding layer's weights would
    hold it; done once in ``prepare``, not timed). Then ``mem_t = beta (1 - s_{t-1}) mem_{t-1} +
    x_t / tau``, ``s_t = heaviside(mem_t - theta)``: the same values as ``lif-loop-torch``, but
    snnTorch detaches the reset from the graph, so its gradients differ. dL/dx is with respect to
    the fed ``x / tau``.
``spyx-lif`` (JAX) — spyx ``nn.LIF((N,), beta=1 - 1/tau, threshold=theta,
    activation=axn.arctan(alpha/2))`` run by ``spyx.nn.run`` (``jax.lax.scan`` over T) under
    ``jax.jit``, fed ``x / tau``. spyx's LIF is not the same neuron: it emits
    ``s_t = heaviside(V_{t-1} - theta)`` from the previous membrane and resets by subtraction,
    ``V_t = beta V_{t-1} + x_t - theta s_t``. Gradients: dL/dx and dL/dbeta (``jax.grad`` of
    ``<S, G>``).
``spyx-psu-lif`` (JAX) — spyx ``nn.PSU_LIF`` (experimental in spyx), run through its
    ``parallel`` method (``jax.lax.associative_scan`` of ``V_t = beta V_{t-1} + x_t``) under
    ``jax.jit``. Despite the name it is *not* the Parallel Spiking Unit of Li et al. that the psu
    packages implement: it is a LIF with the reset removed (no reset term at all, not PSU's
    expected reset), ``s_t = heaviside(V_t - theta)``.

spyx's ``arctan(k)`` surrogate is ``1 / (pi (1 + (k pi v)^2))``; with ``k = alpha/2`` it has the
shape of the arctan surrogate used here, scaled by ``2 / (pi alpha)`` — a constant that does not
change the cost.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from benchmarks.peers import _sync, _tensors, torch_dtype

Closure = Callable[[], Any]


def package_version(dist: str) -> str | None:
    """The installed version of distribution ``dist``, or None."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


class LibraryPeer:
    """A peer backed by a third-party package (``module`` to import, ``dist`` to pip-install)."""

    name = ""
    kind = "peer"
    module = ""  # import name
    dist = ""  # PyPI distribution name
    framework = "torch"  # "torch" | "jax"
    summary = ""  # one line for RESULTS.md

    def missing(self) -> str:
        """Why this peer cannot run here ('' when it can)."""
        try:
            importlib.import_module(self.module)
        except ImportError as exc:
            return f"{self.dist} not installed (pip install {self.dist}): {exc}"
        return ""

    def version(self) -> str | None:
        return package_version(self.dist)

    def prepare(
        self, case: Mapping[str, Any], grad_spikes: np.ndarray, *, device: str, dtype: str
    ) -> tuple[Closure, Closure]:
        """``(forward_fn, vjp_fn)`` on device-resident inputs (see the module docstring)."""
        raise NotImplementedError(f"{type(self).__name__} defines no prepare")

    def devices(self) -> list[str]:
        if self.framework == "jax":
            return _jax_devices()
        return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])

    def dtypes(self, device: str) -> list[str]:
        if self.framework == "jax":
            import jax

            return ["float32", "float64"] if jax.config.read("jax_enable_x64") else ["float32"]
        return ["float32", "float64"]


def _leaves(*tensors: torch.Tensor) -> list[torch.Tensor]:
    return [t.detach().clone().requires_grad_(True) for t in tensors]


class SpikingJellyLIF(LibraryPeer):
    name = "spikingjelly-lif"
    module = "spikingjelly.activation_based.neuron"
    dist = "spikingjelly"
    summary = "LIFNode, step_mode='m', hard reset to 0, tau, ATan(alpha), detach_reset=False"

    def prepare(
        self, case: Mapping[str, Any], grad_spikes: np.ndarray, *, device: str, dtype: str
    ) -> tuple[Closure, Closure]:
        from spikingjelly.activation_based import functional, neuron, surrogate

        dev, dt = torch.device(device), torch_dtype(dtype)
        v = _tensors(case, grad_spikes, dev, dt)
        node = neuron.LIFNode(
            tau=float(case["tau"]),
            decay_input=True,
            v_threshold=float(case["threshold"]),
            v_reset=0.0,
            surrogate_function=surrogate.ATan(alpha=float(case["surrogate_alpha"])),
            detach_reset=False,
            step_mode="m",
        ).to(dev)
        x, g = v["x"], v["g"]
        (xl,) = _leaves(x)

        def forward_fn() -> torch.Tensor:
            functional.reset_net(node)
            with torch.no_grad():
                out = node(x)
            _sync(dev)
            return out

        def vjp_fn() -> dict[str, torch.Tensor]:
            functional.reset_net(node)
            (gx,) = torch.autograd.grad(node(xl), [xl], grad_outputs=g)
            _sync(dev)
            return {"x": gx}

        return forward_fn, vjp_fn


class _SpikingJellyParallel(LibraryPeer):
    module = "spikingjelly.activation_based.neuron"
    dist = "spikingjelly"

    def make(self, T: int, alpha: float) -> torch.nn.Module:
        raise NotImplementedError

    def prepare(
        self, case: Mapping[str, Any], grad_spikes: np.ndarray, *, device: str, dtype: str
    ) -> tuple[Closure, Closure]:
        from spikingjelly.activation_based import functional

        dev, dt = torch.device(device), torch_dtype(dtype)
        v = _tensors(case, grad_spikes, dev, dt)
        x, g = v["x"], v["g"]
        node = self.make(v["T"], float(case["surrogate_alpha"])).to(device=dev, dtype=dt)
        (xl,) = _leaves(x)
        params = dict(node.named_parameters())

        def forward_fn() -> torch.Tensor:
            functional.reset_net(node)
            with torch.no_grad():
                out = node(x)
            _sync(dev)
            return out

        def vjp_fn() -> dict[str, torch.Tensor]:
            functional.reset_net(node)
            grads = torch.autograd.grad(node(xl), [xl, *params.values()], grad_outputs=g)
            _sync(dev)
            return dict(zip(["x", *params], grads, strict=True))

        return forward_fn, vjp_fn


class SpikingJellyPSN(_SpikingJellyParallel):
    name = "spikingjelly-psn"
    summary = "PSN(T): H = W X + b, dense learned W [T, T], ATan(alpha)"

    def make(self, T: int, alpha: float) -> torch.nn.Module:
        from spikingjelly.activation_based import neuron, surrogate

        return neuron.PSN(T=T, surrogate_function=surrogate.ATan(alpha=alpha))


class SpikingJellyMaskedPSN(_SpikingJellyParallel):
    name = "spikingjelly-masked-psn"
    K = 4
    summary = f"MaskedPSN(k={K}, T, lambda_init=1.0, step_mode='m'): H = (W * M_k) X + b, ATan(alpha)"

    def make(self, T: int, alpha: float) -> torch.nn.Module:
        from spikingjelly.activation_based import neuron, surrogate

        return neuron.MaskedPSN(
            k=self.K, T=T, lambda_init=1.0, surrogate_function=surrogate.ATan(alpha=alpha), step_mode="m"
        )


def snntorch_leaky_forward(lif: Any, x: torch.Tensor) -> torch.Tensor:
    """snnTorch's loop over time (its tutorials' idiom); ``x`` ``[T, N]`` -> spikes ``[T, N]``."""
    mem = lif.init_leaky()
    out = []
    for t in range(x.shape[0]):
        spk, mem = lif(x[t], mem)
        out.append(spk)
    return torch.stack(out)


class SnnTorchLeaky(LibraryPeer):
    name = "snntorch-leaky"
    module = "snntorch"
    dist = "snntorch"
    summary = "Leaky(beta=1-1/tau, reset_mechanism='zero', atan(alpha)) looped over T, fed x/tau"

    def make(self, case: Mapping[str, Any], device: torch.device, dtype: torch.dtype) -> Any:
        import snntorch
        from snntorch import surrogate

        lif = snntorch.Leaky(
            beta=1.0 - 1.0 / float(case["tau"]),
            threshold=float(case["threshold"]),
            spike_grad=surrogate.atan(alpha=float(case["surrogate_alpha"])),
            reset_mechanism="zero",
        )
        return lif.to(device=device, dtype=dtype)

    def prepare(
        self, case: Mapping[str, Any], grad_spikes: np.ndarray, *, device: str, dtype: str
    ) -> tuple[Closure, Closure]:
        dev, dt = torch.device(device), torch_dtype(dtype)
        v = _tensors(case, grad_spikes, dev, dt)
        x, g = v["x"] / float(case["tau"]), v["g"]
        lif = self.make(case, dev, dt)
        (xl,) = _leaves(x)

        def forward_fn() -> torch.Tensor:
            with torch.no_grad():
                out = snntorch_leaky_forward(lif, x)
            _sync(dev)
            return out

        def vjp_fn() -> dict[str, torch.Tensor]:
            (gx,) = torch.autograd.grad(snntorch_leaky_forward(lif, xl), [xl], grad_outputs=g)
            _sync(dev)
            return {"x": gx}

        return forward_fn, vjp_fn


def _jax_devices() -> list[str]:
    import jax

    out = []
    for name, platform in (("cpu", "cpu"), ("cuda", "gpu")):
        try:
            if jax.devices(platform):
                out.append(name)
        except RuntimeError:  # no such platform in this jaxlib
            pass
    return out


class _Spyx(LibraryPeer):
    module = "spyx"
    dist = "spyx"
    framework = "jax"

    def make(self, N: int, beta: float, theta: float, alpha: float) -> Any:
        raise NotImplementedError

    def run(self, model: Any, x: Any) -> Any:
        raise NotImplementedError

    @functools.lru_cache(maxsize=32)  # noqa: B019  (peers are module-level singletons)
    def compiled(self, T: int, N: int, dtype: str, device: str, beta: float, theta: float, alpha: float) -> tuple:
        """``(state, forward, grad)``, compiled ahead of time for these shapes.

        Cached so that the variant groups of one ``T`` (same shapes, same neuron) share one
        compilation, and compiled here so that no timed or warm-up call pays for it.
        ``forward(state, x) -> S``; ``grad(state, x, g) -> (dL/dstate, dL/dx)`` for ``L = <S, g>``.
        """
        import jax
        import jax.numpy as jnp
        from flax import nnx

        dev = jax.devices("gpu" if device == "cuda" else "cpu")[0]
        graphdef, state = nnx.split(self.make(N, beta, theta, alpha))
        state = jax.device_put(state, dev)

        def spikes(st: Any, xx: Any) -> Any:
            return self.run(nnx.merge(graphdef, st), xx)

        x = jax.device_put(jnp.zeros((T, N), dtype), dev)
        fwd = jax.jit(spikes).lower(state, x).compile()
        grad = (
            jax.jit(jax.grad(lambda st, xx, gg: jnp.vdot(spikes(st, xx), gg), argnums=(0, 1)))
            .lower(state, x, x)
            .compile()
        )
        return state, fwd, grad

    def prepare(
        self, case: Mapping[str, Any], grad_spikes: np.ndarray, *, device: str, dtype: str
    ) -> tuple[Closure, Closure]:
        import jax

        if dtype not in self.dtypes(device):
            raise ValueError(f"{self.name}: no {dtype} here (jax_enable_x64 is off)")
        dev = jax.devices("gpu" if device == "cuda" else "cpu")[0]
        xs = np.asarray(case["x"], dtype=dtype)
        T, tau = xs.shape[0], float(case["tau"])
        x = jax.device_put(xs.reshape(T, -1) / np.asarray(tau, dtype=dtype), dev)
        g = jax.device_put(np.asarray(grad_spikes, dtype=dtype).reshape(T, -1), dev)
        state, fwd, grad = self.compiled(
            T, x.shape[1], dtype, device, 1.0 - 1.0 / tau, float(case["threshold"]), float(case["surrogate_alpha"])
        )

        def forward_fn() -> Any:
            return fwd(state, x).block_until_ready()

        def vjp_fn() -> dict[str, Any]:
            g_state, gx = jax.block_until_ready(grad(state, x, g))
            return {"x": gx, "params": g_state}

        return forward_fn, vjp_fn


class SpyxLIF(_Spyx):
    name = "spyx-lif"
    summary = "nn.LIF (spike from V_{t-1}, reset by subtraction) via nn.run (lax.scan), jit, fed x/tau"

    def make(self, N: int, beta: float, theta: float, alpha: float) -> Any:
        import spyx
        from flax import nnx

        return spyx.nn.LIF((N,), beta=beta, threshold=theta, activation=spyx.axn.arctan(alpha / 2), rngs=nnx.Rngs(0))

    def run(self, model: Any, x: Any) -> Any:
        import jax.numpy as jnp
        import spyx

        return spyx.nn.run(model, x, jnp.zeros(x.shape[1:], x.dtype))[0]


class SpyxPSULIF(_Spyx):
    name = "spyx-psu-lif"
    summary = "nn.PSU_LIF.parallel: reset-free LIF by lax.associative_scan, jit (not Li et al.'s PSU)"

    def make(self, N: int, beta: float, theta: float, alpha: float) -> Any:
        import spyx
        from flax import nnx

        return spyx.nn.PSU_LIF(
            (N,), beta=beta, threshold=theta, activation=spyx.axn.arctan(alpha / 2), rngs=nnx.Rngs(0)
        )

    def run(self, model: Any, x: Any) -> Any:
        return model.parallel(x)


PEERS: dict[str, LibraryPeer] = {
    p.name: p
    for p in (
        SpikingJellyLIF(),
        SpikingJellyPSN(),
        SpikingJellyMaskedPSN(),
        SnnTorchLeaky(),
        SpyxLIF(),
        SpyxPSULIF(),
    )
}
