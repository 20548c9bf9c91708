"""Keras front-end cases, run once per Keras backend by ``test_keras_backends.py``.

The backend is fixed by ``KERAS_BACKEND`` when Keras is imported, so this file
is run in a subprocess per backend (``python -m pytest tests/keras/keras_cases.py``);
its name keeps pytest from collecting it in the parent process.
"""

from __future__ import annotations

import os
import warnings

import keras
import numpy as np
import pytest

import neat
import neat.keras as nk
from neat import checkpoint, hyperparameters, kernel_selection
from neat.adapters import keras_adapter
from neat.conformance.golden import golden_hyperparameters, load_all
from neat.kernels import GENERIC
from neat.state import GameState
from neat.topology import Topology

BACKEND = keras.config.backend()
EPS32 = float(np.finfo(np.float32).eps)
UNBOUND = "NGAdam has no model bound"
# Standalone variables (``optimizer.apply`` on ``keras.Variable``s) have no model to bind: that warning is expected.
pytestmark = pytest.mark.filterwarnings(f"ignore:{UNBOUND}:UserWarning")
# NGAdam's defaults for SPEC's ω and ε are keras.optimizers.AdamW's, not neat.ng_adam's.
KERAS_DEFAULTS = dict(weight_decay=nk.KERAS_ADAMW_DEFAULTS["weight_decay"], eps=nk.KERAS_ADAMW_DEFAULTS["epsilon"])
NEAT_HP = hyperparameters.framework_values("keras", golden_hyperparameters(lr=0.01, gamma=0.8, mu=1.5))


def residual_model(seed=0):
    """d1 → d2 → Add(d1, d2) → d3: the Add gives the extra d1–d3 edge."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((6,))
    a = keras.layers.Dense(8, activation="tanh", name="d1")(inputs)
    b = keras.layers.Dense(8, activation="tanh", name="d2")(a)
    c = keras.layers.Add()([a, b])
    return keras.Model(inputs, keras.layers.Dense(3, name="d3")(c))


def data(n=160, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype("float32")
    y = np.tanh(x[:, :3] * 2.0 - x[:, 3:]).astype("float32")
    return x, y


def weights(model):
    return [np.array(w) for w in model.get_weights()]


def assert_weights_close(actual, expected, rtol=2e-5, atol=2e-6):
    for k, (a, e) in enumerate(zip(actual, expected)):
        np.testing.assert_allclose(a, e, rtol=rtol, atol=atol, err_msg=f"tensor {k}")


def gradient_function(model):
    """``(x, y) → gradients`` of the mean squared error with the backend's own autodiff (independent of fit)."""
    loss = keras.losses.MeanSquaredError()
    if BACKEND == "torch":
        import torch

        def torch_gradients(x, y):
            value = loss(keras.ops.convert_to_tensor(y), model(keras.ops.convert_to_tensor(x)))
            return list(torch.autograd.grad(value, [v.value for v in model.trainable_variables]))

        return torch_gradients
    import jax

    def objective(trainable, x, y):
        prediction, _ = model.stateless_call(trainable, [v.value for v in model.non_trainable_variables], x)
        return loss(y, prediction)

    grad = jax.jit(jax.grad(objective))
    return lambda x, y: grad([v.value for v in model.trainable_variables], x, y)


def bound(optimizer, model):
    """``optimizer`` with ``model`` bound when it is NEAT's (Keras' own optimizers take no model)."""
    return optimizer.bind(model) if isinstance(optimizer, nk.NGAdam) else optimizer


def compiled(fn):
    """``fn`` jitted on JAX (eager JAX dispatches every small op), as is on torch."""
    if BACKEND == "jax":
        import jax

        return jax.jit(fn)
    return fn


# --------------------------------------------------------------- the core
def test_fit_matches_the_functional_core_for_20_steps():
    x, y = data()
    model = residual_model()
    initial = weights(model)
    model.compile(optimizer=nk.NGAdam(**NEAT_HP, model=model), loss="mse")
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 20

    twin = residual_model()
    twin.set_weights(initial)
    layout = neat.plugins.param_layout(twin)
    hp = {**NEAT_HP}
    opt = neat.ng_adam(
        lr=hp.pop("learning_rate"), betas=(hp.pop("beta_1"), hp.pop("beta_2")), eps=hp.pop("epsilon"), **hp
    )
    values = [v.value for v in twin.trainable_variables]
    state = opt.init(values, layout.players, layout.graph)
    step, gradients = compiled(opt.step), gradient_function(twin)
    for start in range(0, len(x), 8):
        grads = gradients(x[start : start + 8], y[start : start + 8])
        values, state = step([v.value for v in twin.trainable_variables], list(grads), state)
        for variable, value in zip(twin.trainable_variables, values):
            variable.assign(value)
    assert_weights_close(weights(model), weights(twin))
    assert not np.allclose(weights(model)[0], initial[0])


def test_reduces_to_keras_adamw_for_100_steps():
    """γ = ζ = 0 is AdamW (SPEC "Required reductions").

    Keras' AdamW (3.15, ``Adam.update_step``) computes
    ``θ ← θ(1 − ηω) − η·√(1−β2^t)/(1−β1^t)·m / (√v + ε_k)``, i.e. SPEC's
    ``η·m̂ / (√v̂ + ε_k/√(1−β2^t))``: its ε is scaled by ``1/√(1−β2^t)``, so the
    two agree for any ε only when ε = 0. The comparison therefore runs both with
    ε = 0 (tanh layers keep every gradient entry non-zero, so ``√v > 0``).
    """
    x, y = data(n=400)
    runs = []
    for optimizer in (
        keras.optimizers.AdamW(learning_rate=3e-3, weight_decay=0.05, beta_1=0.9, beta_2=0.99, epsilon=0.0),
        nk.NGAdam(
            learning_rate=3e-3, weight_decay=0.05, beta_1=0.9, beta_2=0.99, epsilon=0.0, gamma=0.0, zeta=0.0, mu=2.0
        ),
    ):
        model = residual_model(seed=3)
        model.compile(optimizer=bound(optimizer, model), loss="mse")
        model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
        runs.append(weights(model))
    assert_weights_close(runs[1], runs[0], rtol=1e-4, atol=1e-5)


def test_reduction_fails_with_nge_on():
    """The reduction test can fail: with γ, ζ > 0 the weights move away from AdamW's."""
    x, y = data(n=400)
    runs = []
    for optimizer in (
        keras.optimizers.AdamW(learning_rate=3e-3, weight_decay=0.05, epsilon=0.0),
        nk.NGAdam(learning_rate=3e-3, weight_decay=0.05, epsilon=0.0, gamma=1.0, zeta=0.3),
    ):
        model = residual_model(seed=3)
        model.compile(optimizer=bound(optimizer, model), loss="mse")
        model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
        runs.append(weights(model))
    assert max(np.max(np.abs(a - b)) for a, b in zip(runs[0], runs[1])) > 1e-3


# ------------------------------------------------------ Keras conventions
def run_apply(optimizer, grads_per_step, initial):
    """``optimizer.apply`` on standalone variables ``p0, p1, …`` (one player each, a chain)."""
    variables = [keras.Variable(p, name=f"p{k}") for k, p in enumerate(initial)]
    for grads in grads_per_step:
        optimizer.apply([None if g is None else keras.ops.convert_to_tensor(g) for g in grads], variables)
    return [np.array(keras.ops.convert_to_numpy(v.value)) for v in variables]


@pytest.mark.filterwarnings("ignore:Gradients do not exist")
def test_a_variable_without_gradient_is_inactive():
    """SPEC v2: a tensor Keras passes no gradient for keeps θ, m, v and t_k; the others play the sub-game."""
    rng = np.random.default_rng(7)
    initial = [rng.normal(size=s).astype("float32") for s in [(3, 2), (2,), (4,)]]
    steps = [[rng.normal(size=p.shape).astype("float32") for p in initial] for _ in range(5)]
    steps[1][1] = steps[2][1] = None
    optimizer = nk.NGAdam(learning_rate=0.05, gamma=0.7, zeta=0.3, mu=2.0)
    got = run_apply(optimizer, steps, initial)

    reference = neat.ng_adam(lr=0.05, gamma=0.7, zeta=0.3, mu=2.0, **KERAS_DEFAULTS)
    topology = Topology.build(len(initial), None, None, mu=reference.config.mu)
    params, state = list(initial), neat.functional.init_state(list(initial), topology)
    for grads in steps:
        params, state = neat.functional.step(params, grads, state, reference.config, topology=topology)
    assert_weights_close(got, params)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(optimizer.game_state().tensor_count), [5, 3, 5])


def test_state_variables_are_the_game_state_fields_then_the_moments():
    model = residual_model()
    optimizer = nk.NGAdam(model=model)
    optimizer.build(model.trainable_variables)
    names = [v.name for v in optimizer.variables]
    game = [f"neat_{field}" for field in GameState._fields]
    assert names[2 : 2 + len(game)] == game  # after Keras' iterations and learning_rate
    assert names[2 + len(game) :] == [
        f"{v.path.replace('/', '_')}_{kind}" for kind in ("exp_avg", "exp_avg_sq") for v in model.trainable_variables
    ]
    assert isinstance(optimizer.game_state(), GameState)


def test_kernels_are_chosen_by_kernel_selection():
    """Default: the highest-priority kernel set for the variables' arrays; a name picks a set; the
    fused default gives GENERIC's numbers in fit."""
    model = residual_model()
    values = [v.value for v in model.trainable_variables]
    default = nk.NGAdam()
    default.build(model.trainable_variables)
    expected = kernel_selection.default_kernel_set(neat.arrays.namespace_of(values), values)
    assert default._plan.kernels is expected.kernels
    named = nk.NGAdam(kernels="generic")
    named.build(model.trainable_variables)
    assert named._plan.kernels is GENERIC
    with pytest.raises(ValueError, match="unknown kernel set 'nope'"):
        nk.NGAdam(kernels="nope").build(model.trainable_variables)
    with pytest.raises(TypeError, match="kernels must be None or the name"):
        nk.NGAdam(kernels=GENERIC)

    x, y = data(n=48)
    runs = []
    for kernels in (None, "generic"):
        fitted = residual_model(seed=5)
        fitted.compile(optimizer=nk.NGAdam(**NEAT_HP, kernels=kernels, model=fitted), loss="mse")
        fitted.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
        runs.append(weights(fitted))
    assert_weights_close(runs[0], runs[1])


@pytest.mark.parametrize("clip", [{"clipnorm": 0.5}, {"global_clipnorm": 0.5}])
def test_schedule_and_clipping_follow_keras(clip):
    rng = np.random.default_rng(4)
    initial = [rng.normal(size=(3, 2)).astype("float32"), rng.normal(size=(2,)).astype("float32")]
    steps = [[rng.normal(size=p.shape).astype("float32") * 3.0 for p in initial] for _ in range(6)]
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=2, decay_rate=0.5)
    got = run_apply(nk.NGAdam(learning_rate=schedule, gamma=0.5, zeta=0.3, **clip), steps, initial)

    opt = neat.ng_adam(gamma=0.5, zeta=0.3, **KERAS_DEFAULTS)
    params = [p.copy() for p in initial]
    state = opt.init(params)  # standalone variables "p0", "p1": one player each, chain
    for t, grads in enumerate(steps):
        if "clipnorm" in clip:
            grads = [g * min(1.0, 0.5 / np.linalg.norm(g)) for g in grads]
        else:
            norm = np.sqrt(sum(np.sum(g.astype(np.float64) ** 2) for g in grads))
            grads = [(g * min(1.0, 0.5 / norm)).astype("float32") for g in grads]
        lr = np.float32(0.1 * 0.5 ** (t / 2))
        params, state = neat.functional.step(params, grads, state, opt.config, lr=lr)
    assert_weights_close(got, params)


def test_config_round_trip():
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=5, decay_rate=0.9)
    optimizer = nk.NGAdam(
        learning_rate=schedule,
        gamma=0.3,
        zeta=0.1,
        mu=0.5,
        step_bounds=(0.25, 4.0),
        leak=0.1,
        players=[[0, 1], [2]],
        graph=[(0, 1, 2.0)],
        global_clipnorm=1.0,
        kernels="generic",
    )
    config = optimizer.get_config()
    clone = nk.NGAdam.from_config(dict(config))
    assert clone.get_config() == config
    assert clone.neat_config == optimizer.neat_config
    assert config["graph"] == {"edges": [[0, 1, 2.0]]} and config["players"] == [[0, 1], [2]]
    assert config["kernels"] == "generic"
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(optimizer))
    assert isinstance(restored, nk.NGAdam) and restored.neat_config == optimizer.neat_config


def test_invalid_hyperparameters_are_named():
    for bad, name in [
        (dict(gamma=1.5), "gamma"),
        (dict(beta_2=1.0), "betas"),
        (dict(step_bounds=(2.0, 3.0)), "step_bounds"),
    ]:
        with pytest.raises(ValueError, match=name):
            nk.NGAdam(**bad)


def test_bad_players_raise_before_any_change():
    variables = [keras.Variable(np.ones((2, 2), "float32"), name="a"), keras.Variable(np.ones(2, "float32"))]
    optimizer = nk.NGAdam(players=[[0]])
    with pytest.raises(ValueError, match="belong to no player"):
        optimizer.apply([keras.ops.ones((2, 2)), keras.ops.ones((2,))], variables)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(variables[0].value), np.ones((2, 2)))


def test_non_finite_gradients_skip_the_step_in_fit():
    """A NaN batch inside a compiled fit step is skipped (SPEC step 0) with no host sync:
    on JAX the step is jitted, so a host read of a value would fail to trace."""
    x, y = data(n=32)
    y[8:16] = np.nan  # the second batch of 8
    model = residual_model()
    model.compile(optimizer=nk.NGAdam(**NEAT_HP, model=model), loss="mse")
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    info = model.optimizer.diagnostics()
    assert int(keras.ops.convert_to_numpy(info["skipped_steps"])) == 1
    assert int(keras.ops.convert_to_numpy(model.optimizer.game_state().count)) == 3
    assert all(np.all(np.isfinite(w)) for w in weights(model))


def test_variables_are_tracked_and_exclude_from_weight_decay():
    model = residual_model()
    optimizer = nk.NGAdam(learning_rate=0.1, weight_decay=0.5, gamma=0.0, zeta=0.0, model=model)
    optimizer.exclude_from_weight_decay(var_names=["bias"])
    model.compile(optimizer=optimizer, loss="mse")
    optimizer.build(model.trainable_variables)
    paths = [v.path for v in optimizer.variables]
    assert len(paths) == 2 + len(GameState._fields) + 2 * 6 and not any(p in paths for p in ("d1/kernel", "d1/bias"))
    zero = [np.zeros(w.shape, "float32") for w in model.trainable_weights]
    before = weights(model)
    optimizer.apply([keras.ops.convert_to_tensor(z) for z in zero], model.trainable_variables)
    after = weights(model)
    np.testing.assert_allclose(after[0], before[0] * (1 - 0.1 * 0.5), rtol=1e-6)  # kernel decays
    np.testing.assert_array_equal(after[1], before[1])  # bias excluded


def test_weight_decay_set_after_construction_is_read_at_every_step():
    """``optimizer.weight_decay = …`` takes effect at the next step, as in Keras' AdamW (SPEC step 9
    with a per-step ω); ``None`` is no decay. Zero gradients: θ ← θ·(1 − ηω) only."""
    initial = [np.full((2, 2), 2.0, "float32")]
    optimizer = nk.NGAdam(learning_rate=0.1, weight_decay=0.5)
    variables = [keras.Variable(initial[0], name="w")]
    expected = initial[0]
    for weight_decay in (0.5, 0.2, None, 0.5):
        optimizer.weight_decay = weight_decay
        optimizer.apply([keras.ops.zeros((2, 2))], variables)
        expected = expected * (1 - 0.1 * (weight_decay or 0.0))
        np.testing.assert_allclose(keras.ops.convert_to_numpy(variables[0].value), expected, rtol=1e-6)


# ------------------------------------------------------------ save / load
def test_save_and_load_resume_exactly(tmp_path):
    x, y = data()
    model = residual_model()
    model.compile(optimizer=nk.NGAdam(**NEAT_HP, model=model), loss="mse")
    model.fit(x[:80], y[:80], batch_size=8, epochs=1, shuffle=False, verbose=0)
    path = os.fspath(tmp_path / "m.keras")
    model.save(path)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=UNBOUND)  # players and graph come back from the config
        loaded = keras.models.load_model(path)
    assert isinstance(loaded.optimizer, nk.NGAdam)
    saved, restored = model.optimizer, loaded.optimizer
    assert restored.player_names == ["d1", "d2", "d3"]
    np.testing.assert_array_equal(restored._plan.topology.smoothing(), saved._plan.topology.smoothing())
    assert len(saved.variables) == len(restored.variables)
    for a, b in zip(saved.variables, restored.variables):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(a.value), keras.ops.convert_to_numpy(b.value), err_msg=a.path
        )
    assert int(keras.ops.convert_to_numpy(restored.game_state().count)) == 10
    assert np.any(keras.ops.convert_to_numpy(restored.game_state().log_step) != 0)
    for m in (model, loaded):
        m.fit(x[80:], y[80:], batch_size=8, epochs=1, shuffle=False, verbose=0)
    assert_weights_close(weights(loaded), weights(model), rtol=0, atol=0)


# ---------------------------------------------------------- checkpoint content
#: One problem's hyperparameters under NEAT's names; the learning rate is a power of two, which Keras'
#: float32 learning-rate variable holds exactly.
CHECKPOINT_HP = golden_hyperparameters(lr=2.0**-6, gamma=0.8, mu=1.5)
KERAS_CHECKPOINT_HP = hyperparameters.framework_values("keras", CHECKPOINT_HP)


def checkpoint_problem():
    """3 tensors, players [[0, 1], [2]] on a weighted edge, 3 steps; tensor 1 sits step 1 out."""
    rng = np.random.default_rng(3)
    initial = [rng.normal(size=s).astype("float32") for s in [(3, 2), (2,), (2, 4)]]
    steps = [[rng.normal(size=p.shape).astype("float32") for p in initial] for _ in range(3)]
    steps[1][1] = None
    return initial, steps, dict(players=[[0, 1], [2]], graph=[[0.0, 2.5], [2.5, 0.0]])


def torch_checkpoint(initial, steps, game):
    import torch

    import neat.torch

    params = [torch.tensor(p, requires_grad=True) for p in initial]
    optimizer = neat.torch.NGAdam(params, **CHECKPOINT_HP, **game)
    for grads in steps:
        for param, grad in zip(params, grads):
            param.grad = None if grad is None else torch.tensor(grad)
        optimizer.step()
    return optimizer.state_dict()["neat"]


def in_place_checkpoint(initial, steps, game):
    optimizer = neat.NGAdam([p.copy() for p in initial], **CHECKPOINT_HP, **game)
    for grads in steps:
        optimizer.step(grads)
    return {key: value for key, value in optimizer.state_dict().items() if key in checkpoint.HEADER}


def keras_checkpoint(initial, steps, game):
    optimizer = nk.NGAdam(**KERAS_CHECKPOINT_HP, **game)
    run_apply(optimizer, steps, initial)
    return {**optimizer.get_config()["neat"], **optimizer.game_state()._asdict()}


@pytest.mark.filterwarnings("ignore:Gradients do not exist")
def test_every_front_end_checkpoints_the_same_content():
    """neat.checkpoint's content of one problem, as torch's state_dict()["neat"], the in-place
    state_dict() and Keras' get_config()["neat"] with its GameState variables: the same keys in the
    same order and the same values (spec version, hyperparameters, players, graph and counts exactly;
    the statistics-dtype fields to the rounding of each front end's kernels). optax's state pytree
    holds the same GameState fields (its checkpoint: hyperparameters are the transformation's)."""
    import jax.numpy as jnp

    import neat.optax

    initial, steps, game = checkpoint_problem()
    contents = {
        "in place": in_place_checkpoint(initial, steps, game),
        "torch": torch_checkpoint(initial, steps, game),
        "keras": keras_checkpoint(initial, steps, game),
    }
    transformation = neat.optax.ng_adam(
        CHECKPOINT_HP["lr"],
        *CHECKPOINT_HP["betas"],
        CHECKPOINT_HP["eps"],
        weight_decay=CHECKPOINT_HP["weight_decay"],
        **{key: CHECKPOINT_HP[key] for key in checkpoint.GAME_HYPERPARAMETERS},
        **game,
    )
    params = [jnp.asarray(p) for p in initial]
    state = transformation.init(params)
    for grads in steps:
        updates, state = transformation.update([None if g is None else jnp.asarray(g) for g in grads], state, params)
        params = [p + u for p, u in zip(params, updates)]
    assert isinstance(state.game, GameState)

    reference = contents["in place"]
    assert reference["tensor_count"].tolist() == [3, 2, 3] and reference["player_of"].tolist() == [0, 0, 1]
    assert {key: reference[key] for key in checkpoint.HYPERPARAMETERS} == CHECKPOINT_HP
    floats = ("log_step", "alignment", "conflict")
    for name, content in [*contents.items(), ("optax", state.game._asdict())]:
        keys = list(checkpoint.HEADER) if name != "optax" else list(GameState._fields)
        assert list(content) == keys, name
        for key in keys:
            got, expected = checkpoint.host(content[key]), np.asarray(reference[key])
            if key in floats:
                np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7, err_msg=f"{name}: {key}")
            else:
                np.testing.assert_array_equal(got, expected, err_msg=f"{name}: {key}")


def test_restored_settings_are_checked_when_built():
    """get_config()["neat"] (neat.checkpoint.settings) is checked when a restored optimizer is built:
    other players, graph, game hyperparameters or spec version are refused before anything is built."""
    initial, _, game = checkpoint_problem()
    optimizer = nk.NGAdam(**KERAS_CHECKPOINT_HP, **game)
    assert optimizer.get_config()["neat"] is None  # the settings exist once built
    variables = [keras.Variable(p, name=f"p{k}") for k, p in enumerate(initial)]
    optimizer.build(variables)
    config = optimizer.get_config()
    assert list(config["neat"]) == list(checkpoint.SETTINGS) and config["neat"]["player_of"] == [0, 0, 1]
    assert nk.NGAdam.from_config(dict(config)).get_config() == config
    for change, message in [
        (dict(player_of=[0, 1, 1]), "players differ"),
        (dict(graph=[[0.0, 1.0], [1.0, 0.0]]), "has graph="),
        (dict(gamma=0.5), "has gamma=0.5 but this optimizer has gamma=0.8"),
        (dict(spec_version=1), "spec version 1"),
    ]:
        restored = nk.NGAdam.from_config({**config, "neat": {**config["neat"], **change}})
        with pytest.raises(ValueError, match=message):
            restored.build(variables)
        assert not restored.built and len(restored.variables) == 2  # Keras' iterations and learning rate only


@pytest.mark.filterwarnings("ignore:Gradients do not exist")
def test_loaded_variables_are_checked_before_any_is_assigned():
    """load_own_variables refuses a bad GameState field or moment (neat.checkpoint.checked_state)
    before it assigns a variable; a good store loads."""
    initial, steps, game = checkpoint_problem()
    source, target = nk.NGAdam(**KERAS_CHECKPOINT_HP, **game), nk.NGAdam(**KERAS_CHECKPOINT_HP, **game)
    run_apply(source, steps, initial)
    run_apply(target, steps[:1], initial)
    good: dict = {}
    source.save_own_variables(good)
    names = [v.name for v in target.variables]
    before = [keras.ops.convert_to_numpy(v.value) for v in target.variables]
    for name, value, message in [
        ("neat_count", np.int32(-1), r"'count'\] must hold non-negative"),
        ("neat_log_step", np.array([0.0, np.nan], "float32"), r"'log_step'\] must hold finite"),
        ("p2_exp_avg_sq", -np.ones((2, 4), "float32"), r"'exp_avg_sq.2'\] has negative entries"),
        ("p0_exp_avg", np.zeros((2, 3), "float32"), r"'exp_avg.0'\] has shape \(2, 3\), expected \(3, 2\)"),
    ]:
        with pytest.raises(ValueError, match=message):
            target.load_own_variables({**good, str(names.index(name)): value})
        for variable, kept in zip(target.variables, before):
            np.testing.assert_array_equal(keras.ops.convert_to_numpy(variable.value), kept, err_msg=variable.name)
    target.load_own_variables(good)
    assert int(keras.ops.convert_to_numpy(target.game_state().count)) == 3


# ---------------------------------------------------------- players/graph
def test_players_follow_layer_connectivity():
    residual = keras_adapter.model_layout(residual_model())
    assert residual.player_names == ["d1", "d2", "d3"]
    assert residual.players == [[0, 1], [2, 3], [4, 5]]
    assert residual.graph == [(0, 1, 1.0), (0, 2, 1.0), (1, 2, 1.0)]  # d1–d3 from the residual Add

    keras.utils.set_random_seed(0)
    sequential = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(3),
            keras.layers.Dropout(0.1),
            keras.layers.Dense(2),
            keras.layers.Dense(1),
        ]
    )
    assert keras_adapter.model_layout(sequential).graph == [(0, 1, 1.0), (1, 2, 1.0)]


def test_nested_model_is_expanded():
    inner_in = keras.Input((4,))
    h = keras.layers.Dense(4, name="i1")(inner_in)
    inner = keras.Model(inner_in, keras.layers.Add()([inner_in, keras.layers.Dense(4, name="i2")(h)]), name="inner")
    inputs = keras.Input((4,))
    first = keras.layers.Dense(4, name="o1")(inputs)
    outer = keras.Model(inputs, keras.layers.Dense(1, name="o2")(inner(first)))
    layout = keras_adapter.model_layout(outer)
    assert layout.player_names == ["o1", "i1", "i2", "o2"]
    # o1→i1→i2, and the inner residual joins o1 to the inner model's exit (i2) and both to o2.
    assert layout.graph == [(0, 1, 1.0), (0, 3, 1.0), (1, 2, 1.0), (2, 3, 1.0)]


def test_subclassed_model_gets_a_chain():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.a, self.b = keras.layers.Dense(3), keras.layers.Dense(1)

        def call(self, x):
            return self.b(self.a(x))

    net = Net()
    net(np.zeros((1, 2), "float32"))
    layout = neat.plugins.param_layout(net)
    assert layout.players == [[0, 1], [2, 3]] and layout.graph is None
    assert keras_adapter.neat_param_layout(object(), graph=None) is None


def layer_smoothing(graph, mu=neat.DEFAULTS["mu"]):
    """S of the residual model's three layer players with ``graph`` (``None``: the chain)."""
    return Topology.build(6, [[0, 1], [2, 3], [4, 5]], graph, mu=mu).smoothing()


def test_fit_builds_players_from_the_bound_model_and_explicit_players_win():
    x, y = data(n=16)
    model = residual_model()
    model.compile(optimizer=nk.NGAdam().bind(model), loss="mse")
    model.fit(x, y, batch_size=8, verbose=0)
    smoothing = model.optimizer._plan.topology.smoothing()
    assert model.optimizer.player_names == ["d1", "d2", "d3"]
    np.testing.assert_allclose(smoothing, layer_smoothing([(0, 1, 1.0), (0, 2, 1.0), (1, 2, 1.0)]))  # residual d1–d3
    assert not np.allclose(smoothing, layer_smoothing(None))

    explicit = residual_model()
    explicit.compile(optimizer=nk.NGAdam(players=[[0, 1, 2, 3], [4, 5]]), loss="mse")
    explicit.fit(x, y, batch_size=8, verbose=0)
    assert explicit.optimizer.player_names == ["player_0", "player_1"]


def test_an_unbound_optimizer_warns_and_takes_players_from_paths():
    """No frame walking: ``fit`` does not hand the model to the optimizer, so without ``bind`` the
    players are the variables' owning paths on a chain, with a warning that says how to bind."""
    x, y = data(n=16)
    model = residual_model()
    model.compile(optimizer=nk.NGAdam(), loss="mse")
    with pytest.warns(UserWarning, match=f"{UNBOUND}.*per variable.*model=model.*bind\\(model\\)"):
        model.fit(x, y, batch_size=8, verbose=0)
    assert model.optimizer.player_names == ["d1", "d2", "d3"]
    np.testing.assert_allclose(model.optimizer._plan.topology.smoothing(), layer_smoothing(None))  # the chain
    with pytest.raises(TypeError, match="bind needs a keras.Model"):
        nk.NGAdam().bind(object())
    with pytest.raises(ValueError, match="bind the model before the optimizer is built"):
        model.optimizer.bind(model)
    with pytest.raises(ValueError, match="player_names: got 1 names for 2 players"):
        nk.NGAdam(players=[[0], [1]], player_names=["a"])


def test_a_bound_model_gives_players_to_the_variables_the_optimizer_is_built_with():
    """Some of the model's variables: their layers' players and the graph between them; a variable
    the model does not train is refused."""
    model = residual_model()
    optimizer = nk.NGAdam(model=model)
    optimizer.build(model.trainable_variables[2:])  # d2 and d3
    assert optimizer.player_names == ["d2", "d3"] and optimizer.players == [[0, 1], [2, 3]]
    assert optimizer.graph == {"edges": [[0, 1, 1.0]]}
    with pytest.raises(ValueError, match=r"NGAdam is bound to a model that does not train \['stray'\]"):
        nk.NGAdam(model=model).build([keras.Variable(np.zeros(2, "float32"), name="stray")])


def test_resolved_players_and_graph_are_in_the_config():
    model = residual_model()
    optimizer = nk.NGAdam(gamma=0.3, model=model)
    assert optimizer.get_config()["players"] is None  # resolved when built
    optimizer.build(model.trainable_variables)
    config = optimizer.get_config()
    assert config["players"] == [[0, 1], [2, 3], [4, 5]] and config["player_names"] == ["d1", "d2", "d3"]
    assert config["graph"] == {"edges": [[0, 1, 1.0], [0, 2, 1.0], [1, 2, 1.0]]}  # with the residual d1–d3
    clone = nk.NGAdam.from_config(dict(config))
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=UNBOUND)
        clone.build(residual_model().trainable_variables)
    assert clone.get_config() == config and clone.player_names == ["d1", "d2", "d3"]
    np.testing.assert_array_equal(clone._plan.topology.smoothing(), optimizer._plan.topology.smoothing())


# ------------------------------------------------------------ diagnostics
def test_diagnostics_callback_fills_logs():
    x, y = data(n=64)
    model = residual_model()
    model.compile(optimizer=nk.NGAdam(**NEAT_HP, model=model), loss="mse")
    history = model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0, callbacks=[nk.NEATDiagnostics()])
    logs = history.history
    assert len(logs["neat_mean_alignment"]) == 2
    per_player = [logs[f"neat_alignment/{name}"][-1] for name in ("d1", "d2", "d3")]
    assert logs["neat_mean_alignment"][-1] == pytest.approx(np.mean(per_player), abs=1e-6)
    scales = [logs[f"neat_step_scale/{name}"][-1] for name in ("d1", "d2", "d3")]
    assert all(0.5 <= s <= 2.0 for s in scales) and any(s != 1.0 for s in scales)
    assert all(0.0 <= logs[f"neat_conflict/{name}"][-1] <= 1.0 for name in ("d1", "d2", "d3"))


def test_diagnostics_tensorboard(tmp_path):
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        with pytest.warns(UserWarning, match="tensorboard' package is missing"):
            callback = nk.NEATDiagnostics(log_dir=tmp_path)
        assert callback._writer is None
        return
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    x, y = data(n=16)
    model = residual_model()
    model.compile(optimizer=nk.NGAdam(model=model), loss="mse")
    history = model.fit(
        x, y, batch_size=8, epochs=2, verbose=0, callbacks=[nk.NEATDiagnostics(log_dir=tmp_path)]
    ).history
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    for tag in ("neat_mean_alignment", "neat_step_scale/d1", "neat_conflict/d3"):
        assert [e.step for e in events.Scalars(tag)] == [0, 1]
        np.testing.assert_allclose([e.value for e in events.Scalars(tag)], history[tag], rtol=1e-6)


# ------------------------------------------------------------ conformance
@pytest.mark.parametrize("problem", load_all(), ids=lambda p: p.name)
def test_adapter_run_matches_golden(problem):
    info = keras_adapter.neat_adapter_info()
    assert info.name == f"keras.NGAdam[{BACKEND}]"
    trajectory = info.run(problem, "float32")
    tolerance = 8 * np.sqrt(problem.num_steps) * EPS32
    for step, (got, expected) in enumerate(zip(trajectory, problem.expected_params)):
        for k, (g, e) in enumerate(zip(got, expected)):
            scale = max(np.max(np.abs(s[k])) for s in problem.expected_params)
            assert np.max(np.abs(g - e)) / scale <= tolerance, (problem.name, step, k)


# ---------------------------------------------------------------- example
def test_digits_example_learns():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[2] / "examples" / "keras_digits.py"
    spec = importlib.util.spec_from_file_location("keras_digits", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    results = example.main(epochs=1)
    assert results["test_accuracy"] > 0.5  # ten classes: chance is 0.1
    assert "neat_step_scale/logits" in results
