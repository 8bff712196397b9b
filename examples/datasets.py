"""Local copies of the paper's data sets, read without downloading anything.

* CIFAR-10 in the layout of ``torchvision.datasets.CIFAR10(root, download=True)``:
  ``root/cifar-10-batches-py/{data_batch_1..5, test_batch}`` (Python pickles of uint8 images).
  ``root`` may also be the ``cifar-10-batches-py`` folder itself. torchvision is not needed.
* SHD (Spiking Heidelberg Digits) in the layout of ``tonic.datasets.SHD(save_to=root)``:
  ``root/SHD/{shd_train.h5, shd_test.h5}`` (or the two files directly in ``root``), read with
  h5py. Each sample is a list of spike events (time in seconds, channel 0..699); they are binned
  into ``T`` frames of 700 channels (counts per bin).

A missing file raises :class:`DatasetNotFound` naming the path it looked for and how to get it.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CIFAR_MEAN = np.array([0.4914, 0.4822, 0.4465], np.float32)
CIFAR_STD = np.array([0.2470, 0.2435, 0.2616], np.float32)
CIFAR_FILES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
SHD_FILES = ["shd_train.h5", "shd_test.h5"]
SHD_CHANNELS = 700
SHD_CLASSES = 20


class DatasetNotFound(FileNotFoundError):
    """The dataset is not at the given path (nothing is downloaded)."""


def _find(root: Path, sub: str, files: list[str]) -> Path | None:
    for folder in (root / sub, root):
        if all((folder / f).is_file() for f in files):
            return folder
    return None


@dataclass(frozen=True)
class Cifar10:
    x_train: np.ndarray  # [50000, 3, 32, 32] uint8
    y_train: np.ndarray  # [50000] int64
    x_test: np.ndarray  # [10000, 3, 32, 32] uint8
    y_test: np.ndarray


def load_cifar10(root: str | Path) -> Cifar10:
    """CIFAR-10 from ``root`` (torchvision's layout); images stay uint8 until a batch is drawn."""
    root = Path(root).expanduser()
    folder = _find(root, "cifar-10-batches-py", CIFAR_FILES)
    if folder is None:
        raise DatasetNotFound(
            f"CIFAR-10 not found under {root}: expected {root / 'cifar-10-batches-py'}/"
            f"{{{', '.join(CIFAR_FILES)}}} (the layout torchvision.datasets.CIFAR10(root, download=True) "
            "writes; or unpack https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz into the root)"
        )

    def read(name: str) -> tuple[np.ndarray, np.ndarray]:
        with open(folder / name, "rb") as f:
            d = pickle.load(f, encoding="bytes")  # the official format; only open files you trust
        x = np.asarray(d[b"data"], np.uint8).reshape(-1, 3, 32, 32)
        return x, np.asarray(d[b"labels"], np.int64)

    train = [read(f) for f in CIFAR_FILES[:-1]]
    x_te, y_te = read("test_batch")
    return Cifar10(np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train]), x_te, y_te)


@dataclass(frozen=True)
class EventSet:
    """Variable-length spike events per sample: ``times[i]`` (seconds), ``units[i]`` (channel)."""

    times: list[np.ndarray]
    units: list[np.ndarray]
    labels: np.ndarray  # int64

    def __len__(self) -> int:
        return len(self.labels)

    def frames(self, idx: np.ndarray, T: int, duration: float) -> np.ndarray:
        """Bin the events of samples ``idx`` into ``[T, len(idx), 700]`` float32 counts; an event at
        time ``t`` goes to bin ``floor(t / duration * T)`` (later events to the last bin)."""
        out = np.zeros((T, len(idx), SHD_CHANNELS), np.float32)
        for b, i in enumerate(idx):
            bins = np.minimum((self.times[i] * (T / duration)).astype(np.int64), T - 1)
            np.add.at(out, (bins, b, self.units[i].astype(np.int64)), 1.0)
        return out


def load_shd(root: str | Path) -> tuple[EventSet, EventSet]:
    """SHD training and test sets from ``root`` (tonic's layout, see the module docstring)."""
    root = Path(root).expanduser()
    folder = _find(root, "SHD", SHD_FILES)
    if folder is None:
        raise DatasetNotFound(
            f"SHD not found under {root}: expected {root / 'SHD'}/{{{', '.join(SHD_FILES)}}} (the layout "
            "tonic.datasets.SHD(save_to=root) writes; or gunzip shd_train.h5.gz and shd_test.h5.gz from "
            "https://zenkelab.org/datasets/ into the root)"
        )
    try:
        import h5py
    except ImportError as e:
        raise ImportError("reading SHD needs h5py: pip install h5py") from e

    def read(name: str) -> EventSet:
        with h5py.File(folder / name, "r") as f:
            times = [np.asarray(t, np.float64) for t in f["spikes"]["times"]]
            units = [np.asarray(u, np.int64) for u in f["spikes"]["units"]]
            labels = np.asarray(f["labels"], np.int64)
        return EventSet(times, units, labels)

    return read(SHD_FILES[0]), read(SHD_FILES[1])
