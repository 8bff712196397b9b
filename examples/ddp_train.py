"""Train a small spiking network (PSU, IPSU and RPSU layers) with DistributedDataParallel and compare
its parameters with those one process reaches on the whole batch.

    python examples/ddp_train.py                                 # 2 processes, gloo, CPU
    python examples/ddp_train.py --reset sampled                 # sampled resets in PSU and RPSU
    python examples/ddp_train.py --backend nccl --device cuda    # one GPU per process (needs 2 GPUs)
    python examples/ddp_train.py --check --json ddp.json         # exit 1 when they differ; figures to a file

The network: ``Linear -> PSU -> Linear -> IPSU -> Linear -> RPSU -> Linear`` on ``[T, B, features]``
(time first), logits averaged over time, cross-entropy, SGD with momentum; the data are synthetic
(class prototypes plus noise, drawn from a fixed seed). Each of ``--world-size`` processes trains
on its shard of every global batch (``--batch`` split in equal parts, in rank order), DDP averages
the gradients, and one process trains on the whole batch in this script first; the script prints
the largest parameter difference.

Sampled resets draw random numbers, and a rank draws what one process draws on the whole batch
only when (1) every rank draws the same seeds: the modules draw a seed per call from torch's
global generator, seeded alike on every rank here (``torch.manual_seed(--seed)``), and (2) each
rank numbers its neurons as the whole batch does: ``psu_torch.set_batch_shard(model, rank,
world_size)``. ``--no-shard`` leaves (2) out: every rank then draws as if its shard were the whole
batch (the first shard's numbers, on every rank), and the parameters part from the one-process run.

Processes start with ``torch.multiprocessing`` (spawn) on a free TCP port found at run time, and
the whole run is bounded by ``--timeout`` seconds.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import socket
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from psu_core.tolerances import error_ratio, for_dtype
from psu_torch.nn import IPSU, PSU, RPSU, set_batch_shard

#: Parameters must agree to SPEC §9's float32 tolerance (|a - b| <= 1e-5 + 1e-5 |b|).
TOLERANCE = for_dtype("float32").membrane


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--world-size", type=int, default=2, help="processes (one shard of every batch each)")
    p.add_argument("--backend", choices=("gloo", "nccl"), default="gloo", help="torch.distributed backend")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="cuda: rank r runs on cuda:r")
    p.add_argument("--reset", choices=("expected", "sampled"), default="expected", help="PSU and RPSU reset mode")
    p.add_argument("--no-shard", action="store_true", help="sampled: leave out set_batch_shard (ranks then differ)")
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--batch", type=int, default=16, help="global batch, split equally between the processes")
    p.add_argument("--T", type=int, default=4, help="time steps")
    p.add_argument("--features", type=int, default=12)
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--classes", type=int, default=4)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=300.0, help="seconds for the whole distributed run")
    p.add_argument("--check", action="store_true", help="exit 1 when the parameters differ beyond float32 tolerance")
    p.add_argument("--json", type=Path, default=None, help="write the figures to this file")
    args = p.parse_args(argv)
    if args.world_size < 1 or args.batch % args.world_size:
        p.error(f"--batch ({args.batch}) must split into --world-size ({args.world_size}) equal shards")
    if args.backend == "nccl" and args.device != "cuda":
        p.error("--backend nccl needs --device cuda")
    return args


class Net(nn.Module):
    """``Linear -> PSU -> Linear -> IPSU -> Linear -> RPSU -> Linear``, logits averaged over time."""

    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__()
        T, h = args.T, args.hidden
        self.fc1, self.fc2, self.fc3 = nn.Linear(args.features, h), nn.Linear(h, h), nn.Linear(h, h)
        self.psu = PSU(T, threshold=0.3, reset=args.reset, learn_threshold=True)
        self.ipsu = IPSU(T, threshold=0.2)
        self.rpsu = RPSU(T, threshold=0.1, reset=args.reset)
        self.head = nn.Linear(h, args.classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.rpsu(self.fc3(self.ipsu(self.fc2(self.psu(self.fc1(x))))))
        return self.head(s).mean(0)


def data(args: argparse.Namespace) -> tuple[torch.Tensor, torch.Tensor]:
    """``x [steps, T, batch, features]`` (a class prototype plus noise at every step) and the labels
    ``[steps, batch]``, from their own generator (the global one is left to the model)."""
    g = torch.Generator().manual_seed(args.seed + 1)
    prototypes = torch.randn(args.classes, args.features, generator=g) * 1.5
    y = torch.randint(0, args.classes, (args.steps, args.batch), generator=g)
    noise = torch.randn(args.steps, args.T, args.batch, args.features, generator=g)
    return prototypes[y][:, None] + noise, y


def train(args: argparse.Namespace, rank: int, world: int, device: torch.device) -> dict[str, torch.Tensor]:
    """Train on shard ``rank`` of ``world`` of every batch (``world = 1``: the whole batch, no DDP);
    returns the final parameters (on the CPU) and the spike rates of the three layers."""
    torch.manual_seed(args.seed)  # alike on every rank: the same initial weights and sampled seeds
    model = Net(args).to(device)
    net: nn.Module = model
    if dist.is_initialized():
        if args.reset == "sampled" and not args.no_shard:
            set_batch_shard(model, rank, world)
        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    opt = torch.optim.SGD(net.parameters(), lr=args.lr, momentum=0.9)
    xs, ys = data(args)
    shard = args.batch // world
    rates = dict.fromkeys(("psu", "ipsu", "rpsu"), 0.0)

    def rate_of(name: str):
        def hook(_module: nn.Module, _inputs: object, spikes: torch.Tensor) -> None:
            rates[name] += float(spikes.detach().mean()) / args.steps

        return hook

    hooks = [getattr(model, name).register_forward_hook(rate_of(name)) for name in rates]
    for step in range(args.steps):
        x = xs[step][:, rank * shard : (rank + 1) * shard].to(device)
        y = ys[step][rank * shard : (rank + 1) * shard].to(device)
        loss = nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    for h in hooks:
        h.remove()
    params = {name: p.detach().cpu().clone() for name, p in model.named_parameters()}
    params.update({f"rate/{k}": torch.tensor(v) for k, v in rates.items()})
    return params


def _device(args: argparse.Namespace, rank: int) -> torch.device:
    if args.device == "cuda":
        torch.cuda.set_device(rank)
        return torch.device("cuda", rank)
    return torch.device("cpu")


def worker(rank: int, world: int, port: int, args: argparse.Namespace, out: str) -> None:
    """One DDP process: join the group, train on its shard, save its parameters to ``out``."""
    torch.set_num_threads(1)
    dist.init_process_group(
        args.backend, init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
        timeout=timedelta(seconds=args.timeout),
    )  # fmt: skip
    try:
        torch.save(train(args, rank, world, _device(args, rank)), os.path.join(out, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    """A TCP port nobody listens on now (the OS's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_distributed(args: argparse.Namespace, out: str) -> None:
    """``--world-size`` spawned processes, joined within ``--timeout`` seconds (else terminated)."""
    ctx = mp.start_processes(
        worker, args=(args.world_size, free_port(), args, out), nprocs=args.world_size, join=False,
        start_method="spawn",
    )  # fmt: skip
    deadline = time.monotonic() + args.timeout
    while not ctx.join(timeout=max(0.0, deadline - time.monotonic())):
        if time.monotonic() >= deadline:
            for proc in ctx.processes:
                if proc.is_alive():
                    proc.terminate()
            raise TimeoutError(f"the {args.world_size} DDP processes did not finish within {args.timeout:g} s")


def compare(single: dict[str, torch.Tensor], ranks: list[dict[str, torch.Tensor]]) -> dict[str, object]:
    """The figures: largest |DDP - one process| per parameter and over all, the same over the float32
    tolerance, and whether every rank holds the same parameters."""
    names = [k for k in single if not k.startswith("rate/")]
    per = {k: float((ranks[0][k] - single[k]).abs().max()) for k in names}
    ratio = max(error_ratio(ranks[0][k].double().numpy(), single[k].double().numpy(), TOLERANCE) for k in names)
    return {
        "max_abs_difference": max(per.values()),
        "max_error_over_tolerance": ratio,
        "per_parameter": per,
        "ranks_identical": all(torch.equal(r[k], ranks[0][k]) for r in ranks[1:] for k in names),
        "spike_rates": {k.removeprefix("rate/"): float(v) for k, v in single.items() if k.startswith("rate/")},
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(1)
    single = train(args, 0, 1, _device(args, 0))
    with tempfile.TemporaryDirectory() as out:
        run_distributed(args, out)
        ranks = [torch.load(os.path.join(out, f"rank{r}.pt")) for r in range(args.world_size)]
    figures = compare(single, ranks)
    ok = figures["ranks_identical"] and figures["max_error_over_tolerance"] <= 1.0
    rates = ", ".join(f"{k} {v:.3f}" for k, v in figures["spike_rates"].items())
    print(
        f"{args.world_size} processes ({args.backend}, {args.device}), reset={args.reset}"
        f"{' without batch_shard' if args.no_shard else ''}, {args.steps} steps of batch {args.batch}:\n"
        f"  max |DDP - one process| = {figures['max_abs_difference']:.3g} over {len(figures['per_parameter'])} "
        f"parameters ({figures['max_error_over_tolerance']:.3g} of the float32 tolerance "
        f"{TOLERANCE.atol:g} + {TOLERANCE.rtol:g}|p|); ranks identical: {figures['ranks_identical']}\n"
        f"  spike rates (one process): {rates}\n"
        f"  {'SAME' if ok else 'DIFFERENT'}"
    )
    if args.json is not None:
        record = {"args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}, **figures}
        args.json.write_text(json.dumps(record, indent=2, allow_nan=True) + "\n")
    if not all(math.isfinite(v) for v in figures["per_parameter"].values()):
        print("non-finite parameters", file=sys.stderr)
        return 1
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
