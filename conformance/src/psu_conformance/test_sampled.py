"""Group sampled: the sampled reset ``R ~ Bernoulli(P)`` of SPEC §6.

* every sampled golden case: the adapter's draws ``R`` equal the vectors' bit for bit (in every
  dtype at a draw pin, where ``u = P`` exactly);
* another seed gives other draws: on each large case of ``statistics.json`` (T=8, N=4096) its
  other seed (``s + 1``) changes ``R`` in at least one position, and the uniform streams of the
  file's two seeds differ in more than its ``differ_fraction`` (90%) of positions (independent
  24-bit uniforms coincide with probability 2**-24);
* frequency: on the same cases ``mean(R)`` lies within ``frequency_sigmas`` (5) binomial standard
  deviations of ``mean(P)``, both written in the file; the recorded ratio is ``|z| / 5``.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

from psu_conformance.cases import adapter_case, statistics

STATS = statistics()
SEED, OTHER_SEED = STATS["uniforms"]["seeds"]
FREQUENCY_SIGMAS = STATS["frequency_sigmas"]
UNIFORMS_DIFFER_FRACTION = STATS["uniforms"]["differ_fraction"]
LARGE = STATS["cases"]


@pytest.mark.psu_cases(reset="sampled")
def test_reset_draws(psu_target, psu_vector_case, psu_adapter, psu_check):  # type: ignore[no-untyped-def]
    vc = psu_vector_case
    out = psu_adapter.forward(adapter_case(vc), device=psu_target.device, dtype=psu_target.dtype)
    psu_check.keys("forward (sampled)", out, ["reset"])
    psu_check.exact(
        "forward reset draws",
        out["reset"],
        vc.expected["reset"],
        context={"uniform": vc.expected["uniform"], "reset probability": vc.expected["reset_probability"]},
        pinned=vc.pin_mask("draw"),
    )


@pytest.mark.parametrize("large", LARGE, ids=[c.id for c in LARGE])
def test_other_seed_other_draws(psu_target, psu_adapter, large):  # type: ignore[no-untyped-def]
    dev, dt = psu_target.device, psu_target.dtype
    first = np.asarray(psu_adapter.forward(copy.deepcopy(large.case), device=dev, dtype=dt)["reset"])
    other = copy.deepcopy(large.case)
    other["seed"] = large.other_seed
    second = np.asarray(psu_adapter.forward(other, device=dev, dtype=dt)["reset"])
    assert first.shape == second.shape == large.case["x"].shape, "forward reset draws have the wrong shape"
    assert (first != second).any(), (
        f"forward reset draws, case {large.id}: seeds {large.case['seed']} and {large.other_seed} gave identical "
        f"draws at all {first.size} positions"
    )


def test_other_seed_other_uniforms(psu_rng_target, psu_adapter):  # type: ignore[no-untyped-def]
    shape = tuple(STATS["uniforms"]["shape"])
    u1 = np.asarray(psu_adapter.uniforms(SEED, shape, device=psu_rng_target.device))
    u2 = np.asarray(psu_adapter.uniforms(OTHER_SEED, shape, device=psu_rng_target.device))
    fraction = float(np.mean(u1 != u2))
    assert fraction > UNIFORMS_DIFFER_FRACTION, (
        f"uniforms: seeds {SEED} and {OTHER_SEED} differ in only {fraction:.1%} of {u1.size} positions "
        f"(must be > {UNIFORMS_DIFFER_FRACTION:.0%})"
    )


@pytest.mark.parametrize("large", LARGE, ids=[c.id for c in LARGE])
def test_reset_frequency(psu_target, psu_adapter, psu_record, large):  # type: ignore[no-untyped-def]
    r = np.asarray(
        psu_adapter.forward(copy.deepcopy(large.case), device=psu_target.device, dtype=psu_target.dtype)["reset"],
        dtype=np.float64,
    )
    assert np.isin(r, (0.0, 1.0)).all(), f"forward reset draws, case {large.id}: values other than 0 and 1"
    mean_p, sd = large.reset_probability_mean, large.reset_sd
    z = (float(r.mean()) - mean_p) / sd
    psu_record("reset frequency |z|/5", abs(z) / FREQUENCY_SIGMAS)
    assert abs(z) <= FREQUENCY_SIGMAS, (
        f"forward reset draws, case {large.id}: mean(R) = {r.mean():.6f} but mean(P) = {mean_p:.6f}, "
        f"{z:+.2f} binomial standard deviations ({sd:.3g}) away; the limit is {FREQUENCY_SIGMAS:g}"
    )


SPLIT_PARTS = 2


@pytest.mark.psu_cases(reset="sampled")
def test_split_call_draws_as_the_whole(psu_target, psu_vector_case, psu_adapter, psu_check):  # type: ignore[no-untyped-def]
    """A call on part of a batch draws what the whole call draws (SPEC §6: global neuron index):
    the case split in two along its first neuron axis, each half through the backend's own
    batching path (``adapter.split_forward``: jax.vmap, torch's neuron_offset), equals the vectors."""
    split = getattr(psu_adapter, "split_forward", None)
    if not callable(split):
        pytest.skip(f"backend {psu_target.backend} has no batching path to check (no adapter.split_forward)")
    vc = psu_vector_case
    if vc.x.ndim < 2 or vc.x.shape[1] % SPLIT_PARTS:
        pytest.skip(f"case {vc.id}: the first neuron axis of shape {list(vc.x.shape)} does not split in {SPLIT_PARTS}")
    out = split(adapter_case(vc), SPLIT_PARTS, device=psu_target.device, dtype=psu_target.dtype)
    psu_check.keys("split forward (sampled)", out, ["spikes", "membrane", "reset"])
    with psu_check.collect():
        psu_check.exact(
            "split forward reset draws",
            out["reset"],
            vc.expected["reset"],
            context={"uniform": vc.expected["uniform"], "reset probability": vc.expected["reset_probability"]},
            pinned=vc.pin_mask("draw"),
        )
        psu_check.exact("split forward spikes", out["spikes"], vc.expected["spikes"], pinned=vc.pin_mask("membrane"))
        psu_check.membrane("split forward membrane", out["membrane"], vc.expected["membrane"])
