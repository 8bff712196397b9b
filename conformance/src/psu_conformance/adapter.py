"""The adapter protocol: how a backend plugs into the conformance suite, and how the suite finds it.

An adapter is the thin layer between the suite, which speaks NumPy, and a backend, which speaks its
framework. It must call the backend's PUBLIC API (what users call), so that the suite certifies
what users run. A backend exposes a zero-argument callable returning an adapter, either as an
entry point in the group ``psu.backends``::

    [project.entry-points."psu.backends"]
    torch = "psu_torch.adapter:TorchAdapter"

or, for a port that is not installed as a distribution, as ``module:callable`` on the command line
(``--psu-backend my_port.adapter:make_adapter``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from typing import Any, Protocol, TypedDict, runtime_checkable

import numpy as np

#: Entry-point group that lists the backends.
ENTRY_POINT_GROUP = "psu.backends"

#: Methods every adapter must have (``prepare`` is optional and only used by the benchmarks).
REQUIRED_METHODS = ("devices", "dtypes", "forward", "vjp", "online", "threefry2x32", "uniforms")


class Case(TypedDict, total=False):
    """The plain mapping every adapter method takes (one neuron call).

    Floating arrays are float64 NumPy arrays; the adapter converts them to the requested dtype and
    device. Non-floating arrays (the bad-input group sends an integer ``x``) are passed through
    unchanged, and every parameter is passed to the public API exactly as given, so that a bad
    value reaches the backend's own checks and raises there.

    Keys:
        variant: ``"psu"``, ``"ipsu"`` or ``"rpsu"``.
        x: input current ``[T, *neuron_shape]``, time first.
        tau: membrane time constant (``> 1``).
        threshold: firing threshold (``> 0``).
        reset_scale: ``None`` ties the reset scale ``gamma`` to ``threshold``; a number fixes it.
        surrogate_alpha: arctan surrogate sharpness (``> 0``).
        weight: ``[T, T]`` learned matrix (IPSU/RPSU) or ``None`` (PSU).
        bias: ``[T]`` learned bias (IPSU/RPSU) or ``None`` (PSU).
        reset: ``"expected"`` or ``"sampled"``.
        seed: integer in ``[0, 2**64)`` for sampled mode, else ``None`` (ignored).
        validate: optional, default ``False``; ``True`` asks the API to scan ``x`` for NaN/inf.
    """

    variant: str
    x: np.ndarray
    tau: Any
    threshold: Any
    reset_scale: Any
    surrogate_alpha: Any
    weight: np.ndarray | None
    bias: np.ndarray | None
    reset: str
    seed: Any
    validate: bool


@runtime_checkable
class Adapter(Protocol):
    """What the suite calls. Arrays cross this boundary as NumPy, synchronised with the device.

    Shapes: ``x``, ``spikes``, ``membrane``, ``reset`` and ``grad_spikes`` are ``[T, *neuron_shape]``;
    ``weight`` is ``[T, T]``; ``bias`` is ``[T]``.
    """

    #: Short name of the backend, used in test ids and in the report ("torch", "numba-cuda").
    name: str

    def devices(self) -> list[str]:
        """Devices usable on this machine now, e.g. ``["cpu"]`` or ``["cpu", "cuda"]``; ``[]`` if none.

        A device this returns must work: the suite runs every test on it.
        """
        ...

    def dtypes(self, device: str) -> list[str]:
        """Floating dtypes the backend supports on ``device``: ``"float64"``, ``"float32"``,
        ``"float16"``, ``"bfloat16"``. It must answer for a device the backend supports in
        principle even when the machine lacks it (the suite then skips, naming the device)."""
        ...

    def forward(self, case: Case, *, device: str, dtype: str) -> dict[str, np.ndarray]:
        """Run the neuron forward through the public functional API.

        Returns ``{"spikes": S, "membrane": V}`` (NumPy ``[T, *neuron_shape]``, any floating
        dtype); with ``case["reset"] == "sampled"`` also ``"reset"``: the drawn ``R`` of SPEC §6
        (0/1 values). Must raise the ``TypeError``/``ValueError`` of SPEC §8 for bad input.
        """
        ...

    def vjp(self, case: Case, grad_spikes: np.ndarray, *, device: str, dtype: str) -> dict[str, Any]:
        """Vector-Jacobian product of the spikes with ``grad_spikes = dL/dS`` ([T, *neuron_shape]),
        through the backend's autograd (or custom VJP) as users get it.

        Returns ``{"x": dL/dX (NumPy, shape of x), "threshold": float, "surrogate_alpha": float}``,
        plus ``"weight"`` (``[T, T]``) and ``"bias"`` (``[T]``) for IPSU and RPSU. The threshold
        gradient includes the path through ``gamma`` when ``reset_scale`` is ``None`` (SPEC §5).
        """
        ...

    def online(self, case: Case, *, device: str, dtype: str) -> dict[str, np.ndarray]:
        """Feed ``x`` one time step at a time through the backend's public online/stateful API
        (no look-ahead) and stack the per-step results: same keys and shapes as :meth:`forward`."""
        ...

    def threefry2x32(
        self,
        key0: np.ndarray,
        key1: np.ndarray,
        counter0: np.ndarray,
        counter1: np.ndarray,
        *,
        device: str,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Threefry-2x32-20 (SPEC §6) in the backend's own implementation, on ``device``.

        Inputs are equal-shaped NumPy ``uint32`` arrays; returns two NumPy ``uint32`` arrays of
        that shape.
        """
        ...

    def uniforms(self, seed: int, shape: Sequence[int], *, device: str) -> np.ndarray:
        """The uniforms ``u[t, n]`` of SPEC §6 for ``seed`` and an input of ``shape = (T, ...)``,
        computed by the backend's own stream on ``device``, returned as float64 NumPy."""
        ...


class PreparingAdapter(Adapter, Protocol):
    """An adapter that also offers :meth:`prepare` (optional; used by the benchmarks only)."""

    def prepare(
        self, case: Case, grad_spikes: np.ndarray, *, device: str, dtype: str
    ) -> tuple[Callable[[], Any], Callable[[], Any]]:
        """Return zero-argument closures ``(forward_fn, vjp_fn)`` that run forward and
        forward+backward on device-resident inputs and synchronise, with no host-device copy
        inside. The benchmark harness falls back to :meth:`Adapter.forward`/:meth:`Adapter.vjp`."""
        ...


class SplittingAdapter(Adapter, Protocol):
    """An adapter whose backend has a batching path (optional; the sampled group checks it)."""

    def split_forward(self, case: Case, parts: int, *, device: str, dtype: str) -> dict[str, np.ndarray]:
        """``forward`` with ``x`` split into ``parts`` equal pieces along its first neuron axis
        (``x.shape[1]``), each piece through the backend's own way of computing part of a batch
        (``jax.vmap`` over the stacked pieces, a ``neuron_offset`` per piece, one shard per device),
        the outputs reassembled to the whole shape. SPEC §6 numbers neurons in the whole call, so
        the result must equal the whole call's, draws included."""
        ...


class BackendError(Exception):
    """The backend named on the command line cannot be loaded or is not an adapter."""


def registered_backends() -> dict[str, str]:
    """``{name: "module:attr"}`` for every entry point in the ``psu.backends`` group."""
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def _import_callable(spec: str) -> Callable[[], Any]:
    module_name, _, attr_path = spec.partition(":")
    if not module_name or not attr_path:
        raise BackendError(f"--psu-backend {spec!r}: expected 'module:callable'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise BackendError(f"--psu-backend {spec!r}: cannot import {module_name!r}: {exc}") from exc
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise BackendError(f"--psu-backend {spec!r}: {module_name!r} has no attribute {attr_path!r}") from None
    return obj  # type: ignore[no-any-return]


def missing_methods(adapter: object) -> list[str]:
    """Names of the protocol members ``adapter`` lacks (empty when it is complete)."""
    missing = [m for m in REQUIRED_METHODS if not callable(getattr(adapter, m, None))]
    if not isinstance(getattr(adapter, "name", None), str):
        missing.insert(0, "name")
    return missing


def load_adapter(name: str) -> tuple[str, Adapter]:
    """Resolve ``--psu-backend NAME`` to ``(label, adapter)``.

    ``NAME`` is an entry-point name in ``psu.backends`` or ``module:callable``; the callable is
    called with no arguments. The label (used in test ids and report names) is the entry-point
    name, or the adapter's ``name`` for ``module:callable``. ``exec:COMMAND`` starts COMMAND and
    speaks the line protocol to it (:mod:`psu_conformance.exec_adapter`); the label is the name
    the program gives in its ``hello`` reply.
    """
    from psu_conformance.exec_adapter import PREFIX, ExecAdapter, ExecPortError

    if name.startswith(PREFIX):
        try:
            exec_adapter = ExecAdapter(name[len(PREFIX) :])
        except (ExecPortError, ValueError) as exc:
            raise BackendError(f"--psu-backend {name!r}: {exc}") from exc
        return exec_adapter.name, exec_adapter  # type: ignore[return-value]
    if ":" in name:
        factory = _import_callable(name)
        label = None
    else:
        eps = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
        if name not in eps:
            known = ", ".join(sorted(eps)) or "(none installed)"
            raise BackendError(
                f"unknown --psu-backend {name!r}; registered backends (entry-point group "
                f"{ENTRY_POINT_GROUP!r}): {known}; or give 'module:callable'"
            )
        try:
            factory = eps[name].load()
        except Exception as exc:  # an installed backend that fails to import: say which and why
            raise BackendError(f"--psu-backend {name!r} ({eps[name].value}) failed to load: {exc!r}") from exc
        label = name
    if not callable(factory):
        raise BackendError(f"--psu-backend {name!r} does not name a callable, got {type(factory).__name__}")
    try:
        adapter = factory()
    except Exception as exc:  # a factory that cannot build its adapter here: say which and why
        raise BackendError(f"--psu-backend {name!r}: creating the adapter failed: {exc!r}") from exc
    missing = missing_methods(adapter)
    if missing:
        raise BackendError(
            f"--psu-backend {name!r} returned {type(adapter).__name__}, which lacks the adapter "
            f"protocol's {', '.join(missing)} (see psu_conformance.adapter.Adapter)"
        )
    return (label or adapter.name), adapter
