"""The suite's own inputs: the bad-input table (bad_input.json) and the generated cases."""

from __future__ import annotations

import numpy as np
import pytest

from psu_conformance.cases import ACCEPTED_INPUTS, BAD_INPUTS, MODES, generated_case, names_argument, valid_case
from psu_core import reference
from psu_core.vectors.bad_input import base_call


@pytest.mark.parametrize(
    ("message", "argument", "named"),
    [
        ("tau must be a finite number > 1, got 0.5", "tau", True),
        ("reset_scale must be None or ..., got -1", "reset", False),
        ("reset must be one of ('expected', 'sampled'), got 'foo'", "reset", True),
        ("expected something else", "x", False),
        ("x must have a floating dtype", "x", True),
        ("got shape (0, 3) for x.", "x", True),
        ("weights are wrong", "weight", False),
    ],
)
def test_names_argument(message: str, argument: str, named: bool) -> None:
    assert names_argument(message, argument) is named


def test_bad_input_ids_unique_and_cover_spec_section_8() -> None:
    ids = [b.id for b in BAD_INPUTS]
    assert len(ids) == len(set(ids))
    assert {b.argument for b in BAD_INPUTS} == {
        "tau",
        "threshold",
        "surrogate_alpha",
        "reset_scale",
        "weight",
        "bias",
        "x",
        "reset",
        "seed",
    }
    assert {b.exception for b in BAD_INPUTS if b.argument == "x" and "integer" in b.id} == {TypeError}


@pytest.mark.parametrize("bad", BAD_INPUTS, ids=[b.id for b in BAD_INPUTS])
def test_each_bad_input_is_rejected_by_the_reference_for_its_argument(bad) -> None:  # type: ignore[no-untyped-def]
    """Each bad input differs from a valid call only in the argument it names (the reference
    rejects it for that reason); otherwise a passing bad_input test would prove little."""
    case = bad.case()
    with pytest.raises(bad.exception) as info:
        reference.forward(case.pop("variant"), case.pop("x"), case.pop("weight"), case.pop("bias"), **case)
    assert names_argument(str(info.value), bad.argument)


@pytest.mark.parametrize("accepted", ACCEPTED_INPUTS, ids=[a.id for a in ACCEPTED_INPUTS])
def test_accepted_inputs_are_accepted_by_the_reference(accepted) -> None:  # type: ignore[no-untyped-def]
    case = accepted.case()
    reference.forward(case.pop("variant"), case.pop("x"), case.pop("weight"), case.pop("bias"), **case)


def test_accepted_inputs_hold_the_bases_and_unvalidated_nan() -> None:
    by_id = {a.id: a.case() for a in ACCEPTED_INPUTS}
    assert {f"{v}-valid-validate" for v in ("psu", "ipsu", "rpsu")} <= set(by_id)
    nan = by_id["psu-nan-unvalidated"]
    assert np.isnan(nan["x"]).sum() == 1 and nan["validate"] is False


@pytest.mark.parametrize("variant", ["psu", "ipsu", "rpsu"])
def test_the_table_reads_back_as_written(variant: str) -> None:
    """bad_input.json decodes to the very calls its generator encoded (floats, arrays, seeds exact)."""
    case, base = valid_case(variant), base_call(variant)
    assert case.keys() == base.keys()
    for k, v in base.items():
        if isinstance(v, np.ndarray):
            np.testing.assert_array_equal(case[k], v)
            assert case[k].dtype == v.dtype
        else:
            assert case[k] == v and type(case[k]) is type(v), k
    seeds = {b.id: b.case()["seed"] for b in BAD_INPUTS if "seed=" in b.id}
    assert seeds["psu-sampled-seed=2**64"] == 2**64 and seeds["psu-sampled-seed=-1"] == -1
    x_int = next(b for b in BAD_INPUTS if b.id == "psu-x-integer").case()["x"]
    assert x_int.dtype == np.int64


@pytest.mark.parametrize(("variant", "reset"), MODES)
def test_generated_cases_are_reproducible_and_fresh(variant: str, reset: str) -> None:
    a = generated_case(variant, reset, T=4, N=16, seed=5)
    b = generated_case(variant, reset, T=4, N=16, seed=5)
    assert a.id == b.id == f"gen-{variant}-{reset}-T4-N16" + ("-seed5" if reset == "sampled" else "")
    np.testing.assert_array_equal(a.case["x"], b.case["x"])
    fresh = a.fresh()
    fresh["x"][0, 0] = 99.0
    assert a.case["x"][0, 0] != 99.0
    assert (a.case["weight"] is None) == (variant == "psu")
    assert (a.case["seed"] is None) == (reset == "expected")
