"""The benchmark run: cases, groups, timing and memory passes, rows.

A *group* is one (device, variant, T) with ``N = total // T`` neurons. Within a group every
impl — the selected backends and the peers — is prepared on the same case and timed alternately
(:mod:`benchmarks.timing`), then measured for memory in a separate pass (:mod:`benchmarks.memory`),
one forward+backward call per impl. Ratios compare times of the same group and phase: to
``dense-torch`` (in the run's dtype) and to ``copy-floor`` in the row's own dtype.
"""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from benchmarks import memory, timing
from benchmarks.backends import Impl, choose_dtype

PHASES = ("forward", "fwd+bwd")
DENSE, FLOOR = "dense-torch", "copy-floor"


@dataclass
class Config:
    """What to run (the CLI's options; see ``python -m benchmarks --help``)."""

    variants: list[str]
    Ts: list[int]
    total: int = 2**23
    dtype: str = "float32"
    devices: list[str] = field(default_factory=lambda: ["cpu"])
    repeats: int = 7
    warmup: int = 2
    target_repeat_s: float = 0.1
    max_call_s: float = 2.0
    memory: bool = True
    seed: int = 0
    # case parameters (SPEC §1 defaults; reset_scale None ties gamma to theta)
    tau: float = 2.0
    threshold: float = 1.0
    surrogate_alpha: float = 2.0


#: Bytes per element of every dtype a run can ask for (NumPy has no bfloat16).
ITEMSIZE = {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2}
#: The dtypes NumPy holds natively.
NUMPY_DTYPES = ("float64", "float32", "float16")


def make_case(
    variant: str,
    T: int,
    N: int,
    dtype: str,
    seed: int = 0,
    *,
    tau: float = 2.0,
    threshold: float = 1.0,
    surrogate_alpha: float = 2.0,
) -> tuple[dict, np.ndarray]:
    """A NumPy case of the adapter protocol (``x`` ``[T, N]``) and an upstream gradient ``[T, N]``.

    ``x ~ 1 + N(0, 1)`` so that a fair share of neurons fire; ``W`` (IPSU/RPSU) is i.i.d. normal
    with std ``sqrt(2 / T)`` (the reference initialisation, all of ``[T, T]`` drawn), ``b`` small.
    Drawn in float32 whatever ``dtype`` is, so the float32 and float64 cases hold the same numbers;
    held in ``dtype``, or in float32 where NumPy has no such dtype (bfloat16): every impl converts
    the case to the dtype it runs in when it prepares, as the adapters do for the conformance suite.
    """
    held = dtype if dtype in NUMPY_DTYPES else "float32"
    rng = np.random.default_rng([seed, T, N])
    x = (rng.standard_normal((T, N), dtype=np.float32) + np.float32(1.0)).astype(held, copy=False)
    g = rng.standard_normal((T, N), dtype=np.float32).astype(held, copy=False)
    weight = bias = None
    if variant in ("ipsu", "rpsu"):
        weight = (rng.standard_normal((T, T)) * np.sqrt(2.0 / T)).astype(np.float32).astype(held)
        bias = (0.1 * rng.standard_normal(T)).astype(np.float32).astype(held)
    case = {
        "variant": variant,
        "x": x,
        "tau": tau,
        "threshold": threshold,
        "reset_scale": None,
        "surrogate_alpha": surrogate_alpha,
        "weight": weight,
        "bias": bias,
        "reset": "expected",
        "seed": None,
        "validate": False,
    }
    return case, g


def _progress(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def run(
    config: Config, impls: list[Impl], *, progress: Callable[[str], None] = _progress
) -> tuple[list[dict], list[str]]:
    """Run every group; return the rows and the skip messages (each also in its row)."""
    t0 = time.perf_counter()
    rows: list[dict] = []
    skips: list[str] = []
    # (impl, dtype, device, variant, phase) -> (T, seconds) where one call went over the budget
    over_budget: dict[tuple, tuple[int, float]] = {}
    groups = [(d, v, T) for d in config.devices for v in config.variants for T in config.Ts]
    bad = [T for T in config.Ts if T < 1 or config.total // T < 1]
    if bad:
        raise SystemExit(f"every T must satisfy 1 <= T <= total={config.total}, got {bad}")
    # Everything alive now (modules: torch alone holds ~10^5 objects) is moved out of the
    # collector's sight, so the collections before each timing and memory pass stay cheap.
    gc.collect()
    gc.freeze()
    try:
        usable: dict[str, list[Impl]] = {}
        for device in config.devices:
            usable[device] = []
            for impl in impls:
                if impl.missing:  # said once, for the first device only
                    if device == config.devices[0]:
                        skips.append(f"{impl.name}: skipped: {impl.missing}")
                    continue
                have = impl.devices()
                if device in have:
                    usable[device].append(impl)
                else:  # said once, not as a row per group
                    skips.append(
                        f"{impl.name}: not run on {device}: no usable device {device!r} here (devices(): {have})"
                    )
        for gi, (device, variant, T) in enumerate(groups, 1):
            N = config.total // T
            progress(f"group {gi}/{len(groups)}: {device} {variant} T={T} N={N} [{time.perf_counter() - t0:.0f} s]")
            g_rows, g_skips = _run_group(config, usable[device], device, variant, T, N, over_budget, progress)
            rows += g_rows
            skips += g_skips
    finally:
        gc.unfreeze()
    return rows, skips


def _run_group(
    config: Config,
    impls: list[Impl],
    device: str,
    variant: str,
    T: int,
    N: int,
    over_budget: dict,
    progress: Callable[[str], None],
) -> tuple[list[dict], list[str]]:
    cases: dict[str, tuple[dict, np.ndarray]] = {}
    entries: list[dict] = []  # one per (impl, dtype) that has something to time
    skips: list[str] = []
    where = f"{device} {variant} T={T}"

    def skip(row: dict, phase: str, why: str) -> None:
        row["skipped"][phase] = why
        skips.append(f"{row['impl']} [{row['dtype'] or '-'}] {where} {phase}: {why}")

    def new_row(impl: Impl, dtype: str | None, notes: list[str]) -> dict:
        return {
            "impl": impl.name,
            "kind": impl.kind,
            "path": impl.path,
            "device": device,
            "variant": variant,
            "T": T,
            "N": N,
            "dtype": dtype,
            "notes": notes,
            "skipped": {},
            "fns": {},
        }

    floor_dtypes: set[str] = set()
    for impl in impls:
        if impl.kind == "floor":
            continue
        dtype, note = choose_dtype(impl.dtypes(device), config.dtype)
        row = new_row(impl, dtype, [note] if note else [])
        entries.append(row)
        if dtype is None:
            for ph in PHASES:
                skip(row, ph, note)
            continue
        floor_dtypes.add(dtype)
    for impl in impls:
        if impl.kind == "floor":
            for dt in sorted(floor_dtypes, key=lambda d: d != config.dtype):
                entries.append(new_row(impl, dt, []))

    for row in entries:
        if row["dtype"] is None or len(row["skipped"]) == len(PHASES):
            continue
        impl = next(i for i in impls if i.name == row["impl"])
        todo = []
        for ph in PHASES:
            prior = over_budget.get((row["impl"], row["dtype"], device, variant, ph))
            if prior is not None and prior[0] < T:
                skip(
                    row,
                    ph,
                    f"not run: one call took {prior[1]:.2f} s > budget "
                    f"{config.max_call_s:g} s at T={prior[0]} (at fixed T*N the cost "
                    f"does not fall as T grows)",
                )
            else:
                todo.append(ph)
        if not todo:
            continue
        if row["dtype"] not in cases:
            cases[row["dtype"]] = make_case(
                variant,
                T,
                N,
                row["dtype"],
                config.seed,
                tau=config.tau,
                threshold=config.threshold,
                surrogate_alpha=config.surrogate_alpha,
            )
        case, grad = cases[row["dtype"]]
        try:
            fwd, vjp = impl.prepare(case, grad, device=device, dtype=row["dtype"])
        except Exception as exc:  # an impl that cannot run this group is a row saying why
            for ph in todo:
                skip(row, ph, f"prepare failed: {exc!r}")
            continue
        for ph, fn in zip(PHASES, (fwd, vjp), strict=True):
            if ph in todo:
                row["fns"][ph] = fn

    keys = {f"{row['impl']}[{row['dtype']}] {ph}": (i, ph) for i, row in enumerate(entries) for ph in row["fns"]}
    fns = {label: entries[i]["fns"][ph] for label, (i, ph) in keys.items()}
    try:
        timings = timing.alternating_median(
            fns,
            repeats=config.repeats,
            warmup=config.warmup,
            target_repeat_s=config.target_repeat_s,
            max_call_s=config.max_call_s,
            progress=lambda m: progress(f"  {m}"),
        )
    except Exception as exc:
        raise RuntimeError(f"timing failed in group {where}: {exc!r}") from exc
    for label, t in timings.items():
        i, ph = keys[label]
        row = entries[i]
        row[ph] = t
        if t.skipped:
            skip(row, ph, t.skipped)
        if t.over_budget_s is not None:
            over_budget[(row["impl"], row["dtype"], device, variant, ph)] = (T, t.over_budget_s)

    if config.memory:
        for row in entries:
            fn = row["fns"].get("fwd+bwd")
            if fn is not None and not row["skipped"].get("fwd+bwd"):
                try:
                    m = memory.peak_memory(fn, device)
                except Exception as exc:  # timed fine, failed now: say so in the row
                    m = memory.Memory(None, memory.method_for(device), f"the measured call raised {exc!r}")
                row["peak_mib"] = None if m.peak_bytes is None else m.peak_bytes / 2**20
                row["memory_method"] = m.method
                if m.note:
                    row["notes"].append(f"memory: {m.note}")

    out = [_finish(row, entries, config.dtype) for row in entries]
    for row in entries:
        row["fns"].clear()
    del fns, entries
    gc.collect()
    progress(
        "  "
        + "; ".join(
            f"{r['impl']}[{r['dtype']}] "
            + "/".join("-" if r[k] is None else f"{r[k]:.2f}" for k in ("forward_ms", "fwd_bwd_ms"))
            for r in out
        )
        + " ms"
    )
    return out, skips


def _finish(row: dict, entries: list[dict], dtype: str) -> dict:
    """A JSON-ready row: times in ms, ratios to dense-torch and to the floor of the same dtype."""

    def ms(r: dict, ph: str) -> float | None:
        t = r.get(ph)
        return None if t is None or t.median_s is None else t.median_s * 1e3

    dense = next((r for r in entries if r["impl"] == DENSE and r["dtype"] == dtype), None)
    floor = next((r for r in entries if r["kind"] == "floor" and r["dtype"] == row["dtype"]), None)
    out: dict[str, Any] = {k: row[k] for k in ("impl", "kind", "path", "device", "variant", "T", "N", "dtype")}
    for ph, key in zip(PHASES, ("forward_ms", "fwd_bwd_ms"), strict=True):
        t = row.get(ph)
        out[key] = ms(row, ph)
        out[key.replace("_ms", "_samples_ms")] = [] if t is None else [s * 1e3 for s in t.samples_s]
        out[key.replace("_ms", "_iterations")] = 0 if t is None else t.iterations
    for ref, name in ((dense, "dense"), (floor, "floor")):
        for ph, key in zip(PHASES, ("forward", "fwd_bwd"), strict=True):
            a, b = ms(row, ph), (None if ref is None else ms(ref, ph))
            out[f"ratio_{name}_{key}"] = None if a is None or not b else a / b
    if row["kind"] == "floor":
        from benchmarks.peers import CopyFloor

        itemsize = ITEMSIZE[row["dtype"]]
        for ph, key in zip(PHASES, ("forward", "fwd_bwd"), strict=True):
            t = ms(row, ph)
            moved = CopyFloor.ELEMENTS_MOVED[ph] * row["T"] * row["N"] * itemsize
            out[f"floor_gbps_{key}"] = None if not t else moved / (t * 1e-3) / 1e9
    out["requested_dtype"] = dtype
    out["peak_mib"] = row.get("peak_mib")
    out["memory_method"] = row.get("memory_method")
    out["notes"] = list(row["notes"])
    out["skipped"] = {ph: row["skipped"][ph] for ph in PHASES if ph in row["skipped"]}
    return out
