"""Bad input raises a clear error naming the problem and changes nothing."""

import re

import numpy as np
import pytest

import neat
from neat.config import NGAdamConfig


@pytest.mark.parametrize(
    "name,value,message",
    [
        ("lr", -1e-3, "lr"),
        ("lr", float("nan"), "lr"),
        ("betas", (1.0, 0.999), "betas[0]"),
        ("betas", (0.9, -0.1), "betas[1]"),
        ("betas", 0.9, "betas"),
        ("eps", -1.0, "eps"),
        ("weight_decay", -0.1, "weight_decay"),
        ("gamma", 1.5, "gamma"),
        ("gamma", -0.1, "gamma"),
        ("zeta", -1.0, "zeta"),
        ("mu", -1.0, "mu"),
        ("step_bounds", (0.0, 2.0), "step_bounds[0]"),
        ("step_bounds", (1.5, 2.0), "step_bounds[0]"),
        ("step_bounds", (0.5, 0.9), "step_bounds[1]"),
        ("leak", 1.0, "leak"),
        ("lr", "fast", "lr"),
        ("gamma", True, "gamma"),
    ],
)
def test_invalid_hyperparameters_are_rejected_by_name(name, value, message):
    with pytest.raises(ValueError, match="Invalid " + re.escape(message)):
        neat.ng_adam(**{name: value})


def test_hyperparameters_are_keyword_only():
    with pytest.raises(TypeError):
        neat.ng_adam(1e-3)


def test_valid_edges_of_ranges_are_accepted():
    NGAdamConfig(lr=0.0, betas=(0.0, 0.0), eps=0.0, gamma=1.0, step_bounds=(1.0, 1.0), leak=0.0)


@pytest.fixture
def setup():
    opt = neat.ng_adam(lr=0.1)
    params = [np.ones((2, 3)), np.ones(4)]
    state = opt.init(params)
    params, state = opt.step(params, [np.full((2, 3), 0.1), np.full(4, -0.2)], state)
    return opt, params, state


def _unchanged(params, state, action, error, match):
    params_before = [p.copy() for p in params]
    state_before = [np.array(a, copy=True) for a in (*state.game, *state.exp_avg, *state.exp_avg_sq)]
    with pytest.raises(error, match=match):
        action()
    for a, b in zip(params_before, params):
        np.testing.assert_array_equal(a, b)
    after = (*state.game, *state.exp_avg, *state.exp_avg_sq)
    for a, b in zip(state_before, after):
        np.testing.assert_array_equal(a, b)


def test_wrong_number_of_gradients(setup):
    opt, params, state = setup
    _unchanged(
        params, state, lambda: opt.step(params, [np.zeros((2, 3))], state), ValueError, "1 gradients for 2 parameters"
    )


def test_wrong_gradient_shape(setup):
    opt, params, state = setup
    _unchanged(
        params,
        state,
        lambda: opt.step(params, [np.zeros((3, 2)), np.zeros(4)], state),
        ValueError,
        r"grads\[0\] has shape \(3, 2\)",
    )


def test_wrong_gradient_dtype(setup):
    opt, params, state = setup
    grads = [np.zeros((2, 3), dtype=np.float32), np.zeros(4)]
    _unchanged(params, state, lambda: opt.step(params, grads, state), TypeError, r"grads\[0\] has dtype float32")


def test_integer_parameters(setup):
    opt, params, state = setup
    with pytest.raises(TypeError, match=r"params\[0\] has dtype int64"):
        opt.init([np.ones(3, dtype=np.int64)])
    ints = [np.ones((2, 3), dtype=np.int64), np.ones(4, dtype=np.int64)]
    _unchanged(params, state, lambda: opt.step(ints, ints, state), TypeError, "real floating")


def test_mixed_namespaces(setup):
    torch = pytest.importorskip("torch", reason="torch not installed (optional framework)")
    opt, params, state = setup
    grads = [torch.zeros((2, 3), dtype=torch.float64), np.zeros(4)]
    _unchanged(params, state, lambda: opt.step(params, grads, state), TypeError, "mixed array namespaces")


def test_unknown_array_type(setup):
    opt, params, state = setup
    with pytest.raises(TypeError, match="no NEAT backend handles arrays of type builtins.list"):
        opt.init([[1.0, 2.0]])


def test_params_not_a_list():
    with pytest.raises(TypeError, match="params must be a list or tuple"):
        neat.ng_adam().init(np.ones(3))


def test_state_for_other_parameters(setup):
    opt, params, state = setup
    other = [np.ones(5)]
    _unchanged(params, state, lambda: opt.step(other, [np.ones(5)], state), ValueError, "initialised for 2")
    reshaped = [np.ones((3, 2)), np.ones(4)]
    _unchanged(
        params,
        state,
        lambda: opt.step(reshaped, [np.ones((3, 2)), np.ones(4)], state),
        ValueError,
        "its state has shape",
    )


def test_per_tensor_lr_of_wrong_length(setup):
    opt, params, state = setup
    _unchanged(
        params,
        state,
        lambda: neat.functional.step(params, [np.ones((2, 3)), np.ones(4)], state, opt.config, lr=[0.1]),
        ValueError,
        "lr: got 1 per-tensor values for 2 tensors",
    )


def test_inactive_tensor_needs_the_topology(setup):
    """``None`` gradients play the sub-game (SPEC v2), which needs the game's topology."""
    opt, params, state = setup
    _unchanged(
        params, state, lambda: opt.step(params, [None, np.zeros(4)], state), ValueError, "pass the game's topology="
    )


def test_no_active_tensor_changes_nothing(setup):
    opt, params, state = setup
    topology = neat.functional.Topology.build(2, None, None, mu=opt.config.mu)
    new_params, new_state = neat.functional.step(params, [None, None], state, opt.config, topology=topology)
    for a, b in zip(new_params, params):
        np.testing.assert_array_equal(a, b)
    assert int(new_state.game.count) == int(state.game.count) == 1
