"""What a training run records (:class:`History`), the progress bar, the results table and the
plot of the training curves."""

from __future__ import annotations

import statistics
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class Epoch:
    train_loss: float
    train_accuracy: float
    test_accuracy: float
    firing_rate: float  # spikes per neuron per time step, over every spiking layer, on the test set
    seconds: float  # wall time of the training pass of this epoch (JAX: the first one compiles)


@dataclass
class History:
    framework: str
    neuron: str
    epochs: list[Epoch] = field(default_factory=list)

    @property
    def final(self) -> Epoch:
        return self.epochs[-1]

    @property
    def seconds_per_epoch(self) -> float:
        """Median wall time of the training pass per epoch, the first epoch left out when there are
        more (it includes JAX's compile and torch's warm-up)."""
        epochs = self.epochs[1:] if len(self.epochs) > 1 else self.epochs
        return statistics.median(e.seconds for e in epochs)

    def to_dict(self) -> dict:
        return {"framework": self.framework, "neuron": self.neuron, "epochs": [asdict(e) for e in self.epochs]}


def progress(iterable: Sequence, desc: str, enabled: bool = True) -> Iterable:
    """A tqdm bar on stderr (or the bare iterable when disabled)."""
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, file=sys.stderr, leave=False, dynamic_ncols=True)


def table(histories: Sequence[History]) -> str:
    """A Markdown table: one row per framework and neuron, the numbers of the last epoch."""
    head = "| framework | neuron | test accuracy | firing rate | s / epoch |"
    rows = [head, "|---|---|---:|---:|---:|"]
    for h in histories:
        f = h.final
        rows.append(
            f"| {h.framework} | {h.neuron.upper()} | {f.test_accuracy:.4f} | {f.firing_rate:.4f} "
            f"| {h.seconds_per_epoch:.2f} |"
        )
    return "\n".join(rows)


def plot(histories: Sequence[History], path: str | Path) -> Path:
    """Test accuracy and training loss per epoch, one line per framework and neuron (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(11, 4))
    styles = {"torch": ("-", "o"), "jax": ("--", "s")}  # colour: the neuron; line and marker: the framework
    colours = {"psu": "C0", "ipsu": "C1", "rpsu": "C2", "lif": "C3"}
    for h in histories:
        xs = range(1, len(h.epochs) + 1)
        ls, marker = styles.get(h.framework, (":", "^"))
        kw = {
            "linestyle": ls,
            "marker": marker,
            "color": colours.get(h.neuron),
            "label": f"{h.framework} {h.neuron.upper()}",
        }
        ax_acc.plot(xs, [e.test_accuracy for e in h.epochs], **kw)
        ax_loss.plot(xs, [e.train_loss for e in h.epochs], **kw)
    ax_acc.set(xlabel="epoch", ylabel="test accuracy", title="digits: test accuracy")
    ax_loss.set(xlabel="epoch", ylabel="training loss (cross-entropy)", title="digits: training loss")
    for ax in (ax_acc, ax_loss):
        ax.grid(alpha=0.3)
    ax_acc.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
