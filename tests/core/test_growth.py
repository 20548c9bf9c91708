"""Growing the game (SPEC "Growing the game"): players, graph, ``S`` and the state after tensors
join; a grown game plays as the game that held the joining tensors from the start, inactive
until they join (the float64 reference, conformance/reference.py)."""

import array_api_compat.numpy as xp
import numpy as np
import pytest

from conformance.reference import ReferenceNGAdam
from neat import functional
from neat.config import NGAdamConfig
from neat.conformance.golden import golden_hyperparameters
from neat.players import PlayerGraph, Players
from neat.state import GameState
from neat.topology import Topology

HP = golden_hyperparameters(gamma=0.7, mu=1.5, leak=0.02)


def test_new_tensors_form_new_players_or_join_assigned_ones():
    players = Players.from_spec([[0, 1], [2]], 3)
    assert players.grown([2, 3, 3]).groups == ((0, 1), (2,), (3,), (4, 5))
    assert players.grown([1, 0]).groups == ((0, 1, 4), (2, 3))
    assert players.grown([2]).num_tensors == 4


@pytest.mark.parametrize(
    "assignment,message",
    [
        ([], "no tensor joins"),
        ([3], r"players \[2\] get no tensor"),
        ([-1], "negative"),
        ([2.0], "expected an integer"),
        (2, "expected each joining tensor's player index"),
    ],
)
def test_bad_growth_of_players_is_refused(assignment, message):
    with pytest.raises(ValueError, match=message):
        Players.from_spec([[0, 1], [2]], 3).grown(assignment)


def test_the_chain_grows_after_the_last_player_and_old_weights_stay():
    graph = PlayerGraph.from_spec([(0, 1, 2.0), (0, 2, 0.5)], 3)
    chained = graph.grown(2)
    np.testing.assert_array_equal(chained.weights[:3, :3], graph.weights)
    np.testing.assert_array_equal(chained.weights[2:, 2:], [[0, 1, 0], [1, 0, 1], [0, 1, 0]])
    assert chained.weights[:2, 3:].sum() == 0
    np.testing.assert_array_equal(PlayerGraph.chain(2).grown(3).weights, PlayerGraph.chain(5).weights)
    edges = graph.grown(1, [(3, 0, 0.25)])
    assert edges.weights[3].tolist() == [0.25, 0, 0, 0] and edges.weights[0, 3] == 0.25
    assert not graph.grown(1, []).weights[3].any()
    matrix = np.pad(graph.weights, ((0, 1), (0, 1)))
    matrix[1, 3] = matrix[3, 1] = 3.0
    np.testing.assert_array_equal(graph.grown(1, matrix).weights, matrix)


@pytest.mark.parametrize(
    "spec,message",
    [
        ([(0, 1, 1.0)], "joins two players already playing"),
        (np.zeros((4, 4)), "changes the weights between the 3 players already playing"),
        ([(3, 5, 1.0)], "names player 5"),
        ([(3, 0, -1.0)], "non-negative"),
    ],
)
def test_bad_growth_of_the_graph_is_refused(spec, message):
    with pytest.raises(ValueError, match=message):
        PlayerGraph.chain(3).grown(1, spec)


def test_grown_topology_recomputes_s_for_the_grown_graph_and_leaves_the_old_one():
    topology = Topology.build(3, [[0, 1], [2]], None, mu=1.5)
    before = topology.smoothing().copy()
    grown = topology.grown(num_new=2)
    assert grown.players.groups == ((0, 1), (2,), (3,), (4,))
    expected = Topology.build(5, [[0, 1], [2], [3], [4]], None, mu=1.5)
    np.testing.assert_allclose(grown.smoothing(), expected.smoothing(), rtol=0, atol=1e-15)
    np.testing.assert_array_equal(topology.smoothing(), before)
    assert topology.num_tensors == 3 and grown.mu == topology.mu
    with pytest.raises(ValueError, match="player_of_new or num_new"):
        topology.grown()


def test_game_state_grows_with_zeros_and_keeps_its_entries():
    game = GameState(
        xp.asarray(4, dtype=xp.int32),
        xp.asarray(1, dtype=xp.int32),
        xp.asarray([4, 3], dtype=xp.int32),
        xp.asarray([0.1, -0.2]),
        xp.asarray([0.5, 0.4]),
        xp.asarray([0.0, 0.3]),
    )
    grown = game.grown(xp, 3, 1)
    assert grown.count is game.count and grown.skipped is game.skipped
    assert grown.tensor_count.tolist() == [4, 3, 0, 0, 0] and grown.tensor_count.dtype == np.int32
    for old, new in zip(game[3:], grown[3:]):
        assert new.tolist() == [*old.tolist(), 0.0] and new.dtype == old.dtype


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    shapes = [(3, 2), (2,), (4,), (2, 2), (1,)]
    params = [rng.normal(size=s) for s in shapes]
    grads = [[rng.normal(size=s) for s in shapes] for _ in range(8)]
    return params, grads


@pytest.mark.parametrize("graph", [None, [(3, 0, 0.5)]])
def test_a_grown_game_plays_as_the_reference_with_the_tensors_inactive_until_they_join(graph):
    """Tensors 3 and 4 join after 3 steps as two new players (chained after the last, or with the
    given edge): the step after the join and every later one follow the rule on the grown game."""
    params, grads = _problem()
    config = NGAdamConfig(**HP)
    topology = Topology.build(3, [[0, 1], [2]], None, mu=HP["mu"])
    state = functional.init_state(params[:3], topology)
    live = [p.copy() for p in params[:3]]
    for step_grads in grads[:3]:
        live, state = functional.step(live, step_grads[:3], state, config, kernels="generic")
    grown = topology.grown([2, 3], graph)
    old_moments = [m.copy() for m in state.exp_avg]
    old_game = state.game
    state = functional.grown_state(state, params[3:], grown)
    assert [m.tolist() for m in state.exp_avg[:3]] == [m.tolist() for m in old_moments]
    assert all(not m.any() for m in (*state.exp_avg[3:], *state.exp_avg_sq[3:]))
    assert state.game.log_step[:2].tolist() == old_game.log_step.tolist() and state.game.log_step[2:].tolist() == [0, 0]
    live = [*live, *(p.copy() for p in params[3:])]
    for step_grads in grads[3:]:
        live, state = functional.step(live, step_grads, state, config, kernels="generic")

    reference = ReferenceNGAdam(params, [[0, 1], [2], [3], [4]], grown.graph.weights, HP)
    for index, step_grads in enumerate(grads):
        reference.step([g if index >= 3 or k < 3 else None for k, g in enumerate(step_grads)])
    for actual, expected in zip(live, reference.params):
        np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(state.game.log_step, reference.z, rtol=1e-12, atol=1e-14)
    assert state.game.tensor_count.tolist() == [8, 8, 8, 5, 5]


def test_grown_state_refuses_what_does_not_fit_and_changes_nothing():
    params, _ = _problem()
    topology = Topology.build(3, None, None, mu=1.0)
    state = functional.init_state([p.astype(np.float32) for p in params[:3]], topology)
    with pytest.raises(ValueError, match="5 tensors, but 3 \\+ 1"):
        functional.grown_state(state, params[3:4], topology.grown(num_new=2))
    with pytest.raises(ValueError, match="statistics dtype"):
        functional.grown_state(state, [params[3]], topology.grown(num_new=1))  # float64 joins float32
    assert state.num_tensors == 3 and state.game.tensor_count.shape == (3,)


def test_in_place_optimizer_grows_as_the_functional_state_does():
    """``neat.NGAdam.add_params``: the joining arrays and their players follow the reference (the
    grown game), the arrays already playing keep their identity."""
    import neat

    params, grads = _problem(1)
    live = [p.copy() for p in params]
    optimizer = neat.NGAdam(live[:3], players=[[0, 1], [2]], kernels="generic", **HP)
    for step_grads in grads[:2]:
        optimizer.step(step_grads[:3])
    optimizer.add_params(live[3:], players=[[0, 1]])
    assert optimizer.topology.players.groups == ((0, 1), (2,), (3, 4))
    assert all(a is b for a, b in zip(optimizer.params, live))
    for step_grads in grads[2:]:
        optimizer.step(step_grads)
    reference = ReferenceNGAdam(params, [[0, 1], [2], [3, 4]], optimizer.topology.graph.weights, HP)
    for index, step_grads in enumerate(grads):
        reference.step([g if index >= 2 or k < 3 else None for k, g in enumerate(step_grads)])
    for actual, expected in zip(live, reference.params):
        np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match="same array as params"):
        optimizer.add_params([live[0]])
    assert optimizer.topology.num_tensors == 5 and len(optimizer.state.exp_avg) == 5
