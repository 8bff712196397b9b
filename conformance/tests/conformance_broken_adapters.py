"""Adapters for the suite's self-tests (``--psu-backend conformance_broken_adapters:NAME``).

Four are deliberately wrong: each wraps the reference adapter and breaks one thing, so that the
self-tests can show the suite catches it. Two are correct variants of the reference that offer
other dtypes, to exercise the dtype parametrization and the half-precision rules."""

from __future__ import annotations

from typing import Any

import numpy as np

from psu_core.adapter import ReferenceAdapter


class ShiftedMembrane(ReferenceAdapter):
    """Returns the membrane one time step late: ``V'[t] = V[t - 1]``, ``V'[0] = 0``."""

    name = "shifted-membrane"

    def forward(self, case: dict[str, Any], *, device: str, dtype: str) -> dict[str, np.ndarray]:
        out = super().forward(case, device=device, dtype=dtype)
        v = out["membrane"]
        out["membrane"] = np.concatenate([np.zeros_like(v[:1]), v[:-1]], axis=0)
        return out


class DoubledSurrogate(ReferenceAdapter):
    """Surrogate gradient scaled by 2: every vjp result doubled (the forward pass is untouched)."""

    name = "doubled-surrogate"

    def vjp(self, case: dict[str, Any], grad_spikes: np.ndarray, *, device: str, dtype: str) -> dict[str, Any]:
        g = super().vjp(case, grad_spikes, device=device, dtype=dtype)
        return {k: 2 * v for k, v in g.items()}


class WrongSeed(ReferenceAdapter):
    """Draws the sampled resets from ``seed + 1`` instead of ``seed``."""

    name = "wrong-seed"

    @staticmethod
    def _reseed(case: dict[str, Any]) -> dict[str, Any]:
        if case.get("reset") == "sampled" and isinstance(case.get("seed"), int):
            case = {**case, "seed": case["seed"] + 1}
        return case

    def forward(self, case: dict[str, Any], *, device: str, dtype: str) -> dict[str, np.ndarray]:
        return super().forward(self._reseed(case), device=device, dtype=dtype)

    def online(self, case: dict[str, Any], *, device: str, dtype: str) -> dict[str, np.ndarray]:
        return super().online(self._reseed(case), device=device, dtype=dtype)


class LaxTau(ReferenceAdapter):
    """A missing bad-input check: ``tau <= 1`` is silently replaced by 2 instead of raising."""

    name = "lax-tau"

    @staticmethod
    def _fix(case: dict[str, Any]) -> dict[str, Any]:
        tau = case.get("tau")
        if isinstance(tau, float) and tau <= 1.0:
            case = {**case, "tau": 2.0}
        return case

    def forward(self, case: dict[str, Any], *, device: str, dtype: str) -> dict[str, np.ndarray]:
        return super().forward(self._fix(case), device=device, dtype=dtype)

    def vjp(self, case: dict[str, Any], grad_spikes: np.ndarray, *, device: str, dtype: str) -> dict[str, Any]:
        return super().vjp(self._fix(case), grad_spikes, device=device, dtype=dtype)


class Float32Reference(ReferenceAdapter):
    """The reference offering float32 and float64 (it computes in float64 either way), to exercise
    the dtype parametrization and ``--psu-dtype``."""

    name = "reference-two-dtypes"

    def dtypes(self, device: str) -> list[str]:
        return ["float64", "float32"]


class Incomplete:
    """Not an adapter: lacks most of the protocol."""

    name = "incomplete"

    def devices(self) -> list[str]:
        return ["cpu"]


def shifted_membrane() -> ShiftedMembrane:
    return ShiftedMembrane()


def doubled_surrogate() -> DoubledSurrogate:
    return DoubledSurrogate()


def wrong_seed() -> WrongSeed:
    return WrongSeed()


def lax_tau() -> LaxTau:
    return LaxTau()


def two_dtypes() -> Float32Reference:
    return Float32Reference()


def incomplete() -> Incomplete:
    return Incomplete()


class HalfReference(ReferenceAdapter):
    """Not broken: the reference computing in float64 and returning float16 results, as a
    half-precision backend does (the golden inputs are exact in float16), to exercise the suite's
    half-precision rules (spike mismatch fraction, gradients where the spikes agree)."""

    name = "reference-float16"

    def dtypes(self, device: str) -> list[str]:
        return ["float16"]

    @staticmethod
    def _half(out: dict[str, Any]) -> dict[str, Any]:
        return {k: v.astype(np.float16) if isinstance(v, np.ndarray) else v for k, v in out.items()}

    def forward(self, case: dict[str, Any], *, device: str, dtype: str) -> dict[str, np.ndarray]:
        return self._half(super().forward(case, device=device, dtype="float64"))

    def vjp(self, case: dict[str, Any], grad_spikes: np.ndarray, *, device: str, dtype: str) -> dict[str, Any]:
        return self._half(super().vjp(case, grad_spikes, device=device, dtype="float64"))

    def online(self, case: dict[str, Any], *, device: str, dtype: str) -> dict[str, np.ndarray]:
        return self._half(super().online(case, device=device, dtype="float64"))


def half_reference() -> HalfReference:
    return HalfReference()


class _RenamedKeyword:
    """The reference's functions, but ``rpsu`` spells ``surrogate_alpha`` as ``alpha``."""

    def __init__(self) -> None:
        from psu_core import reference

        self._ref = reference

        def rpsu(x, weight, bias, *, tau=2.0, threshold=1.0, reset_scale=None, alpha=2.0, reset="expected",  # type: ignore[no-untyped-def]
                 seed=None, method="auto", return_membrane=False, return_reset=False, validate=False):  # fmt: skip
            return reference.rpsu(x, weight, bias, tau=tau, threshold=threshold, reset_scale=reset_scale,
                                  surrogate_alpha=alpha, reset=reset, seed=seed, method=method,
                                  return_membrane=return_membrane, return_reset=return_reset, validate=validate)  # fmt: skip

        self.rpsu = rpsu

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ref, name)


class RenamedKeyword(ReferenceAdapter):
    """A public API that drifted: ``rpsu(..., alpha=)`` instead of ``surrogate_alpha=``, undeclared."""

    name = "renamed-keyword"

    def public_api(self) -> Any:
        return _RenamedKeyword()


class StaleIdiom(ReferenceAdapter):
    """Declares an idiom for a difference its API does not have."""

    name = "stale-idiom"
    api_idioms = {**ReferenceAdapter.api_idioms, "psu.seed": "a JAX key (but this backend has no such thing)"}


def renamed_keyword() -> RenamedKeyword:
    return RenamedKeyword()


def stale_idiom() -> StaleIdiom:
    return StaleIdiom()


class RenamedKeywordClaimingExec(RenamedKeyword):
    """The drifted API above, claiming the exec adapter's exemption from the api group."""

    name = "renamed-keyword-claiming-exec"
    api_not_applicable = "not a Python API (a false claim: this is a Python backend)"


def renamed_keyword_claiming_exec() -> RenamedKeywordClaimingExec:
    return RenamedKeywordClaimingExec()


def _halves(case: dict[str, Any], parts: int) -> list[dict[str, Any]]:
    return [{**case, "x": piece} for piece in np.split(case["x"], parts, axis=1)]


class LocalSplit(ReferenceAdapter):
    """The bug of a batching path that numbers each piece's neurons from 0: every piece of a split
    call draws as if it were the whole call."""

    name = "local-split"

    def split_forward(self, case: dict[str, Any], parts: int, *, device: str, dtype: str) -> dict[str, Any]:
        outs = [self.forward(piece, device=device, dtype=dtype) for piece in _halves(case, parts)]
        return {k: np.concatenate([o[k] for o in outs], axis=1) for k in outs[0]}


class WholeSplit(ReferenceAdapter):
    """Correct by construction: a split call computed as the whole call."""

    name = "whole-split"

    def split_forward(self, case: dict[str, Any], parts: int, *, device: str, dtype: str) -> dict[str, Any]:
        return self.forward(case, device=device, dtype=dtype)


def local_split() -> LocalSplit:
    return LocalSplit()


def whole_split() -> WholeSplit:
    return WholeSplit()


class HalfFireAtThreshold(HalfReference):
    """A float16 port that fires at ``V >= theta`` (SPEC §2 says ``>``): the reference's spikes,
    plus one wherever the membrane equals the threshold, rounded to float16. Only the pins
    (exactly on the threshold) show it, and float16's allowance for flips must not excuse them."""

    name = "half-fire-at-threshold"

    @staticmethod
    def _fire_at(out: dict[str, Any], case: dict[str, Any]) -> dict[str, Any]:
        return {**out, "spikes": np.maximum(out["spikes"], out["membrane"] == case["threshold"])}

    def forward(self, case: dict[str, Any], *, device: str, dtype: str) -> dict[str, np.ndarray]:
        return self._half(self._fire_at(ReferenceAdapter.forward(self, case, device=device, dtype="float64"), case))

    def online(self, case: dict[str, Any], *, device: str, dtype: str) -> dict[str, np.ndarray]:
        return self._half(self._fire_at(ReferenceAdapter.online(self, case, device=device, dtype="float64"), case))


def half_fire_at_threshold() -> HalfFireAtThreshold:
    return HalfFireAtThreshold()
