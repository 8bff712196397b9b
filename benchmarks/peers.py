"""The implementations every backend is timed against, in PyTorch.

Each peer offers the same optional hook as an adapter, ``prepare(case, grad_spikes, *, device,
dtype) -> (forward_fn, vjp_fn)``: zero-argument closures over device-resident tensors that
synchronise before returning, so the timer measures the same kind of callable for every row.

``dense-torch``
    The paper's dense formulation as published (Li et al., IJCNN 2024; SPEC §2), with
    ``X`` the ``[T, N]`` input and fixed ``[T, T]`` matrices ``A``, ``B`` and mask ``M``::

        PSU:   H = A X;            P = sigmoid(H);          V = H - gamma B P
        IPSU:  H = (W * M) X + b;                           V = H - gamma B X
        RPSU:  H = A X;            P = sigmoid((W*M) X + b); V = H - gamma B P
        S = heaviside(V - theta)   with the arctan surrogate on the backward pass

    ``gamma`` is tied to ``theta`` when ``reset_scale`` is None (SPEC §2), and ``theta`` and
    ``alpha`` are leaf tensors, so the backward pass yields the same outputs as a backend's
    ``vjp`` (dL/dX, dL/dW, dL/db, dL/dtheta, dL/dalpha) through PyTorch autograd.

``lif-loop-torch``
    The sequential LIF neuron the paper replaces, with hard reset (BrainCog's ``LIFNode``)::

        for t in 0..T-1:
            h = h + (x_t - h) / tau          (= h (1 - 1/tau) + x_t / tau)
            s_t = heaviside(h - theta)       (arctan surrogate)
            h = h * (1 - s_t)                (hard reset, differentiated: no detach)

    It has no variants: the same loop is timed in every variant's group.

``copy-floor``
    The memory-bandwidth floor: the least data any implementation must move, moved by a plain
    copy (``Tensor.copy_``, multithreaded like the rest of PyTorch)::

        forward floor   : S <- X              reads X, writes S       (2 x T*N elements)
        fwd+bwd floor   : S <- X; dX <- G + X  also reads G and X,    (5 x T*N elements)
                                                and writes dX

    The backward pass must read the upstream gradient ``G``, write ``dL/dX`` and read the
    input it differentiates at (``X``, or a saved array of the same size such as ``V``); the
    outputs are preallocated, so no page faults are counted.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from psu_core.checks import VARIANTS

try:
    import torch
except ImportError as exc:  # the harness cannot compare anything without its peers
    raise ImportError(
        "the benchmark harness needs PyTorch for its peers (dense-torch, lif-loop-torch, copy-floor): install torch"
    ) from exc

Closure = Callable[[], Any]



def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class ArctanSpike(torch.autograd.Function):
    """``S = heaviside(V - theta)`` (strictly greater), with the arctan surrogate gradient.

    Backward, with ``q = pi/2 * alpha * (V - theta)``::

        dS/dV = alpha / (2 (1 + q^2));   dS/dtheta = -dS/dV;   dS/dalpha = (V - theta) / (2 (1 + q^2))

    ``v`` has any shape; ``theta`` and ``alpha`` are 0-d tensors (with or without grad).
    """

    @staticmethod
    def forward(ctx: Any, v: torch.Tensor, theta: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(v, theta, alpha)
        return (v > theta).to(v.dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        v, theta, alpha = ctx.saved_tensors
        d = v - theta
        denom = 2.0 * (1.0 + (math.pi / 2.0 * alpha * d) ** 2)
        g_v = grad * alpha / denom
        need_v, need_theta, need_alpha = ctx.needs_input_grad
        return (
            g_v if need_v else None,
            -g_v.sum() if need_theta else None,
            (grad * d / denom).sum() if need_alpha else None,
        )


def spike(v: torch.Tensor, theta: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Heaviside with the arctan surrogate (see :class:`ArctanSpike`)."""
    return ArctanSpike.apply(v, theta, alpha)


def dense_matrices(
    T: int, tau: float, *, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The fixed ``[T, T]`` matrices of SPEC §1, row ``t`` = output time, column ``j`` = input.

    ``A[t, j] = a^(t-j+1)`` for ``j <= t``; ``B[t, j] = a^(t-j)`` for ``j < t``; ``M[t, j] = 1``
    for ``j <= t``; zero elsewhere; ``a = 1 / tau``. Powers are taken in float64, then cast.

    Entries below the dtype's smallest normal number are stored as 0. They contribute less than
    1e-38 (float32), but subnormal operands cost x86 CPUs a microcode assist per multiply: one
    ``[1024, 1024] @ [1024, 2048]`` float32 matmul with ``A`` at ``tau = 2`` ran 3.5x slower with
    them. Keeping them would charge the peer for an artefact of the number format, not for its
    O(T^2) work.
    """
    a = 1.0 / tau
    t = np.arange(T)
    lag = t[:, None] - t[None, :]
    with np.errstate(over="ignore", under="ignore"):
        A = np.where(lag >= 0, a ** (lag + 1.0), 0.0)
        B = np.where(lag > 0, a ** np.maximum(lag, 0).astype(np.float64), 0.0)
    M = (lag >= 0).astype(np.float64)
    tiny = torch.finfo(dtype).tiny
    A[np.abs(A) < tiny] = 0.0
    B[np.abs(B) < tiny] = 0.0
    return tuple(torch.from_numpy(m).to(device=device, dtype=dtype) for m in (A, B, M))  # type: ignore[return-value]


def dense_forward(
    variant: str,
    x: torch.Tensor,
    weight: torch.Tensor | None,
    bias: torch.Tensor | None,
    theta: torch.Tensor,
    alpha: torch.Tensor,
    reset_scale: float | None,
    mats: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor]:
    """The dense PSU/IPSU/RPSU forward of the module docstring; returns ``(S, V)``, both ``[T, N]``.

    ``x`` is ``[T, N]``; ``weight`` ``[T, T]`` and ``bias`` ``[T]`` for IPSU/RPSU (None for PSU);
    ``gamma = theta`` (a tensor, so autograd follows the tie) when ``reset_scale`` is None.
    """
    A, B, M = mats
    gamma = theta if reset_scale is None else reset_scale
    if variant == "psu":
        H = A @ x
        V = H - gamma * (B @ torch.sigmoid(H))
    elif variant == "ipsu":
        H = (weight * M) @ x + bias[:, None]  # type: ignore[operator,index]
        V = H - gamma * (B @ x)
    elif variant == "rpsu":
        H = A @ x
        P = torch.sigmoid((weight * M) @ x + bias[:, None])  # type: ignore[operator,index]
        V = H - gamma * (B @ P)
    else:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    return spike(V, theta, alpha), V


def lif_forward(x: torch.Tensor, tau: float, theta: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Sequential LIF with hard reset over ``x`` ``[T, N]``; returns the spikes ``[T, N]``."""
    h = torch.zeros_like(x[0])
    out = []
    for t in range(x.shape[0]):
        h = h + (x[t] - h) / tau
        s = spike(h, theta, alpha)
        h = h * (1.0 - s)
        out.append(s)
    return torch.stack(out)


def _tensors(
    case: Mapping[str, Any], grad_spikes: np.ndarray, device: torch.device, dtype: torch.dtype
) -> dict[str, Any]:
    """Move a NumPy case onto ``device`` in ``dtype``, time first and neurons flattened."""
    x = np.asarray(case["x"])
    T = x.shape[0]

    def conv(a: Any) -> torch.Tensor | None:
        return None if a is None else torch.as_tensor(np.asarray(a)).to(device=device, dtype=dtype)

    return {
        "T": T,
        "x": conv(x.reshape(T, -1)),
        "g": conv(np.asarray(grad_spikes).reshape(T, -1)),
        "weight": conv(case.get("weight")),
        "bias": conv(case.get("bias")),
        "theta": torch.tensor(float(case["threshold"]), dtype=dtype, device=device),
        "alpha": torch.tensor(float(case["surrogate_alpha"]), dtype=dtype, device=device),
    }


_TORCH_DTYPES = {
    "float32": torch.float32,
    "float64": torch.float64,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}


def torch_dtype(name: str) -> torch.dtype:
    try:
        return _TORCH_DTYPES[name]
    except KeyError:
        raise ValueError(f"dtype must be one of {sorted(_TORCH_DTYPES)}, got {name!r}") from None


class DenseTorch:
    """Peer ``dense-torch``: the published dense formulation with PyTorch autograd."""

    name = "dense-torch"
    kind = "peer"

    def prepare(
        self, case: Mapping[str, Any], grad_spikes: np.ndarray, *, device: str, dtype: str
    ) -> tuple[Closure, Closure]:
        variant, reset_scale = case["variant"], case.get("reset_scale")
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
        if case.get("reset", "expected") != "expected":
            raise ValueError("dense-torch is the published (expected-reset) formulation only")
        if variant != "psu" and (case.get("weight") is None or case.get("bias") is None):
            raise ValueError(f"{variant} needs weight [T, T] and bias [T]")
        dev, dt = torch.device(device), torch_dtype(dtype)
        v = _tensors(case, grad_spikes, dev, dt)
        mats = dense_matrices(v["T"], float(case["tau"]), device=dev, dtype=dt)
        x, g = v["x"], v["g"]
        leaves = {
            "x": x.detach().clone().requires_grad_(True),
            "threshold": v["theta"].clone().requires_grad_(True),
            "surrogate_alpha": v["alpha"].clone().requires_grad_(True),
        }
        if variant != "psu":
            leaves["weight"] = v["weight"].clone().requires_grad_(True)
            leaves["bias"] = v["bias"].clone().requires_grad_(True)
        names = list(leaves)

        def forward_fn() -> tuple[torch.Tensor, torch.Tensor]:
            with torch.no_grad():
                out = dense_forward(variant, x, v["weight"], v["bias"], v["theta"], v["alpha"], reset_scale, mats)
            _sync(dev)
            return out

        def vjp_fn() -> dict[str, torch.Tensor]:
            S, _ = dense_forward(
                variant,
                leaves["x"],
                leaves.get("weight"),
                leaves.get("bias"),
                leaves["threshold"],
                leaves["surrogate_alpha"],
                reset_scale,
                mats,
            )
            grads = torch.autograd.grad(S, [leaves[k] for k in names], grad_outputs=g)
            _sync(dev)
            return dict(zip(names, grads, strict=True))

        return forward_fn, vjp_fn


class LifLoopTorch:
    """Peer ``lif-loop-torch``: the sequential hard-reset LIF loop with PyTorch autograd."""

    name = "lif-loop-torch"
    kind = "peer"

    def prepare(
        self, case: Mapping[str, Any], grad_spikes: np.ndarray, *, device: str, dtype: str
    ) -> tuple[Closure, Closure]:
        dev, dt = torch.device(device), torch_dtype(dtype)
        v = _tensors(case, grad_spikes, dev, dt)
        tau, x, g = float(case["tau"]), v["x"], v["g"]
        leaves = [
            x.detach().clone().requires_grad_(True),
            v["theta"].clone().requires_grad_(True),
            v["alpha"].clone().requires_grad_(True),
        ]

        def forward_fn() -> torch.Tensor:
            with torch.no_grad():
                out = lif_forward(x, tau, v["theta"], v["alpha"])
            _sync(dev)
            return out

        def vjp_fn() -> dict[str, torch.Tensor]:
            S = lif_forward(leaves[0], tau, leaves[1], leaves[2])
            gx, gth, gal = torch.autograd.grad(S, leaves, grad_outputs=g)
            _sync(dev)
            return {"x": gx, "threshold": gth, "surrogate_alpha": gal}

        return forward_fn, vjp_fn


class CopyFloor:
    """Peer ``copy-floor``: the memory-bandwidth floor (see the module docstring)."""

    name = "copy-floor"
    kind = "floor"
    #: elements of T*N moved (read + written) by each closure
    ELEMENTS_MOVED = {"forward": 2, "fwd+bwd": 5}

    def prepare(
        self, case: Mapping[str, Any], grad_spikes: np.ndarray, *, device: str, dtype: str
    ) -> tuple[Closure, Closure]:
        dev, dt = torch.device(device), torch_dtype(dtype)
        v = _tensors(case, grad_spikes, dev, dt)
        x, g = v["x"], v["g"]
        s, dx = torch.empty_like(x), torch.empty_like(x)
        # touch the outputs once so that no timed call pays for first-touch page faults
        s.zero_()
        dx.zero_()

        def forward_fn() -> torch.Tensor:
            s.copy_(x)
            _sync(dev)
            return s

        def vjp_fn() -> torch.Tensor:
            s.copy_(x)
            torch.add(g, x, out=dx)
            _sync(dev)
            return dx

        return forward_fn, vjp_fn


PEERS: dict[str, Any] = {p.name: p for p in (DenseTorch(), LifLoopTorch(), CopyFloor())}
