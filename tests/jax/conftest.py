"""The JAX tests need jax, optax and flax (the ``jax`` extra)."""

import pytest

for _module in ("jax", "optax", "flax"):
    pytest.importorskip(_module, reason=f"{_module} is not installed (optional framework: pip install -e '.[jax]')")
