"""The public API every backend follows (SPEC §11), written once as data.

Each backend exposes these names with these parameters, in this order, with these defaults; the
conformance suite's ``api`` group compares every backend's signatures with this table. What a
framework does its own way (a JAX key beside an integer seed, a ``device`` for torch tensors,
``rngs`` for Flax NNX) is declared by the backend's adapter as an *idiom*, with its reason, and
shown in the group's report: nothing differs silently.

The functional API (SPEC §2, §3)::

    psu(x, *, tau=2.0, threshold=1.0, reset_scale=None, surrogate_alpha=2.0, reset="expected",
        seed=None, method="auto", return_membrane=False, return_reset=False, validate=False)
    ipsu(x, weight, bias, *, <the same keywords>)
    rpsu(x, weight, bias, *, <the same keywords>)

    -> spikes ``[T, *neuron_shape]`` when neither ``return_membrane`` nor ``return_reset``; else a
       PSUOutput(spikes, membrane, reset), with ``None`` for what was not asked (``reset`` is the
       drawn ``R`` of sampled mode, ``None`` in expected mode).

The online API (SPEC §3), pure: ``step`` never changes the state it is given::

    init_state(variant, neuron_shape, *, T=None, dtype="float32", device=None) -> OnlineState
    step(state, x_t, weight=None, bias=None, *, tau=2.0, threshold=1.0, reset_scale=None,
         surrogate_alpha=2.0, reset="expected", seed=None) -> (OnlineState, StepOutput)
    StepOutput(spikes, membrane, reset)                 each ``[*neuron_shape]``; reset None unless sampled

and its stateful wrapper::

    OnlineStepper(variant, neuron_shape, weight=None, bias=None, *, tau=2.0, threshold=1.0,
                  reset_scale=None, surrogate_alpha=2.0, reset="expected", seed=None,
                  dtype="float32", device=None)
        .step(x_t) -> StepOutput     .reset_state() -> None     .state -> OnlineState

``T`` (IPSU/RPSU: the horizon of the ``[T, T]`` matrix; PSU: ``None``, no end) is the one name
for the number of time steps everywhere. The membrane and the reset draws are outputs to inspect:
gradients flow through the spikes only, and the membrane returned by a differentiable backend
carries no gradient (SPEC §11).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

#: The default of a parameter that has none (it must be given).
REQUIRED = "<required>"


@dataclass(frozen=True)
class Param:
    """One parameter: its name, whether it is positional or keyword-only, and its default."""

    name: str
    keyword_only: bool = True
    default: Any = REQUIRED

    def __str__(self) -> str:
        return self.name if self.default == REQUIRED else f"{self.name}={self.default!r}"


def _pos(*names: str, default: Any = REQUIRED) -> tuple[Param, ...]:
    return tuple(Param(n, keyword_only=False, default=default) for n in names)


#: The neuron's parameters, keyword-only wherever they appear (SPEC §1, §6).
NEURON_KEYWORDS = (
    Param("tau", default=2.0),
    Param("threshold", default=1.0),
    Param("reset_scale", default=None),
    Param("surrogate_alpha", default=2.0),
    Param("reset", default="expected"),
    Param("seed", default=None),
)
#: Keywords of the functional calls beyond the neuron's parameters.
CALL_KEYWORDS = (
    Param("method", default="auto"),
    Param("return_membrane", default=False),
    Param("return_reset", default=False),
    Param("validate", default=False),
)
#: Where state and outputs live: the dtype's name, and the framework's device (None: its default).
PLACEMENT = (Param("dtype", default="float32"), Param("device", default=None))

SIGNATURES: dict[str, tuple[Param, ...]] = {
    "psu": _pos("x") + NEURON_KEYWORDS + CALL_KEYWORDS,
    "ipsu": _pos("x", "weight", "bias") + NEURON_KEYWORDS + CALL_KEYWORDS,
    "rpsu": _pos("x", "weight", "bias") + NEURON_KEYWORDS + CALL_KEYWORDS,
    "init_state": _pos("variant", "neuron_shape") + (Param("T", default=None),) + PLACEMENT,
    "step": _pos("state", "x_t") + _pos("weight", "bias", default=None) + NEURON_KEYWORDS,
    "OnlineStepper": _pos("variant", "neuron_shape")
    + _pos("weight", "bias", default=None)
    + NEURON_KEYWORDS
    + PLACEMENT,
}


class PSUOutput(NamedTuple):
    """A functional call's outputs, each ``[T, *neuron_shape]`` in the dtype of ``x``; ``None``
    where not asked (``membrane``: ``return_membrane``; ``reset``: ``return_reset`` in sampled mode).
    The backends share this type; it holds their framework's arrays (a pytree in JAX)."""

    spikes: Any
    membrane: Any
    reset: Any


class StepOutput(NamedTuple):
    """One online step's outputs, each ``[*neuron_shape]``; ``reset`` is the draw ``R_t`` in
    sampled mode, else ``None``."""

    spikes: Any
    membrane: Any
    reset: Any


#: Result types and their fields, in order (NamedTuples: they unpack like tuples).
RESULTS: dict[str, tuple[str, ...]] = {"PSUOutput": PSUOutput._fields, "StepOutput": StepOutput._fields}

#: The methods of an ``OnlineStepper`` (its ``state`` is an instance attribute).
STEPPER_MEMBERS = ("step", "reset_state")

#: Every public name of SPEC §11.
NAMES = (*SIGNATURES, *RESULTS)


def default_name(value: Any) -> Any:
    """A default as the table writes it: dtypes by name (``np.float32``, ``torch.float32`` and
    ``jnp.float32`` are all ``"float32"``), anything else unchanged."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    name = getattr(value, "__name__", None) or str(value)
    return name.rsplit(".", 1)[-1]
