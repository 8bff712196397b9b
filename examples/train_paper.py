"""Train a PSU-family SNN (or the LIF baseline) on CIFAR-10 or SHD from a local copy, with
psu-torch — the way the digits demo trains, at the paper's scale. Nothing is downloaded.

    python examples/train_paper.py cifar10 --root ~/data --neuron psu --T 4 --epochs 200 --device cuda
    python examples/train_paper.py shd --root ~/data --neuron rpsu --T 100 --epochs 100 --device cuda
    python examples/train_paper.py cifar10 --root ~/data --neuron rpsu --preset published --device cuda

CIFAR-10: direct encoding (the normalised image is the input current at every step), random crop
(padding 4) and horizontal flip, a VGG-style network of conv3x3+BN+neuron stages (``--channels``,
default 64-128-256-256-512-512; 2x2 average pooling after every second) and a linear head averaged
over T.
SHD: spike events binned into T frames of 700 channels over the first ``--duration`` seconds,
two fully connected layers (linear+BN+neuron) and a linear head averaged over T.
Adam with cosine decay, cross-entropy. These networks are smaller than the paper's; the numbers
they reach are this script's, not the paper's.

``--preset`` picks the neurons' setup: ``default`` (the specification's defaults: reset scale tied
to the threshold, threshold and surrogate sharpness fixed) or ``published`` (the published code's
preset, SPEC §7: ``reference_compat=True`` — PSU's reset scale tied to the threshold, IPSU/RPSU's
fixed at 1, the surrogate sharpness learned, time folded into the batch). ``--threshold`` (default
0.5, the published scripts') and ``--tau`` apply to both; the LIF baseline is the same under both.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import datasets  # noqa: E402

NEURONS = ("psu", "ipsu", "rpsu", "lif")
PRESETS = ("default", "published")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("dataset", choices=("cifar10", "shd"), help="which dataset is under --root")
    p.add_argument("--root", type=Path, required=True, help="folder holding the dataset (see examples/README.md)")
    p.add_argument("--neuron", choices=NEURONS, default="psu")
    p.add_argument(
        "--preset", choices=PRESETS, default="default",
        help="neuron setup: the specification's defaults, or the published code's preset (reference_compat=True)",
    )  # fmt: skip
    p.add_argument("--T", type=int, default=None, help="time steps (default: 4 for cifar10, 100 for shd)")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--threshold", type=float, default=0.5, help="firing threshold (the paper's scripts: 0.5)")
    p.add_argument("--tau", type=float, default=2.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1, ...")
    p.add_argument("--duration", type=float, default=1.4, help="SHD: seconds of each recording binned into T frames")
    p.add_argument(
        "--channels", default="64,128,256,256,512,512",
        help="CIFAR-10: widths of the conv stages, comma-separated (2x2 average pooling after every second)",
    )  # fmt: skip
    p.add_argument("--hidden", type=int, default=256, help="SHD: width of the two hidden layers")
    p.add_argument(
        "--limit", type=int, default=None, help="use only the first N training and test samples (smoke runs)"
    )
    p.add_argument("--json", type=Path, default=None, help="write every epoch's numbers here")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    if args.T is None:
        args.T = 4 if args.dataset == "cifar10" else 100
    try:
        args.channels = [int(c) for c in args.channels.split(",")]
    except ValueError:
        p.error(f"--channels must be comma-separated integers, got {args.channels!r}")
    if not args.channels or min(args.channels) < 1 or len(args.channels) > 10:
        p.error(f"--channels must list 1 to 10 widths >= 1, got {args.channels}")
    for name in ("T", "epochs", "batch_size", "hidden"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.limit is not None and args.limit < 1:
        p.error("--limit must be >= 1")
    return args


def _cifar(args, torch, device):
    data = datasets.load_cifar10(args.root)
    n_tr = len(data.y_train) if args.limit is None else min(args.limit, len(data.y_train))
    n_te = len(data.y_test) if args.limit is None else min(args.limit, len(data.y_test))
    mean = torch.from_numpy(datasets.CIFAR_MEAN).view(1, 3, 1, 1).to(device)
    std = torch.from_numpy(datasets.CIFAR_STD).view(1, 3, 1, 1).to(device)
    gen = torch.Generator().manual_seed(args.seed)

    def to_input(x_uint8):
        return (torch.from_numpy(x_uint8).to(device).float() / 255.0 - mean) / std

    def augment(x):  # random crop with 4 pixels of zero padding, random horizontal flip
        B = x.shape[0]
        padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
        dx, dy = torch.randint(0, 9, (2, B), generator=gen).tolist()
        x = torch.stack([padded[b, :, dy[b] : dy[b] + 32, dx[b] : dx[b] + 32] for b in range(B)])
        flip = torch.rand(B, generator=gen) < 0.5
        x[flip] = x[flip].flip(-1)
        return x

    def get_train(idx):
        return augment(to_input(data.x_train[idx])), torch.from_numpy(data.y_train[idx]).to(device)

    def get_test(idx):
        return to_input(data.x_test[idx]), torch.from_numpy(data.y_test[idx]).to(device)

    import snn_torch

    model = snn_torch.ConvSNN(
        args.neuron, args.T, in_channels=3, image_size=32, num_classes=10, tau=args.tau, threshold=args.threshold,
        stages=[(c, i % 2 == 1) for i, c in enumerate(args.channels)], reference_compat=args.preset == "published",
    )  # fmt: skip
    return model, get_train, n_tr, get_test, n_te


def _shd(args, torch, device):
    train, test = datasets.load_shd(args.root)
    n_tr = len(train) if args.limit is None else min(args.limit, len(train))
    n_te = len(test) if args.limit is None else min(args.limit, len(test))

    def getter(events):
        def get(idx):
            x = torch.from_numpy(events.frames(idx, args.T, args.duration)).to(device)
            return x, torch.from_numpy(events.labels[idx]).to(device)

        return get

    import snn_torch

    model = snn_torch.MLPSNN(
        args.neuron, args.T, in_features=datasets.SHD_CHANNELS, hidden=[args.hidden, args.hidden],
        num_classes=datasets.SHD_CLASSES, tau=args.tau, threshold=args.threshold,
        reference_compat=args.preset == "published",
    )  # fmt: skip
    return model, getter(train), n_tr, getter(test), n_te


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    import report
    import snn_torch

    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    try:
        build = _cifar if args.dataset == "cifar10" else _shd
        model, get_train, n_tr, get_test, n_te = build(args, torch, device)
    except (datasets.DatasetNotFound, ImportError) as e:
        print(f"train_paper.py: error: {e}", file=sys.stderr)
        return 2
    model.to(device)
    print(
        f"{args.dataset}: {n_tr} train / {n_te} test, neuron {args.neuron.upper()} ({args.preset} preset), "
        f"T={args.T}, device {device}"
    )
    history = report.History("torch", args.neuron)
    snn_torch.fit(
        model, get_train=get_train, n_train=n_tr, get_test=get_test, n_test=n_te, epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr, seed=args.seed, history=history,
        show_progress=not args.no_progress, eval_batch_size=args.batch_size, log=sys.stdout,
    )  # fmt: skip
    print(report.table([history]))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, **history.to_dict()}, indent=2) + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
