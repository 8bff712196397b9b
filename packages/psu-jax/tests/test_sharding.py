"""Sharding over the neuron axes: jit with shardings and shard_map give the unsharded result.

Runs in a subprocess because the number of host devices is fixed when JAX starts.
"""

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import jax, numpy as np, jax.numpy as jnp
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
    import psu_jax
    assert len(jax.devices()) == 2
    mesh = Mesh(np.array(jax.devices()), ("n",))
    x = jnp.asarray(np.random.default_rng(0).normal(size=(6, 8, 3)), jnp.float32)
    w = jnp.asarray(np.random.default_rng(1).normal(size=(6, 6)), jnp.float32); b = jnp.zeros(6)
    def loss(x, th):
        return jnp.sum(psu_jax.rpsu(x, w, b, threshold=th) * x)
    ref_val, ref_g = jax.value_and_grad(loss, (0, 1))(x, 0.5)
    xs = jax.device_put(x, NamedSharding(mesh, P(None, "n")))
    val, g = jax.jit(jax.value_and_grad(loss, (0, 1)))(xs, 0.5)
    np.testing.assert_allclose(val, ref_val, rtol=1e-6); np.testing.assert_allclose(g[0], ref_g[0], rtol=1e-6)
    np.testing.assert_allclose(g[1], ref_g[1], rtol=1e-5)
    shard_map = getattr(jax, "shard_map", None)
    if shard_map is None:
        from jax.experimental.shard_map import shard_map
    f = shard_map(lambda x: psu_jax.psu(x, threshold=0.5), mesh=mesh, in_specs=P(None, "n"), out_specs=P(None, "n"))
    np.testing.assert_array_equal(np.asarray(jax.jit(f)(xs)), np.asarray(psu_jax.psu(x, threshold=0.5)))
    print("ok")
    """
)


def test_sharded_over_neurons_equals_unsharded():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-3000:]
