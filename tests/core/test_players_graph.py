"""Players and the player graph are validated objects; the smoothing operator has
the properties SPEC.md states."""

import numpy as np
import pytest

import neat
from neat.players import PlayerGraph, Players


@pytest.mark.parametrize("spec,message", [
    ([], "no player given"),
    ([[0, 1], []], "player 1 is empty"),
    ([[0, 1], [1, 2]], "tensor 1 belongs to both player 0 and player 1"),
    ([[0], [1]], r"tensors \[2\] belong to no player"),
    ([[0, 1, 5]], "tensor index 5 in player 0 is out of range"),
    ([[0, 1.5, 2]], "expected an integer"),
    (3, "expected a list of lists"),
])
def test_bad_players(spec, message):
    with pytest.raises(ValueError, match=message):
        Players.from_spec(spec, 3)


def test_default_players_one_per_tensor():
    assert Players.from_spec(None, 3).groups == ((0,), (1,), (2,))
    assert Players.from_spec([[2, 0], [1]], 3).owner == (0, 1, 0)


@pytest.mark.parametrize("spec,message", [
    (np.ones((3, 3)) - np.eye(3) + np.diag([0, 1, 0]), "diagonal"),
    (np.array([[0, 1, 0], [2, 0, 0], [0, 0, 0]]), "symmetric"),
    (np.array([[0, -1, 0], [-1, 0, 0], [0, 0, 0]]), "non-negative"),
    (np.zeros((2, 2)), r"shape \(2, 2\), expected \(3, 3\)"),
    (np.full((3, 3), np.nan), "finite"),
    ([(0, 3, 1.0)], "names player 3"),
    ([(1, 1, 1.0)], "self-loop"),
    ("chain", "expected an n×n weight matrix"),
])
def test_bad_graph(spec, message):
    with pytest.raises(ValueError, match=message):
        PlayerGraph.from_spec(spec, 3)


def test_edges_and_matrix_agree_and_default_is_chain():
    edges = PlayerGraph.from_spec([(0, 1, 1.0), (1, 2, 1.0)], 3)
    matrix = PlayerGraph.from_spec([[0, 1, 0], [1, 0, 1], [0, 1, 0]], 3)
    np.testing.assert_array_equal(edges.weights, matrix.weights)
    np.testing.assert_array_equal(PlayerGraph.from_spec(None, 3).weights, matrix.weights)


@pytest.mark.parametrize("mu", [0.0, 0.3, 5.0])
def test_smoothing_is_a_symmetric_averaging_operator(mu):
    rng = np.random.default_rng(0)
    w = rng.uniform(0, 2, (6, 6)) * (rng.random((6, 6)) < 0.5)
    w = np.triu(w, 1) + np.triu(w, 1).T
    s = PlayerGraph(w).smoothing(mu)
    np.testing.assert_allclose(s, s.T, atol=1e-14)
    assert np.all(s >= -1e-15)
    np.testing.assert_allclose(s.sum(axis=1), 1.0, atol=1e-12)
    if mu == 0:
        np.testing.assert_array_equal(s, np.eye(6))


def test_bad_players_rejected_by_init():
    with pytest.raises(ValueError, match="Invalid players"):
        neat.ng_adam().init([np.ones(2), np.ones(3)], players=[[0]])
    with pytest.raises(ValueError, match="Invalid graph"):
        neat.ng_adam().init([np.ones(2), np.ones(3)], graph=np.ones((2, 2)))
