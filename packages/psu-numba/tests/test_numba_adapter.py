"""The adapters are registered and complete; ``prepare`` runs the public API into preallocated
buffers."""

from __future__ import annotations

from importlib.metadata import entry_points

import numpy as np

from psu_numba import cpu
from psu_numba.adapter import CupyAdapter, NumbaCpuAdapter, NumbaCudaAdapter


def test_entry_points():
    eps = {ep.name: ep.value for ep in entry_points(group="psu.backends")}
    assert eps["numba-cpu"] == "psu_numba.adapter:NumbaCpuAdapter"
    assert eps["numba-cuda"] == "psu_numba.adapter:NumbaCudaAdapter"
    assert eps["cupy"] == "psu_numba.adapter:CupyAdapter"
    for cls in (NumbaCpuAdapter, NumbaCudaAdapter, CupyAdapter):
        a = cls()
        for m in ("devices", "dtypes", "forward", "vjp", "online", "threefry2x32", "uniforms", "prepare"):
            assert callable(getattr(a, m)), (a.name, m)
    assert NumbaCpuAdapter().devices() == ["cpu"]
    assert NumbaCudaAdapter().dtypes("cuda") == ["float64", "float32"]
    assert CupyAdapter().dtypes("cpu") == []


def test_prepare_cpu():
    gen = np.random.default_rng(4)
    x = gen.normal(size=(4, 50))
    g = gen.normal(size=(4, 50))
    case = dict(
        variant="psu",
        x=x,
        tau=2.0,
        threshold=1.0,
        reset_scale=None,
        surrogate_alpha=2.0,
        weight=None,
        bias=None,
        reset="expected",
        seed=None,
    )
    fwd, vjp = NumbaCpuAdapter().prepare(case, g, device="cpu", dtype="float32")
    s = fwd().spikes
    assert s.dtype == np.float32
    np.testing.assert_array_equal(s, cpu.forward("psu", x.astype(np.float32)).spikes)
    np.testing.assert_array_equal(vjp().x, cpu.vjp("psu", x.astype(np.float32), g.astype(np.float32)).x)
