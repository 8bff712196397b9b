"""Group fuzz: seeded Hypothesis cases compared with the float64 reference (issue 11).

Cases (:class:`psu_conformance.fuzz.FuzzSpec`): every variant and reset mode, T from 1 to 512
(PSU, rarely, up to 4096 on at most 4 neurons; 1024 for the VJP and online), neuron shapes of rank 0 to 4
with up to 64 neurons, tau in (1, 50] (often close to 1, where the decay's memory is long),
threshold 1e-3..1e3, reset scale tied, 0 or 1e-3..1e3, alpha 0.1..20, inputs zero-mean or
positive scaled by 1e-3..1e4, saturated reset probabilities (W = 0, b in 10..13), upstream
gradients of ones; issue 11's repros (``EXAMPLES``) run first. ``forward``, ``vjp`` and ``online``
are compared with the reference in float64 and float32, with the tolerances of SPEC §9 applied to
the call's conditioning (:mod:`psu_conformance.fuzz`); spikes and draws may differ only in the band
where rounding decides them. Half precision is covered by the golden vectors and skipped here.

Reproducible: derandomized (the same cases on every run), no example database. Bounded: the group
stops starting cases after ``--psu-fuzz-seconds`` (default 60, shared by its tests) or
``--psu-fuzz-examples`` per test (default 400). A failure prints a one-line reproduction.
"""

from __future__ import annotations

import math
import time

import pytest

hypothesis = pytest.importorskip("hypothesis", reason="the fuzz group needs hypothesis (pip install hypothesis)")
from hypothesis import HealthCheck, Phase, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from psu_conformance.fuzz import FUZZ_DTYPES, FuzzSpec, reproduction, run  # noqa: E402

PARTS = ("forward", "vjp", "online")


#: The longest PSU case per part: the reference's VJP runs its recurrences beyond T = 1024, and an
#: online call is one public step call per time step (seconds at T = 4096 on some backends).
LONGEST = {"forward": 4096, "vjp": 1024, "online": 1024}


@st.composite
def specs(draw: st.DrawFn, longest: int = 4096) -> FuzzSpec:
    variant = draw(st.sampled_from(("psu", "ipsu", "rpsu")))
    reset = "expected" if variant == "ipsu" else draw(st.sampled_from(("expected", "sampled")))
    long = variant == "psu" and draw(st.integers(0, 15)) == 0
    T = draw(st.integers(513, longest)) if long else draw(st.integers(1, 512))
    rank = draw(st.integers(0, 4))
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=rank, max_size=rank)))
    while shape and math.prod(shape) > (4 if long else 64):
        shape = shape[1:]
    tau = draw(
        st.one_of(
            st.floats(1.0001, 1.01),
            st.floats(1.01, 50.0),
            st.sampled_from((1.00011508, 1.0001, 1.7, 2.0, 37.0, 50.0)),
        )
    )
    log10 = lambda lo, hi: st.floats(lo, hi).map(lambda e: float(10.0**e))  # noqa: E731
    threshold = draw(log10(-3, 3))
    reset_scale = draw(st.one_of(st.none(), st.just(0.0), log10(-3, 3)))
    return FuzzSpec(
        variant=variant,
        reset=reset,
        T=T,
        shape=shape,
        tau=tau,
        threshold=threshold,
        reset_scale=reset_scale,
        alpha=draw(log10(-1, 1.3)),
        input_scale=draw(log10(-3, 4)),
        inputs=draw(st.sampled_from(("zero-mean", "positive"))),
        bias=draw(st.sampled_from(("normal", "saturated"))),
        grad=draw(st.sampled_from(("normal", "ones"))),
        seed=draw(st.integers(0, 2**32 - 1)),
    )


#: Issue 11's repros, run first in float32 on every backend: (2) float32 decay over T = 1000 with
#: tau close to 1; (3) RPSU with saturated reset probabilities (z = b in 10..13 in every neuron),
#: upstream ones.
EXAMPLES = (
    FuzzSpec("psu", "expected", 1000, (), 1.00011508, 1000.0, 0.0, 2.0, 1.0, inputs="ones"),
    FuzzSpec("psu", "expected", 1000, (), 1.00011508, 1000.0, 0.0, 2.0, 1.0, inputs="positive", seed=1),
    FuzzSpec("rpsu", "expected", 2, (3000,), 2.0, 0.1, 1.0, 2.0, 1.0, inputs="ones", bias="saturated", grad="ones"),
)


@pytest.fixture
def fuzz_budget(request: pytest.FixtureRequest, psu_state) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    """(seconds, examples) for one test: the group's seconds shared by its tests."""
    seconds = float(request.config.getoption("psu_fuzz_seconds"))
    examples = int(request.config.getoption("psu_fuzz_examples"))
    tests = len(PARTS) * max(1, sum(d in FUZZ_DTYPES for d in psu_state.dtypes))
    return seconds / tests, examples


def _examples(specs_: tuple[FuzzSpec, ...]):  # type: ignore[no-untyped-def]
    def wrap(f):  # type: ignore[no-untyped-def]
        for spec in reversed(specs_):
            f = example(spec=spec)(f)
        return f

    return wrap


@pytest.mark.parametrize("part", PARTS)
def test_fuzz(psu_target, psu_adapter, psu_record, fuzz_budget, part, request):  # type: ignore[no-untyped-def]
    dtype, device = psu_target.dtype, psu_target.device
    if dtype not in FUZZ_DTYPES:
        pytest.skip(f"{dtype}: the fuzz group compares float32 and float64; half precision is covered by the vectors")
    seconds, examples = fuzz_budget
    backend = request.config.getoption("psu_backend")
    stop = time.monotonic() + seconds
    state = {"failed": False, "ran": 0, "worst": 0.0}

    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        # No shrinking: it would rerun a failing backend for minutes; the first failing case is
        # reported, with its reproduction.
        phases=(Phase.explicit, Phase.generate),
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @given(spec=specs(LONGEST[part]))
    @_examples(EXAMPLES)
    def body(spec: FuzzSpec) -> None:
        # Past the time budget no new case runs, unless one failed: then Hypothesis's replay of it
        # must run for real. The repros always run.
        if not state["failed"] and spec not in EXAMPLES and time.monotonic() > stop:
            return
        if spec in EXAMPLES and dtype != "float32":
            return  # float32 rounding is what they catch; in float64 they are far inside the tolerance
        state["ran"] += 1
        try:
            ((_, outcome),) = run(psu_adapter, spec, device, dtype, (part,))
        except Exception as exc:
            state["failed"] = True
            raise AssertionError(
                f"{part} raised {type(exc).__name__}: {exc}\nreproduce: {reproduction(spec, backend, device, dtype)}"
            ) from exc
        state["worst"] = max(state["worst"], outcome.ratio)
        if outcome.failures:
            state["failed"] = True
            raise AssertionError(
                f"{part}, {spec}:\n  " + "\n  ".join(outcome.failures)
                + f"\nreproduce: {reproduction(spec, backend, device, dtype)}"
            )  # fmt: skip

    began = time.monotonic()
    try:
        body()
    finally:
        psu_record(f"fuzz {part}", state["worst"])
        # Shown with -rP (and on failure): how much this run covered.
        print(f"fuzz {part} ({dtype}): {state['ran']} cases in {time.monotonic() - began:.1f} s")
    assert state["ran"] > 0, "the fuzz group ran no case (time budget too small?)"
