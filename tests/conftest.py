"""Test-session settings shared by every test folder."""

import os

# JAX's sharding tests need several devices; on CPU they are simulated. This must
# be set before anything imports jax, and is harmless for every other test.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
