"""psu_numba.cpu: kernels against the float64 reference on shapes the golden vectors do not
cover (several blocks and chunks, ragged last block, rank-1 and empty inputs, float16), the
blocking's independence from the thread count, preallocated outputs, and the online API."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from psu_numba_testlib import make_case

from psu_core import reference
from psu_numba import cpu
from psu_numba.cpu.device import FORWARD_BLOCK, block_size


def _cast(a, dt):
    return None if a is None else a.astype(dt)


# 2100 neurons make several blocks (forward: 1024, backward at T=3: 1024), the last ragged.
@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-10), (np.float32, 2e-5)])
def test_against_reference_multi_block(mode, dtype, rtol):
    variant, reset = mode
    x, g, w, b, params = make_case(variant, 3, (3, 700), reset=reset)
    assert FORWARD_BLOCK < 2100 and block_size(3) < 2100
    ref = reference.forward(variant, x, w, b, **params)
    out = cpu.forward(
        variant, x.astype(dtype), _cast(w, dtype), _cast(b, dtype), return_membrane=True, return_reset=True, **params
    )
    assert out.spikes.dtype == dtype and out.spikes.shape == x.shape
    np.testing.assert_array_equal(out.spikes, ref.spikes)
    np.testing.assert_allclose(out.membrane, ref.membrane, rtol=rtol, atol=rtol)
    if reset == "sampled":
        np.testing.assert_array_equal(out.reset, ref.reset)
    else:
        assert out.reset is None
    gr = reference.vjp_dense(variant, x, g, w, b, **params)
    go = cpu.vjp(variant, x.astype(dtype), g.astype(dtype), _cast(w, dtype), _cast(b, dtype), **params)
    scale = np.abs(gr.x).max()
    np.testing.assert_allclose(go.x, gr.x, rtol=rtol, atol=rtol * scale)
    if variant == "psu":
        assert go.weight is None and go.bias is None
    else:
        np.testing.assert_allclose(go.weight, gr.weight, rtol=rtol, atol=rtol * np.abs(gr.weight).max())
        assert np.all(np.triu(go.weight, 1) == 0)
        np.testing.assert_allclose(go.bias, gr.bias, rtol=rtol, atol=rtol * np.abs(gr.bias).max())
    assert go.threshold == pytest.approx(gr.threshold, rel=rtol * 10)
    assert go.surrogate_alpha == pytest.approx(gr.surrogate_alpha, rel=rtol * 10)


def test_fixed_reset_scale_and_long_horizon():
    # T=40 gives blocks of 1632 neurons; reset_scale fixed drops the gamma path from dL/dtheta.
    x, g, w, b, params = make_case("rpsu", 40, (50,))
    params["reset_scale"] = 0.3
    ref = reference.vjp_dense("rpsu", x, g, w, b, **params)
    got = cpu.vjp("rpsu", x, g, w, b, **params)
    np.testing.assert_allclose(got.x, ref.x, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got.weight, ref.weight, rtol=1e-10, atol=1e-12)
    assert got.threshold == pytest.approx(ref.threshold, rel=1e-10)


def test_extreme_inputs_do_not_overflow():
    # The vectorised exp clamps its argument; sigmoid of +-500 must still be 1 and 0.
    x = np.array([[500.0, -500.0, 80.0, -80.0, 0.0]] * 4)
    for dt in (np.float32, np.float64):
        out = cpu.forward("psu", x.astype(dt), return_membrane=True, threshold=0.5)
        ref = reference.forward("psu", x, threshold=0.5)
        assert np.all(np.isfinite(out.membrane))
        np.testing.assert_allclose(out.membrane, ref.membrane, rtol=1e-6)
        g = cpu.vjp("psu", x.astype(dt), np.ones_like(x, dtype=dt), threshold=0.5)
        assert np.all(np.isfinite(g.x))


def test_rank1_empty_and_half():
    x = np.linspace(-1.0, 3.0, 7)
    out = cpu.forward("psu", x, return_membrane=True)
    ref = reference.forward("psu", x)
    assert out.spikes.shape == (7,)
    np.testing.assert_allclose(out.membrane, ref.membrane, rtol=1e-12)
    empty = cpu.forward("psu", np.zeros((5, 0, 3)), return_membrane=True)
    assert empty.spikes.shape == (5, 0, 3)
    assert cpu.vjp("psu", np.zeros((5, 0)), np.zeros((5, 0))).threshold == 0.0
    x16 = np.random.default_rng(1).normal(0.8, 1.0, size=(6, 9)).astype(np.float16)
    h = cpu.forward("psu", x16, return_membrane=True)
    assert h.spikes.dtype == np.float16 and h.membrane.dtype == np.float16
    ref16 = reference.forward("psu", x16.astype(np.float64))
    np.testing.assert_allclose(h.membrane.astype(np.float64), ref16.membrane, rtol=1e-2, atol=1e-2)


def test_same_bits_for_any_thread_count():
    # The chunking depends on the problem only: 1 and 2 threads add in the same order.
    x, g, w, b, params = make_case("rpsu", 8, (9000,), reset="sampled")
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one_f = cpu.forward("rpsu", x, w, b, return_membrane=True, **params)
        one_g = cpu.vjp("rpsu", x, g, w, b, **params)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two_f = cpu.forward("rpsu", x, w, b, return_membrane=True, **params)
        two_g = cpu.vjp("rpsu", x, g, w, b, **params)
    finally:
        numba.set_num_threads(before)
    assert one_f.membrane.tobytes() == two_f.membrane.tobytes()
    assert one_g.x.tobytes() == two_g.x.tobytes()
    assert one_g.weight.tobytes() == two_g.weight.tobytes()
    assert one_g.bias.tobytes() == two_g.bias.tobytes()
    assert (one_g.threshold, one_g.surrogate_alpha) == (two_g.threshold, two_g.surrogate_alpha)


def test_out_buffers():
    x = np.random.default_rng(2).normal(size=(4, 3, 5)).astype(np.float32)
    spikes = np.full_like(x, 7.0)
    membrane = np.empty_like(x)
    res = cpu.forward("psu", x, return_membrane=True, out=spikes, membrane_out=membrane)
    assert np.shares_memory(res.spikes, spikes) and np.shares_memory(res.membrane, membrane)
    assert set(np.unique(spikes)) <= {0.0, 1.0}
    dx = np.empty_like(x)
    assert np.shares_memory(cpu.vjp("psu", x, np.ones_like(x), out=dx).x, dx)
    with pytest.raises(ValueError, match="out"):
        cpu.forward("psu", x, out=np.empty((4, 15), np.float32))
    with pytest.raises(ValueError, match="out"):
        cpu.forward("psu", x, out=np.empty_like(x, dtype=np.float64))
    with pytest.raises(ValueError, match="grad_spikes"):
        cpu.vjp("psu", x, np.ones((4, 15), np.float32))


def test_device_arrays_are_refused():
    class FakeDevice:
        shape, dtype = (4, 3), np.dtype(np.float32)
        __cuda_array_interface__ = {"shape": (4, 3), "typestr": "<f4", "data": (0, False), "version": 3}

    with pytest.raises(TypeError, match="psu_numba.numba_cuda"):
        cpu.forward("psu", FakeDevice())


def test_online_matches_parallel_and_stops(mode):
    variant, reset = mode
    x, _, w, b, params = make_case(variant, 5, (4, 3), reset=reset)
    par = cpu.forward(variant, x, w, b, return_membrane=True, return_reset=True, **params)
    state = cpu.init_state(variant, (4, 3), T=None if variant == "psu" else 5, dtype=np.float64)
    for t in range(5):
        state, st = cpu.step(state, x[t], w, b, **params)
        np.testing.assert_array_equal(st.spikes, par.spikes[t])
        np.testing.assert_allclose(st.membrane, par.membrane[t], rtol=1e-12, atol=1e-14)
        if reset == "sampled":
            np.testing.assert_array_equal(st.reset, par.reset[t])
        else:
            assert st.reset is None
    assert state.t == 5
    if variant == "psu":
        cpu.step(state, x[0], **params)  # PSU's stepper has no end
    else:
        with pytest.raises(ValueError, match="step 5"):
            cpu.step(state, x[0], w, b, **params)


def test_online_checks():
    with pytest.raises(ValueError, match="T must be"):
        cpu.init_state("rpsu", (3,))
    with pytest.raises(ValueError, match="device"):
        cpu.init_state("psu", (3,), device="cuda")
    with pytest.raises(TypeError, match="dtype"):
        cpu.init_state("psu", (3,), dtype="int32")
    with pytest.raises(ValueError, match="tau"):
        cpu.OnlineStepper("psu", (3,), tau=0.5)
    with pytest.raises(ValueError, match="weight"):
        cpu.OnlineStepper("ipsu", (3,))
    stepper = cpu.OnlineStepper("psu", (3,))
    with pytest.raises(ValueError, match="x_t"):
        stepper.step(np.zeros(4, np.float32))
    with pytest.raises(TypeError, match="x_t"):
        stepper.step(np.zeros(3, np.int32))
    stepper.step(np.ones(3, np.float32))
    assert stepper.state.t == 1 and stepper.state.h.any()
    stepper.reset_state()
    assert stepper.state.t == 0 and not stepper.state.h.any()


def test_online_half_precision_runs_in_float32():
    x = np.random.default_rng(6).normal(0.8, 1.0, size=(4, 5)).astype(np.float16)
    state = cpu.init_state("psu", (5,), dtype=np.float16)
    assert state.dtype == np.float32
    par = cpu.forward("psu", x, return_membrane=True)
    for t in range(4):
        state, out = cpu.step(state, x[t])
        assert out.spikes.dtype == np.float16 and out.membrane.dtype == np.float16
        np.testing.assert_array_equal(out.membrane, par.membrane[t])


def test_threefry_and_uniforms_match_core():
    from psu_core import rng

    gen = np.random.default_rng(3)
    k0, k1, c0, c1 = (gen.integers(0, 2**32, size=50, dtype=np.uint64).astype(np.uint32) for _ in range(4))
    got = cpu.threefry2x32(k0, k1, c0, c1)
    want = rng.threefry2x32(k0, k1, c0, c1)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    seed = 2**64 - 12345
    np.testing.assert_array_equal(cpu.uniforms(seed, (3, 4, 5)), rng.uniforms(seed, (3, 4, 5)))


def test_every_jitted_function_lives_in_the_kernels_module():
    # Numba's cache keys a kernel on the timestamp of the file defining it, not of the files it
    # calls: a jitted helper imported from elsewhere could change without the cached kernels
    # noticing. Keep every dispatcher (and overload) used by the kernels in cpu/kernels.py.
    from numba.core.registry import CPUDispatcher

    from psu_numba.cpu import kernels

    for name, obj in vars(kernels).items():
        if isinstance(obj, CPUDispatcher):
            assert obj.py_func.__module__ == kernels.__name__, f"{name} comes from {obj.py_func.__module__}"
    src = open(kernels.__file__, encoding="utf-8").read()
    assert "from psu_numba" not in src and "import psu_numba" not in src
