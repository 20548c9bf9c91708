"""The game's tables grow linearly with tensors and players (no K × n or dense n × n work per
step), and the gather tables reproduce the dense ``S = (I + μL)^{-1}`` to float64 rounding."""

import numpy as np
import pytest

from neat import game, topology
from neat.topology import Topology


def _dense_smoothing(weights, mu):
    laplacian = np.diag(weights.sum(axis=1)) - weights
    return np.linalg.inv(np.eye(len(weights)) + mu * laplacian)


def _random_graph(n, seed):
    rng = np.random.default_rng(seed)
    weights = np.triu(rng.uniform(0.1, 2.0, size=(n, n)) * (rng.uniform(size=(n, n)) < 3.0 / n), 1)
    return weights + weights.T


def _smoothed(topo, x):
    tables = topo.host_tables()
    return np.sum(tables.weights * x[tables.neighbours], axis=1)


@pytest.mark.parametrize("graph", ["chain", "random"])
@pytest.mark.parametrize("mu", [0.3, 4.0])
def test_gather_table_of_s_equals_the_dense_inverse(graph, mu):
    n = 300
    weights = _random_graph(n, 1) if graph == "random" else None
    topo = Topology.build(n, None, weights, mu=mu)
    dense = _dense_smoothing(topo.graph.weights, mu)
    x = np.random.default_rng(2).normal(size=n)
    np.testing.assert_allclose(_smoothed(topo, x), dense @ x, rtol=0, atol=1e-14)


@pytest.mark.parametrize("graph", ["chain", "random"])
def test_sparse_factorisation_path_equals_the_dense_path(monkeypatch, graph):
    pytest.importorskip("scipy", reason="the sparse path of large games uses SciPy")
    n = 400
    weights = _random_graph(n, 3) if graph == "random" else None
    dense_path = Topology.build(n, None, weights, mu=2.0)
    monkeypatch.setattr(topology, "DENSE_LIMIT", 50)
    sparse_path = Topology.build(n, None, weights, mu=2.0)
    x = np.random.default_rng(4).normal(size=n)
    np.testing.assert_allclose(_smoothed(sparse_path, x), _smoothed(dense_path, x), rtol=0, atol=1e-14)


def test_tables_are_linear_in_tensors_and_players():
    topo = Topology.build(1600, None, None, mu=1.0)
    tables = topo.host_tables()
    assert tables.owner.shape == (1600,)
    assert tables.members.shape == (1600, 1)
    # S of a chain decays geometrically with distance: a bounded number of entries per row.
    assert tables.neighbours.shape[0] == 1600 and tables.neighbours.shape[1] < 100


def test_player_sums_and_spreading_follow_the_players():
    import array_api_compat.numpy as xp

    topo = Topology.build(5, [[0, 3], [1], [2, 4]], None, mu=1.0)
    tables = topo.tables(xp, "cpu", xp.float64)
    per_tensor = np.arange(15, dtype=np.float64).reshape(5, 3)
    sums = game.player_sums(xp, tables, per_tensor)
    expected = np.stack([per_tensor[[0, 3]].sum(0), per_tensor[1], per_tensor[[2, 4]].sum(0)]).T
    np.testing.assert_array_equal(sums, expected)
    spread = game.per_tensor(xp, tables, np.array([[10.0, 20.0, 30.0]]))
    np.testing.assert_array_equal(spread, [[10.0, 20.0, 30.0, 10.0, 30.0]])


def test_restricted_game_plays_on_the_induced_sub_graph():
    weights = _random_graph(8, 5) + np.diag(np.zeros(8))
    topo = Topology.build(10, [[0], [1, 2], [3], [4], [5], [6, 7], [8], [9]], weights, mu=1.5)
    sub, restriction = topo.restrict((1, 3, 6, 9))
    taking_part = [1, 2, 5, 7]
    np.testing.assert_array_equal(restriction.host.players, taking_part)
    np.testing.assert_array_equal(restriction.host.tensors, [1, 3, 6, 9])
    assert sub.players.groups == ((0,), (1,), (2,), (3,))
    expected = _dense_smoothing(topo.graph.weights[np.ix_(taking_part, taking_part)], 1.5)
    x = np.random.default_rng(6).normal(size=4)
    np.testing.assert_allclose(_smoothed(sub, x), expected @ x, rtol=0, atol=1e-14)
    assert topo.restrict((1, 3, 6, 9))[0] is sub, "a pattern's sub-game is built once"
