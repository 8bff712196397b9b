"""psu-jax: the Parallel Spiking Unit family (PSU, IPSU, RPSU) for JAX.

The public API of SPEC §11 at the top level: ``psu``, ``ipsu``, ``rpsu`` (pure functions with
``jax.custom_vjp``, :mod:`psu_jax.functional`), ``init_state``, ``step`` and ``OnlineStepper``
(:mod:`psu_jax.online`; ``step`` runs inside ``lax.scan``) and the shared result types
``PSUOutput`` and ``StepOutput``. Also: the SPEC §6 Threefry stream (:mod:`psu_jax.random`) and
Flax NNX modules (:mod:`psu_jax.nn`, imported on first use so that the functional API does not
need Flax).
"""

from __future__ import annotations

from typing import Any

from psu_core.api import PSUOutput, StepOutput
from psu_jax import online, random, recurrence
from psu_jax.functional import METHODS, choose_method, ipsu, psu, rpsu
from psu_jax.online import OnlineState, OnlineStepper, init_state, step

__all__ = [
    "psu",
    "ipsu",
    "rpsu",
    "PSUOutput",
    "METHODS",
    "choose_method",
    "init_state",
    "step",
    "OnlineStepper",
    "OnlineState",
    "StepOutput",
    "online",
    "random",
    "recurrence",
    "nn",
    "PSU",
    "IPSU",
    "RPSU",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in ("nn", "PSU", "IPSU", "RPSU"):
        import importlib

        nn = importlib.import_module("psu_jax.nn")
        return nn if name == "nn" else getattr(nn, name)
    raise AttributeError(f"module 'psu_jax' has no attribute {name!r}")
