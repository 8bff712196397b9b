"""``python -m gpucheck``: certify every CUDA pair and measure them, in one command.

Run from the repository root on a machine with one NVIDIA GPU and the frameworks installed
(torch with Triton, jax with its CUDA plugin, cupy, numba-cuda); no package registry is needed.
The project's packages must be importable: installed (``nox -s gpu_check`` does that), or given
as wheels with ``--wheels DIR`` (built anywhere with
``pip wheel --no-deps -w DIR ./packages/* ./conformance``), which are installed into a
temporary folder without dependencies. Every command runs with this interpreter (or
``--python``). Writes ``gpu-check.json`` and ``gpu-check.md`` (and each step's own reports and
output) to ``--out``, prints the Markdown, and exits 1 if anything failed.

``--dry-run`` runs the same steps on a CPU, small: the Triton interpreter, Numba's CUDA
simulator and the CPU pairs stand in for the GPU (see :mod:`gpucheck.plan`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from gpucheck import plan, summary

ROOT = Path(__file__).resolve().parent.parent
TAIL_CHARS = 4000

ENV_PROBE = r"""
import importlib, importlib.metadata as md, json
out = {}
for dist in ("psu-core", "psu-conformance", "psu-torch", "psu-jax", "psu-numba", "numpy", "torch", "triton",
             "jax", "jaxlib", "cupy-cuda13x", "cupy-cuda12x", "numba", "numba-cuda"):
    try:
        out[dist] = md.version(dist)
    except md.PackageNotFoundError:
        pass
def probe(name, fn):
    try:
        out[name] = fn()
    except Exception as exc:
        out[name] = f"{type(exc).__name__}: {exc}"[:300]
def torch_cuda():
    import torch
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device"
def jax_devices():
    import jax
    return ", ".join(str(d) for d in jax.devices())
probe("torch.cuda", torch_cuda)
probe("jax.devices", jax_devices)
probe("psu.backends", lambda: ", ".join(sorted(e.name for e in md.entry_points(group="psu.backends"))))
print(json.dumps(out))
"""


def _tail(path: Path) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return text[-TAIL_CHARS:]


#: After a step's timeout: SIGINT first, so that pytest ends its session and the suite still writes
#: its report (the groups that ran are kept); SIGKILL when it has not stopped this much later.
GRACE_S = 15


def _stop(proc: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGINT, GRACE_S), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def run_steps(steps: list[plan.Step], python: str, out: Path, env: dict[str, str]) -> list[dict[str, Any]]:
    """Run the parallel steps side by side, then the others one by one; each writes its output to
    ``<out>/<step>.log``. Returns one record per step, in plan order."""
    records: dict[str, dict[str, Any]] = {}

    def start(step: plan.Step) -> tuple[subprocess.Popen, float, Path]:
        log = out / (step.name.split(" (")[0].replace(" ", "-") + ".log")
        if step.report:  # a report left by an earlier run must never be read as this run's
            (out / step.report).unlink(missing_ok=True)
        argv = [python, *plan.resolve(step, out)]
        print(f"[gpu-check] start {step.name}: {shlex.join(argv)}", file=sys.stderr, flush=True)
        with open(log, "w") as f:
            proc = subprocess.Popen(
                argv, cwd=ROOT, env=env | step.env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True
            )
        return proc, time.monotonic(), log

    def record(step: plan.Step, proc: subprocess.Popen, t0: float, log: Path, timed_out: bool) -> None:
        wall = time.monotonic() - t0
        rc = proc.returncode
        print(f"[gpu-check] done  {step.name}: exit {rc}{' (timed out)' if timed_out else ''} in {wall:.0f} s",
              file=sys.stderr, flush=True)  # fmt: skip
        records[step.name] = {
            "name": step.name,
            "kind": step.kind,
            "command": shlex.join(["python", *plan.resolve(step, out)]),
            "env": step.env,
            "returncode": rc,
            "timed_out": timed_out,
            "timeout_s": step.timeout_s,
            "wall_s": wall,
            "log": log.name,
            "tail": _tail(log),
        }

    def wait_all(running: list[tuple[plan.Step, subprocess.Popen, float, Path]]) -> None:
        while running:
            time.sleep(0.2)
            for item in list(running):
                step, proc, t0, log = item
                timed_out = False
                if proc.poll() is None:
                    if time.monotonic() - t0 <= step.timeout_s:
                        continue
                    _stop(proc)
                    timed_out = True
                record(step, proc, t0, log, timed_out)
                running.remove(item)

    wait_all([(s, *start(s)) for s in steps if s.parallel])
    for s in steps:
        if not s.parallel:
            wait_all([(s, *start(s))])
    return [records[s.name] for s in steps]


def environment(python: str, env: dict[str, str]) -> dict[str, str]:
    info: dict[str, str] = {}
    try:
        smi = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
        info["nvidia-smi"] = (smi.stdout or smi.stderr).strip().replace("\n", "; ")
    except (OSError, subprocess.SubprocessError) as exc:
        info["nvidia-smi"] = f"not available ({type(exc).__name__})"
    try:
        proc = subprocess.run([python, "-c", ENV_PROBE], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    except subprocess.TimeoutExpired:
        info["probe"] = "timed out after 300 s (importing the frameworks hung)"
        return info | {"python": python}
    try:
        info |= {k: str(v) for k, v in json.loads(proc.stdout.strip().splitlines()[-1]).items()}
    except (ValueError, IndexError):
        info["probe"] = f"failed: {proc.stderr.strip()[-500:]}"
    info["python"] = python
    return info


def install_wheels(python: str, wheels: Path, env: dict[str, str]) -> str:
    """Install every wheel in ``wheels`` (no dependencies, no index) into a new folder; its path."""
    files = sorted(glob.glob(str(wheels / "*.whl")))
    if not files:
        raise SystemExit(f"--wheels {wheels}: no .whl files there")
    site = tempfile.mkdtemp(prefix="psu-gpu-check-site-")
    cmd = [python, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile", "--target", site, *files]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"installing the wheels failed:\n{proc.stdout}{proc.stderr}")
    return site


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gpucheck", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--out", type=Path, default=ROOT / "reports" / "gpu-check", help="output folder (default reports/gpu-check)"
    )
    p.add_argument("--python", default=sys.executable, help="interpreter for every step (default: this one)")
    p.add_argument(
        "--wheels", type=Path, default=None, help="folder of the project's wheels to install first (no index)"
    )
    p.add_argument("--dry-run", action="store_true", help="the CPU stand-in: interpreter, simulator, CPU pairs, small")
    p.add_argument("--only", default=None, help="comma list of step kinds to run: unit,conformance,bench (default all)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    t0 = time.monotonic()
    created = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ) | plan.BASE_ENV
    if args.wheels is not None:
        site = install_wheels(args.python, args.wheels, env)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (site, env.get("PYTHONPATH", "")) if p)
    steps = plan.dry_plan() if args.dry_run else plan.gpu_plan()
    if args.only:
        kinds = {k.strip() for k in args.only.split(",")}
        unknown = kinds - {"unit", "conformance", "bench"}
        if unknown:
            raise SystemExit(f"--only: unknown step kinds {sorted(unknown)} (known: unit, conformance, bench)")
        steps = [s for s in steps if s.kind in kinds]
    info = environment(args.python, env)
    records = run_steps(steps, args.python, out, env)
    by_name = {r["name"]: r for r in records}
    conformance: list[dict[str, Any]] = []
    unit = bench = None
    for s in steps:
        rec = by_name[s.name]
        why = "timed out" if rec["timed_out"] else f"no report (exit {rec['returncode']})"
        if s.kind == "conformance":
            conformance += summary.conformance_rows(out / s.report, s.backend, s.device, why)
        elif s.kind == "unit":
            unit = summary.unit_counts(out / s.report)
        elif s.kind == "bench":
            bench = summary.bench_part(out / s.report)
    doc: dict[str, Any] = {
        "format": summary.FORMAT,
        "created": created,
        "dry_run": args.dry_run,
        "environment": info,
        "steps": records,
        "unit": unit,
        "conformance": conformance,
        "bench": bench,
        "wall_s": time.monotonic() - t0,
    }
    doc["ok"] = summary.is_ok(doc)
    (out / "gpu-check.json").write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    md = summary.markdown(doc)
    (out / "gpu-check.md").write_text(md)
    print(md)
    print(f"[gpu-check] wrote {out / 'gpu-check.json'} and {out / 'gpu-check.md'}", file=sys.stderr)
    return 0 if doc["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
