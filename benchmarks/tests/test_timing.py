"""The timer alternates, takes medians, excludes warm-up and applies its budget."""

from __future__ import annotations

import pytest

from benchmarks.timing import alternating_median


class FakeClock:
    """A clock that only moves when a fake callable 'runs' (deterministic durations)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.calls: list[str] = []

    def __call__(self) -> float:
        return self.now

    def fn(self, name: str, durations: list[float]):
        it = iter(durations)

        def run() -> None:
            self.calls.append(name)
            self.now += next(it)

        return run


def test_round_robin_rotated_and_medians() -> None:
    clock = FakeClock()
    # warm-up (2 calls each) then 5 repeats of 1 iteration (target_repeat_s tiny)
    fns = {
        "a": clock.fn("a", [9.0, 1.0, 1.0, 5.0, 2.0, 3.0, 4.0]),
        "b": clock.fn("b", [9.0, 1.0, 10.0, 30.0, 20.0, 50.0, 40.0]),
        "c": clock.fn("c", [9.0, 1.0, 7.0, 7.0, 7.0, 7.0, 7.0]),
    }
    out = alternating_median(fns, repeats=5, warmup=2, target_repeat_s=1e-9, clock=clock)
    assert clock.calls[:6] == ["a", "b", "c", "a", "b", "c"]  # warm-up alternates too
    assert clock.calls[6:] == [
        "a",
        "b",
        "c",
        "b",
        "c",
        "a",
        "c",
        "a",
        "b",
        "a",
        "b",
        "c",
        "b",
        "c",
        "a",
    ]  # start rotates per repeat
    assert out["a"].median_s == 3.0  # median of 1, 5, 2, 3, 4: warm-up 9 excluded
    assert out["b"].median_s == 30.0
    assert out["c"].median_s == 7.0
    assert out["a"].samples_s == [1.0, 5.0, 2.0, 3.0, 4.0]
    assert out["a"].warmup_s == [9.0, 1.0]
    assert all(t.iterations == 1 and t.skipped is None for t in out.values())


def test_iterations_fill_the_target_and_divide() -> None:
    clock = FakeClock()
    fns = {"fast": clock.fn("fast", [0.01] * 200)}
    out = alternating_median(fns, repeats=3, warmup=1, target_repeat_s=0.1, clock=clock)
    assert out["fast"].iterations == 10
    assert out["fast"].median_s == pytest.approx(0.01)
    assert len(clock.calls) == 1 + 3 * 10


def test_budget_skips_with_reason_and_allows_a_slow_first_call() -> None:
    clock = FakeClock()
    fns = {
        "jit": clock.fn("jit", [5.0] + [0.5] * 10),  # compile on call 1, then fits
        "slow": clock.fn("slow", [3.0, 3.0]),  # over budget on the last warm-up
        "hopeless": clock.fn("hopeless", [50.0]),
    }  # 5x the budget: no second call
    out = alternating_median(fns, repeats=2, warmup=2, target_repeat_s=0.1, max_call_s=2.0, clock=clock)
    assert out["jit"].skipped is None and out["jit"].median_s == 0.5
    assert out["slow"].median_s is None and "3.00 s > budget 2 s" in (out["slow"].skipped or "")
    assert out["hopeless"].median_s is None and clock.calls.count("hopeless") == 1
    assert clock.calls.count("slow") == 2
    assert out["slow"].over_budget_s == 3.0 and out["hopeless"].over_budget_s == 50.0
    assert out["jit"].over_budget_s is None


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        alternating_median({"a": lambda: None}, repeats=0)


def test_a_callable_that_raises_is_dropped_with_the_reason() -> None:
    clock = FakeClock()
    calls = {"n": 0}

    def flaky() -> None:
        calls["n"] += 1
        if calls["n"] == 3:  # fails in the first repeat, after two warm-up calls
            raise RuntimeError("boom")

    out = alternating_median(
        {"ok": clock.fn("ok", [1.0] * 5), "flaky": flaky, "bad": lambda: 1 / 0},
        repeats=3,
        warmup=2,
        target_repeat_s=1e-9,
        clock=clock,
    )
    assert out["ok"].median_s == 1.0 and len(out["ok"].samples_s) == 3
    assert out["flaky"].median_s is None and out["flaky"].skipped == "raised RuntimeError('boom') in repeat 1"
    assert out["bad"].skipped is not None and "ZeroDivisionError" in out["bad"].skipped
