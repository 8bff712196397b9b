"""Four virtual CPU devices for this directory, which runs in its own pytest process:

    python -m pytest -p no:cacheprovider packages/psu-jax/tests_distributed

JAX fixes the number of host devices when it starts its CPU backend, so the flag is set here,
before jax is imported; a process whose backend already started with fewer devices (this directory
collected together with other tests) stops with a usage error instead of running on one device.
Two-device meshes use the first two of the four.
"""

import os

import pytest

DEVICES = 4
_FLAG = f"--xla_force_host_platform_device_count={DEVICES}"

if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_FLAG}".strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")  # virtual CPU devices, also on a machine with a GPU

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)  # float64: equal to rounding, spikes exactly

if len(jax.devices()) < DEVICES or jax.default_backend() != "cpu":
    raise pytest.UsageError(
        f"tests_distributed needs {DEVICES} CPU devices, found {jax.devices()}: JAX started before "
        f"this conftest could set {_FLAG}; run this directory in its own pytest process"
    )
