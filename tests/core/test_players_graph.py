"""Players and the player graph are validated objects; the smoothing operator has
the properties docs/spec.md states."""

import numpy as np
import pytest

import neat
from neat.players import PlayerGraph, Players


@pytest.mark.parametrize(
    "spec,message",
    [
        ([], "no player given"),
        ([[0, 1], []], "player 1 is empty"),
        ([[0, 1], [1, 2]], "tensor 1 belongs to both player 0 and player 1"),
        ([[0], [1]], r"tensors \[2\] belong to no player"),
        ([[0, 1, 5]], "tensor index 5 in player 0 is out of range"),
        ([[0, 1.5, 2]], "expected an integer"),
        (3, "expected a list of lists"),
    ],
)
def test_bad_players(spec, message):
    with pytest.raises(ValueError, match=message):
        Players.from_spec(spec, 3)


def test_default_players_one_per_tensor():
    assert Players.from_spec(None, 3).groups == ((0,), (1,), (2,))
    assert Players.from_spec([[2, 0], [1]], 3).owner == (0, 1, 0)


@pytest.mark.parametrize(
    "spec,message",
    [
        (np.ones((3, 3)) - np.eye(3) + np.diag([0, 1, 0]), "diagonal"),
        (np.array([[0, 1, 0], [2, 0, 0], [0, 0, 0]]), "symmetric"),
        (np.array([[0, -1, 0], [-1, 0, 0], [0, 0, 0]]), "non-negative"),
        (np.zeros((2, 2)), r"shape \(2, 2\), expected \(3, 3\)"),
        (np.full((3, 3), np.nan), "finite"),
        ([(0, 3, 1.0)], "names player 3"),
        ([(1, 1, 1.0)], "self-loop"),
        ("chain", "expected an n×n weight matrix"),
    ],
)
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


@pytest.mark.parametrize("mu", [0.0, 0.7, 2.5])
def test_game_tables_smooth_like_the_dense_s_also_in_a_sub_game(mu):
    """``game.smooth`` on the step's :class:`GameTables` is ``S x`` of the dense float64 ``S`` to 1e-15
    (of max |x|), for the full star5 graph and for the sub-game of some of its players (SPEC v2:
    ``S`` of the induced sub-graph); the member tables hold each tensor once (linear size)."""
    import array_api_compat.numpy as xp

    from neat import game
    from neat.conformance.golden import load_all
    from neat.conformance.reference import smoothing_operator
    from neat.topology import Topology

    star5 = next(p for p in load_all() if p.name == "star5")
    topology = Topology.build(len(star5.params), star5.players, star5.weights, mu=mu)
    x = np.random.default_rng(1).normal(size=(2, topology.num_players))
    tables = topology.tables(xp, "cpu", xp.float64)
    assert int(np.sum(tables.member_mask)) == topology.num_tensors and tables.owner.shape == (topology.num_tensors,)
    np.testing.assert_allclose(
        game.smooth(xp, tables, x), x @ smoothing_operator(star5.weights, mu).T, rtol=0, atol=1e-15 * np.max(np.abs(x))
    )

    sub, restriction = topology.restrict((1, 2, 6))  # players 0, 1, 4: the star's centre and two leaves
    playing = restriction.host.players.tolist()
    assert playing == [0, 1, 4] and sub.players.groups == ((0,), (1,), (2,))
    dense = smoothing_operator(star5.weights[np.ix_(playing, playing)], mu)
    np.testing.assert_allclose(
        game.smooth(xp, sub.tables(xp, "cpu", xp.float64), x[:, :3]),
        x[:, :3] @ dense.T,
        rtol=0,
        atol=1e-15 * np.max(np.abs(x)),
    )
