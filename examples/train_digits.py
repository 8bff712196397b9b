"""Train a small convolutional SNN on the scikit-learn digits once per neuron — PSU, IPSU, RPSU
and a sequential LIF baseline — with psu-torch and with psu-jax (Flax NNX), then print one table
(test accuracy, firing rate, wall time per epoch) and save the training curves as a PNG.

    python examples/train_digits.py                       # both frameworks, all four neurons
    python examples/train_digits.py --framework torch --neurons psu,lif --epochs 3

Seeds are fixed: a rerun on the same machine and library versions prints the same accuracies
and firing rates (wall times vary).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from dataclasses import asdict, replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # run as a script from anywhere: the sibling modules are importable
    sys.path.insert(0, str(HERE))

import digits  # noqa: E402
import report  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    d = digits.Config()
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--framework", choices=("torch", "jax", "all"), default="all")
    p.add_argument("--neurons", default=",".join(digits.NEURONS), help="comma-separated subset of psu,ipsu,rpsu,lif")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--T", type=int, default=d.T, help="time steps (the image is the input at every step)")
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--plot", type=Path, default=HERE / "training_curves.png", help="PNG of the training curves")
    p.add_argument("--json", type=Path, default=HERE / "results.json", help="every epoch's numbers")
    p.add_argument(
        "--threads", type=int, default=1,
        help="torch CPU threads (default 1: the layers are tiny, so more threads mostly add contention)",
    )  # fmt: skip
    p.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")
    args = p.parse_args(argv)
    neurons = [n.strip().lower() for n in args.neurons.split(",") if n.strip()]
    bad = [n for n in neurons if n not in digits.NEURONS]
    if bad or not neurons:
        p.error(f"--neurons must name some of {', '.join(digits.NEURONS)}; got {args.neurons!r}")
    args.neurons = neurons
    for name in ("epochs", "T", "batch_size", "threads"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = replace(digits.Config(), T=args.T, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed)
    data = digits.load(seed=cfg.seed)
    frameworks = ["torch", "jax"] if args.framework == "all" else [args.framework]
    histories = []
    for fw in frameworks:
        if fw == "torch":
            import torch

            torch.set_num_threads(args.threads)
        # imported on use: a torch-only run needs no JAX, and the other way round
        backend = importlib.import_module(f"snn_{fw}")
        for neuron in args.neurons:
            h = backend.train_digits(neuron, cfg, data, show_progress=not args.no_progress)
            f = h.final
            print(
                f"{fw:5s} {neuron.upper():4s}  test accuracy {f.test_accuracy:.4f}  firing rate {f.firing_rate:.4f}"
                f"  {h.seconds_per_epoch:.2f} s/epoch",
                file=sys.stderr,
            )
            histories.append(h)
    print(
        f"\ndigits ({len(data.y_train)} train / {len(data.y_test)} test), T={cfg.T}, {cfg.epochs} epochs, "
        f"batch {cfg.batch_size}, Adam lr {cfg.lr:g}, seed {cfg.seed}\n"
    )
    print(report.table(histories))
    print("\nfiring rate: spikes per neuron per time step over both spiking layers, on the test set;")
    print("s / epoch: median wall time of one training pass, first epoch (compile, warm-up) left out.")
    path = report.plot(histories, args.plot)
    print(f"training curves: {path}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {"config": asdict(cfg), "runs": [h.to_dict() for h in histories]}
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"numbers: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
