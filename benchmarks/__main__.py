"""``python -m benchmarks``: time the PSU backends against their peers; see ``--help``."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from psu_core.checks import VARIANTS

FULL_T = [4, 8, 16, 64, 256, 1024]
QUICK_T = [8, 64, 256]
CORE_PEERS = ["dense-torch", "lif-loop-torch", "copy-floor"]
LIBRARY_PEERS = [
    "spikingjelly-lif",
    "spikingjelly-psn",
    "spikingjelly-masked-psn",
    "snntorch-leaky",
    "spyx-lif",
    "spyx-psu-lif",
]
PEER_NAMES = CORE_PEERS + LIBRARY_PEERS
# --quick leaves out the peers that cost most and add least to a format check: MaskedPSN costs
# what PSN costs (the same dense matmul), and spyx's PSU_LIF takes seconds per T to compile.
QUICK_PEERS = [p for p in PEER_NAMES if p not in ("spikingjelly-masked-psn", "spyx-psu-lif")]
# the float64 NumPy reference takes seconds per call: --quick leaves it out unless named
QUICK_SKIP_BACKENDS = ("reference",)
HERE = Path(__file__).resolve().parent
QUICK_TOTAL = 2**18


def _int(text: str) -> int:
    """An integer, also written as a power: ``8388608``, ``2^23`` or ``2**23``."""
    t = text.replace("**", "^")
    try:
        if "^" in t:
            base, exp = t.split("^")
            return int(base) ** int(exp)
        return int(t)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer such as 8388608 or 2^23, got {text!r}") from None


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Time every psu backend's forward and forward+backward against the dense "
        "PyTorch formulation, a sequential LIF loop, the SNN libraries (SpikingJelly, snnTorch, spyx) "
        "and the copy floor, alternating "
        "in one process. Table on stdout, progress on stderr, JSON to a file, RESULTS.md and PNG plots.",
    )
    p.add_argument(
        "--backends",
        type=_names,
        default=None,
        help="comma list of entry-point names in group psu.backends "
        "(default: every registered one, --quick: all but reference; 'none': peers only)",
    )
    p.add_argument(
        "--peers",
        type=_names,
        default=None,
        help=f"comma list of peers (default: {','.join(PEER_NAMES)}; --quick: {','.join(QUICK_PEERS)})",
    )
    p.add_argument("--variants", type=_names, default=None, help=f"comma list (default: {','.join(VARIANTS)})")
    p.add_argument(
        "--T",
        dest="Ts",
        type=_int,
        nargs="+",
        default=None,
        metavar="T",
        help=f"time-step counts (default {' '.join(map(str, FULL_T))}; --quick: {' '.join(map(str, QUICK_T))})",
    )
    p.add_argument(
        "--total", type=_int, default=None, help="T*N, elements per input; N = total // T (default 2^23; --quick 2^18)"
    )
    p.add_argument(
        "--dtype",
        default="float32",
        choices=["float32", "float64", "float16", "bfloat16"],
        help="dtype of the run (default float32); a backend without float32 (float64) runs in float64 "
        "(float32) and its rows say so; one without the half precision asked for is skipped with the reason",
    )
    p.add_argument(
        "--device",
        default="all",
        choices=["cpu", "cuda", "all"],
        help="cpu, cuda, or all (default: cpu and, where PyTorch sees one, cuda)",
    )
    p.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="timed repeats per implementation, median reported (default 7; --quick 3)",
    )
    p.add_argument("--warmup", type=int, default=2, help="warm-up calls per implementation, excluded (default 2)")
    p.add_argument(
        "--target-repeat-seconds",
        type=float,
        default=None,
        help="iterations per repeat chosen so one repeat lasts about this (default 0.1; --quick 0.03)",
    )
    p.add_argument(
        "--max-call-seconds",
        type=float,
        default=None,
        help="budget: an implementation whose (last) warm-up call takes longer is not "
        "timed at this size nor at larger T, and the output says so (default 2)",
    )
    p.add_argument(
        "--threads", type=int, default=None, help="torch.set_num_threads before running (default: torch's own choice)"
    )
    p.add_argument("--no-memory", dest="memory", action="store_false", help="skip the peak-memory pass")
    p.add_argument("--seed", type=int, default=0, help="seed of the inputs (default 0)")
    p.add_argument(
        "--json",
        type=Path,
        default=None,
        help="where to write the JSON (default benchmarks/results/bench-HOST-DATE.json)",
    )
    p.add_argument("--no-json", action="store_true", help="write no JSON")
    p.add_argument(
        "--results-md",
        type=Path,
        default=HERE / "RESULTS.md",
        help="where to write the Markdown results with the plots embedded (default benchmarks/RESULTS.md)",
    )
    p.add_argument(
        "--plots",
        type=Path,
        default=HERE,
        metavar="DIR",
        help="folder for the PNG plots (matplotlib) (default benchmarks/)",
    )
    p.add_argument("--no-plots", action="store_true", help="draw no PNGs (RESULTS.md without figures)")
    p.add_argument("--no-results", action="store_true", help="write neither RESULTS.md nor the PNGs")
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"a short run (about a minute on a quiet 2-core CPU): T in {QUICK_T}, total 2^18, 3 repeats of "
        "~0.03 s, budget 1 s per call, no reference backend unless named, peers as listed under --peers; "
        "RESULTS.md and the plots are written as for a full run",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    import torch

    from benchmarks import backends, report, runner

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.device == "all":
        devices = backends.torch_devices()
    elif args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: PyTorch sees no CUDA device here")
    else:
        devices = [args.device]
    variants = args.variants or list(VARIANTS)
    bad = [v for v in variants if v not in VARIANTS]
    if bad:
        raise SystemExit(f"--variants: unknown {', '.join(bad)} (known: {', '.join(VARIANTS)})")

    plots = not (args.no_results or args.no_plots)
    if plots:  # fail before the run, not after it
        from benchmarks import figures

        figures._pyplot()

    q = args.quick
    names = args.backends
    left_out = []
    if names is None and q:
        names = [n for n in sorted(backends.registered()) if n not in QUICK_SKIP_BACKENDS]
        left_out = [n for n in QUICK_SKIP_BACKENDS if n in backends.registered()]
    if args.peers is None:
        args.peers = QUICK_PEERS if q else PEER_NAMES
    impls: list[backends.Impl] = []
    problems: list[str] = []
    if names != ["none"]:
        impls, problems = backends.load_backends(names, strict=args.backends is not None)
    problems += [
        f"backend {n!r} not benchmarked: --quick leaves it out (seconds per call); name it in --backends to time it"
        for n in left_out
    ]
    impls += backends.peer_impls(args.peers)
    for msg in problems:
        print(f"[bench] {msg}", file=sys.stderr)

    cfg = runner.Config(
        variants=variants,
        Ts=args.Ts or (QUICK_T if q else FULL_T),
        total=args.total or (QUICK_TOTAL if q else 2**23),
        dtype=args.dtype,
        devices=devices,
        repeats=args.repeats or (3 if q else 7),
        warmup=args.warmup,
        target_repeat_s=args.target_repeat_seconds or (0.03 if q else 0.1),
        max_call_s=args.max_call_seconds or (1.0 if q else 2.0),
        memory=args.memory,
        seed=args.seed,
    )
    created = report.now()
    print(
        f"[bench] backends: {', '.join(i.name for i in impls if i.kind == 'backend') or 'none'};"
        f" peers: {', '.join(args.peers)}; devices: {', '.join(devices)}; "
        f"torch threads {torch.get_num_threads()}",
        file=sys.stderr,
    )
    t0 = time.perf_counter()
    rows, skipped = runner.run(cfg, impls)
    print(f"[bench] timed {len(rows)} rows in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    config = dataclasses.asdict(cfg) | {
        "backends": [i.name for i in impls if i.kind == "backend"],
        "peers": list(args.peers),
        "quick": q,
        "threads": args.threads,
    }
    doc = report.document(
        rows, machine=report.machine_info(devices), config=config, skipped=skipped, problems=problems, created=created
    )
    print(report.format_report(doc))
    if not args.no_json:
        path = args.json or report.default_json_path(doc["machine"]["host"], created)
        report.write_json(doc, path)
        print(f"[bench] wrote {path}", file=sys.stderr)
    if not args.no_results:
        from benchmarks import figures, markdown

        pngs = figures.write_plots(doc, args.plots) if plots else []
        command = "python -m benchmarks" + "".join(f" {a}" for a in (sys.argv[1:] if argv is None else argv))
        md = markdown.write_results(doc, args.results_md, plots=pngs, command=command)
        print(f"[bench] wrote {md} and {len(pngs)} plots in {args.plots}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
