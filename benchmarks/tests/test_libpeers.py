"""The library peers compute the neurons they are documented to compute.

Where a library's LIF can be parameterised exactly as ``lif-loop-torch`` (SpikingJelly's
``LIFNode``, snnTorch's ``Leaky`` with a zero reset), its spikes must equal ours. The inputs are
dyadic (multiples of 1/16, ``tau = 2``) so that every membrane value is exact in float32 and
float64 whatever the order of operations, and the threshold ``1 + 2^-20`` is never hit exactly
(SpikingJelly fires at ``>=``, the others at ``>``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from benchmarks import backends, libpeers, peers, runner

THETA = 1.0 + 2.0**-20
T, N = 8, 40


def _dyadic_case(dtype: str = "float32", seed: int = 5) -> tuple[dict, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = (rng.integers(-16, 48, size=(T, N)) / 16.0).astype(dtype)
    g = rng.normal(size=(T, N)).astype(dtype)
    case = {
        "variant": "psu",
        "x": x,
        "tau": 2.0,
        "threshold": THETA,
        "reset_scale": None,
        "surrogate_alpha": 2.0,
        "weight": None,
        "bias": None,
        "reset": "expected",
    }
    return case, g


def _ours(case: dict, g: np.ndarray, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    fwd, vjp = peers.LifLoopTorch().prepare(case, g, device="cpu", dtype=dtype)
    return fwd().numpy(), vjp()["x"].numpy()


def _has_spikes(s: np.ndarray) -> None:
    assert 0 < s.sum() < s.size, "the test input should make some but not all neurons fire"


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_spikingjelly_lif_equals_lif_loop(dtype: str) -> None:
    pytest.importorskip("spikingjelly", reason="spikingjelly not installed")
    case, g = _dyadic_case(dtype)
    s_ours, gx_ours = _ours(case, g, dtype)
    fwd, vjp = libpeers.PEERS["spikingjelly-lif"].prepare(case, g, device="cpu", dtype=dtype)
    s = fwd().numpy()
    _has_spikes(s)
    np.testing.assert_array_equal(s, s_ours)
    np.testing.assert_array_equal(fwd().numpy(), s_ours)  # state reset between calls
    # same surrogate, same differentiated hard reset: the same gradient
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(vjp()["x"].numpy(), gx_ours, rtol=tol, atol=tol)
    np.testing.assert_allclose(vjp()["x"].numpy(), gx_ours, rtol=tol, atol=tol)


def test_snntorch_leaky_spikes_equal_lif_loop() -> None:
    pytest.importorskip("snntorch", reason="snntorch not installed")
    case, g = _dyadic_case()
    s_ours, gx_ours = _ours(case, g, "float32")
    fwd, vjp = libpeers.PEERS["snntorch-leaky"].prepare(case, g, device="cpu", dtype="float32")
    s = fwd().numpy()
    _has_spikes(s)
    np.testing.assert_array_equal(s, s_ours)
    gx = vjp()["x"].numpy()  # w.r.t. x / tau, reset detached: not our gradient, but defined
    assert gx.shape == (T, N) and np.isfinite(gx).all() and np.abs(gx).sum() > 0


@pytest.mark.parametrize("name", ["spikingjelly-psn", "spikingjelly-masked-psn"])
def test_spikingjelly_parallel_neurons(name: str) -> None:
    pytest.importorskip("spikingjelly", reason="spikingjelly not installed")
    case, g = _dyadic_case()
    peer: Any = libpeers.PEERS[name]
    fwd, vjp = peer.prepare(case, g, device="cpu", dtype="float32")
    s = fwd().numpy()
    assert s.shape == (T, N) and set(np.unique(s)) <= {0.0, 1.0}
    grads = vjp()
    assert grads["x"].shape == (T, N) and grads["weight"].shape == (T, T) and grads["bias"].shape == (T, 1)
    # H = W' X + b: the spikes are heaviside(H), recomputed here from the module's own W' and b
    from spikingjelly.activation_based import neuron

    node = peer.make(T, 2.0)
    torch.manual_seed(0)
    torch.nn.init.normal_(node.weight)
    w = node.masked_weight() if isinstance(node, neuron.MaskedPSN) else node.weight
    x = torch.as_tensor(case["x"])
    with torch.no_grad():
        expect = ((w @ x + node.bias) > 0).float()
        np.testing.assert_array_equal(node(x).numpy(), expect.numpy())
    if name == "spikingjelly-masked-psn":
        # no gradient reaches weights outside the band j <= i <= j + k - 1
        i, j = np.indices((T, T))
        outside = (j > i) | (i > j + peer.K - 1)
        assert np.all(grads["weight"].numpy()[outside] == 0) and np.any(grads["weight"].numpy()[~outside] != 0)


def _spyx_numpy(x: np.ndarray, beta: float, theta: float, *, reset: bool) -> np.ndarray:
    """spyx's documented dynamics. LIF: s_t = H(V_{t-1} - theta), V_t = beta V_{t-1} + x_t -
    theta s_t. PSU_LIF (reset-free): V_t = beta V_{t-1} + x_t, s_t = H(V_t - theta)."""
    v = np.zeros_like(x[0])
    out = np.zeros_like(x)
    for t in range(x.shape[0]):
        if reset:
            out[t] = v > theta
            v = beta * v + x[t] - theta * out[t]
        else:
            v = beta * v + x[t]
            out[t] = v > theta
    return out


@pytest.mark.parametrize("name", ["spyx-lif", "spyx-psu-lif"])
def test_spyx_neurons_follow_their_documented_dynamics(name: str) -> None:
    pytest.importorskip("spyx", reason="spyx not installed")
    case, g = _dyadic_case()
    fwd, vjp = libpeers.PEERS[name].prepare(case, g, device="cpu", dtype="float32")
    s = np.asarray(fwd())
    _has_spikes(s)
    expect = _spyx_numpy(case["x"] / 2.0, 0.5, THETA, reset=name == "spyx-lif")
    np.testing.assert_array_equal(s, expect)
    got = vjp()
    assert np.asarray(got["x"]).shape == (T, N) and np.isfinite(np.asarray(got["x"])).all()


class _Absent(libpeers.LibraryPeer):
    name = "absent-peer"
    module = "no_such_module_for_psu_benchmarks"
    dist = "no-such-dist"

    def prepare(self, *a, **k):  # pragma: no cover - must never be called
        raise AssertionError("a missing peer was prepared")


def test_a_missing_peer_is_reported_as_skipped(monkeypatch) -> None:
    monkeypatch.setitem(libpeers.PEERS, "absent-peer", _Absent())
    impls = backends.peer_impls(["absent-peer", "lif-loop-torch", "copy-floor"])
    assert impls[0].missing.startswith("no-such-dist not installed")
    cfg = runner.Config(variants=["psu"], Ts=[4], total=64, repeats=1, warmup=1, target_repeat_s=1e-4, memory=False)
    rows, skipped = runner.run(cfg, impls, progress=lambda m: None)
    assert [r["impl"] for r in rows] == ["lif-loop-torch", "copy-floor"]
    assert skipped == ["absent-peer: skipped: " + impls[0].missing]


def test_every_library_peer_is_known_to_the_cli() -> None:
    from benchmarks import __main__ as cli

    assert set(cli.LIBRARY_PEERS) == set(libpeers.PEERS)
    assert set(cli.QUICK_PEERS) <= set(cli.PEER_NAMES)
    for p in libpeers.PEERS.values():
        assert p.summary and p.dist and p.module
