"""The peers are the formulations they claim to be.

dense-torch is checked against psu-core's float64 reference (forward and every vjp output), so
the "paper's dense formulation" in the benchmark is the specified neuron, not an approximation.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from benchmarks import peers
from benchmarks.runner import make_case

reference = pytest.importorskip("psu_core.reference", reason="psu-core is not installed")

T, SHAPE = 7, (3, 4)


def _case(variant: str, threshold: float, reset_scale: float | None, seed: int) -> tuple[dict, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(1.0, 1.5, size=(T, *SHAPE))
    g = rng.normal(size=(T, *SHAPE))
    w = b = None
    if variant != "psu":
        w = rng.normal(0.0, math.sqrt(2.0 / T), size=(T, T))  # upper triangle non-zero on purpose
        b = rng.normal(0.0, 0.3, size=T)
    case = {
        "variant": variant,
        "x": x,
        "tau": 2.5,
        "threshold": threshold,
        "reset_scale": reset_scale,
        "surrogate_alpha": 1.7,
        "weight": w,
        "bias": b,
        "reset": "expected",
        "seed": None,
    }
    return case, g


def _params(case: dict) -> dict:
    return {k: case[k] for k in ("tau", "threshold", "reset_scale", "surrogate_alpha")}


@pytest.mark.parametrize("variant", ["psu", "ipsu", "rpsu"])
@pytest.mark.parametrize(("threshold", "reset_scale"), [(1.0, None), (0.5, None), (0.5, 1.0)])
def test_dense_torch_matches_reference(variant: str, threshold: float, reset_scale: float | None) -> None:
    case, g = _case(variant, threshold, reset_scale, seed=hash((variant, threshold)) % 2**32)
    fwd, vjp = peers.DenseTorch().prepare(case, g, device="cpu", dtype="float64")
    want = reference.forward(variant, case["x"], case["weight"], case["bias"], **_params(case))
    S, V = fwd()
    assert np.min(np.abs(want.membrane - threshold)) > 1e-9  # spikes are well defined
    np.testing.assert_array_equal(S.numpy().reshape(want.spikes.shape), want.spikes)
    np.testing.assert_allclose(V.numpy().reshape(want.membrane.shape), want.membrane, rtol=1e-12, atol=1e-12)
    assert 0 < want.spikes.sum() < want.spikes.size  # both branches of the step are exercised

    got = vjp()
    ref = reference.vjp(variant, case["x"], g, case["weight"], case["bias"], **_params(case))
    np.testing.assert_allclose(got["x"].numpy().reshape(ref.x.shape), ref.x, rtol=1e-10, atol=1e-12)
    assert got["threshold"].item() == pytest.approx(ref.threshold, rel=1e-10, abs=1e-12)
    assert got["surrogate_alpha"].item() == pytest.approx(ref.surrogate_alpha, rel=1e-10, abs=1e-12)
    if variant == "psu":
        assert set(got) == {"x", "threshold", "surrogate_alpha"}
    else:
        np.testing.assert_allclose(got["weight"].numpy(), ref.weight, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(got["bias"].numpy(), ref.bias, rtol=1e-10, atol=1e-12)
        assert np.all(np.triu(got["weight"].numpy(), 1) == 0)  # masked: no gradient above


def test_dense_matrices_follow_the_definition() -> None:
    A, B, M = (m.numpy() for m in peers.dense_matrices(4, 2.0, dtype=torch.float64))
    a = 0.5
    assert A[3, 1] == a**3 and A[2, 2] == a and A[1, 2] == 0
    assert B[3, 1] == a**2 and B[2, 2] == 0 and B[1, 0] == a
    np.testing.assert_array_equal(M, np.tril(np.ones((4, 4))))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dense_matrices_hold_no_subnormals(dtype: torch.dtype) -> None:
    A, B, _ = peers.dense_matrices(1100, 2.0, dtype=dtype)
    tiny = torch.finfo(dtype).tiny
    for m in (A, B):
        assert not bool(((m != 0) & (m.abs() < tiny)).any())
    assert A[1, 0] == 0.25 and A[120, 0] == 0.5**121  # normal entries kept exactly


def _lif_numpy(x: np.ndarray, g: np.ndarray, tau: float, theta: float, alpha: float):
    """Hard-reset LIF and its backward through time, written out by hand (no detach)."""
    a = 1.0 / tau
    T = x.shape[0]
    h_pre, s = np.zeros_like(x), np.zeros_like(x)
    h = np.zeros_like(x[0])
    for t in range(T):
        h = h * (1 - a) + a * x[t]
        h_pre[t] = h
        s[t] = h > theta
        h = h * (1 - s[t])
    d = h_pre - theta
    sg = alpha / (2 * (1 + (math.pi / 2 * alpha * d) ** 2))  # dS/dh
    gx = np.zeros_like(x)
    g_post = np.zeros_like(x[0])  # dL/d(h after reset at t)
    g_theta = g_alpha = 0.0
    for t in reversed(range(T)):
        g_h = g[t] * sg[t] + g_post * ((1 - s[t]) - h_pre[t] * sg[t])
        g_s = g[t] - g_post * h_pre[t]  # everything reaching S_t, for theta and alpha
        g_theta -= float(np.sum(g_s * sg[t]))
        g_alpha += float(np.sum(g_s * d[t] / (2 * (1 + (math.pi / 2 * alpha * d[t]) ** 2))))
        gx[t] = a * g_h
        g_post = g_h * (1 - a)
    return s, gx, g_theta, g_alpha


def test_lif_loop_forward_and_backward() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(1.2, 1.0, size=(9, 5))
    g = rng.normal(size=(9, 5))
    case = {
        "variant": "psu",
        "x": x,
        "tau": 2.0,
        "threshold": 0.8,
        "reset_scale": None,
        "surrogate_alpha": 2.0,
        "weight": None,
        "bias": None,
    }
    fwd, vjp = peers.LifLoopTorch().prepare(case, g, device="cpu", dtype="float64")
    s, gx, g_theta, g_alpha = _lif_numpy(x, g, 2.0, 0.8, 2.0)
    np.testing.assert_array_equal(fwd().numpy(), s)
    assert 0 < s.sum() < s.size
    got = vjp()
    np.testing.assert_allclose(got["x"].numpy(), gx, rtol=1e-12, atol=1e-14)
    assert got["threshold"].item() == pytest.approx(g_theta, rel=1e-12)
    assert got["surrogate_alpha"].item() == pytest.approx(g_alpha, rel=1e-12)


def test_lif_hard_reset_by_hand() -> None:
    # tau 2, theta 1, x = 2: h = 1 (not > 1), 1.5 (spike, reset to 0), 1 (no spike)
    x = torch.full((3, 1), 2.0, dtype=torch.float64)
    one = torch.tensor(1.0, dtype=torch.float64)
    s = peers.lif_forward(x, 2.0, one, torch.tensor(2.0, dtype=torch.float64))
    assert s.flatten().tolist() == [0.0, 1.0, 0.0]


def test_copy_floor_moves_the_bytes() -> None:
    case, g = make_case("psu", 4, 16, "float32")
    fwd, vjp = peers.CopyFloor().prepare(case, g, device="cpu", dtype="float32")
    np.testing.assert_array_equal(fwd().numpy(), case["x"])
    np.testing.assert_array_equal(vjp().numpy(), g + case["x"])


def test_arctan_surrogate_gradient() -> None:
    v = torch.tensor([0.2, 1.0, 1.7], dtype=torch.float64, requires_grad=True)
    theta = torch.tensor(1.0, dtype=torch.float64)
    alpha = torch.tensor(3.0, dtype=torch.float64)
    s = peers.spike(v, theta, alpha)
    assert s.tolist() == [0.0, 0.0, 1.0]  # strictly greater: V == theta gives 0
    (gv,) = torch.autograd.grad(s, v, torch.ones(3, dtype=torch.float64))
    d = v.detach().numpy() - 1.0
    np.testing.assert_allclose(gv.numpy(), 3.0 / (2 * (1 + (math.pi / 2 * 3.0 * d) ** 2)))


def test_unknown_variant_and_sampled_reset_raise() -> None:
    case, g = make_case("psu", 4, 8, "float32")
    with pytest.raises(ValueError, match="variant"):
        peers.DenseTorch().prepare(case | {"variant": "lif"}, g, device="cpu", dtype="float32")
    with pytest.raises(ValueError, match="weight"):
        peers.DenseTorch().prepare(case | {"variant": "rpsu"}, g, device="cpu", dtype="float32")
    with pytest.raises(ValueError, match="expected-reset"):
        peers.DenseTorch().prepare(case | {"reset": "sampled", "seed": 1}, g, device="cpu", dtype="float32")
