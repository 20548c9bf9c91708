"""neat.NGAdam.state_dict / load_state_dict: plain NumPy, savez round trip, strict validation."""

import dataclasses

import numpy as np
import pytest

from neat._version import SPEC_VERSION
from neat.config import NGAdamConfig
from neat.conformance.golden import load_all
from neat.inplace import NGAdam
from neat.state import GameState

PROBLEM = {problem.name: problem for problem in load_all()}["star5"]
DTYPE = np.float32


def grads_at(step):
    return [np.asarray(g, dtype=DTYPE) for g in PROBLEM.grads[step]]


def fresh(**changes):
    params = [np.array(p, dtype=DTYPE) for p in PROBLEM.params]
    hp = {**PROBLEM.hyperparameters, **changes}
    return params, NGAdam(params, players=PROBLEM.players, graph=PROBLEM.weights, **hp)


def stepped(num_steps=4):
    params, opt = fresh()
    for step in range(num_steps):
        opt.step(grads_at(step))
    return params, opt


def assert_same_state_dict(a, b):
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(np.asarray(a[key]), np.asarray(b[key]), err_msg=key)


def test_state_dict_is_plain_numpy_and_numbers():
    _, opt = stepped()
    state = opt.state_dict()
    assert state["count"] == 4 and state["skipped"] == 0 and state["spec_version"] == SPEC_VERSION
    assert state["tensor_count"].tolist() == [4] * 7 and state["log_step"].dtype == np.float32
    expected_keys = {
        "spec_version",
        *GameState._fields,
        "player_of",
        "graph",
        *(f.name for f in dataclasses.fields(NGAdamConfig)),
    }
    expected_keys |= {f"{moment}.{k}" for moment in ("exp_avg", "exp_avg_sq") for k in range(7)}
    assert set(state) == expected_keys
    for key, value in state.items():
        assert isinstance(value, (int, float, tuple, np.ndarray)), key
    assert state["exp_avg.2"].shape == (2, 2, 2) and state["exp_avg.2"].dtype == np.float32
    np.testing.assert_array_equal(state["exp_avg.2"], opt.state.exp_avg[2])
    assert state["exp_avg.2"] is not opt.state.exp_avg[2]  # a copy, not the live array
    assert state["player_of"].tolist() == [0, 0, 1, 2, 2, 3, 4]
    np.testing.assert_array_equal(state["graph"], PROBLEM.weights)
    assert state["gamma"] == PROBLEM.hyperparameters["gamma"] and state["betas"] == (0.9, 0.99)


def test_savez_round_trip_continues_bit_identically(tmp_path):
    params_a, opt_a = stepped(4)
    path = tmp_path / "neat_state.npz"
    np.savez(path, **opt_a.state_dict())
    saved_params = [p.copy() for p in params_a]

    params_b = [p.copy() for p in saved_params]
    opt_b = NGAdam(params_b, lr=0.5, gamma=0.0, players=PROBLEM.players)  # other hyperparameters and graph
    tracked = [*params_b, *opt_b.state.game, *opt_b.state.exp_avg, *opt_b.state.exp_avg_sq]
    ids = [(id(a), a.__array_interface__["data"][0]) for a in tracked]
    with np.load(path) as data:
        opt_b.load_state_dict(data)
    assert [(id(a), a.__array_interface__["data"][0]) for a in tracked] == ids
    assert opt_b.config == opt_a.config
    np.testing.assert_array_equal(opt_b.topology.graph.weights, opt_a.topology.graph.weights)
    for a, b in zip(opt_b.state.tables, opt_a.state.tables):  # S of the loaded graph and μ
        np.testing.assert_array_equal(a, b)

    for step in range(4, 12):
        opt_a.step(grads_at(step))
        opt_b.step(grads_at(step))
    for a, b in zip(params_a, params_b):
        np.testing.assert_array_equal(a, b)
    assert_same_state_dict(opt_a.state_dict(), opt_b.state_dict())


def _corrupt(state, case):
    state = dict(state)
    if case == "missing key":
        del state["exp_avg_sq.3"]
    elif case == "extra key":
        state["exp_avg.7"] = np.zeros(3, DTYPE)
    elif case == "fewer tensors":
        state["player_of"] = state["player_of"][:-1]
    elif case == "other players":
        state["player_of"] = np.array([0, 1, 1, 2, 2, 3, 4])
    elif case == "wrong shape":
        state["exp_avg.6"] = np.zeros(6, DTYPE)
    elif case == "negative second moment":
        state["exp_avg_sq.0"] = -np.ones(6, DTYPE)
    elif case == "nan":
        state["log_step"] = np.array([0.0, np.nan, 0.0, 0.0, 0.0], DTYPE)
    elif case == "bad step":
        state["count"] = -1
    elif case == "tensor ahead":
        state["tensor_count"] = state["tensor_count"] + np.arange(7)
    elif case == "bad hyperparameter":
        state["gamma"] = 3.0
    elif case == "asymmetric graph":
        state["graph"] = np.triu(state["graph"])
    elif case == "spec version":
        state["spec_version"] = SPEC_VERSION + 1
    return state


CASES = {
    "missing key": r"missing keys \['exp_avg_sq.3'\]",
    "extra key": r"unexpected keys \['exp_avg.7'\]",
    "fewer tensors": "holds 6 tensors but this optimizer has 7",
    "other players": "players differ",
    "wrong shape": r"'exp_avg.6'\] has shape \(6,\), expected \(7,\)",
    "negative second moment": r"'exp_avg_sq.0'\] has negative entries",
    "nan": r"'log_step'\] must hold finite",
    "bad step": r"'count'\] must hold non-negative integers",
    "tensor ahead": "tensor_count'\\] exceeds the step count",
    "bad hyperparameter": "Invalid gamma",
    "asymmetric graph": "Invalid graph: weight matrix must be symmetric",
    "spec version": f"spec version {SPEC_VERSION + 1}",
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_load_state_dict_validates_and_changes_nothing_on_error(case):
    _, source = stepped(4)
    _, target = stepped(2)
    before = target.state_dict()
    with pytest.raises((ValueError, TypeError), match=CASES[case]):
        target.load_state_dict(_corrupt(source.state_dict(), case))
    assert_same_state_dict(before, target.state_dict())
    assert target.config.gamma == PROBLEM.hyperparameters["gamma"]


def test_load_state_dict_needs_a_mapping():
    _, opt = stepped(1)
    with pytest.raises(TypeError, match="state_dict must be a mapping"):
        opt.load_state_dict([("step", 1)])
