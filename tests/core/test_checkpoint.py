"""neat.checkpoint: the one list of a checkpoint's content, built from an optimizer's pieces and
validated against an optimizer (the front ends' own tests cover their formats)."""

import dataclasses

import numpy as np
import pytest

from neat import checkpoint
from neat.config import NGAdamConfig
from neat.state import GameState
from neat.topology import Topology

CONFIG = NGAdamConfig(lr=0.1, gamma=0.3, step_bounds=(0.25, 4.0))
TOPOLOGY = Topology.build(3, [[0, 2], [1]], [[0.0, 2.0], [2.0, 0.0]], mu=CONFIG.mu)
SHAPES = [(2, 2), (3,), (1,)]
GAME = GameState(
    np.asarray(5, np.int32),
    np.asarray(1, np.int32),
    np.array([4, 3, 4], np.int32),
    np.array([0.1, -0.2]),
    np.array([0.5, 0.0]),
    np.array([0.0, 0.3]),
)


def test_header_holds_the_content_in_order_as_copies():
    header = checkpoint.header(CONFIG, TOPOLOGY, GAME)
    assert list(header) == [
        "spec_version",
        *("lr", "betas", "eps", "weight_decay", "gamma", "zeta", "mu", "step_bounds", "leak"),
        "player_of",
        "graph",
        *("count", "skipped", "tensor_count", "log_step", "alignment", "conflict"),
    ]
    assert list(header) == list(checkpoint.HEADER) and header["spec_version"] == 2
    assert {key: header[key] for key in checkpoint.HYPERPARAMETERS} == dataclasses.asdict(CONFIG)
    assert header["player_of"].tolist() == [0, 1, 0]
    np.testing.assert_array_equal(header["graph"], TOPOLOGY.graph.weights)
    for key, live in [("graph", TOPOLOGY.graph.weights), *zip(GameState._fields, GAME)]:
        np.testing.assert_array_equal(header[key], live)
        assert not np.shares_memory(header[key], live), key
    listed = checkpoint.settings(CONFIG, TOPOLOGY, convert=np.ndarray.tolist)
    assert listed["player_of"] == [0, 1, 0] and listed["graph"] == [[0.0, 2.0], [2.0, 0.0]]


def test_checked_settings_adopt_or_keep_the_fixed_entries():
    saved = checkpoint.settings(CONFIG, TOPOLOGY)
    other = Topology.build(3, [[0, 2], [1]], None, mu=CONFIG.mu)  # the chain: weight 1
    config, graph = checkpoint.checked_settings(saved, NGAdamConfig(), other)
    assert config == CONFIG
    np.testing.assert_array_equal(graph.weights, TOPOLOGY.graph.weights)

    kept = dataclasses.replace(CONFIG, lr=0.5, eps=1e-6)  # not fixed for a run: validated, not compared
    assert checkpoint.checked_settings(saved, kept, TOPOLOGY, fixed=checkpoint.FIXED_FOR_A_RUN)[0] == CONFIG
    for optimizer_config, topology, message in [
        (dataclasses.replace(CONFIG, gamma=0.5), TOPOLOGY, "has gamma=0.3 but this optimizer has gamma=0.5"),
        (CONFIG, other, r"has graph=\[\[0.0, 2.0\], \[2.0, 0.0\]\] but this optimizer has graph="),
    ]:
        with pytest.raises(ValueError, match=message):
            checkpoint.checked_settings(saved, optimizer_config, topology, fixed=checkpoint.FIXED_FOR_A_RUN)


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"spec_version": 3}, ValueError, "ckpt is for spec version 3, this is spec version 2"),
        ({"player_of": [0, 0, 1]}, ValueError, r"ckpt players differ: tensor owners \[0, 0, 1\]"),
        ({"player_of": [0, 1]}, ValueError, "ckpt holds 2 tensors but this optimizer has 3"),
        ({"betas": "0.9"}, ValueError, r"ckpt\['betas'\] must be a pair of numbers"),
        ({"leak": 1.0}, ValueError, "ckpt: Invalid leak: 1.0"),
        ({"graph": [[0.0, -1.0], [-1.0, 0.0]]}, ValueError, "ckpt: Invalid graph: weights must be non-negative"),
        ({"mu": None}, ValueError, r"ckpt\['mu'\] must be a number"),
    ],
)
def test_checked_settings_refuse_bad_entries(change, error, message):
    saved = {**checkpoint.settings(CONFIG, TOPOLOGY), **change}
    with pytest.raises(error, match=message):
        checkpoint.checked_settings(saved, CONFIG, TOPOLOGY, name="ckpt")


def test_checked_state_keeps_absent_moments_and_refuses_half_pairs():
    saved = checkpoint.header(CONFIG, TOPOLOGY, GAME)
    moments = [(np.ones(s), np.full(s, 2.0)) for s in SHAPES]
    moments[1] = (None, None)  # a tensor without moments yet
    game, exp_avg, exp_avg_sq = checkpoint.checked_state(saved, moments, TOPOLOGY, SHAPES)
    for name, value, live in zip(GameState._fields, game, GAME):
        np.testing.assert_array_equal(value, live, err_msg=name)
    assert exp_avg[1] is None and exp_avg_sq[1] is None and exp_avg_sq[2].tolist() == [2.0]
    moments[1] = (np.ones(3), None)
    with pytest.raises(ValueError, match="only one of exp_avg.1 and exp_avg_sq.1"):
        checkpoint.checked_state(saved, moments, TOPOLOGY, SHAPES)
    with pytest.raises(TypeError, match="checkpoint must be a mapping, got list"):
        checkpoint.checked_state(list(saved.items()), moments, TOPOLOGY, SHAPES)
