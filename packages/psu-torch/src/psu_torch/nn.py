"""``torch.nn`` modules: :class:`PSU`, :class:`IPSU`, :class:`RPSU`, and :class:`TimeFolded`.

Each module maps ``x [T, ...]`` (or ``[B, T, ...]`` with ``batch_first=True``) to spikes of the
same shape through :mod:`psu_torch.functional`. Parameters, registered the PyTorch way:

* ``surrogate_alpha`` — arctan sharpness, a learnable ``Parameter`` (as in the published code)
  unless ``learn_alpha=False`` (then a buffer);
* ``threshold`` — a buffer, or a ``Parameter`` with ``learn_threshold=True``; with
  ``reset_scale=None`` the reset scale is tied to it and its gradient reaches the reset term;
* IPSU/RPSU: ``weight [T, T]`` (Kaiming-normal, fan-out, ReLU gain: std ``sqrt(2 / T)``; only the
  lower triangle is used) and ``bias [T]`` (zeros).

``reference_compat=True`` reproduces the published code (SPEC §7): the reset scale is frozen at
construction (``gamma = threshold`` for PSU, ``1.0`` for IPSU/RPSU) and ``alpha`` is learnable.

In sampled mode (``reset="sampled"``) each call draws a fresh 63-bit seed from ``generator``
(the global CPU generator by default), so ``torch.manual_seed`` makes a run reproducible.
"""

from __future__ import annotations

import torch
from torch import nn

from psu_core import checks
from psu_torch import functional as F
from psu_torch.online import OnlineStepper

__all__ = ["PSU", "IPSU", "RPSU", "TimeFolded", "split_time", "merge_time"]


class _PSUBase(nn.Module):
    variant = "psu"

    def __init__(
        self,
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
        generator: torch.Generator | None = None,
        method: str = "auto",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if reference_compat:
            if reset_scale is not None:
                raise ValueError(
                    f"reset_scale must be None with reference_compat=True (the preset fixes it), got {reset_scale!r}"
                )
            reset_scale = float(threshold) if self.variant == "psu" else 1.0
            learn_alpha = True
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
        self.generator = generator
        self.method = method
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

    def _seed(self) -> int | None:
        if self.reset != "sampled":
            return None
        return int(torch.randint(0, 2**63 - 1, (), generator=self.generator))

    def _kwargs(self) -> dict:
        return {
            "tau": self.tau,
            "threshold": self.threshold,
            "reset_scale": self.reset_scale,
            "surrogate_alpha": self.surrogate_alpha,
            "reset": self.reset,
            "seed": self._seed(),
            "method": self.method,
        }

    def _time_first(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(0, 1) if self.batch_first else x

    def extra_repr(self) -> str:
        gamma = "tied to threshold" if self.reset_scale is None else f"{self.reset_scale:g}"
        parts = [
            f"tau={self.tau:g}",
            f"threshold={float(self.threshold.detach()):g}" + (" (learned)" if isinstance(self.threshold, nn.Parameter) else ""),
            f"reset_scale={gamma}",
            f"surrogate_alpha={float(self.surrogate_alpha.detach()):g}"
            + (" (learned)" if isinstance(self.surrogate_alpha, nn.Parameter) else ""),
            f"reset={self.reset!r}",
        ]
        if self.batch_first:
            parts.append("batch_first=True")
        if self.reference_compat:
            parts.append("reference_compat=True")
        if self.method != "auto":
            parts.append(f"method={self.method!r}")
        return ", ".join(parts)


class PSU(_PSUBase):
    """Parallel Spiking Unit: ``H = A X``, ``V = H - gamma B sigma(H)``, ``S = [V > theta]``.

    Input ``[T, ...]`` (``[B, T, ...]`` with ``batch_first``), output spikes of the same shape and
    dtype. Keywords as in :func:`psu_torch.functional.psu`, plus ``learn_alpha``,
    ``learn_threshold``, ``batch_first``, ``reference_compat``, ``generator``.
    """

    variant = "psu"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = F.psu(self._time_first(x), **self._kwargs())
        return self._time_first(s)

    def stepper(self, neuron_shape, seed: int | None = None) -> OnlineStepper:
        """An :class:`~psu_torch.online.OnlineStepper` for inputs ``x_t [*neuron_shape]`` with a copy of
        this module's current parameters (streaming inference, no look-ahead). Sampled mode takes
        ``seed`` or draws one."""
        return _stepper(self, neuron_shape, None, None, seed)


class _LearnedBase(_PSUBase):
    def __init__(self, T: int, **kwargs) -> None:
        super().__init__(**kwargs)
        if isinstance(T, bool) or not isinstance(T, int) or T < 1:
            raise ValueError(f"T must be an integer >= 1, got {T!r}")
        self.T = T
        kw = {"device": kwargs.get("device"), "dtype": kwargs.get("dtype") or torch.float32}
        self.weight = nn.Parameter(torch.empty((T, T), **kw))
        self.bias = nn.Parameter(torch.empty((T,), **kw))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming-normal ``weight`` (fan-out, ReLU gain: std ``sqrt(2 / T)``), zero ``bias``."""
        nn.init.kaiming_normal_(self.weight, mode="fan_out", nonlinearity="relu")
        nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fn = F.ipsu if self.variant == "ipsu" else F.rpsu
        s = fn(self._time_first(x), self.weight, self.bias, **self._kwargs())
        return self._time_first(s)

    def stepper(self, neuron_shape, seed: int | None = None) -> OnlineStepper:
        """An :class:`~psu_torch.online.OnlineStepper` for inputs ``x_t [*neuron_shape]`` with a copy of
        this module's current parameters (stops after ``T`` steps). Sampled mode (RPSU) takes
        ``seed`` or draws one."""
        return _stepper(self, neuron_shape, self.weight, self.bias, seed)

    def extra_repr(self) -> str:
        return f"T={self.T}, " + super().extra_repr()


class IPSU(_LearnedBase):
    """Input-aware PSU: ``V = ((W ⊙ M) - gamma B) X + b``, ``S = [V > theta]``; ``W [T, T]``, ``b [T]``."""

    variant = "ipsu"


class RPSU(_LearnedBase):
    """Reset-aware PSU: ``P = sigma((W ⊙ M) X + b)``, ``V = A X - gamma B P``, ``S = [V > theta]``."""

    variant = "rpsu"


def _stepper(module: _PSUBase, neuron_shape, weight, bias, seed: int | None) -> OnlineStepper:
    if module.reset == "sampled" and seed is None:
        seed = module._seed()
    weight, bias = (None if t is None else t.detach().clone() for t in (weight, bias))
    return OnlineStepper(
        module.variant, neuron_shape, weight, bias, tau=module.tau, threshold=float(module.threshold.detach()),
        reset_scale=module.reset_scale, surrogate_alpha=float(module.surrogate_alpha.detach()), reset=module.reset,
        seed=seed, dtype=module.threshold.dtype, device=module.threshold.device,
    )  # fmt: skip


# ----------------------------------------------------------------------------------------------
# The published code's layout: time folded into the batch, [(T*B), ...] in time-major blocks.
# ----------------------------------------------------------------------------------------------
def split_time(x: torch.Tensor, T: int) -> torch.Tensor:
    """``[(T*B), ...]`` (time-major blocks of the batch) -> ``[T, B, ...]`` (a view)."""
    if x.ndim < 1 or x.shape[0] % T:
        raise ValueError(f"x must have a leading dimension divisible by T={T}, got shape {tuple(x.shape)}")
    return x.view(T, x.shape[0] // T, *x.shape[1:])


def merge_time(x: torch.Tensor) -> torch.Tensor:
    """``[T, B, ...]`` -> ``[(T*B), ...]`` (the inverse of :func:`split_time`)."""
    return x.reshape(x.shape[0] * x.shape[1], *x.shape[2:])


class TimeFolded(nn.Module):
    """Run a time-first neuron on inputs whose time steps are folded into the batch.

    ``TimeFolded(PSU(), T)`` maps ``[(T*B), ...]`` -> ``[(T*B), ...]``, viewing the input as
    ``[T, B, ...]`` (the published code's layout), so it drops into a network written for it,
    e.g. after a ``Conv2d`` applied to all time steps at once. ``T`` defaults to the neuron's
    ``T`` for IPSU/RPSU.
    """

    def __init__(self, neuron: nn.Module, T: int | None = None) -> None:
        super().__init__()
        T = getattr(neuron, "T", None) if T is None else T
        if not isinstance(T, int) or T < 1:
            raise ValueError(f"T must be an integer >= 1 (the number of folded time steps), got {T!r}")
        if getattr(neuron, "batch_first", False):
            raise ValueError("neuron must be time-first (batch_first=False) inside TimeFolded")
        self.neuron = neuron
        self.T = T

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return merge_time(self.neuron(split_time(x, self.T)))

    def extra_repr(self) -> str:
        return f"T={self.T}"

