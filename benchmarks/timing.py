"""Alternating median timer for zero-argument callables.

Every callable is timed in the same process, interleaved: repeat ``r`` runs each callable's
``iterations`` calls in turn, in an order rotated by ``r`` (round-robin, so no callable always
runs first or last, and slow drifts of the machine — frequency, other load — fall on all of them
alike). A callable's result is the median over repeats of (repeat time / iterations).

Warm-up calls come first and are excluded; they also pick the iteration count (enough calls
that one repeat lasts about ``target_repeat_s``) and apply the budget: a callable whose last
warm-up call took longer than ``max_call_s`` is dropped with the reason recorded, never silently.
A callable that raises is dropped likewise, with the exception as the reason.
The first warm-up call may include one-time work (JIT compilation), so the budget is judged on
the last one, unless one call alone took five times the budget (then no more calls are made).

The callables must synchronise before returning (device work finished); the timer only reads
the clock around them. Python's cyclic garbage collector runs once before and is paused
throughout, as ``timeit`` pauses it (reference counting still frees every acyclic result).
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

K = TypeVar("K", bound=Hashable)


@dataclass
class Timing:
    """Result for one callable: ``median_s`` per call, or ``skipped`` with the reason."""

    median_s: float | None
    samples_s: list[float] = field(default_factory=list)  # per-call time of each repeat
    iterations: int = 0
    warmup_s: list[float] = field(default_factory=list)
    skipped: str | None = None
    over_budget_s: float | None = None  # the call that exceeded max_call_s, when that is the reason


def _timed(fn: Callable[[], Any], n: int, clock: Callable[[], float]) -> float:
    t0 = clock()
    for _ in range(n):
        fn()
    return clock() - t0


def alternating_median(
    fns: Mapping[K, Callable[[], Any]],
    *,
    repeats: int,
    warmup: int = 2,
    target_repeat_s: float = 0.1,
    max_iterations: int = 100,
    max_call_s: float | None = None,
    clock: Callable[[], float] = time.perf_counter,
    progress: Callable[[str], None] | None = None,
) -> dict[K, Timing]:
    """Time ``fns`` alternately; return a :class:`Timing` per key (same keys, same order)."""
    if repeats < 1 or warmup < 1:
        raise ValueError(f"repeats and warmup must be >= 1, got {repeats} and {warmup}")
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _run(fns, repeats, warmup, target_repeat_s, max_iterations, max_call_s, clock, progress)
    finally:
        if was_enabled:
            gc.enable()


def _run(
    fns: Mapping[K, Callable[[], Any]],
    repeats: int,
    warmup: int,
    target_repeat_s: float,
    max_iterations: int,
    max_call_s: float | None,
    clock: Callable[[], float],
    progress: Callable[[str], None] | None,
) -> dict[K, Timing]:
    out: dict[K, Timing] = {k: Timing(median_s=None) for k in fns}
    alive = list(fns)

    def drop(k: K, why: str) -> None:
        out[k].skipped = why
        alive.remove(k)
        if progress:
            progress(f"{k}: skipped, {why}")

    for w in range(warmup):
        for k in list(alive):
            try:
                dt = _timed(fns[k], 1, clock)
            except Exception as exc:  # one failing implementation must not sink the others' run
                drop(k, f"raised {exc!r}")
                continue
            out[k].warmup_s.append(dt)
            last = w == warmup - 1
            if max_call_s is not None and (dt > 5 * max_call_s or (last and dt > max_call_s)):
                out[k].over_budget_s = dt
                drop(k, f"one call took {dt:.2f} s > budget {max_call_s:g} s (--max-call-seconds)")
    for k in alive:
        per_call = max(out[k].warmup_s[-1], 1e-9)
        out[k].iterations = max(1, min(max_iterations, round(target_repeat_s / per_call)))
    for r in range(repeats):
        shift = r % len(alive) if alive else 0
        for k in alive[shift:] + alive[:shift]:
            n = out[k].iterations
            try:
                out[k].samples_s.append(_timed(fns[k], n, clock) / n)
            except Exception as exc:
                drop(k, f"raised {exc!r} in repeat {r + 1}")
    for k in alive:
        out[k].median_s = statistics.median(out[k].samples_s)
    return out
