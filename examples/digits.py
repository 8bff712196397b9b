"""The scikit-learn digits set (8x8 grey images, 10 classes) and the settings of the digits demo.

``load_digits`` ships inside scikit-learn, so the demo runs offline. The images are scaled to
[0, 1] and split once, stratified, with a fixed seed: 1437 training and 360 test images.
Input encoding is *direct*: the same image is the input current at every one of the ``T`` steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NEURONS = ("psu", "ipsu", "rpsu", "lif")
NUM_CLASSES = 10


@dataclass(frozen=True)
class Config:
    """Hyper-parameters shared by the torch and the JAX runs (one place, so both train alike).

    The network: ``conv3x3(1->c1)+BN -> neuron -> conv3x3(c1->c2)+BN -> neuron -> avgpool 2 ->
    linear(c2*4*4 -> 10)``, read out as the mean over the ``T`` steps of the linear layer's output.
    """

    T: int = 4
    channels: tuple[int, int] = (8, 16)
    epochs: int = 6
    batch_size: int = 64
    lr: float = 5e-3
    seed: int = 0
    tau: float = 2.0
    threshold: float = 0.5
    surrogate_alpha: float = 2.0
    train_limit: int | None = None  # use only the first N training images (tests)


@dataclass(frozen=True)
class Digits:
    """NCHW float32 images in [0, 1] and int64 labels."""

    x_train: np.ndarray  # [N, 1, 8, 8]
    y_train: np.ndarray  # [N]
    x_test: np.ndarray
    y_test: np.ndarray


def load(seed: int = 0, test_fraction: float = 0.2) -> Digits:
    """The digits set, split stratified by ``seed`` (the same split on every call)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = (bunch.data / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    y = bunch.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_fraction, random_state=seed, stratify=y)
    return Digits(x_tr, y_tr, x_te, y_te)


def batches(n: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """One epoch of shuffled index batches (the last one may be short)."""
    order = rng.permutation(n)
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]
