"""Threefry-2x32-20 and the sampled-reset stream of SPEC §6, in PyTorch integer arithmetic.

PyTorch's unsigned 32-bit support is thin (few kernels, no CPU arithmetic on every version), so a
32-bit word lives in an ``int64`` tensor and every sum is masked back to 32 bits. The result is
device-agnostic and bit-identical to :mod:`psu_core.rng`:

    key     = (seed & 0xFFFFFFFF, seed >> 32)
    counter = (n, t)                    n: flat neuron index (C order) in the whole call, t: time step
    u       = (w0 >> 8) * 2**-24        exact in float32 and float64
    R       = 1 if u < P else 0

A call on part of a batch passes ``neuron_offset``, the whole call's flat index of its first neuron:
its neuron ``i`` then draws with counter ``n = neuron_offset + i``, as in the whole call (SPEC §6).
The forward forms read the stream a row (time step) at a time through :class:`UniformRows`, or draw
a whole ``[T, N]`` block of resets with :func:`draw_resets`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from psu_core import checks
from psu_core.checks import check_seed

__all__ = ["threefry2x32", "check_neuron_offset", "seed_key", "uniform_rows", "uniforms", "UniformRows", "draw_resets"]

ROTATIONS = (13, 15, 26, 6, 17, 29, 16, 24)
KS_PARITY = 0x1BD11BDA
MASK = 0xFFFFFFFF
#: Counter words are 32-bit: every neuron index n must be below this.
UNIFORM_SCALE = 2.0**-24
# Rows of the [T, N] stream generated per batch: bounds the int64 temporaries to ~8 MiB each.
_CHUNK_ELEMENTS = 1 << 20


def _rotl(v: torch.Tensor, r: int) -> torch.Tensor:
    # v holds a 32-bit word in int64; the left shift spills above bit 31 and the mask removes it.
    return ((v << r) & MASK) | (v >> (32 - r))


def threefry2x32(
    key0: torch.Tensor | int,
    key1: torch.Tensor | int,
    counter0: torch.Tensor | int,
    counter1: torch.Tensor | int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Threefry-2x32 with 20 rounds on 32-bit words held in ``int64`` tensors (values in [0, 2^32)).

    Arguments broadcast against each other; returns two ``int64`` tensors of words.
    """
    tensors = [v for v in (key0, key1, counter0, counter1) if isinstance(v, torch.Tensor)]
    device = tensors[0].device if tensors else torch.device("cpu")
    k0, k1, x0, x1 = (
        (v.to(torch.int64) if isinstance(v, torch.Tensor) else torch.tensor(int(v), dtype=torch.int64, device=device))
        & MASK
        for v in (key0, key1, counter0, counter1)
    )
    k0, k1, x0, x1 = torch.broadcast_tensors(k0, k1, x0, x1)
    ks = (k0, k1, k0 ^ k1 ^ KS_PARITY)
    x0 = (x0 + ks[0]) & MASK
    x1 = (x1 + ks[1]) & MASK
    for i in range(20):
        x0 = (x0 + x1) & MASK
        x1 = _rotl(x1, ROTATIONS[i % 8]) ^ x0
        if i % 4 == 3:
            s = (i + 1) // 4
            x0 = (x0 + ks[s % 3]) & MASK
            x1 = (x1 + ks[(s + 1) % 3] + s) & MASK
    return x0, x1


def check_neuron_offset(neuron_offset: Any, n_neurons: int) -> int:
    """``neuron_offset`` is an integer ``>= 0`` with ``neuron_offset + n_neurons <= 2**32``: every
    counter word ``n = neuron_offset + i`` must be a 32-bit word (SPEC §6). ``ValueError`` otherwise."""
    if isinstance(neuron_offset, torch.SymInt):
        neuron_offset = int(neuron_offset)  # a shape product under torch.compile: its value is fixed
    return checks.check_neuron_offset(neuron_offset, n_neurons)


def seed_key(seed: int) -> tuple[int, int]:
    """Split a 64-bit seed into the Threefry key ``(low word, high word)``."""
    seed = check_seed(seed)
    return seed & MASK, seed >> 32


def _scalar_key(seed: int) -> tuple[int, int, int]:
    k0, k1 = seed_key(seed)
    return k0, k1, k0 ^ k1 ^ KS_PARITY


def _threefry_w0(ks: tuple[int, int, int], n: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    # The key is a Python int here, so each key add is a scalar op; only the first word is needed.
    x0 = (n + ks[0]) & MASK
    x1 = (t + ks[1]) & MASK
    x1 = x1.expand_as(x0) if x1.shape != x0.shape else x1
    for i in range(20):
        x0 = (x0 + x1) & MASK
        x1 = _rotl(x1, ROTATIONS[i % 8]) ^ x0
        if i % 4 == 3:
            s = (i + 1) // 4
            x0 = (x0 + ks[s % 3]) & MASK
            x1 = (x1 + (ks[(s + 1) % 3] + s)) & MASK
    return x0


def uniform_rows(
    seed: int,
    t0: int,
    t1: int,
    n_neurons: int,
    *,
    neuron_offset: int = 0,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Uniforms ``u[t, neuron_offset + i]`` for time steps ``t0 <= t < t1`` and ``i < n_neurons``:
    ``[t1 - t0, n_neurons]``.

    ``dtype`` must be float32 or float64 (both hold every ``u`` exactly).
    """
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be float32 or float64 (u is a multiple of 2**-24), got {dtype}")
    if n_neurons > 2**32:
        raise ValueError(f"x must have at most 2**32 neurons for sampled reset, got {n_neurons}")
    check_neuron_offset(neuron_offset, n_neurons)
    ks = _scalar_key(seed)
    out = torch.empty((t1 - t0, n_neurons), dtype=dtype, device=device)
    if out.numel() == 0:
        return out
    n = torch.arange(neuron_offset, neuron_offset + n_neurons, dtype=torch.int64, device=device)
    rows = max(1, _CHUNK_ELEMENTS // max(n_neurons, 1))
    for start in range(t0, t1, rows):
        stop = min(t1, start + rows)
        t = torch.arange(start, stop, dtype=torch.int64, device=device)[:, None]
        w0 = _threefry_w0(ks, n[None, :].expand(stop - start, n_neurons), t)
        out[start - t0 : stop - t0] = (w0 >> 8).to(dtype) * UNIFORM_SCALE
    return out


def uniforms(
    seed: int,
    shape: Sequence[int],
    *,
    neuron_offset: int = 0,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """The uniforms ``u`` of SPEC §6 for an array of ``shape = (T, *neuron_shape)`` whose first neuron
    is neuron ``neuron_offset`` of the whole call."""
    shape = tuple(int(d) for d in shape)
    n = 1
    for d in shape[1:]:
        n *= d
    return uniform_rows(seed, 0, shape[0], n, neuron_offset=neuron_offset, device=device, dtype=dtype).reshape(shape)


class UniformRows:
    """Rows ``u[t, neuron_offset : neuron_offset + N]`` of the stream, generated a block of rows at a
    time (about 2^20 values per block) so that a pass over time costs one Threefry call per block,
    not per step."""

    def __init__(
        self, seed: int, T: int, N: int, dtype: torch.dtype, device: torch.device, neuron_offset: int = 0
    ) -> None:
        self.seed, self.T, self.N, self.dtype, self.device = seed, T, N, dtype, device
        self.neuron_offset = neuron_offset
        self.rows = max(1, _CHUNK_ELEMENTS // max(N, 1))
        self.start, self.block = 0, None

    def row(self, t: int) -> torch.Tensor:
        """``u[t, :]``, ``[N]``."""
        if self.block is None or not (self.start <= t < self.start + self.block.shape[0]):
            self.start = t
            stop = min(self.T, t + self.rows)
            self.block = uniform_rows(
                self.seed, t, stop, self.N, neuron_offset=self.neuron_offset, device=self.device, dtype=self.dtype
            )
        return self.block[t - self.start]


def draw_resets(seed: int, P: torch.Tensor, t0: int = 0, neuron_offset: int = 0) -> torch.Tensor:
    """``R = [u < P]`` as ``bool`` ``[T, N]`` for the reset probabilities ``P [T, N]`` of time steps
    ``t0 .. t0 + T`` and neurons ``neuron_offset .. neuron_offset + N`` of the whole call (``P`` in
    float32 or float64)."""
    T, N = P.shape
    R = torch.empty((T, N), dtype=torch.bool, device=P.device)
    stream = UniformRows(seed, t0 + T, N, P.dtype, P.device, neuron_offset)
    for t in range(T):
        torch.lt(stream.row(t0 + t), P[t], out=R[t])
    return R
