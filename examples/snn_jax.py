"""The digits network in JAX / Flax NNX with psu-jax neurons, a sequential LIF baseline, and its
training loop. Images are NHWC here (``[B, 8, 8, 1]``), the layout of ``nnx.Conv``.

Same network, optimiser, learning-rate schedule, batch order and neuron settings as
:mod:`snn_torch`; the initial weights differ (each framework's own initialisers and RNG).
"""

from __future__ import annotations

import math
import time
from functools import cache, partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import psu_jax
from report import Epoch, History, progress


# ---------------------------------------------------------------------------------------------
# The baseline: a leaky integrate-and-fire neuron, one time step after another (lax.scan)
# ---------------------------------------------------------------------------------------------
@partial(jax.custom_vjp, nondiff_argnums=(1,))
def arctan_spike(d: jax.Array, alpha: float) -> jax.Array:
    """``S = [d > 0]`` with ``d = V - theta``; backward ``alpha / (2 (1 + (pi/2 alpha d)^2))``."""
    return (d > 0).astype(d.dtype)


def _spike_fwd(d, alpha):
    return arctan_spike(d, alpha), d


def _spike_bwd(alpha, d, g):
    q = (0.5 * math.pi * alpha) * d
    return (g * (alpha / (2.0 * (1.0 + q * q))),)


arctan_spike.defvjp(_spike_fwd, _spike_bwd)


class LIF(nnx.Module):
    """Sequential LIF with hard reset: ``h_t = v_{t-1} + (x_t - v_{t-1}) / tau``,
    ``s_t = [h_t > theta]``, ``v_t = h_t (1 - s_t)``; input and output ``[T, ...]``."""

    def __init__(self, *, tau: float = 2.0, threshold: float = 1.0, surrogate_alpha: float = 2.0) -> None:
        self.tau, self.threshold, self.surrogate_alpha = float(tau), float(threshold), float(surrogate_alpha)

    def __call__(self, x: jax.Array) -> jax.Array:
        def step(v, x_t):
            h = v + (x_t - v) / self.tau
            s = arctan_spike(h - self.threshold, self.surrogate_alpha)
            return h * (1.0 - s), s

        _, s = jax.lax.scan(step, jnp.zeros_like(x[0]), x)
        return s


def make_neuron(name: str, T: int, *, tau: float, threshold: float, surrogate_alpha: float, rngs: nnx.Rngs):
    """A time-first spiking layer: ``"psu"``, ``"ipsu"``, ``"rpsu"`` (psu-jax) or ``"lif"``;
    threshold and surrogate sharpness fixed, reset scale tied to the threshold (SPEC default)."""
    kw = {"tau": tau, "threshold": threshold, "surrogate_alpha": surrogate_alpha}
    fixed = {"learn_threshold": False, "learn_alpha": False}
    if name == "psu":
        return psu_jax.PSU(**kw, **fixed)
    if name == "ipsu":
        return psu_jax.IPSU(T, **kw, **fixed, rngs=rngs)
    if name == "rpsu":
        return psu_jax.RPSU(T, **kw, **fixed, rngs=rngs)
    if name == "lif":
        return LIF(**kw)
    raise ValueError(f"neuron must be one of 'psu', 'ipsu', 'rpsu', 'lif', got {name!r}")


class ConvSNN(nnx.Module):
    """``conv3x3(1->c1)+BN -> neuron -> conv3x3(c1->c2)+BN -> neuron -> avgpool 2 -> linear``,
    logits = the linear layer's output averaged over ``T``; direct encoding (see :mod:`snn_torch`)."""

    def __init__(self, neuron: str, T: int, cfg, *, rngs: nnx.Rngs) -> None:
        c1, c2 = cfg.channels
        self.T = T
        nk = {"tau": cfg.tau, "threshold": cfg.threshold, "surrogate_alpha": cfg.surrogate_alpha, "rngs": rngs}
        self.conv1 = nnx.Conv(1, c1, (3, 3), padding="SAME", use_bias=False, rngs=rngs)
        self.bn1 = nnx.BatchNorm(c1, momentum=0.9, rngs=rngs)  # torch's momentum 0.1
        self.sn1 = make_neuron(neuron, T, **nk)
        self.conv2 = nnx.Conv(c1, c2, (3, 3), padding="SAME", use_bias=False, rngs=rngs)
        self.bn2 = nnx.BatchNorm(c2, momentum=0.9, rngs=rngs)
        self.sn2 = make_neuron(neuron, T, **nk)
        self.fc = nnx.Linear(c2 * 4 * 4, 10, rngs=rngs)

    def __call__(self, x: jax.Array) -> tuple[jax.Array, list[jax.Array]]:
        """``x [B, 8, 8, 1]`` -> logits ``[B, 10]`` and the spikes of both layers ``[T, B, ...]``."""
        T, B = self.T, x.shape[0]
        y = self.bn1(self.conv1(x))
        s1 = self.sn1(jnp.broadcast_to(y, (T, *y.shape)))  # direct encoding
        y = self.bn2(self.conv2(s1.reshape(T * B, *s1.shape[2:])))
        s2 = self.sn2(y.reshape(T, B, *y.shape[1:]))
        z = nnx.avg_pool(s2.reshape(T * B, *s2.shape[2:]), (2, 2), strides=(2, 2))
        logits = self.fc(z.reshape(T, B, -1)).mean(0)
        return logits, [s1, s2]


@nnx.jit
def _train_step(model: ConvSNN, optimizer: nnx.Optimizer, x: jax.Array, y: jax.Array):
    def loss_fn(model):
        logits, _ = model(x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), logits

    (loss, logits), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model)
    optimizer.update(model, grads)
    return loss, jnp.sum(jnp.argmax(logits, 1) == y)


@nnx.jit
def _eval_step(model: ConvSNN, x: jax.Array, y: jax.Array):
    logits, spikes = model(x)
    return jnp.sum(jnp.argmax(logits, 1) == y), sum(jnp.sum(s) for s in spikes), sum(s.size for s in spikes)


@cache
def _adam(lr: float, steps_per_epoch: int, epochs: int) -> optax.GradientTransformation:
    """Adam with cosine decay over epochs, stepped once per epoch like torch's CosineAnnealingLR.

    Cached so that a second model of the same structure and settings finds its compiled training
    step again (the transformation's functions are part of what ``nnx.jit`` keys on)."""

    def schedule(step):
        epoch = step // steps_per_epoch
        return lr * 0.5 * (1.0 + jnp.cos(jnp.pi * epoch / epochs))

    return optax.adam(schedule)


def train_digits(neuron: str, cfg, data, *, show_progress: bool = True) -> History:
    """Train the digits ConvSNN with one neuron type (``cfg``: :class:`digits.Config`)."""
    model = ConvSNN(neuron, cfg.T, cfg, rngs=nnx.Rngs(cfg.seed))
    n_train = len(data.y_train) if cfg.train_limit is None else min(cfg.train_limit, len(data.y_train))
    if n_train < cfg.batch_size:
        raise ValueError(f"need at least one full batch of {cfg.batch_size} training images, got {n_train}")
    optimizer = nnx.Optimizer(model, _adam(cfg.lr, n_train // cfg.batch_size, cfg.epochs), wrt=nnx.Param)
    x_tr = np.transpose(data.x_train[:n_train], (0, 2, 3, 1))  # NCHW -> NHWC
    y_tr = data.y_train[:n_train].astype(np.int32)
    x_te = jnp.asarray(np.transpose(data.x_test, (0, 2, 3, 1)))
    y_te = jnp.asarray(data.y_test.astype(np.int32))
    rng = np.random.default_rng(cfg.seed)
    history = History("jax", neuron)
    for epoch in range(cfg.epochs):
        model.train()
        loss_sum, correct, seen = 0.0, 0, 0
        order = rng.permutation(n_train)
        # drop the short last batch (one compiled shape; the same batches as snn_torch)
        chunks = [order[i : i + cfg.batch_size] for i in range(0, n_train - cfg.batch_size + 1, cfg.batch_size)]
        desc = f"jax {neuron.upper()} epoch {epoch + 1}/{cfg.epochs}"
        start = time.perf_counter()
        for idx in progress(chunks, desc, show_progress):
            loss, hits = _train_step(model, optimizer, jnp.asarray(x_tr[idx]), jnp.asarray(y_tr[idx]))
            loss_sum += float(loss) * len(idx)
            correct += int(hits)
            seen += len(idx)
        seconds = time.perf_counter() - start
        model.eval()
        hits, spikes, slots = _eval_step(model, x_te, y_te)
        history.epochs.append(
            Epoch(loss_sum / seen, correct / seen, int(hits) / len(y_te), float(spikes) / int(slots), seconds)
        )
    return history
