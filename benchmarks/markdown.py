"""``RESULTS.md``: a benchmark document (``psu-bench/1``) as Markdown, with its plots embedded.

Sections: how it was produced (command, date), the machine (CPU model, cores, threads, versions,
load average) with the warning that a shared machine's absolute times are noisy, what each
implementation is, definitions, everything skipped and why, then per device and variant the
plots of :mod:`benchmarks.figures` and the table of :func:`benchmarks.report.table_rows`.
"""

from __future__ import annotations

import os
from pathlib import Path

from benchmarks import report

CORE_PEERS = {
    "dense-torch": "the paper's dense formulation as published: T x T matrices, PyTorch autograd",
    "lif-loop-torch": "sequential hard-reset LIF, h = h + (x_t - h)/tau, plain PyTorch autograd loop",
    "copy-floor": "memory-bandwidth floor: S <- X (forward); plus dX <- G + X (fwd+bwd)",
}

NOISE = (
    "**Read the ratios, not the absolute times.** {where} Each group (device, variant, T) times "
    "its implementations alternately, round-robin, under the same load, so the ratios within a "
    "group (to `dense-torch`, to `copy-floor`) are what these numbers support; absolute CPU "
    "times move with the other work on the machine."
)


def _esc(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_table(header: list[str], body: list[list[str]]) -> list[str]:
    right = {i for i, h in enumerate(header) if h in report.NUMERIC_COLUMNS}
    out = ["| " + " | ".join(header) + " |"]
    out.append("|" + "|".join("---:" if i in right else "---" for i in range(len(header))) + "|")
    out += ["| " + " | ".join(_esc(c) for c in row) + " |" for row in body]
    return out


def _describe(doc: dict) -> list[list[str]]:
    from benchmarks import libpeers

    m = doc["machine"]
    seen: dict[str, dict] = {}
    for r in doc["rows"]:
        seen.setdefault(r["impl"], r)
    body = []
    for name, r in seen.items():
        if name in libpeers.PEERS:
            p = libpeers.PEERS[name]
            what = p.summary
            version = f"{p.dist} {m.get('libraries', {}).get(p.dist, '?')}"
        elif name in CORE_PEERS:
            what, version = CORE_PEERS[name], f"torch {m['torch']}"
        else:
            what = "psu backend (entry point in `psu.backends`), " + (
                "timed through its adapter's `prepare`" if r["path"] == "prepare" else "via adapter.forward/vjp"
            )
            version = ""
        body.append([name, r["kind"], what, version])
    return body


def render(doc: dict, *, plots: list[Path] | None = None, md_path: Path | None = None, command: str = "") -> str:
    """The Markdown text; ``plots`` are linked relative to ``md_path``'s folder."""
    m, c = doc["machine"], doc["config"]
    plots = plots or []
    base = md_path.parent if md_path is not None else Path(".")
    lib = m.get("libraries", {})
    env = ", ".join(f"`{k}={v}`" for k, v in m["env"].items() if v is not None) or "none set"
    load = m.get("loadavg")
    where = (
        f"This run was on `{m['host']}`, a machine shared with other jobs"
        + (f" (load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} over 1/5/15 min at the end)" if load else "")
        + "."
    )
    out = [
        "# PSU benchmarks",
        "",
        f"Produced by `{command or 'python -m benchmarks'}` on {doc['created']} (UTC); "
        "regenerate with `nox -s bench` (arguments after `--` go to `python -m benchmarks`). "
        "The numbers below are also in the JSON file next to the run (`benchmarks/results/`).",
        "",
        NOISE.format(where=where),
        "",
        "## Machine",
        "",
        f"- CPU: {m['cpu']}; `os.cpu_count()` = {m['os_cpu_count']}, usable CPUs = {m['cpus_usable']}"
        + (f"; CUDA: {m['cuda_device']} (runtime {m['cuda_runtime']})" if "cuda_device" in m else ""),
        f"- Threads used: PyTorch {m['torch_num_threads']} (interop {m['torch_num_interop_threads']})"
        + (f", Numba {m['numba_num_threads']}" if "numba_num_threads" in m else "")
        + ("; JAX/XLA: its own CPU thread pool" if "jax" in m else "")
        + f"; environment: {env}",
        f"- Software: Python {m['python']}, NumPy {m['numpy']}, PyTorch {m['torch']}"
        + (f", JAX {m['jax']}" if "jax" in m else "")
        + (f", Numba {m['numba']}" if "numba" in m else "")
        + "".join(f", {k} {v}" for k, v in lib.items()),
        f"- Platform: {m['platform']}",
        f"- Run: T in {c['Ts']}, T*N = {c['total']}, {c['dtype']}, median of {c['repeats']} repeats "
        f"(~{c['target_repeat_s']} s each, {c['warmup']} warm-up calls), budget {c['max_call_s']} s "
        f"per call, seed {c['seed']}; backends: {', '.join(c.get('backends', [])) or 'none'}",
        "",
        "## Implementations",
        "",
        *_md_table(["impl", "kind", "what is timed", "version"], _describe(doc)),
        "",
        "Library peers have no PSU variants: the same neuron is timed in every variant's group. "
        "spyx's `PSU_LIF` is a reset-free LIF that shares the name; it is not the Parallel "
        "Spiking Unit of Li et al. (IJCNN 2024) implemented by the psu packages. "
        "Settings are in `benchmarks/libpeers.py`.",
        "",
        "## Definitions",
        "",
        *(f"- **{k}**: {v}" for k, v in doc["definitions"].items()),
        "",
    ]
    if doc["skipped"] or doc["problems"]:
        out += ["## Skipped (not silently)", ""]
        out += [f"- {_esc(s)}" for s in [*doc["problems"], *doc["skipped"]]]
        out += [""]
    groups = list(dict.fromkeys((r["device"], r["variant"]) for r in doc["rows"]))
    for device, variant in groups:
        out += [f"## {variant.upper()} on {device}", ""]
        for p in plots:
            if p.name.startswith((f"bench-{device}-{variant}-", f"speedup-{device}-{variant}.")):
                out.append(f"![{p.stem}]({os.path.relpath(p, base)})")
        rows = [r for r in doc["rows"] if r["device"] == device and r["variant"] == variant]
        header = [h for h in report.COLUMNS if h not in ("device", "variant")]
        body = [b[2:] for b in report.table_rows(rows)]
        out += ["", *_md_table(header, body), ""]
    return "\n".join(out) + "\n"


def write_results(doc: dict, path: Path, *, plots: list[Path] | None = None, command: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(doc, plots=plots, md_path=path, command=command))
    return path
