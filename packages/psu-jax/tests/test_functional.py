"""What is JAX-specific about the functional API: methods, custom_vjp against the reference's
analytic gradients, results and the membrane-gradient rule of SPEC §11, jit/vmap/grad
composition, caching, traced arguments, dtypes. (What every backend must do is in the
conformance suite.)"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import psu_jax
from psu_core import api, reference
from psu_jax import functional

RNG = np.random.default_rng(0)
T, SHAPE = 6, (3, 2)
X = RNG.normal(size=(T,) + SHAPE) * 1.5
W = RNG.normal(size=(T, T)) * 0.6
B = RNG.normal(size=T) * 0.1
G = RNG.normal(size=(T,) + SHAPE)


def learned(variant):
    return {} if variant == "psu" else {"weight": jnp.asarray(W), "bias": jnp.asarray(B)}


def call(variant, x, **kw):
    return getattr(psu_jax, variant)(x, **kw)


CASES = [
    ("psu", "expected", None),
    ("psu", "sampled", None),
    ("psu", "expected", 0.7),
    ("ipsu", "expected", None),
    ("rpsu", "expected", None),
    ("rpsu", "sampled", 0.3),
]


# every case with the dense method; the scans on the cases that exercise their own code paths
METHOD_CASES = [(*c, "dense") for c in CASES] + [
    (*c, m) for m in ("scan", "associative") for c in (CASES[0], CASES[1], CASES[3], CASES[5])
]


@pytest.mark.parametrize("variant,reset,reset_scale,method", METHOD_CASES)
def test_methods_match_reference(variant, reset, reset_scale, method):
    seed = 2**40 + 3 if reset == "sampled" else None
    kw = dict(tau=2.5, threshold=0.6, reset_scale=reset_scale, reset=reset)
    wb = learned(variant)
    out = call(variant, jnp.asarray(X), **wb, **kw, seed=seed, return_membrane=True, return_reset=True, method=method)
    ref = reference.forward(variant, X, W if wb else None, B if wb else None, **kw, seed=seed)
    np.testing.assert_array_equal(np.asarray(out.spikes), ref.spikes)
    np.testing.assert_allclose(np.asarray(out.membrane), ref.membrane, rtol=1e-12, atol=1e-12)
    if reset == "sampled":
        np.testing.assert_array_equal(np.asarray(out.reset), ref.reset)

    def loss(x, th, al, wb):
        s = call(variant, x, **wb, **{**kw, "threshold": th}, surrogate_alpha=al, seed=seed, method=method)
        return jnp.sum(s * G)

    gx, gth, gal, gwb = jax.grad(loss, argnums=(0, 1, 2, 3))(jnp.asarray(X), 0.6, 2.0, wb)
    gref = reference.vjp(variant, X, G, W if wb else None, B if wb else None, **kw, seed=seed)
    np.testing.assert_allclose(np.asarray(gx), gref.x, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(float(gth), gref.threshold, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(float(gal), gref.surrogate_alpha, rtol=1e-10, atol=1e-12)
    if wb:
        np.testing.assert_allclose(np.asarray(gwb["weight"]), gref.weight, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(np.asarray(gwb["bias"]), gref.bias, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    "variant,reset", [("psu", "expected"), ("psu", "sampled"), ("ipsu", "expected"), ("rpsu", "sampled")]
)
@pytest.mark.parametrize("method", ["scan", "dense"])
def test_membrane_and_reset_carry_no_gradient(variant, reset, method):
    """SPEC §11: gradients flow through the spikes only; a loss on the returned membrane or draws
    reaches no argument (while the same loss on the spikes reaches every one)."""
    wb = learned(variant)
    seed = 5 if reset == "sampled" else None

    def outputs(x, th, al, wb):
        return call(variant, x, **wb, threshold=th, surrogate_alpha=al, reset=reset, seed=seed, method=method,
                    return_membrane=True, return_reset=True)  # fmt: skip

    args = (jnp.asarray(X), 0.8, 2.0, wb)
    fields = ("spikes", "membrane") + (("reset",) if reset == "sampled" else ())
    for field in fields:
        grads = jax.grad(lambda *a, f=field: jnp.sum(getattr(outputs(*a), f) * G), argnums=(0, 1, 2, 3))(*args)
        leaves = jax.tree.leaves(grads)
        assert len(leaves) == 3 + len(wb)
        if field == "spikes":
            assert all(np.any(np.asarray(g) != 0) for g in leaves)
        else:
            assert all(np.all(np.asarray(g) == 0) for g in leaves), field


def test_custom_vjp_is_the_spike_vjp():
    """jax.vjp through the whole PSUOutput: a cotangent on the membrane adds nothing to the spikes'."""
    x = jnp.asarray(X)
    f = lambda x: psu_jax.psu(x, threshold=0.6, return_membrane=True)
    out, vjp = jax.vjp(f, x)
    (g_all,) = vjp(api.PSUOutput(jnp.asarray(G), jnp.ones_like(out.membrane), None))
    (g_spikes,) = jax.vjp(lambda x: psu_jax.psu(x, threshold=0.6), x)[1](jnp.asarray(G))
    np.testing.assert_array_equal(np.asarray(g_all), np.asarray(g_spikes))


def test_results():
    """Spikes alone by default; psu_core.api.PSUOutput (a pytree) with None where not asked."""
    x = jnp.asarray(X)
    assert psu_jax.PSUOutput is api.PSUOutput and psu_jax.StepOutput is api.StepOutput
    s = psu_jax.psu(x, threshold=0.6)
    assert isinstance(s, jax.Array) and s.shape == x.shape and s.dtype == x.dtype
    out = psu_jax.psu(x, threshold=0.6, return_membrane=True)
    assert type(out) is api.PSUOutput and out.reset is None and out.membrane.shape == x.shape
    np.testing.assert_array_equal(np.asarray(out.spikes), np.asarray(s))
    out = psu_jax.psu(x, threshold=0.6, return_reset=True)  # expected mode draws nothing
    assert out.membrane is None and out.reset is None
    out = jax.jit(lambda x: psu_jax.rpsu(x, W, B, reset="sampled", seed=9, return_reset=True))(x)
    assert type(out) is api.PSUOutput and out.membrane is None
    ref = reference.rpsu(X, W, B, reset="sampled", seed=9, return_reset=True)
    np.testing.assert_array_equal(np.asarray(out.reset), ref.reset)
    np.testing.assert_array_equal(np.asarray(out.spikes), ref.spikes)


def test_old_names_are_gone():
    """SPEC §11 renamed key_or_seed to seed; PSU takes no weight or bias (no aliases)."""
    x = jnp.asarray(X)
    with pytest.raises(TypeError, match="key_or_seed"):
        psu_jax.psu(x, reset="sampled", key_or_seed=1)
    with pytest.raises(TypeError, match="weight"):
        psu_jax.psu(x, weight=None)


def test_spike_grad_is_the_arctan_surrogate():
    """dL/dalpha and the direct threshold path, checked against the formula of SPEC §4."""
    x = jnp.asarray(X)
    v = psu_jax.psu(x, return_membrane=True, reset_scale=0.5).membrane
    d = np.asarray(v) - 1.0
    q = np.pi / 2 * 2.0 * d
    galpha = jax.grad(lambda al: jnp.sum(psu_jax.psu(x, reset_scale=0.5, surrogate_alpha=al) * G))(2.0)
    gth = jax.grad(lambda th: jnp.sum(psu_jax.psu(x, reset_scale=0.5, threshold=th) * G))(1.0)
    np.testing.assert_allclose(float(galpha), np.sum(G * d / (2 * (1 + q * q))), rtol=1e-12)
    np.testing.assert_allclose(float(gth), -np.sum(G * 2.0 / (2 * (1 + q * q))), rtol=1e-12)


def test_jit_vmap_grad_compose():
    xb = jnp.asarray(RNG.normal(size=(4, T, 5)))  # batch first: vmap hands psu [T, 5]
    f = jax.jit(jax.vmap(lambda x: psu_jax.psu(x, threshold=0.5)))
    direct = psu_jax.psu(jnp.moveaxis(xb, 0, 1), threshold=0.5)
    np.testing.assert_array_equal(np.asarray(f(xb)), np.asarray(jnp.moveaxis(direct, 1, 0)))
    gb = jax.jit(jax.vmap(jax.grad(lambda x: jnp.sum(psu_jax.psu(x, threshold=0.5)))))(xb)
    gd = jax.grad(lambda x: jnp.sum(psu_jax.psu(x, threshold=0.5)))(jnp.moveaxis(xb, 0, 1))
    np.testing.assert_allclose(np.asarray(gb), np.asarray(jnp.moveaxis(gd, 1, 0)), rtol=1e-12, atol=1e-14)
    # value_and_grad through a traced (learnable) threshold and alpha under jit
    vg = jax.jit(
        jax.value_and_grad(lambda th, al: jnp.sum(psu_jax.psu(xb[0], threshold=th, surrogate_alpha=al)), (0, 1))
    )
    val, (gth, gal) = vg(0.5, 2.0)
    assert val.shape == () and gth.shape == () and gal.shape == ()


def test_no_retracing_for_same_shapes():
    traces = []

    @jax.jit
    def f(x, th):
        traces.append(1)
        return psu_jax.psu(x, threshold=th, tau=3.0)

    x1, x2 = jnp.asarray(X), jnp.asarray(X * 0.5)
    f(x1, 1.0)
    f(x2, 0.7)
    f(x1, jnp.asarray(0.9))
    assert len(traces) == 1
    # the eager path caches its compiled core on (shape, dtype, static config)
    before = functional._run._cache_size()
    psu_jax.psu(x1[:5], threshold=0.3, tau=3.5)
    mid = functional._run._cache_size()
    psu_jax.psu(x2[:5], threshold=0.9, tau=4.5)  # tau is a traced scalar inside: same program
    psu_jax.psu(x2[:5], threshold=0.9, reset_scale=0.5)  # so are reset_scale and its tie
    assert mid == before + 1 and functional._run._cache_size() == mid


def test_traced_arguments():
    x = jnp.asarray(X)
    with pytest.raises(ValueError, match=r"threshold must be .* shape \[2\]"):
        jax.jit(lambda th: psu_jax.psu(x, threshold=th))(jnp.ones(2))
    with pytest.raises(ValueError, match="surrogate_alpha must be .* dtype bool"):
        jax.jit(lambda al: psu_jax.psu(x, surrogate_alpha=al))(jnp.asarray(True))
    with pytest.raises(TypeError, match="tau must be a concrete number"):
        jax.jit(lambda tau: psu_jax.psu(x, tau=tau))(2.0)
    with pytest.raises(ValueError, match="validate=True"):
        jax.jit(lambda x: psu_jax.psu(x, validate=True))(x)
    # concrete values are checked by value, also inside eager grad
    with pytest.raises(ValueError, match="threshold"):
        jax.grad(lambda th: jnp.sum(psu_jax.psu(x, threshold=th)))(-1.0)
    with pytest.raises(ValueError, match="x must contain only finite"):
        psu_jax.psu(x.at[0, 0, 0].set(jnp.nan), validate=True)
    with pytest.raises(ValueError, match="method"):
        psu_jax.psu(x, method="fft")


SCALARS = {"threshold": 2.0, "tau": 2.0, "surrogate_alpha": 2.0, "reset_scale": 2.0}


@pytest.mark.parametrize("name", SCALARS)
def test_scalar_rule(name):
    """SPEC §8's one rule, the verdicts every backend gives: a Python or NumPy real number or a 0-d
    array (NumPy's or JAX's, integer or floating) is a scalar; an array with an axis ([1]
    included) and bool are ValueError naming the argument. A traced 0-d value (threshold,
    surrogate_alpha) is checked by shape and dtype."""
    x = jnp.asarray(X)
    want = np.asarray(psu_jax.psu(x, **SCALARS, return_membrane=True).membrane)
    for value in (2.0, 2, np.float32(2.0), np.array(2.0), np.array(2), jnp.asarray(2.0), jnp.asarray(2, jnp.int32)):
        out = psu_jax.psu(x, **{**SCALARS, name: value}, return_membrane=True)
        np.testing.assert_array_equal(np.asarray(out.membrane), want)
    for value in (np.array([2.0]), jnp.asarray([2.0]), True, np.bool_(True), jnp.asarray(True)):
        with pytest.raises(ValueError, match=name):
            psu_jax.psu(x, **{**SCALARS, name: value})
        with pytest.raises(ValueError, match=name):  # the online step checks alike
            psu_jax.step(psu_jax.init_state("psu", SHAPE), x[0], **{**SCALARS, name: value})
    if name in ("threshold", "surrogate_alpha"):
        for value in (jnp.asarray(2.0), jnp.asarray(2, jnp.int32)):
            out = jax.jit(lambda v: psu_jax.psu(x, **{**SCALARS, name: v}, return_membrane=True))(value)
            np.testing.assert_array_equal(np.asarray(out.membrane), want)
        for value in (jnp.asarray([2.0]), jnp.asarray(True)):
            with pytest.raises(ValueError, match=name):
                jax.jit(lambda v: psu_jax.psu(x, **{**SCALARS, name: v}))(value)


def test_sampled_with_jax_key_under_jit():
    x = jnp.asarray(X)
    f = jax.jit(lambda x, k: psu_jax.psu(x, reset="sampled", seed=k, return_reset=True))
    a = f(x, jax.random.key(0))
    b = f(x, jax.random.key(0))
    c = f(x, jax.random.key(1))
    np.testing.assert_array_equal(np.asarray(a.reset), np.asarray(b.reset))
    assert not np.array_equal(np.asarray(a.reset), np.asarray(c.reset))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.float16])
def test_dtypes(dtype):
    x = jnp.asarray(X, dtype)
    out = psu_jax.psu(x, threshold=0.5, return_membrane=True)
    assert out.spikes.dtype == dtype and out.membrane.dtype == dtype
    ref = reference.forward("psu", np.asarray(x.astype(jnp.float64)), threshold=0.5)
    np.testing.assert_allclose(np.asarray(out.membrane.astype(jnp.float64)), ref.membrane, rtol=3e-2, atol=3e-2)
    g = jax.grad(lambda x: jnp.sum(psu_jax.psu(x, threshold=0.5).astype(jnp.float32)))(x)
    assert g.dtype == dtype


def test_choose_method():
    assert functional.choose_method("psu", 8, 2**20, "cpu") == "dense"
    assert functional.choose_method("psu", 64, 2**17, "cpu") == "dense"
    assert functional.choose_method("psu", 256, 2**15, "cpu") == "scan"
    assert functional.choose_method("psu", 1024, 2**10, "gpu") == "associative"
    assert functional.choose_method("ipsu", 1024, 2**14, "gpu") == "dense"
    assert functional.choose_method("rpsu", 256, 2**16, "gpu") == "dense"
    assert functional.choose_method("rpsu", 256, 2**16, "cpu") == "scan"
