"""NG-Adam under ``keras.distribution.ModelParallel`` on 4 simulated JAX CPU devices.

Run by ``test_keras_backends.py`` in its own process with ``KERAS_BACKEND=jax`` and
``XLA_FLAGS=--xla_force_host_platform_device_count=4`` (both fixed at import).
"""

from __future__ import annotations

import jax
import keras
import numpy as np
import pytest

import neat.keras as nk

pytestmark = pytest.mark.skipif(
    len(jax.devices("cpu")) < 4,
    reason="needs XLA_FLAGS=--xla_force_host_platform_device_count=4 (set by test_keras_backends.py)",
)

HP = dict(learning_rate=0.01, weight_decay=0.01, gamma=0.8, zeta=0.2, mu=1.5)
SHARDED = {"d1/kernel": (None, "model"), "d1/bias": ("model",), "d2/kernel": ("model", None)}


def model_parallel():
    """A 2 × 2 mesh (batch, model) whose layout map shards ``d1`` by columns and ``d2`` by rows."""
    mesh = keras.distribution.DeviceMesh((2, 2), ["batch", "model"], keras.distribution.list_devices("cpu")[:4])
    layout_map = keras.distribution.LayoutMap(mesh)
    for path, axes in SHARDED.items():
        layout_map[path] = axes
    return keras.distribution.ModelParallel(layout_map=layout_map, batch_dim_name="batch")


def train(distribution=None):
    """Three fit steps of a two-layer model; returns the model (inside ``distribution``'s scope if given)."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(24, 6)).astype("float32"), rng.normal(size=(24, 2)).astype("float32")
    keras.utils.set_random_seed(1)
    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(8, activation="tanh", name="d1")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, name="d2")(hidden))
    model.compile(optimizer=nk.NGAdam(**HP, model=model), loss="mse")
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    return model


def moments(optimizer, variable):
    """The optimizer's ``m`` and ``v`` variables of ``variable``."""
    prefix = variable.path.replace("/", "_")
    return [v for v in optimizer.variables if v.name in (f"{prefix}_exp_avg", f"{prefix}_exp_avg_sq")]


def test_moments_are_sharded_like_their_variables_and_the_numbers_do_not_change():
    reference = [np.asarray(w) for w in train().get_weights()]
    distribution = model_parallel()
    with distribution.scope():
        model = train(distribution)
    for variable in model.trainable_variables:
        pair = moments(model.optimizer, variable)
        assert len(pair) == 2, variable.path
        for moment in pair:
            assert moment._layout is variable._layout, moment.path
            assert moment.value.sharding.is_equivalent_to(variable.value.sharding, variable.value.ndim), moment.path
    sharded = [v for v in model.trainable_variables if v.path in SHARDED]
    assert len(sharded) == 3 and all(not v.value.sharding.is_fully_replicated for v in sharded)
    for variable in sharded:
        for moment in moments(model.optimizer, variable):
            assert len(moment.value.sharding.device_set) == 4
            assert not moment.value.sharding.is_fully_replicated, moment.path
    for got, expected in zip(model.get_weights(), reference):
        np.testing.assert_allclose(np.asarray(got), expected, rtol=2e-5, atol=2e-6)
