"""The pieces behind the causality and fuzz groups: the check of a nonfinite.json case (on a
hand-made file in the documented format, read by psu-core's reader), the perturbations, the fuzz
spec's round trip and its reproduction command."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from conformance_broken_adapters import DenseForward

from psu_conformance.causality import Perturbation, check, check_nonfinite
from psu_conformance.compare import Checker
from psu_conformance.fuzz import FuzzSpec, main, reproduction
from psu_core.adapter import ReferenceAdapter
from psu_core.vectors import from_array, load_nonfinite


def _document(variant: str, reset: str) -> dict:
    """One case of each kind the format has: x replaced at step 2 (neuron 0) and, for IPSU, b."""
    gen = np.random.default_rng(3)
    T, N = 5, 3
    x = gen.standard_normal((T, N))
    weight = gen.standard_normal((T, T)) if variant != "psu" else None
    bias = gen.standard_normal(T) if variant != "psu" else None
    params = {"tau": 2.0, "threshold": 0.5, "reset_scale": None, "surrogate_alpha": 2.0}
    replace = [{"input": "x", "at": [2, 0], "value": "NaN"}]
    broken = x.copy()
    broken[2, 0] = math.nan
    seed = 7 if reset == "sampled" else None
    case = {"variant": variant, "x": broken, "weight": weight, "bias": bias, "reset": reset, "seed": seed, **params}
    out = ReferenceAdapter().forward(case, device="cpu", dtype="float64")
    expected = {
        "spikes": from_array(out["spikes"][:2], integer=True),
        "membrane": from_array(out["membrane"][:2]),
        "reset_probability": None,
        "reset": from_array(out["reset"][:2], integer=True) if reset == "sampled" else None,
        "uniform": None,
    }
    return {
        "format_version": 1,
        "cases": [
            {
                "id": f"{variant}-{reset}-nonfinite-x",
                "variant": variant,
                "reset": reset,
                **params,
                "seed": None if seed is None else str(seed),
                "step": 2,
                "inputs": {
                    "x": from_array(x),
                    "weight": None if weight is None else from_array(weight),
                    "bias": None if bias is None else from_array(bias),
                },
                "replace": replace,
                "expected": expected,
                "nonfinite": [{"output": "membrane", "at": [2, 0]}, {"output": "reset_probability", "at": [2, 0]}],
            }
        ],
    }


@pytest.mark.parametrize(("variant", "reset"), [("psu", "expected"), ("psu", "sampled"), ("ipsu", "expected"),
                                                ("rpsu", "sampled")])  # fmt: skip
def test_nonfinite_check(variant: str, reset: str, tmp_path: Path) -> None:
    (tmp_path / "nonfinite.json").write_text(json.dumps(_document(variant, reset)))
    (nf,) = load_nonfinite(tmp_path)
    assert nf.step == 2 and math.isnan(nf.case["x"][2, 0]) and np.isfinite(nf.case["x"]).sum() == nf.case["x"].size - 1
    assert nf.nonfinite == (("membrane", (2, 0)), ("reset_probability", (2, 0)))
    checker = Checker("float64", nf.id)
    check_nonfinite(checker, nf, ReferenceAdapter().forward(nf.fresh(), device="cpu", dtype="float64"))
    if variant != "ipsu":  # IPSU's dense product leaks too, but the check must fail for PSU/RPSU
        with pytest.raises(AssertionError, match="before the non-finite step"):
            check_nonfinite(checker, nf, DenseForward().forward(nf.fresh(), device="cpu", dtype="float64"))


def test_perturbation_copies_and_check_names_the_first_difference() -> None:
    case = {"x": np.zeros((4, 2)), "weight": np.zeros((4, 4)), "bias": np.zeros(4)}
    p = Perturbation("weight-upper", 0, "nan")
    moved = p.apply(case)
    assert (
        not np.isnan(case["weight"]).any() and np.isnan(moved["weight"][0, 3]) and not np.isnan(moved["weight"][3, 0])
    )
    base = {"spikes": np.zeros((4, 2)), "membrane": np.ones((4, 2))}
    leaked = {
        "spikes": np.zeros((4, 2)),
        "membrane": np.where(np.arange(4)[:, None] == 1, np.nan, 1.0) + 0 * base["spikes"],
    }
    (message,) = check("forward", "c", "ipsu", p, base, leaked)
    assert "membrane changed anywhere" in message and "(1, 0): nan, unperturbed 1.0" in message
    x_nan = Perturbation("x-one", 2, "nan", neuron=1)
    assert check("forward", "c", "psu", x_nan, base, base) == [
        "forward, case c, x[2, neuron 1] = nan: the membrane at step 2 of neuron 1 (flat index) is finite (1.0); "
        "a non-finite input there must make it non-finite"
    ]


def test_fuzz_spec_round_trip_and_reproduction(capsys: pytest.CaptureFixture[str]) -> None:
    spec = FuzzSpec("rpsu", "sampled", 7, (2, 1), 1.5, 0.3, None, 2.0, 10.0, seed=11)
    assert FuzzSpec.from_json(spec.to_json()) == spec
    line = reproduction(spec, "reference", "cpu", "float64")
    assert line.startswith("python -m psu_conformance.fuzz --backend 'reference' --device cpu --dtype float64 '{")
    assert main(["--backend", "reference", "--dtype", "float64", spec.to_json()]) == 0
    assert "vjp: worst error" in capsys.readouterr().out
