"""Spiking networks in PyTorch with psu-torch neurons, a sequential LIF baseline, and the loop that
trains them.

Every spiking layer takes time-first input ``[T, B, ...]``. Stateless layers (convolution,
batch norm, pooling, linear) run on all ``T * B`` samples at once; the neurons see ``[T, B, ...]``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import TextIO

import numpy as np
import torch
from torch import nn

import psu_torch
from report import Epoch, History, progress


# ---------------------------------------------------------------------------------------------
# The baseline: a leaky integrate-and-fire neuron, one time step after another
# ---------------------------------------------------------------------------------------------
class ArctanSpike(torch.autograd.Function):
    """``S = [V - theta > 0]``; backward ``dS/dV = alpha / (2 (1 + (pi/2 alpha (V - theta))^2))``
    (the same arctan surrogate as the PSU family, SPEC §4)."""

    @staticmethod
    def forward(ctx, d: torch.Tensor, alpha: float) -> torch.Tensor:
        ctx.save_for_backward(d)
        ctx.alpha = alpha
        return (d > 0).to(d.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (d,) = ctx.saved_tensors
        q = (0.5 * math.pi * ctx.alpha) * d
        return grad * (ctx.alpha / (2.0 * (1.0 + q * q))), None


class LIF(nn.Module):
    """Sequential LIF with hard reset: ``h_t = v_{t-1} + (x_t - v_{t-1}) / tau``,
    ``s_t = [h_t > theta]``, ``v_t = h_t (1 - s_t)``; input and output ``[T, ...]``.

    At ``tau = 2`` the charge ``h_t`` is the PSU's ``a (v_{t-1} + x_t)``; what differs is the
    reset: the LIF's depends on its own spikes, so it cannot be computed in parallel over time.
    """

    def __init__(self, *, tau: float = 2.0, threshold: float = 1.0, surrogate_alpha: float = 2.0) -> None:
        super().__init__()
        self.tau, self.threshold, self.surrogate_alpha = float(tau), float(threshold), float(surrogate_alpha)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = torch.zeros_like(x[0])
        out = []
        for t in range(x.shape[0]):
            h = v + (x[t] - v) / self.tau
            s = ArctanSpike.apply(h - self.threshold, self.surrogate_alpha)
            v = h * (1.0 - s)
            out.append(s)
        return torch.stack(out)

    def extra_repr(self) -> str:
        return f"tau={self.tau:g}, threshold={self.threshold:g}, surrogate_alpha={self.surrogate_alpha:g}"


def make_neuron(
    name: str, T: int, *, tau: float, threshold: float, surrogate_alpha: float, reference_compat: bool = False
) -> nn.Module:
    """A spiking layer: ``"psu"``, ``"ipsu"``, ``"rpsu"`` (psu-torch) or ``"lif"``.

    By default the layer is time-first (``[T, B, ...]``), with threshold and surrogate sharpness
    fixed (not learned) so that every neuron trains under the same conditions; the PSU family keeps
    the specification's default ``reset_scale=None`` (reset scale tied to the threshold).
    ``reference_compat=True`` builds the PSU family as the published code does (SPEC §7: alpha
    learned, IPSU/RPSU reset scale 1, input in the folded layout ``[(T*B), ...]``; run it through
    :func:`run_neuron`); the LIF baseline has no preset.
    """
    kw = dict(tau=tau, threshold=threshold, surrogate_alpha=surrogate_alpha)
    classes = {"psu": psu_torch.PSU, "ipsu": psu_torch.IPSU, "rpsu": psu_torch.RPSU}
    if name in classes:
        if reference_compat:
            return classes[name](T, reference_compat=True, **kw)
        if name == "psu":
            return psu_torch.PSU(learn_alpha=False, **kw)
        return classes[name](T, learn_alpha=False, **kw)
    if name == "lif":
        return LIF(**kw)
    raise ValueError(f"neuron must be one of 'psu', 'ipsu', 'rpsu', 'lif', got {name!r}")


def run_neuron(neuron: nn.Module, y: torch.Tensor) -> torch.Tensor:
    """``y [T, B, ...]`` through ``neuron``: directly, or folded to ``[(T*B), ...]`` and back for a
    neuron that reads the published layout (``reference_compat=True``)."""
    if getattr(neuron, "time_folded", False):
        return neuron(y.flatten(0, 1)).unflatten(0, y.shape[:2])
    return neuron(y)


# ---------------------------------------------------------------------------------------------
# Networks
# ---------------------------------------------------------------------------------------------
class ConvSNN(nn.Module):
    """Direct-encoded convolutional SNN for images ``[B, C, H, W]``.

    ``stages`` lists ``(channels, pool)``: each stage is ``conv3x3 + BN -> neuron`` and, if
    ``pool``, a 2x2 average pool. The first convolution sees the same image at every step, so it
    runs once and its output is repeated over ``T`` (direct encoding). The head is a linear layer
    on every step, averaged over ``T``: ``logits = mean_t W s_t + b``.
    """

    def __init__(
        self,
        neuron: str,
        T: int,
        *,
        in_channels: int,
        image_size: int,
        stages: Sequence[tuple[int, bool]],
        num_classes: int,
        tau: float = 2.0,
        threshold: float = 1.0,
        surrogate_alpha: float = 2.0,
        reference_compat: bool = False,
    ) -> None:
        super().__init__()
        self.T = T
        self.convs, self.norms, self.neurons, self.pools = nn.ModuleList(), nn.ModuleList(), nn.ModuleList(), []
        kw = dict(tau=tau, threshold=threshold, surrogate_alpha=surrogate_alpha, reference_compat=reference_compat)
        c, size = in_channels, image_size
        for channels, pool in stages:
            self.convs.append(nn.Conv2d(c, channels, 3, padding=1, bias=False))
            self.norms.append(nn.BatchNorm2d(channels))
            self.neurons.append(make_neuron(neuron, T, **kw))
            self.pools.append(pool)
            c, size = channels, size // 2 if pool else size
        self.fc = nn.Linear(c * size * size, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``x [B, C, H, W]`` -> logits ``[B, classes]`` and the spikes of every layer ``[T, B, ...]``."""
        T, B = self.T, x.shape[0]
        spikes = []
        y = self.norms[0](self.convs[0](x))
        y = y.unsqueeze(0).expand(T, *y.shape)  # direct encoding: the same current at every step
        for i, (neuron, pool) in enumerate(zip(self.neurons, self.pools, strict=True)):
            if i > 0:
                y = self.norms[i](self.convs[i](y.flatten(0, 1))).unflatten(0, (T, B))
            s = run_neuron(neuron, y)
            spikes.append(s)
            y = nn.functional.avg_pool2d(s.flatten(0, 1), 2).unflatten(0, (T, B)) if pool else s
        logits = self.fc(y.flatten(2)).mean(0)
        return logits, spikes


class MLPSNN(nn.Module):
    """Fully connected SNN for event frames ``[T, B, F]`` (SHD): ``(linear + BN -> neuron) x L``,
    then a linear head averaged over ``T``."""

    def __init__(
        self,
        neuron: str,
        T: int,
        *,
        in_features: int,
        hidden: Sequence[int],
        num_classes: int,
        tau: float = 2.0,
        threshold: float = 1.0,
        surrogate_alpha: float = 2.0,
        reference_compat: bool = False,
    ) -> None:
        super().__init__()
        self.T = T
        self.layers, self.norms, self.neurons = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        kw = dict(tau=tau, threshold=threshold, surrogate_alpha=surrogate_alpha, reference_compat=reference_compat)
        f = in_features
        for h in hidden:
            self.layers.append(nn.Linear(f, h, bias=False))
            self.norms.append(nn.BatchNorm1d(h))
            self.neurons.append(make_neuron(neuron, T, **kw))
            f = h
        self.fc = nn.Linear(f, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        T, B = x.shape[:2]
        spikes = []
        y = x
        for layer, norm, neuron in zip(self.layers, self.norms, self.neurons, strict=True):
            y = run_neuron(neuron, norm(layer(y.flatten(0, 1))).unflatten(0, (T, B)))
            spikes.append(y)
        return self.fc(y).mean(0), spikes


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------
Getter = Callable[[np.ndarray], tuple[torch.Tensor, torch.Tensor]]


def evaluate(model: nn.Module, get: Getter, n: int, batch_size: int) -> tuple[float, float]:
    """Accuracy and firing rate (spikes per neuron per step over all spiking layers)."""
    model.eval()
    correct, spikes, slots = 0, 0.0, 0
    with torch.no_grad():
        for i in range(0, n, batch_size):
            x, y = get(np.arange(i, min(i + batch_size, n)))
            logits, ss = model(x)
            correct += int((logits.argmax(1) == y).sum())
            spikes += float(sum(s.sum() for s in ss))
            slots += sum(s.numel() for s in ss)
    return correct / n, spikes / slots


def fit(
    model: nn.Module,
    *,
    get_train: Getter,
    n_train: int,
    get_test: Getter,
    n_test: int,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    history: History,
    show_progress: bool = True,
    eval_batch_size: int = 512,
    log: TextIO | None = None,
) -> History:
    """Adam on cross-entropy, cosine decay over ``epochs``; after each epoch, test accuracy and
    firing rate into ``history`` (and one line into ``log`` if given)."""
    if n_train < batch_size:
        raise ValueError(f"need at least one full batch of {batch_size} training samples, got {n_train}")
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    rng = np.random.default_rng(seed)
    for epoch in range(epochs):
        model.train()
        loss_sum, correct, seen = 0.0, 0, 0
        order = rng.permutation(n_train)
        # drop the short last batch: tiny batches make batch norm noisy (and JAX recompile)
        chunks = [order[i : i + batch_size] for i in range(0, n_train - batch_size + 1, batch_size)]
        desc = f"{history.framework} {history.neuron.upper()} epoch {epoch + 1}/{epochs}"
        start = time.perf_counter()
        for idx in progress(chunks, desc, show_progress):
            x, y = get_train(idx)
            logits, _ = model(x)
            loss = nn.functional.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == y).sum())
            seen += len(idx)
        seconds = time.perf_counter() - start
        sched.step()
        acc, rate = evaluate(model, get_test, n_test, eval_batch_size)
        history.epochs.append(Epoch(loss_sum / seen, correct / seen, acc, rate, seconds))
        if log is not None:
            print(
                f"epoch {epoch + 1}/{epochs}: train loss {loss_sum / seen:.4f}, train accuracy {correct / seen:.4f}, "
                f"test accuracy {acc:.4f}, firing rate {rate:.4f}, {seconds:.1f} s",
                file=log, flush=True,
            )  # fmt: skip
    return history


def train_digits(neuron: str, cfg, data, *, show_progress: bool = True) -> History:
    """Train the digits ConvSNN with one neuron type (``cfg``: :class:`digits.Config`)."""
    torch.manual_seed(cfg.seed)
    model = ConvSNN(
        neuron, cfg.T, in_channels=1, image_size=8, stages=[(cfg.channels[0], False), (cfg.channels[1], True)],
        num_classes=10, tau=cfg.tau, threshold=cfg.threshold, surrogate_alpha=cfg.surrogate_alpha,
    )  # fmt: skip
    n_train = len(data.y_train) if cfg.train_limit is None else min(cfg.train_limit, len(data.y_train))
    x_tr, y_tr = torch.from_numpy(data.x_train[:n_train]), torch.from_numpy(data.y_train[:n_train])
    x_te, y_te = torch.from_numpy(data.x_test), torch.from_numpy(data.y_test)
    return fit(
        model,
        get_train=lambda i: (x_tr[i], y_tr[i]),
        n_train=n_train,
        get_test=lambda i: (x_te[i], y_te[i]),
        n_test=len(y_te),
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        seed=cfg.seed,
        history=History("torch", neuron),
        show_progress=show_progress,
    )
