"""The ``torch`` conformance adapter: NumPy at the edges, :mod:`psu_torch`'s public API inside.

Registered under the entry-point group ``psu.backends``. ``forward``/``vjp`` call
:func:`psu_torch.functional.psu` / ``ipsu`` / ``rpsu`` (through ``functional.call``, which takes the
variant by name) with ``method="auto"`` (what users get); ``online`` steps with the pure
:func:`psu_torch.online.init_state` / :func:`psu_torch.online.step`; the Threefry words come from
:mod:`psu_torch.random`. ``public_api()`` is the ``psu_torch`` module (SPEC §11's names); its one
idiom is the last keyword ``neuron_offset`` of ``psu``/``ipsu``/``rpsu`` (a call on part of a
batch draws as the whole call: DDP ranks), which ``split_forward`` exercises. ``prepare`` gives the
benchmark harness closures over device-resident tensors.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

import psu_torch
from psu_torch import functional as F
from psu_torch import online as _online
from psu_torch import random as prandom

_DTYPES = {"float64": torch.float64, "float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
_PARAMS = ("tau", "threshold", "reset_scale", "surrogate_alpha", "reset", "seed")


def _device(device: str) -> torch.device:
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    return torch.device(device)


def _to_torch(a: Any, dtype: str, device: str, requires_grad: bool = False) -> Any:
    # Floating arrays take the requested dtype; anything else passes through (as a tensor, so an
    # integer x reaches the API as an integer tensor and raises TypeError there).
    if isinstance(a, np.ndarray):
        if np.issubdtype(a.dtype, np.floating):
            t = torch.tensor(a, dtype=_DTYPES[dtype], device=_device(device))
            return t.requires_grad_(requires_grad)
        if a.dtype.kind in "biu":
            return torch.tensor(a.astype(np.int64) if a.dtype.kind == "u" else a, device=_device(device))
    return a


def _numpy(t: torch.Tensor | None) -> np.ndarray | None:
    if t is None:
        return None
    t = t.detach()
    if t.dtype in (torch.float16, torch.bfloat16):
        t = t.float()
    return t.cpu().numpy()


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _learnable(value: Any, device: str) -> Any:
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return torch.tensor(float(value), dtype=torch.float64, device=device, requires_grad=True)
    return value


def _call(case: dict[str, Any], x: Any, w: Any, b: Any, **extra: Any):
    params = {k: case.get(k) for k in _PARAMS}
    params["validate"] = case.get("validate", False)
    params.update(extra)
    return F.call(case["variant"], x, w, b, **params)


class TorchAdapter:
    """Conformance adapter for :mod:`psu_torch` (CPU, and CUDA when a device is present)."""

    name = "torch"
    #: SPEC §11 differences to declare (dtypes default to torch.float32, named "float32": none there).
    api_idioms: dict[str, str] = {
        f"{name}.neuron_offset": (
            "a last keyword neuron_offset=0: the whole call's flat index of this call's first neuron, so that "
            "a call on part of a batch (a DistributedDataParallel rank's share) draws its sampled resets "
            "with the whole call's counters (SPEC §6); torch cannot know the split itself"
        )
        for name in ("psu", "ipsu", "rpsu")
    }

    def public_api(self) -> Any:
        return psu_torch

    def devices(self) -> list[str]:
        return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])

    def dtypes(self, device: str) -> list[str]:
        # Half precision on the CPU too, so that CI holds the float32 accumulation of half inputs.
        return ["float64", "float32", "float16", "bfloat16"]

    def forward(self, case: dict[str, Any], *, device: str, dtype: str) -> dict[str, np.ndarray]:
        x = _to_torch(case["x"], dtype, device)
        w = _to_torch(case.get("weight"), dtype, device)
        b = _to_torch(case.get("bias"), dtype, device)
        sampled = case.get("reset") == "sampled"
        with torch.no_grad():
            out = _call(case, x, w, b, return_membrane=True, return_reset=sampled)
        _sync(device)
        result = {"spikes": _numpy(out.spikes), "membrane": _numpy(out.membrane)}
        if sampled:
            result["reset"] = _numpy(out.reset)
        return result

    def split_forward(self, case: dict[str, Any], parts: int, *, device: str, dtype: str) -> dict[str, np.ndarray]:
        """:meth:`forward` with ``x`` split into ``parts`` equal pieces along ``x.shape[1]``, one call per
        piece with its ``neuron_offset`` (the whole call's flat index of its first neuron), the
        outputs concatenated back along that axis."""
        x = _to_torch(case["x"], dtype, device)
        w = _to_torch(case.get("weight"), dtype, device)
        b = _to_torch(case.get("bias"), dtype, device)
        sampled = case.get("reset") == "sampled"
        if x.ndim < 2 or x.shape[1] % parts:
            raise ValueError(f"x.shape[1] must split into {parts} equal pieces, got shape {tuple(x.shape)}")
        pieces = x.chunk(parts, dim=1)
        n = pieces[0][0].numel()  # neurons of one piece
        with torch.no_grad():
            outs = [
                _call(case, piece.contiguous(), w, b, return_membrane=True, return_reset=sampled, neuron_offset=i * n)
                for i, piece in enumerate(pieces)
            ]
        _sync(device)
        result = {
            "spikes": _numpy(torch.cat([o.spikes for o in outs], dim=1)),
            "membrane": _numpy(torch.cat([o.membrane for o in outs], dim=1)),
        }
        if sampled:
            result["reset"] = _numpy(torch.cat([o.reset for o in outs], dim=1))
        return result

    def vjp(self, case: dict[str, Any], grad_spikes: np.ndarray, *, device: str, dtype: str) -> dict[str, Any]:
        x = _to_torch(case["x"], dtype, device, requires_grad=True)
        w = _to_torch(case.get("weight"), dtype, device, requires_grad=True)
        b = _to_torch(case.get("bias"), dtype, device, requires_grad=True)
        # Numbers become learnable 0-d tensors (float64, like the reference) to read their gradients;
        # anything else goes through untouched for the API's own checks.
        threshold, alpha = _learnable(case["threshold"], device), _learnable(case["surrogate_alpha"], device)
        spikes = _call({**case, "threshold": threshold, "surrogate_alpha": alpha}, x, w, b)
        spikes.backward(_to_torch(grad_spikes, dtype, device))
        _sync(device)
        result: dict[str, Any] = {
            "x": _numpy(x.grad),
            "threshold": float(threshold.grad),
            "surrogate_alpha": float(alpha.grad),
        }
        if case["variant"] != "psu":
            result["weight"], result["bias"] = _numpy(w.grad), _numpy(b.grad)
        return result

    def online(self, case: dict[str, Any], *, device: str, dtype: str) -> dict[str, np.ndarray]:
        x = _to_torch(case["x"], dtype, device)
        w = _to_torch(case.get("weight"), dtype, device)
        b = _to_torch(case.get("bias"), dtype, device)
        params = {k: case.get(k) for k in _PARAMS}
        state = _online.init_state(case["variant"], x.shape[1:], T=None if w is None else w.shape[0], dtype=x.dtype,
                                  device=x.device)  # fmt: skip
        spikes, membrane, resets = [], [], []
        for t in range(x.shape[0]):
            state, out = _online.step(state, x[t], w, b, **params)
            spikes.append(out.spikes)
            membrane.append(out.membrane)
            resets.append(out.reset)
        _sync(device)
        result = {"spikes": _numpy(torch.stack(spikes)), "membrane": _numpy(torch.stack(membrane))}
        if case.get("reset") == "sampled":
            result["reset"] = _numpy(torch.stack(resets))
        return result

    def threefry2x32(self, key0, key1, counter0, counter1, *, device: str) -> tuple[np.ndarray, np.ndarray]:
        dev = _device(device)
        args = [
            torch.as_tensor(np.asarray(v, dtype=np.uint64).astype(np.int64), device=dev)
            for v in (key0, key1, counter0, counter1)
        ]
        w0, w1 = prandom.threefry2x32(*args)
        _sync(device)
        return w0.cpu().numpy().astype(np.uint32), w1.cpu().numpy().astype(np.uint32)

    def uniforms(self, seed: int, shape: tuple[int, ...], *, device: str) -> np.ndarray:
        u = prandom.uniforms(seed, shape, device=_device(device), dtype=torch.float64)
        _sync(device)
        return u.cpu().numpy()

    def prepare(
        self, case: dict[str, Any], grad_spikes: np.ndarray, *, device: str, dtype: str
    ) -> tuple[Callable[[], None], Callable[[], None]]:
        """Benchmark closures on device-resident tensors: ``forward()`` (no autograd graph) and
        ``forward_backward()`` (spikes, then ``backward`` into x, threshold and alpha)."""
        x = _to_torch(case["x"], dtype, device)
        w = _to_torch(case.get("weight"), dtype, device)
        b = _to_torch(case.get("bias"), dtype, device)
        g = _to_torch(grad_spikes, dtype, device)
        threshold = torch.tensor(float(case["threshold"]), dtype=torch.float32, device=device, requires_grad=True)
        alpha = torch.tensor(float(case["surrogate_alpha"]), dtype=torch.float32, device=device, requires_grad=True)
        learned = [t.requires_grad_(True) for t in (w, b) if isinstance(t, torch.Tensor)]
        xg = x.detach().requires_grad_(True)

        def forward() -> None:
            with torch.no_grad():
                _call(case, x, w, b)
            _sync(device)

        def forward_backward() -> None:
            for t in (xg, threshold, alpha, *learned):
                t.grad = None
            _call({**case, "threshold": threshold, "surrogate_alpha": alpha}, xg, w, b).backward(g)
            _sync(device)

        return forward, forward_backward
