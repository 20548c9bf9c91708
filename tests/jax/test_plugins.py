"""The JAX backend record, the pytree adapter's layout hook and its conformance driver."""

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import neat.backends.jax_backend as jax_backend
from neat.adapters import optax_adapter
from neat.conformance.golden import load_all
from neat.plugins import param_layout, plugin_manager
from tests.jax.models import mlp_params


def test_backend_info_round_trips_and_lists_float64_only_in_x64_mode():
    info = jax_backend.neat_backend_info()
    assert info.name == "jax" and info.requires == ("jax",)
    assert ("float64" in info.dtypes) == bool(jax.config.jax_enable_x64)
    values = np.array([1.5, -2.25, 3.0])
    for dtype in ("float32", "bfloat16"):
        array = info.from_numpy(values, dtype)
        assert isinstance(array, jax.Array) and array.dtype == jnp.dtype(dtype)
        np.testing.assert_array_equal(info.to_numpy(array), values)
    if not jax.config.jax_enable_x64:
        with pytest.raises(RuntimeError, match="JAX_ENABLE_X64"):
            info.from_numpy(values, "float64")
    registered = plugin_manager().hook.neat_backend_info()  # each plug-in: one record or a list of them
    assert any(getattr(record, "name", None) == "jax" for record in registered)


def test_param_layout_claims_jax_pytrees_and_flax_state_only():
    layout = param_layout(mlp_params())
    assert layout.player_names == ("params/Dense_0", "params/Dense_1") and len(layout.tensors) == 4
    model = nnx.Linear(3, 2, rngs=nnx.Rngs(0))
    nnx_layout = param_layout(model)
    assert list(nnx_layout.names) == ["bias", "kernel"] and nnx_layout.players == [[0, 1]]
    assert param_layout(nnx.state(model, nnx.Param)).names == nnx_layout.names
    for not_ours in (
        [np.zeros(3)],
        [jnp.zeros(3)],
        {"w": np.zeros(3)},
        jnp.zeros(3),
        {"w": jnp.zeros(3), "n": np.zeros(2)},
        {},
    ):
        assert optax_adapter.neat_param_layout(not_ours, graph=None) is None


def test_adapter_run_matches_the_golden_problems_in_float32():
    info = optax_adapter.neat_adapter_info()
    assert info.name == "optax.ng_adam" and info.requires == ("jax", "optax") and "float32" in info.dtypes
    for problem in [p for p in load_all() if p.name in ("chain3", "skips", "star5")]:  # all: conformance suite
        history = info.run(problem, "float32")
        assert len(history) == problem.num_steps
        for got, expected in zip(history, problem.expected_params):
            for g, e in zip(got, expected):
                assert g.dtype == np.float64
                np.testing.assert_allclose(g, e, rtol=2e-4, atol=2e-5, err_msg=problem.name)


def test_adapter_runs_float64_under_x64_to_reference_precision():
    """In a fresh process with JAX_ENABLE_X64=1 (x64 mode cannot be switched inside this one)."""
    script = (
        "from neat.adapters import optax_adapter as a\n"
        "from neat.conformance.golden import load_all\n"
        "import numpy as np\n"
        "info = a.neat_adapter_info(); assert 'float64' in info.dtypes\n"
        "for p in [p for p in load_all() if p.name == 'skips']:\n"
        "    for got, exp in zip(info.run(p, 'float64'), p.expected_params):\n"
        "        for g, e in zip(got, exp): np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-12)\n"
    )
    env = dict(os.environ, JAX_ENABLE_X64="1", JAX_PLATFORMS="cpu")
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
