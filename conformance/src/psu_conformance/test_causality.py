"""Group causality: step ``t`` never depends on what comes after it, whatever the values (SPEC §1/§2,
issue 11 R1; :mod:`psu_conformance.causality` holds the rule as checks).

* forward: on golden cases of every variant and reset mode at T = 16, 64, 256 (torch's and JAX's
  dense forms; JAX switches to ``lax.scan`` above T = 128) and generated PSU cases at T = 600
  with 3 neurons (torch's chunked form, ``gen-`` ids), at steps 0, T/2 and T-1: ``x`` of all
  neurons (finite, NaN, +inf, -inf) or of one, and for IPSU/RPSU W's row (lower triangle), one entry
  of it and ``b`` (finite, NaN, +inf); above T = 64 only ``x`` of all neurons and W's upper triangle:
  every output before the step is identical to the unperturbed
  call's, the membrane of a neuron given a non-finite input is non-finite there (IPSU: of every
  neuron for a non-finite W row or bias), spikes and draws are 0 or 1, nothing raises. NaN above
  W's diagonal changes nothing at all. Half precision computes in float32 (SPEC §9): it runs the
  whole-input and upper-triangle perturbations at T = 16; the rest runs in float32 and float64.
* online: the same through ``adapter.online`` at the middle step of the T = 16 cases.
* golden ``nonfinite.json`` (psu-core, :func:`psu_core.vectors.load_nonfinite`): the first ``step`` steps within SPEC §9 of the expected
  outputs (spikes and draws exactly), NaN or infinity at each listed position.
"""

from __future__ import annotations

import numpy as np
import pytest

from psu_conformance.cases import adapter_case, generated_case, nonfinite_cases, vector_cases
from psu_conformance.causality import TARGETS, Perturbation, check, check_nonfinite, perturbations

#: Golden cases per (variant, reset): the first of each of these lengths.
CAUSAL_T = (16, 64, 256)
#: PSU at this length on a few neurons takes torch's chunked form (T > 512, T * N < 2^18).
LONG_T, LONG_N = 600, 3


def _bases() -> list[tuple[str, str, dict]]:
    seen, out = set(), []
    for vc in vector_cases():
        key = (vc.variant, vc.reset, vc.T)
        if vc.T in CAUSAL_T and key not in seen:
            seen.add(key)
            out.append((vc.id, vc.variant, adapter_case(vc)))
    for reset in ("expected", "sampled"):
        g = generated_case("psu", reset, T=LONG_T, N=LONG_N, seed=5)
        out.append((g.id, "psu", g.fresh()))
    return out


BASES = _bases()
#: Every target up to T = 64; above, the whole input and the upper triangle (the long products).
LONG_TARGETS = ("x-all", "weight-upper")
FORWARD = [
    (case_id, variant, case, target)
    for case_id, variant, case in BASES
    for target in TARGETS
    if (variant != "psu" or target.startswith("x-")) and (case["x"].shape[0] <= 64 or target in LONG_TARGETS)
]
#: Online (a loop over steps, slow at large T): the T = 16 cases, at the middle step, one finite
#: and two non-finite values.
ONLINE = [(case_id, variant, case) for case_id, variant, case in BASES if case["x"].shape[0] == 16]
NONFINITE = nonfinite_cases()
HALF = ("float16", "bfloat16")


def _run(call, case_id, variant, case, targets, select=lambda p: True):  # type: ignore[no-untyped-def]
    base = call(case)
    T, n = case["x"].shape[0], int(np.prod(case["x"].shape[1:], dtype=np.int64))
    failures = []
    for target in targets:
        for p in perturbations(variant, T, n, target):
            if not select(p):
                continue
            try:
                out = call(p.apply(case))
            except Exception as exc:  # noqa: BLE001 - nothing may raise (validate=False)
                failures.append(f"case {case_id}, {p}: raised {type(exc).__name__}: {exc}")
                continue
            failures += check("forward" if call.__name__ == "forward" else "online", case_id, variant, p, base, out)
    if failures:
        more = f"\n... and {len(failures) - 10} more" if len(failures) > 10 else ""
        pytest.fail("\n".join(failures[:10]) + more, pytrace=False)


@pytest.mark.parametrize(("case_id", "variant", "case", "target"), FORWARD, ids=[f"{c}-{t}" for c, _, _, t in FORWARD])
def test_forward_causal(psu_target, psu_adapter, case_id, variant, case, target):  # type: ignore[no-untyped-def]
    if psu_target.dtype in HALF and (target not in LONG_TARGETS or case["x"].shape[0] > 16):
        pytest.skip(f"{psu_target.dtype} computes in float32 (SPEC §9): this case runs in float32 and float64")

    def forward(c):  # type: ignore[no-untyped-def]
        return psu_adapter.forward(c, device=psu_target.device, dtype=psu_target.dtype)

    _run(forward, case_id, variant, case, [target])


@pytest.mark.parametrize(("case_id", "variant", "case"), ONLINE, ids=[c for c, _, _ in ONLINE])
def test_online_causal(psu_target, psu_adapter, case_id, variant, case):  # type: ignore[no-untyped-def]
    def online(c):  # type: ignore[no-untyped-def]
        return psu_adapter.online(c, device=psu_target.device, dtype=psu_target.dtype)

    T = case["x"].shape[0]
    learned = variant != "psu" and psu_target.dtype not in HALF
    targets = ["x-all"] + (["weight-row", "bias", "weight-upper"] if learned else [])

    def middle(p: Perturbation) -> bool:
        return p.target == "weight-upper" or (p.step == T // 2 and p.value in ("finite", "nan", "+inf"))

    _run(online, case_id, variant, case, targets, middle)


@pytest.mark.parametrize("nf", NONFINITE, ids=[c.id for c in NONFINITE])
def test_nonfinite_vectors(psu_target, psu_adapter, psu_check, nf):  # type: ignore[no-untyped-def]
    out = psu_adapter.forward(nf.fresh(), device=psu_target.device, dtype=psu_target.dtype)
    check_nonfinite(psu_check, nf, out)
