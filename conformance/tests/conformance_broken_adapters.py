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


# ----------------------------------------------------------------------------- issue 11: causality, fuzz


class DenseForward(ReferenceAdapter):
    """The literal matrix form ``H = A X``, ``V = H - gamma B Q`` (``W ⊙ M`` written ``W * M``): a
    NaN or infinity at a later step reaches every earlier one through ``0 * NaN`` above A's
    diagonal, and NaN above W's diagonal reaches everything."""

    name = "dense-forward"

    def forward(self, case: dict[str, Any], *, device: str, dtype: str) -> dict[str, np.ndarray]:
        from psu_core import reference, rng

        x = np.asarray(case["x"], dtype=np.float64)
        T = x.shape[0]
        x2 = x.reshape(T, -1)
        A, B, M = reference.decay_matrices(T, case["tau"])
        w, b = case.get("weight"), case.get("bias")
        if case["variant"] == "ipsu":
            H = (w * M) @ x2 + b[:, None]
            Q = P = x2
        else:
            H = A @ x2
            P = reference.sigmoid(H if case["variant"] == "psu" else (w * M) @ x2 + b[:, None])
            Q = P
        result = {}
        if case["reset"] == "sampled":
            Q = (rng.uniforms(case["seed"], x2.shape) < P).astype(np.float64)
            result["reset"] = Q.reshape(x.shape)
        gamma = case["threshold"] if case["reset_scale"] is None else case["reset_scale"]
        V = H - gamma * (B @ Q)
        return {**result, "spikes": (V > case["threshold"]).astype(np.float64).reshape(x.shape),
                "membrane": V.reshape(x.shape)}  # fmt: skip


class MaskByProduct(DenseForward):
    """IPSU/RPSU mask W with ``W * M`` (NaN above the diagonal stays NaN: ``NaN * 0``); PSU is the
    reference's recurrence."""

    name = "mask-by-product"

    def forward(self, case: dict[str, Any], *, device: str, dtype: str) -> dict[str, np.ndarray]:
        if case["variant"] == "psu":
            return ReferenceAdapter.forward(self, case, device=device, dtype=dtype)
        return super().forward(case, device=device, dtype=dtype)


def _psu_float32(case: dict[str, Any], exact_decay: bool) -> dict[str, np.ndarray]:
    """PSU, expected reset, in float32: ``h = a (h + x)``, ``r = a (r + P)``, ``V = h - gamma r``.
    ``exact_decay`` rounds each product with ``a = 1/tau`` once from float64 (what
    ``fma(s, a_hi, s * a_lo)`` gives, issue 11 R2); without it ``a`` is one float32, whose rounding
    multiplies T times."""
    f = np.float32
    a64 = 1.0 / case["tau"]
    a32 = f(a64)

    def decay(s: np.ndarray) -> np.ndarray:
        return (s.astype(np.float64) * a64).astype(f) if exact_decay else s * a32

    theta = f(case["threshold"])
    gamma = theta if case["reset_scale"] is None else f(case["reset_scale"])
    x = np.asarray(case["x"], dtype=f)
    h = np.zeros(x.shape[1:], f)
    r = np.zeros(x.shape[1:], f)
    p = np.zeros(x.shape[1:], f)
    V = np.empty_like(x)
    for t in range(x.shape[0]):
        h = decay(h + x[t])
        if t > 0:
            r = decay(r + p)
        e = np.exp(-np.abs(h))
        p = np.where(h >= 0, f(1) / (f(1) + e), e / (f(1) + e)).astype(f)
        V[t] = h - gamma * r
    return {"spikes": (V > theta).astype(f), "membrane": V}


class Float32Decay(ReferenceAdapter):
    """Offers float32: PSU with expected reset computed in float32, each decay product rounded once
    (honest); everything else the reference's, rounded to float32."""

    name = "float32-decay"
    exact_decay = True

    def dtypes(self, device: str) -> list[str]:
        return ["float32"]

    def forward(self, case: dict[str, Any], *, device: str, dtype: str) -> dict[str, np.ndarray]:
        if case["variant"] == "psu" and case["reset"] == "expected":
            return _psu_float32(case, self.exact_decay)
        return super().forward(case, device=device, dtype=dtype)


class DriftingDecay(Float32Decay):
    """The float32 PSU above with ``a = 1/tau`` one float32, multiplied T times (issue 11, item 2)."""

    name = "drifting-decay"
    exact_decay = False


class FlippedThreshold(ReferenceAdapter):
    """Fires where ``V < theta`` (the comparison the wrong way round)."""

    name = "flipped-threshold"

    def forward(self, case: dict[str, Any], *, device: str, dtype: str) -> dict[str, np.ndarray]:
        out = super().forward(case, device=device, dtype=dtype)
        return {**out, "spikes": (out["membrane"] < case["threshold"]).astype(np.float64)}


def dense_forward() -> DenseForward:
    return DenseForward()


def mask_by_product() -> MaskByProduct:
    return MaskByProduct()


def float32_decay() -> Float32Decay:
    return Float32Decay()


def drifting_decay() -> DriftingDecay:
    return DriftingDecay()


def flipped_threshold() -> FlippedThreshold:
    return FlippedThreshold()


class RoundedResetDerivative(Float32Decay):
    """RPSU's VJP with ``P' = P (1 - P)`` from P rounded to float32 (issue 11, item 3): the
    reference's gradients, corrected by what the rounded derivative changes in them."""

    name = "rounded-reset-derivative"

    def vjp(self, case: dict[str, Any], grad_spikes: np.ndarray, *, device: str, dtype: str) -> dict[str, Any]:
        from psu_core import reference

        g = super().vjp(case, grad_spikes, device=device, dtype=dtype)
        if case["variant"] != "rpsu":
            return g
        params = {k: case[k] for k in ("tau", "threshold", "reset_scale", "surrogate_alpha", "reset", "seed")}
        fwd = reference.forward("rpsu", case["x"], case["weight"], case["bias"], **params)
        T = case["x"].shape[0]
        x2 = case["x"].reshape(T, -1)
        P = fwd.reset_probability.reshape(T, -1)
        p32 = P.astype(np.float32)
        wrong = (p32 * (np.float32(1) - p32)).astype(np.float64) - P * (1.0 - P)
        ds_dv, _ = reference.surrogate(fwd.membrane.reshape(T, -1), case["threshold"], case["surrogate_alpha"])
        gv = grad_spikes.reshape(T, -1) * ds_dv
        a = 1.0 / case["tau"]
        c = np.zeros_like(gv)  # B^T gV
        for j in range(T - 2, -1, -1):
            c[j] = a * (c[j + 1] + gv[j + 1])
        gamma = case["threshold"] if case["reset_scale"] is None else case["reset_scale"]
        dz = -gamma * c * wrong
        wm = np.tril(case["weight"])
        return {
            **g,
            "x": g["x"] + (wm.T @ dz).reshape(case["x"].shape),
            "weight": g["weight"] + np.tril(dz @ x2.T),
            "bias": g["bias"] + dz.sum(axis=1),
        }


def rounded_reset_derivative() -> RoundedResetDerivative:
    return RoundedResetDerivative()
