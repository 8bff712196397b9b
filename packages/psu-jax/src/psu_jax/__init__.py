"""psu-jax: the Parallel Spiking Unit family (PSU, IPSU, RPSU) for JAX.

Pure functions with ``jax.custom_vjp`` (:mod:`psu_jax.functional`), an online stepper for
``lax.scan`` (:mod:`psu_jax.online`), the SPEC §6 Threefry stream (:mod:`psu_jax.random`) and
Flax NNX modules (:mod:`psu_jax.nn`, imported on first use so that the functional API does not
need Flax).
"""

from __future__ import annotations

from typing import Any

from psu_jax import online, random, recurrence
from psu_jax.functional import METHODS, PSUOutput, choose_method, ipsu, psu, rpsu
from psu_jax.online import OnlineState, StepOutput, init_state, step

__all__ = [
    "psu",
    "ipsu",
    "rpsu",
    "PSUOutput",
    "METHODS",
    "choose_method",
    "init_state",
    "step",
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
