"""The report: machine description, a text table and the JSON document.

JSON (``format`` = ``psu-bench/1``)::

    {"format": "psu-bench/1", "created": ISO-8601 UTC, "machine": {...}, "config": {...},
     "definitions": {"floor": ..., "memory": ..., "ratios": ...},
     "problems": [str], "skipped": [str], "rows": [ROW, ...]}

A ROW holds ``impl, kind (backend|peer|floor), path (prepare|adapter|peer), device, variant, T,
N, dtype``, the medians ``forward_ms`` and ``fwd_bwd_ms`` (None when skipped), the per-repeat
samples and iteration counts, ``ratio_dense_*`` (time / dense-torch time, same group and phase),
``ratio_floor_*`` (time / copy-floor time in the row's dtype), ``floor_gbps_*`` (floor rows),
``peak_mib`` and ``memory_method``, ``requested_dtype`` (the run's), ``notes`` and ``skipped``
(phase -> reason).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

FORMAT = "psu-bench/1"

DEFINITIONS = {
    "floor": (
        "copy-floor: forward = one copy S <- X (reads X, writes S: 2 x T*N elements); "
        "fwd+bwd = S <- X then dX <- G + X (also reads G and X and writes dX: 5 x T*N "
        "elements), the least data a forward+backward must move; torch Tensor.copy_/add "
        "into preallocated outputs, same device, threads and dtype as the row"
    ),
    "memory": (
        "peak_mib: extra memory of one forward+backward call beyond its resident inputs, "
        "measured in a separate pass after timing. CPU (rss-hwm): VmHWM - VmRSS around the "
        "call after gc, malloc_trim and a reset of the high-water mark (Linux "
        "/proc/self/clear_refs); counts every allocator. CUDA (torch-cuda-peak): "
        "torch.cuda.max_memory_allocated growth; PyTorch's allocator only"
    ),
    "ratios": (
        "ratio = median time / median time of the reference implementation in the same "
        "group (device, variant, T) and phase; below 1 is faster. ratio_dense: to "
        "dense-torch in the run's dtype; ratio_floor: to copy-floor in the row's dtype"
    ),
    "timing": (
        "median over repeats of (repeat time / iterations); implementations alternate "
        "round-robin within each repeat, start rotated per repeat; warm-up calls excluded"
    ),
}


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(devices: Iterable[str] = ("cpu",)) -> dict[str, Any]:
    """Where and with how many threads the numbers were taken."""
    import numpy as np
    import torch

    info: dict[str, Any] = {
        "host": platform.node(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "os_cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch_num_threads": torch.get_num_threads(),
        "torch_num_interop_threads": torch.get_num_interop_threads(),
        "env": {
            k: os.environ.get(k)
            for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS", "XLA_FLAGS", "CUDA_VISIBLE_DEVICES")
        },
    }
    if "numba" in sys.modules:  # only once a backend has loaded it: not imported for this
        numba = sys.modules["numba"]
        info["numba"] = numba.__version__
        info["numba_num_threads"] = numba.config.NUMBA_NUM_THREADS
    if "jax" in sys.modules:
        jax = sys.modules["jax"]
        info["jax"] = jax.__version__
    from benchmarks.libpeers import package_version

    libs = {d: package_version(d) for d in ("spikingjelly", "snntorch", "spyx", "flax", "matplotlib")}
    info["libraries"] = {d: v for d, v in libs.items() if v is not None}
    if hasattr(os, "getloadavg"):
        info["loadavg"] = list(os.getloadavg())
    if any(d.startswith("cuda") for d in devices) and torch.cuda.is_available():
        info["cuda_device"] = torch.cuda.get_device_name(0)
        info["cuda_runtime"] = torch.version.cuda
    return info


def default_json_path(host: str, when: _dt.datetime) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in host) or "host"
    return Path(__file__).resolve().parent / "results" / f"bench-{safe}-{when:%Y%m%d-%H%M%S}.json"


def document(
    rows: list[dict], *, machine: dict, config: dict, skipped: list[str], problems: list[str], created: _dt.datetime
) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "created": created.isoformat(timespec="seconds"),
        "machine": machine,
        "config": config,
        "definitions": DEFINITIONS,
        "problems": list(problems),
        "skipped": list(skipped),
        "rows": rows,
    }


def write_json(doc: dict, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n")
    return path


COLUMNS = (
    "device",
    "variant",
    "T",
    "N",
    "impl",
    "dtype",
    "fwd ms",
    "f+b ms",
    "fwd/dense",
    "f+b/dense",
    "fwd/floor",
    "f+b/floor",
    "peak MiB",
    "note",
)


NUMERIC_COLUMNS = frozenset(
    ("T", "N", "fwd ms", "f+b ms", "fwd/dense", "f+b/dense", "fwd/floor", "f+b/floor", "peak MiB")
)


def _num(v: float | None, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def _ms(row: dict, key: str, phase: str) -> str:
    if row["skipped"].get(phase):
        return "skipped"
    return _num(row[key], "#.3g" if (row[key] or 0) < 10 else ".1f")


def table_rows(rows: list[dict]) -> list[list[str]]:
    out = []
    for r in rows:
        notes = []
        if r["kind"] != "floor" and r["dtype"] and r["dtype"] != r.get("requested_dtype", r["dtype"]):
            notes.append(f"no {r['requested_dtype']}: own dtype")
        if r["path"] == "adapter":
            notes.append("via adapter.forward/vjp")
        if r["kind"] == "floor" and r.get("floor_gbps_forward"):
            notes.append(f"{r['floor_gbps_forward']:.1f}/{r['floor_gbps_fwd_bwd'] or 0:.1f} GB/s")
        if r["skipped"]:
            notes.append("skipped " + " and ".join(r["skipped"]) + " (below)")
        out.append(
            [
                r["device"],
                r["variant"],
                str(r["T"]),
                str(r["N"]),
                r["impl"],
                r["dtype"] or "-",
                _ms(r, "forward_ms", "forward"),
                _ms(r, "fwd_bwd_ms", "fwd+bwd"),
                _num(r["ratio_dense_forward"], ".2f"),
                _num(r["ratio_dense_fwd_bwd"], ".2f"),
                _num(r["ratio_floor_forward"], ".1f"),
                _num(r["ratio_floor_fwd_bwd"], ".1f"),
                _num(r.get("peak_mib"), ".0f"),
                "; ".join(notes),
            ]
        )
    return out


def format_table(rows: list[dict]) -> str:
    body = table_rows(rows)
    widths = [max(len(c), *(len(b[i]) for b in body)) if body else len(c) for i, c in enumerate(COLUMNS)]
    right = {2, 3, 6, 7, 8, 9, 10, 11, 12}

    def line(cells: list[str] | tuple[str, ...]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    out = [line(COLUMNS), line(["-" * w for w in widths])]
    prev = None
    for r, b in zip(rows, body, strict=True):
        group = (r["device"], r["variant"], r["T"])
        if prev is not None and group != prev:
            out.append("")
        prev = group
        out.append(line(b))
    return "\n".join(out)


def format_report(doc: dict) -> str:
    m, c = doc["machine"], doc["config"]
    env = ", ".join(f"{k}={v}" for k, v in m["env"].items() if v is not None) or "none set"
    head = [
        f"psu benchmark — {doc['created']} on {m['host']} ({m['cpu']}; {m['platform']})",
        f"threads: torch.get_num_threads()={m['torch_num_threads']} "
        f"(interop {m['torch_num_interop_threads']}), os.cpu_count()={m['os_cpu_count']}, "
        f"usable CPUs={m['cpus_usable']}"
        + (f", numba threads={m['numba_num_threads']}" if "numba_num_threads" in m else "")
        + f"; env: {env}",
        f"python {m['python']}, numpy {m['numpy']}, torch {m['torch']}"
        + (f", jax {m['jax']}" if "jax" in m else "")
        + (f", numba {m['numba']}" if "numba" in m else "")
        + (f"; CUDA: {m['cuda_device']}" if "cuda_device" in m else ""),
        f"total T*N={c['total']}, dtype {c['dtype']}, repeats {c['repeats']} (median), warm-up "
        f"{c['warmup']}, ~{c['target_repeat_s']} s per repeat, budget {c['max_call_s']} s per "
        f"call, seed {c['seed']}",
        "timing: " + doc["definitions"]["timing"],
        "ratios: " + doc["definitions"]["ratios"],
        "floor:  " + doc["definitions"]["floor"],
        "memory: " + doc["definitions"]["memory"],
        "",
    ]
    tail = []
    if doc["skipped"]:
        tail += ["", "Skipped (not silently):"] + [f"  - {s}" for s in doc["skipped"]]
    mem_notes = sorted({n for r in doc["rows"] for n in r["notes"] if n.startswith("memory:")})
    if mem_notes:
        tail += ["", "Memory notes:"] + [f"  - {n}" for n in mem_notes]
    if doc["problems"]:
        tail += ["", "Problems:"] + [f"  - {p}" for p in doc["problems"]]
    return "\n".join(head) + format_table(doc["rows"]) + "\n" + "\n".join(tail)


def now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)
