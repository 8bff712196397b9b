"""``torch.nn`` modules: :class:`PSU`, :class:`IPSU`, :class:`RPSU`, :class:`TimeFolded`,
:func:`set_batch_shard` for data-parallel training, and :func:`load_published_state_dict` for
checkpoints of the published code.

Each module maps ``x [T, ...]`` (``[B, T, ...]`` with ``batch_first=True``; ``[(T*B), ...]`` under
``reference_compat=True``) to spikes of the same shape through :func:`psu_torch.functional.call`,
or to ``PSUOutput(spikes, membrane, None)`` with ``return_membrane=True``. Parameters, registered
the PyTorch way (SPEC §7's module defaults):

* ``surrogate_alpha`` — arctan sharpness, a learnable ``Parameter`` (initial 2.0, as published)
  unless ``learn_alpha=False`` (then a buffer);
* ``threshold`` — a buffer, or a ``Parameter`` with ``learn_threshold=True``; with
  ``reset_scale=None`` the reset scale is tied to it and its gradient reaches the reset term;
* IPSU/RPSU: ``weight [T, T]`` (Kaiming-normal, fan-out, ReLU gain: std ``sqrt(2 / T)``; only the
  lower triangle is used) and ``bias [T]`` (zeros).

``reference_compat=True`` is the published code's preset (SPEC §7): PSU's reset scale tied to the
threshold (``reset_scale=None``), IPSU's and RPSU's fixed at 1; ``alpha`` learnable; and the
published layout, time folded into the batch: ``[(T*B), ...]`` in time-major blocks, viewed as
``[T, B, ...]`` and folded back, so the preset needs ``T`` (``PSU(T=4, reference_compat=True)``).

In sampled mode (``reset="sampled"``) each call draws a fresh 63-bit seed from ``generator``
(the global CPU generator by default), so ``torch.manual_seed`` makes a run reproducible.

Data-parallel training (DDP): a module's ``batch_shard = (index, count)`` (default ``(0, 1)``, set
on a whole model with :func:`set_batch_shard`) says that each call holds shard ``index`` of
``count`` equal shards of the whole batch, concatenated along the first neuron axis (the batch
axis of ``[T, B, ...]``); the call then draws with ``neuron_offset = index * N`` (``N`` its own
neuron count), exactly as one call on the whole batch would, given the same seed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from psu_core import checks
from psu_core.api import PSUOutput
from psu_torch import _onnx
from psu_torch import functional as F
from psu_torch.online import OnlineStepper

__all__ = [
    "PSU",
    "IPSU",
    "RPSU",
    "TimeFolded",
    "split_time",
    "merge_time",
    "set_batch_shard",
    "load_published_state_dict",
]


# ----------------------------------------------------------------------------------------------
# The published code's layout: time folded into the batch, [(T*B), ...] in time-major blocks.
# ----------------------------------------------------------------------------------------------
def split_time(x: torch.Tensor, T: int) -> torch.Tensor:
    """``[(T*B), ...]`` (time-major blocks of the batch) -> ``[T, B, ...]`` (a view when ``x`` is
    contiguous); ``ValueError`` when ``x.shape[0]`` is not a multiple of ``T``."""
    if x.ndim < 1 or x.shape[0] % T:
        raise ValueError(
            f"x must have a leading dimension divisible by T={T} (the folded layout [(T*B), ...]), "
            f"got shape {tuple(x.shape)}"
        )
    return x.reshape(T, x.shape[0] // T, *x.shape[1:])


def merge_time(x: torch.Tensor) -> torch.Tensor:
    """``[T, B, ...]`` -> ``[(T*B), ...]`` (the inverse of :func:`split_time`)."""
    return x.reshape(x.shape[0] * x.shape[1], *x.shape[2:])


def _each(out: torch.Tensor | PSUOutput, fn: Callable[[torch.Tensor], torch.Tensor]):
    """``fn`` applied to the spikes, or to every tensor of a ``PSUOutput``."""
    if isinstance(out, PSUOutput):
        return PSUOutput(*(None if t is None else fn(t) for t in out))
    return fn(out)


def _check_T(T: Any) -> int:
    if isinstance(T, bool) or not isinstance(T, int) or T < 1:
        raise ValueError(f"T must be an integer >= 1, got {T!r}")
    return T


def _check_shard(shard: Any) -> tuple[int, int]:
    ok = isinstance(shard, tuple | list) and len(shard) == 2
    ok = ok and all(isinstance(v, int) and not isinstance(v, bool) for v in shard)
    if not ok or not 0 <= shard[0] < shard[1]:
        raise ValueError(
            f"batch_shard must be a pair of integers (index, count) with 0 <= index < count, got {shard!r}"
        )
    return int(shard[0]), int(shard[1])


class _PSUBase(nn.Module):
    variant = "psu"

    def __init__(
        self,
        T: int | None = None,
        *,
        tau: float = 2.0,
        threshold: float = 1.0,
        reset_scale: float | None = None,
        surrogate_alpha: float = 2.0,
        learn_alpha: bool = True,
        learn_threshold: bool = False,
        reset: str = "expected",
        batch_first: bool = False,
        reference_compat: bool = False,
        return_membrane: bool = False,
        generator: torch.Generator | None = None,
        method: str = "auto",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if reference_compat:
            # The preset fixes these; a different explicit value would be silently overridden.
            if reset_scale is not None:
                raise ValueError(
                    f"reset_scale must be None with reference_compat=True (the preset fixes it), got {reset_scale!r}"
                )
            if not learn_alpha:
                raise ValueError("learn_alpha must be True with reference_compat=True (the published alpha is learned)")
            if batch_first:
                raise ValueError("batch_first must be False with reference_compat=True (the preset reads [(T*B), ...])")
            if T is None:
                raise ValueError(
                    f"T must be given with reference_compat=True: the preset reads the published layout "
                    f"[(T*B), ...] and needs T to unfold it, e.g. {type(self).__name__}(T=4, reference_compat=True)"
                )
            reset_scale = None if self.variant == "psu" else 1.0
        self.T = None if T is None else _check_T(T)
        checks.check_tau(tau)
        checks.check_positive("threshold", threshold)
        checks.check_positive("surrogate_alpha", surrogate_alpha)
        checks.check_reset_scale(reset_scale)
        checks.check_reset(self.variant, reset, 0)
        if method not in F.METHODS:
            raise ValueError(f"method must be one of {F.METHODS}, got {method!r}")
        self.tau = float(tau)
        self.reset_scale = None if reset_scale is None else float(reset_scale)
        self.reset = reset
        self.batch_first = bool(batch_first)
        self.reference_compat = bool(reference_compat)
        self.return_membrane = bool(return_membrane)
        self.generator = generator
        self.method = method
        self.batch_shard = (0, 1)
        kw = {"device": device, "dtype": dtype or torch.float32}
        alpha = torch.tensor(float(surrogate_alpha), **kw)
        theta = torch.tensor(float(threshold), **kw)
        if learn_alpha:
            self.surrogate_alpha = nn.Parameter(alpha)
        else:
            self.register_buffer("surrogate_alpha", alpha)
        if learn_threshold:
            self.threshold = nn.Parameter(theta)
        else:
            self.register_buffer("threshold", theta)

    @property
    def batch_shard(self) -> tuple[int, int]:
        """``(index, count)``: each call holds shard ``index`` of ``count`` equal shards of the whole
        batch (a DDP rank's share: ``(rank, world_size)``), so its sampled draws use
        ``neuron_offset = index * N``; ``(0, 1)``, the default, is the whole batch."""
        return self._batch_shard

    @batch_shard.setter
    def batch_shard(self, shard: tuple[int, int]) -> None:
        self._batch_shard = _check_shard(shard)

    @property
    def time_folded(self) -> bool:
        """Whether inputs arrive as ``[(T*B), ...]`` (the preset)."""
        return self.reference_compat

    def _learned(self) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        return None, None

    def _seed(self) -> int | None:
        if self.reset != "sampled" or _onnx.exporting():
            # (exporting: the call refuses sampled mode with the reason; no seed is read into a graph)
            return None
        return int(torch.randint(0, 2**63 - 1, (), generator=self.generator))

    def _time_first(self, x: torch.Tensor) -> torch.Tensor:
        if self.time_folded:
            return split_time(x, self.T)
        x = x.transpose(0, 1) if self.batch_first else x
        if self.T is not None and x.ndim >= 1 and x.shape[0] != self.T:
            raise ValueError(f"x must have T={self.T} time steps (the module's T), got {x.shape[0]}")
        return x

    def _back(self, y: torch.Tensor) -> torch.Tensor:
        if self.time_folded:
            return merge_time(y)
        return y.transpose(0, 1) if self.batch_first else y

    def forward(self, x: torch.Tensor) -> torch.Tensor | PSUOutput:
        x = self._time_first(x)
        index, _ = self.batch_shard
        out = F.call(
            self.variant, x, *self._learned(), tau=self.tau, threshold=self.threshold,
            reset_scale=self.reset_scale, surrogate_alpha=self.surrogate_alpha, reset=self.reset, seed=self._seed(),
            method=self.method, return_membrane=self.return_membrane,
            neuron_offset=index * math.prod(x.shape[1:]) if index else 0,
        )  # fmt: skip
        return _each(out, self._back)

    def stepper(self, neuron_shape: Any, seed: int | None = None) -> OnlineStepper:
        """An :class:`~psu_torch.online.OnlineStepper` for inputs ``x_t [*neuron_shape]`` with a copy
        of this module's current parameters, in their dtype and on their device (streaming
        inference, no look-ahead; IPSU/RPSU stop after ``T`` steps). Sampled mode takes ``seed`` or
        draws one."""
        if self.reset == "sampled" and seed is None:
            seed = self._seed()
        weight, bias = (None if t is None else t.detach().clone() for t in self._learned())
        return OnlineStepper(
            self.variant, neuron_shape, weight, bias, tau=self.tau, threshold=float(self.threshold.detach()),
            reset_scale=self.reset_scale, surrogate_alpha=float(self.surrogate_alpha.detach()), reset=self.reset,
            seed=seed, dtype=self.threshold.dtype, device=self.threshold.device,
        )  # fmt: skip

    def extra_repr(self) -> str:
        gamma = "tied to threshold" if self.reset_scale is None else f"{self.reset_scale:g}"
        parts = [] if self.T is None else [f"T={self.T}"]
        parts += [
            f"tau={self.tau:g}",
            f"threshold={float(self.threshold.detach()):g}" + (" (learned)" if isinstance(self.threshold, nn.Parameter) else ""),
            f"reset_scale={gamma}",
            f"surrogate_alpha={float(self.surrogate_alpha.detach()):g}"
            + (" (learned)" if isinstance(self.surrogate_alpha, nn.Parameter) else ""),
            f"reset={self.reset!r}",
        ]  # fmt: skip
        for flag in ("batch_first", "reference_compat", "return_membrane"):
            if getattr(self, flag):
                parts.append(f"{flag}=True")
        if self.batch_shard != (0, 1):
            parts.append(f"batch_shard={self.batch_shard}")
        if self.method != "auto":
            parts.append(f"method={self.method!r}")
        return ", ".join(parts)


class PSU(_PSUBase):
    """Parallel Spiking Unit: ``H = A X``, ``V = H - gamma B sigma(H)``, ``S = [V > theta]``.

    Input ``[T, ...]`` (``[B, T, ...]`` with ``batch_first``; ``[(T*B), ...]`` under
    ``reference_compat=True``), output spikes of the same shape and dtype, or
    ``PSUOutput(spikes, membrane, None)`` with ``return_membrane=True``. Keywords as in
    :func:`psu_torch.functional.psu`, plus ``learn_alpha``, ``learn_threshold``, ``batch_first``,
    ``reference_compat``, ``return_membrane``, ``generator``, ``device``, ``dtype``.

    ``T`` is optional: required by ``reference_compat=True`` (to unfold ``[(T*B), ...]``), and
    otherwise, when given, the number of time steps every input must have.
    """

    variant = "psu"


class _LearnedBase(_PSUBase):
    def __init__(self, T: int, **kwargs: Any) -> None:
        super().__init__(_check_T(T), **kwargs)
        kw = {"device": kwargs.get("device"), "dtype": kwargs.get("dtype") or torch.float32}
        self.weight = nn.Parameter(torch.empty((T, T), **kw))
        self.bias = nn.Parameter(torch.empty((T,), **kw))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming-normal ``weight`` (fan-out, ReLU gain: std ``sqrt(2 / T)``), zero ``bias``."""
        nn.init.kaiming_normal_(self.weight, mode="fan_out", nonlinearity="relu")
        nn.init.zeros_(self.bias)

    def _learned(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.weight, self.bias


class IPSU(_LearnedBase):
    """Input-aware PSU: ``V = ((W ⊙ M) - gamma B) X + b``, ``S = [V > theta]``; ``W [T, T]``, ``b [T]``.

    Inputs, outputs and keywords as in :class:`PSU`; ``T`` is required (the size of ``W``)."""

    variant = "ipsu"


class RPSU(_LearnedBase):
    """Reset-aware PSU: ``P = sigma((W ⊙ M) X + b)``, ``V = A X - gamma B P``, ``S = [V > theta]``.

    Inputs, outputs and keywords as in :class:`PSU`; ``T`` is required (the size of ``W``)."""

    variant = "rpsu"


class TimeFolded(nn.Module):
    """Run a time-first neuron on inputs whose time steps are folded into the batch.

    ``TimeFolded(PSU(), T)`` maps ``[(T*B), ...]`` -> ``[(T*B), ...]``, viewing the input as
    ``[T, B, ...]`` (the published code's layout), so it drops into a network written for it,
    e.g. after a ``Conv2d`` applied to all time steps at once. ``T`` defaults to the neuron's
    ``T``. A neuron built with ``reference_compat=True`` reads that layout itself and is refused.
    """

    def __init__(self, neuron: nn.Module, T: int | None = None) -> None:
        super().__init__()
        if getattr(neuron, "time_folded", False):
            raise ValueError(
                "neuron already reads the folded layout [(T*B), ...] (reference_compat=True): use it without TimeFolded"
            )
        T = getattr(neuron, "T", None) if T is None else T
        if isinstance(T, bool) or not isinstance(T, int) or T < 1:
            raise ValueError(f"T must be an integer >= 1 (the number of folded time steps), got {T!r}")
        if getattr(neuron, "batch_first", False):
            raise ValueError("neuron must be time-first (batch_first=False) inside TimeFolded")
        self.neuron = neuron
        self.T = T

    def forward(self, x: torch.Tensor) -> torch.Tensor | PSUOutput:
        return _each(self.neuron(split_time(x, self.T)), merge_time)

    def extra_repr(self) -> str:
        return f"T={self.T}"


def set_batch_shard(model: nn.Module, index: int, count: int) -> nn.Module:
    """Set ``batch_shard = (index, count)`` on every :class:`PSU`, :class:`IPSU` and :class:`RPSU`
    in ``model`` (itself included; a ``DistributedDataParallel`` wrapper is searched through) and
    return ``model``.

    Under DDP, ``set_batch_shard(model, rank, world_size)`` makes each rank's sampled draws those of
    one process running the whole batch (the ranks' batches concatenated in rank order), provided
    every rank draws the same seeds: seed every rank alike (``torch.manual_seed(s)`` on each, or
    each module's ``generator`` seeded alike) and give every rank a batch of the same size.
    ``ValueError`` when ``model`` holds none of these neurons or the pair is not
    ``0 <= index < count``.
    """
    shard = _check_shard((index, count))
    neurons = [m for m in model.modules() if isinstance(m, _PSUBase)]
    if not neurons:
        raise ValueError(f"model holds no PSU, IPSU or RPSU module to shard: {type(model).__name__}")
    for m in neurons:
        m.batch_shard = shard
    return model


# ----------------------------------------------------------------------------------------------
# Checkpoints of the published code
# ----------------------------------------------------------------------------------------------
#: Each neuron's state-dict names in the published code (Brain-Cog-Lab PSU, ``braincog/base/node/
#: node.py``: the learned matrix is an ``nn.Linear(T, T)`` named ``fc``, the surrogate's learnable
#: alpha ``act_fun.alpha``, the threshold ``BaseNode``'s ``threshold`` parameter) -> ours.
PUBLISHED_NAMES = {
    "fc.weight": "weight",
    "fc.bias": "bias",
    "act_fun.alpha": "surrogate_alpha",
    "threshold": "threshold",
}


def _neuron_of(key: str, prefixes: list[str]) -> str | None:
    """The prefix (``"name."``, or ``""`` for the model itself) of the neuron ``key`` belongs to."""
    return next((p for p in prefixes if key.startswith(p)), None)


def load_published_state_dict(model: nn.Module, state_dict: Mapping[str, torch.Tensor], strict: bool = True):
    """Load a state dict saved by the published code into ``model``, whose spiking layers are this
    package's :class:`PSU`, :class:`IPSU`, :class:`RPSU`.

    For every such submodule (its prefix kept) the published names are mapped to ours
    (:data:`PUBLISHED_NAMES`: ``fc.weight -> weight``, ``fc.bias -> bias``, ``act_fun.alpha ->
    surrogate_alpha``, ``threshold`` unchanged); every other key (convolutions, batch norm, ...)
    passes through as it is. With ``strict=True`` (the default) it raises ``ValueError`` before
    loading anything when a key is missing or unknown (named as the published code names them),
    or when a neuron was not built with ``reference_compat=True`` (the published weights are only
    read as published under the preset); ``strict=False`` loads what matches. Returns what
    ``model.load_state_dict`` returns.
    """
    neurons = {name: m for name, m in model.named_modules() if isinstance(m, _PSUBase)}
    # Longest prefix first, so that a neuron nested in another module's namespace finds its own.
    prefixes = sorted((f"{name}." if name else "" for name in neurons), key=len, reverse=True)
    ours: dict[str, torch.Tensor] = {}
    unknown = []
    for key, value in state_dict.items():
        prefix = _neuron_of(key, prefixes)
        local = None if prefix is None else key[len(prefix) :]
        if prefix is None:
            ours[key] = value
        elif local in PUBLISHED_NAMES:
            ours[prefix + PUBLISHED_NAMES[local]] = value
        else:
            unknown.append(key)
            ours[key] = value  # left as it is: strict refuses it, load_state_dict reports it
    if strict:
        not_preset = [name or type(model).__name__ for name, m in neurons.items() if not m.reference_compat]
        if not_preset:
            raise ValueError(
                f"neurons {not_preset} were not built with reference_compat=True: published weights compute what "
                "they computed there only under the preset (or pass strict=False)"
            )
        published = {v: k for k, v in PUBLISHED_NAMES.items()}
        expected = model.state_dict().keys()

        def as_published(key: str) -> str:
            prefix = _neuron_of(key, prefixes)
            return key if prefix is None else prefix + published.get(key[len(prefix) :], key[len(prefix) :])

        missing = sorted(as_published(k) for k in expected - ours.keys())
        unexpected = sorted(set(unknown) | {as_published(k) for k in ours.keys() - expected})
        if missing or unexpected:
            raise ValueError(
                f"the published state dict does not match the model: missing keys {missing}, unknown keys "
                f"{unexpected} (published names: {sorted(PUBLISHED_NAMES)} under each neuron)"
            )
    return model.load_state_dict(ours, strict=strict)
