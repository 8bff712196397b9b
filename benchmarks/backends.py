"""Everything the harness times, as one kind of object: backends found through the entry-point
group ``psu.backends`` and the PyTorch peers of :mod:`benchmarks.peers`.

A backend is timed through its adapter's optional ``prepare(case, grad_spikes, *, device, dtype)
-> (forward_fn, vjp_fn)`` (zero-argument closures on device-resident data that synchronise), or,
when it has none, through ``adapter.forward(case, ...)`` and ``adapter.vjp(case, grad_spikes,
...)`` called on the NumPy case (path ``adapter``: those times include the conversions at the
adapter's NumPy edges, and the row says so).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

import numpy as np

ENTRY_POINT_GROUP = "psu.backends"

Closure = Callable[[], Any]
Prepare = Callable[..., tuple[Closure, Closure]]


@dataclass
class Impl:
    """One thing to time: ``prepare(case, grad_spikes, device=, dtype=) -> (forward, fwd+bwd)``."""

    name: str
    kind: str  # "backend" | "peer" | "floor"
    path: str  # "prepare" | "adapter" (forward/vjp on NumPy) | "peer"
    prepare: Prepare
    devices: Callable[[], list[str]]
    dtypes: Callable[[str], list[str]]
    missing: str = ""  # why it cannot run at all here (a peer's package not installed); '' if it can


def _adapter_prepare(adapter: Any) -> tuple[Prepare, str]:
    hook = getattr(adapter, "prepare", None)
    if callable(hook):
        return hook, "prepare"

    def prepare(
        case: Mapping[str, Any], grad_spikes: np.ndarray, *, device: str, dtype: str
    ) -> tuple[Closure, Closure]:
        def forward_fn() -> Any:
            return adapter.forward(case, device=device, dtype=dtype)

        def vjp_fn() -> Any:
            return adapter.vjp(case, grad_spikes, device=device, dtype=dtype)

        return forward_fn, vjp_fn

    return prepare, "adapter"


def from_adapter(name: str, adapter: Any) -> Impl:
    """Wrap a conformance adapter (:class:`psu_conformance.adapter.Adapter`) as an :class:`Impl` named ``name``."""
    prepare, path = _adapter_prepare(adapter)
    return Impl(name=name, kind="backend", path=path, prepare=prepare, devices=adapter.devices, dtypes=adapter.dtypes)


def registered() -> dict[str, Any]:
    """The entry points of group ``psu.backends``, by name (not loaded)."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def load_backends(names: list[str] | None, *, strict: bool | None = None) -> tuple[list[Impl], list[str]]:
    """Load the named backends (``None``: every registered one).

    Returns the impls and, for a default selection (``strict`` False; by default: ``names`` is
    None), a message per backend that failed to load (the run goes on without it and says so).
    A backend the user asked for by name (``strict``) that is not registered or fails to load
    raises: what the user asks for runs, or it stops with the reason.
    """
    if strict is None:
        strict = names is not None
    eps = registered()
    problems: list[str] = []
    if names is not None:
        unknown = [n for n in names if n not in eps]
        if unknown:
            raise SystemExit(
                f"--backends: not registered in entry-point group "
                f"{ENTRY_POINT_GROUP!r}: {', '.join(unknown)} "
                f"(registered: {', '.join(sorted(eps)) or 'none'})"
            )
    impls = []
    for n in names if names is not None else sorted(eps):
        try:
            adapter = eps[n].load()()
        except Exception as exc:
            if strict:
                raise RuntimeError(f"backend {n!r} failed to load: {exc!r}") from exc
            problems.append(f"backend {n!r} not benchmarked: it failed to load: {exc!r}")
            continue
        impls.append(from_adapter(n, adapter))
    return impls, problems


def all_peers() -> dict[str, Any]:
    """Every peer by name: the PyTorch peers, then the library peers (:mod:`benchmarks.libpeers`)."""
    from benchmarks import libpeers, peers

    return peers.PEERS | libpeers.PEERS


def peer_impls(names: list[str]) -> list[Impl]:
    """The named peers as impls.

    The PyTorch peers run on any device torch has, in every dtype of the harness; a library peer says
    its own devices and dtypes, and one whose package is missing comes back with ``missing`` set
    (the runner reports it as skipped with that reason).
    """
    known = all_peers()
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"--peers: unknown {', '.join(unknown)} (known: {', '.join(known)})")
    out = []
    for n in names:
        p = known[n]
        missing = p.missing() if hasattr(p, "missing") else ""
        out.append(
            Impl(
                name=n,
                kind=p.kind,
                path="peer",
                prepare=p.prepare,
                devices=(lambda: []) if missing else getattr(p, "devices", torch_devices),
                dtypes=getattr(p, "dtypes", lambda device: ["float32", "float64", "float16", "bfloat16"]),
                missing=missing,
            )
        )
    return out


def torch_devices() -> list[str]:
    import torch

    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


FULL_PRECISION = ("float32", "float64")


def choose_dtype(available: list[str], wanted: str) -> tuple[str | None, str]:
    """The dtype to bench an impl in (``None``: skip it), and a note when it is not ``wanted``.

    A backend without a full-precision ``wanted`` (the float64-only reference in a float32 run)
    runs in the other full precision, and the row says so. A half-precision ``wanted``
    (float16, bfloat16) is never replaced: a float32 time in a half-precision table would mislead,
    so a backend without it is skipped with the reason.
    """
    if wanted in available:
        return wanted, ""
    listed = ", ".join(available) or "none"
    if wanted not in FULL_PRECISION:
        return None, f"skipped: the backend has no {wanted} on this device (it lists {listed})"
    for alt in FULL_PRECISION:
        if alt in available:
            return alt, f"runs in {alt}: the backend lists no {wanted} ({listed})"
    return None, "the backend lists no dtype on this device"
