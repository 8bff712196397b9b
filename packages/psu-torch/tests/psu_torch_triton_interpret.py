"""Run by test_torch_triton.py in a subprocess with TRITON_INTERPRET=1 (set before triton is imported):
the Triton kernels, on CPU tensors, against the eager recurrence and the psu-core reference."""

from __future__ import annotations

import os
import sys

assert os.environ.get("TRITON_INTERPRET") == "1"

import numpy as np  # noqa: E402
import torch  # noqa: E402

from psu_core import reference  # noqa: E402
from psu_torch import _eager, _triton  # noqa: E402
from psu_torch import functional as F  # noqa: E402


def kernels_match_eager() -> None:
    rs = np.random.default_rng(0)
    # N = 600 spans two programs (BLOCK 512) with a masked tail; T = 1 has no reverse sweep.
    runs = [
        (torch.float64, 1e-12, 7, 600, None, True),
        (torch.float64, 1e-12, 5, 40, 2**64 - 3, False),
        (torch.float64, 1e-12, 1, 3, 5, True),
        (torch.float32, 1e-5, 6, 50, 11, True),
    ]
    for dt, tol, T, N, seed, tied in runs:
        x = torch.tensor(rs.normal(size=(T, N)) * 1.5, dtype=dt)
        g = torch.tensor(rs.normal(size=(T, N)), dtype=dt)
        a, th = 1 / 1.7, 0.6
        gamma = th if tied else 0.8
        S1, V1, R1 = _eager.psu_forward_recurrence(x, a, gamma, th, seed, True)
        S2, V2, R2 = _triton.psu_forward(x, a, gamma, th, seed, True)
        assert torch.equal(S1, S2), "spikes differ"
        torch.testing.assert_close(V2, V1, rtol=tol, atol=tol)
        if seed is not None:
            assert torch.equal(R1, R2), "reset draws differ"
        b1 = _eager.psu_backward_recurrence(x, g, R1, a, gamma, th, 2.5, True, tied)
        b2 = _triton.psu_backward(x, g, R2, a, gamma, th, 2.5, True, tied)
        for u, v in zip(b1, b2, strict=False):
            torch.testing.assert_close(v, u, rtol=10 * tol, atol=10 * tol)


def public_api_matches_reference() -> None:
    rs = np.random.default_rng(1)
    x = rs.normal(size=(6, 4, 5)) * 1.5
    G = rs.normal(size=x.shape)
    for reset, seed in (("expected", None), ("sampled", 2**40 + 9)):
        params = dict(tau=1.7, threshold=0.6, reset_scale=None, surrogate_alpha=2.5, reset=reset, seed=seed)
        ref = reference.forward("psu", x, **params)
        grads = reference.vjp("psu", x, G, **params)
        xt = torch.tensor(x, requires_grad=True)
        th = torch.tensor(0.6, dtype=torch.float64, requires_grad=True)
        al = torch.tensor(2.5, dtype=torch.float64, requires_grad=True)
        s, v, r = F.psu(xt, **dict(params, threshold=th, surrogate_alpha=al), impl="triton",
                        return_membrane=True, return_reset=True)
        s.backward(torch.tensor(G))
        assert np.array_equal(s.detach().numpy(), ref.spikes)
        np.testing.assert_allclose(v.numpy(), ref.membrane, rtol=1e-12, atol=1e-12)
        if seed is not None:
            assert np.array_equal(r.numpy(), ref.reset)
        np.testing.assert_allclose(xt.grad.numpy(), grads.x, rtol=1e-10, atol=1e-12)
        assert abs(th.grad.item() - grads.threshold) <= 1e-9 * max(1.0, abs(grads.threshold))
        assert abs(al.grad.item() - grads.surrogate_alpha) <= 1e-9 * max(1.0, abs(grads.surrogate_alpha))


if __name__ == "__main__":
    kernels_match_eager()
    public_api_matches_reference()
    print("TRITON-INTERPRET-OK")
    sys.exit(0)
