"""``add_param_group`` after construction grows the game (SPEC "Growing the game"): the joining
tensors start from zero state as new players, the players already playing keep theirs, a grown
optimizer checkpoints and resumes bit for bit, bad groups are refused with nothing changed."""

from __future__ import annotations

import copy
import io

import numpy as np
import pytest
import torch

from conformance.reference import ReferenceNGAdam
from neat.state import GameState
from neat.torch import NGAdam
from tests.torch.models import HP, batch, mlp

HEAD = ("4.weight", "4.bias")  # the last layer of models.mlp: trained from the start


def frozen_backbone(model):
    """``model``'s head as named parameters; the backbone (every other layer) frozen, as named parameters."""
    head = [(name, p) for name, p in model.named_parameters() if name in HEAD]
    backbone = [(name, p) for name, p in model.named_parameters() if name not in HEAD]
    for _, p in backbone:
        p.requires_grad_(False)
    return head, backbone


def unfreeze(backbone):
    for _, p in backbone:
        p.requires_grad_(True)
    return list(backbone)


def train(model, optimizer, steps, record=None):
    """Full-batch MSE steps; ``record`` gets each step's gradients (``None`` for frozen tensors)."""
    x, y = batch(dtype=next(model.parameters()).dtype)
    for _ in range(steps):
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        if record is not None:
            record.append([None if p.grad is None else p.grad.numpy().copy() for p in optimizer_params(optimizer)])
        optimizer.step()
    return [p.detach().clone() for p in model.parameters()]


def optimizer_params(optimizer):
    return [p for group in optimizer.param_groups for p in group["params"]]


def snapshot(optimizer):
    """Copies of the game state and of every tensor's moments."""
    moments = {i: {k: v.clone() for k, v in state.items()} for i, state in optimizer.state_dict()["state"].items()}
    return [value.clone() for value in optimizer.game_state], moments


def test_unfreezing_leaves_the_players_state_and_follows_the_reference():
    """Three steps on the head, the backbone (two layers) joins, three steps on all: the join
    changes no state of the head; the run is the float64 reference's, in which the backbone is
    in the game from the start with no gradient until it joins (SPEC v2 sub-game)."""
    model = mlp(dtype=torch.float64)
    initial = [p.detach().numpy().copy() for p in model.parameters()]
    head, backbone = frozen_backbone(model)
    optimizer = NGAdam(head, **HP)
    grads: list = []
    train(model, optimizer, 3, grads)
    game, moments = snapshot(optimizer)
    optimizer.add_param_group({"params": unfreeze(backbone)})
    grown_game, grown_moments = snapshot(optimizer)
    assert grown_moments.keys() == moments.keys() == {0, 1}  # the backbone has no moments before its first step
    for i in moments:
        for key in moments[i]:
            assert torch.equal(grown_moments[i][key], moments[i][key])
    assert all(torch.equal(grown_game[i], game[i]) for i in (0, 1))  # count, skipped
    for old, new in zip(game[2:], grown_game[2:]):
        assert torch.equal(new[: old.numel()], old) and not new[old.numel() :].any()
    assert optimizer.game_state.tensor_count.tolist() == [3, 3, 0, 0, 0, 0]
    assert optimizer.players.groups == ((0, 1), (2, 3), (4, 5))  # the names' layers: "0", "2"
    assert optimizer.player_names == ["4", "0", "2"]
    train(model, optimizer, 3, grads)

    order = [4, 5, 0, 1, 2, 3]  # the optimizer's tensors in the model's parameters
    reference = ReferenceNGAdam([initial[k] for k in order], [[0, 1], [2, 3], [4, 5]], optimizer.graph.weights, HP)
    for step_grads in grads:
        reference.step(step_grads + [None] * (6 - len(step_grads)))
    for k, expected in zip(order, reference.params):
        np.testing.assert_allclose(list(model.parameters())[k].detach().numpy(), expected, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(optimizer.game_state.log_step.numpy(), reference.z, rtol=1e-10, atol=1e-13)
    assert optimizer.game_state.tensor_count.tolist() == [6, 6, 3, 3, 3, 3]


@pytest.mark.parametrize(
    "own",
    [{"lr": HP["lr"] / 10}, {"lr": HP["lr"] / 10, "betas": (0.8, 0.95), "eps": 1e-6}],
    ids=["lr", "lr-betas-eps"],
)
def test_a_joined_group_with_its_own_values_plays_as_if_it_was_there_from_the_start(own):
    """The group's lr (BackboneFinetuning's lr / 10), and its own betas and eps (SPEC v2.1: per
    tensor), are used: the grown optimizer equals one built with both groups whose backbone had no
    gradient until it was unfrozen."""
    runs = []
    for grow in (True, False):
        model = mlp()
        head, backbone = frozen_backbone(model)
        names = [name for name, _ in backbone]
        groups = [{"params": head}] if grow else [{"params": head}, {"params": backbone, **own}]
        optimizer = NGAdam(groups, **HP)
        train(model, optimizer, 3)
        if grow:
            optimizer.add_param_group({"params": unfreeze(backbone), **own})
        else:
            unfreeze(backbone)
        assert [name for group in optimizer.param_groups for name in group["param_names"]] == [*HEAD, *names]
        runs.append((train(model, optimizer, 4), optimizer))
    (grown, grown_optimizer), (whole, whole_optimizer) = runs
    for a, b in zip(grown, whole):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    for a, b in zip(grown_optimizer.game_state, whole_optimizer.game_state):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def saved_and_loaded(state):
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def grown_run(model, steps_before, steps_after):
    head, backbone = frozen_backbone(model)
    optimizer = NGAdam(head, **HP)
    train(model, optimizer, steps_before)
    optimizer.add_param_group({"params": unfreeze(backbone), "lr": HP["lr"] / 10})
    train(model, optimizer, steps_after)
    return optimizer


def test_a_grown_optimizer_resumes_bit_for_bit_in_one_grown_the_same_way():
    model = mlp()
    optimizer = grown_run(model, 3, 2)
    saved = saved_and_loaded({"model": model.state_dict(), "optimizer": optimizer.state_dict()})
    assert saved["optimizer"]["neat"]["player_of"].tolist() == [0, 0, 1, 1, 2, 2]
    uninterrupted = train(model, optimizer, 4)

    resumed_model = mlp(seed=5)
    resumed_model.load_state_dict(saved["model"])
    head, backbone = frozen_backbone(resumed_model)
    resumed = NGAdam(head, **HP)
    with pytest.raises(ValueError, match="holds 6 tensors but this optimizer has 2"):
        resumed.load_state_dict(saved["optimizer"])
    resumed.add_param_group({"params": unfreeze(backbone), "lr": HP["lr"] / 10})
    resumed.load_state_dict(saved["optimizer"])
    assert resumed.param_groups[1]["lr"] == HP["lr"] / 10
    for a, b in zip(train(resumed_model, resumed, 4), uninterrupted):
        assert torch.equal(a, b)
    for name, a, b in zip(GameState._fields, resumed.game_state, optimizer.game_state):
        assert torch.equal(a, b), name


def test_groups_put_into_param_groups_directly_join_as_lightning_resumes_them():
    """Lightning's BaseFinetuning restores its unfrozen groups on resume by assigning
    ``optimizer.param_groups``: they join before the checkpoint loads, as add_param_group's did."""
    model = mlp()
    optimizer = grown_run(model, 2, 2)
    saved = saved_and_loaded({"model": model.state_dict(), "optimizer": optimizer.state_dict()})
    uninterrupted = train(model, optimizer, 3)

    resumed_model = mlp(seed=5)
    resumed_model.load_state_dict(saved["model"])
    head, backbone = frozen_backbone(resumed_model)
    resumed = NGAdam(head, **HP)
    restored = {**resumed.param_groups[0], "params": [p for _, p in unfreeze(backbone)]}
    restored["param_names"] = [name for name, _ in backbone]
    resumed.param_groups = [*resumed.param_groups, restored]
    resumed.load_state_dict(saved["optimizer"])
    assert resumed.players.groups == optimizer.players.groups
    for a, b in zip(train(resumed_model, resumed, 3), uninterrupted):
        assert torch.equal(a, b)


def test_param_groups_that_lost_what_the_game_plays_are_refused_at_the_next_step():
    model = mlp()
    optimizer = grown_run(model, 1, 1)
    optimizer.param_groups = optimizer.param_groups[1:]
    with pytest.raises(ValueError, match="lost groups or parameters"):
        train(model, optimizer, 1)
    optimizer = grown_run(mlp(), 1, 1)
    bad = {**optimizer.param_groups[0], "params": [torch.zeros(2, requires_grad=True)], "param_names": ["w"], "lr": -1}
    optimizer.param_groups = [*optimizer.param_groups, bad]
    for _ in range(2):  # refused at every step, the game unchanged
        with pytest.raises(ValueError, match="Invalid learning rate"):
            train(model, optimizer, 1)
        assert len(optimizer.param_groups) == 3 and optimizer.topology.num_tensors == 6


def bad_groups(model):
    """Groups that ``add_param_group`` refuses, with the message naming the problem."""
    first, second = model[0], model[2]
    return [
        ({"params": [("4.bias", model[4].bias)]}, ValueError, "more than one parameter group"),
        ({"params": list(first.named_parameters()), "gamma": 0.1}, ValueError, "gamma=0.1 but NGAdam has gamma=0.8"),
        ({"params": list(first.named_parameters()), "foreach": True}, ValueError, "foreach"),
        ({"params": list(first.named_parameters()), "lr": -1.0}, ValueError, "Invalid learning rate"),
        (
            {"params": list(first.named_parameters()), "betas": (1.5, 0.99)},
            ValueError,
            "Invalid beta parameter at index 0",
        ),
        ({"params": list(first.named_parameters()), "players": [[0]]}, ValueError, r"param group 1: .*tensors \[1\]"),
        ({"params": list(first.named_parameters()), "graph": [(0, 3, 1.0)]}, ValueError, "names player 3"),
        ({"params": [("w", torch.zeros(2, dtype=torch.float64, requires_grad=True))]}, ValueError, "statistics dtype"),
        ({"params": [("w", torch.zeros(2, device="meta", requires_grad=True))]}, ValueError, "one device"),
        ({"params": [("w", model[4].weight * 2)]}, ValueError, "non-leaf"),
        ({"params": list(second.parameters())}, ValueError, "with/without names"),
        ({"params": list(first.named_parameters()), "players": 3}, ValueError, "param group 1: Invalid players: 3"),
    ]


@pytest.mark.parametrize("index", range(12))
def test_a_bad_group_is_refused_and_changes_nothing(index):
    model = mlp()
    head, _ = frozen_backbone(model)
    optimizer = NGAdam(head, **HP)
    twin_model = copy.deepcopy(model)
    twin = NGAdam([(name, p) for name, p in twin_model.named_parameters() if name in HEAD], **HP)
    train(model, optimizer, 2), train(twin_model, twin, 2)
    group, error, message = bad_groups(model)[index]
    keys = set(group)
    topology, game = optimizer.topology, optimizer.game_state
    with pytest.raises(error, match=message):
        optimizer.add_param_group(group)
    assert set(group) >= keys and len(optimizer.param_groups) == 1
    assert optimizer.topology is topology and optimizer.game_state is game
    for a, b in zip(train(model, optimizer, 2), train(twin_model, twin, 2)):
        assert torch.equal(a, b)


def test_players_and_graph_of_a_group():
    """``players`` (indices into the group) and ``graph`` (edges naming new players) in the group;
    without names a group of several tensors is one player per tensor, with the constructor's warning."""
    model = mlp()
    optimizer = NGAdam([model[4].weight], players=[[0]])
    optimizer.add_param_group({"params": [model[2].weight, model[2].bias, model[0].bias], "players": [[0, 1], [2]]})
    assert optimizer.players.groups == ((0,), (1, 2), (3,))
    np.testing.assert_array_equal(optimizer.graph.weights, [[0, 1, 0], [1, 0, 1], [0, 1, 0]])
    with pytest.warns(UserWarning, match=r"each tensor is a player of its own.*'players'"):
        optimizer.add_param_group({"params": [model[4].bias, model[0].weight], "graph": [(4, 0, 0.5)]})
    assert optimizer.players.groups == ((0,), (1, 2), (3,), (4,), (5,))
    assert optimizer.graph.weights[4].tolist() == [0.5, 0, 0, 0, 0]  # no chain: the group's edges
    assert "players" not in optimizer.param_groups[1] and "graph" not in optimizer.param_groups[2]


@pytest.mark.parametrize("graph", [[[0.0]], "fx"])
def test_a_graph_not_built_as_a_chain_needs_the_groups_edges(graph):
    model = mlp()
    head, backbone = frozen_backbone(model)
    optimizer = NGAdam(model[4], graph=graph) if graph == "fx" else NGAdam(head, graph=graph)
    params = [p for _, p in backbone] if graph == "fx" else backbone
    with pytest.raises(ValueError, match="give the new players' edges in the group"):
        optimizer.add_param_group({"params": params, "players": [[0, 1], [2, 3]]})
    optimizer.add_param_group({"params": params, "players": [[0, 1], [2, 3]], "graph": [(1, 2, 1.0)]})
    np.testing.assert_array_equal(optimizer.graph.weights, [[0, 0, 0], [0, 0, 1], [0, 1, 0]])


def test_a_compiled_step_recompiles_for_the_grown_game_and_matches_eager():
    import torch._dynamo

    runs = []
    for compiled in (False, True):
        torch._dynamo.reset()
        model = mlp()
        head, backbone = frozen_backbone(model)
        optimizer = NGAdam(head, **HP)
        step = torch.compile(optimizer.step, fullgraph=True) if compiled else optimizer.step
        x, y = batch()
        for index in range(4):
            if index == 2:
                optimizer.add_param_group({"params": unfreeze(backbone), "lr": HP["lr"] / 10})
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            step()
        runs.append([p.detach().clone() for p in model.parameters()])
    torch._dynamo.reset()
    for a, b in zip(*runs):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_a_group_the_chosen_kernels_cannot_run_is_refused(monkeypatch):
    """The kernels chosen at construction stay; a group they cannot run is refused, naming why."""
    import types

    import neat.kernel_selection

    model = mlp()
    head, backbone = frozen_backbone(model)
    optimizer = NGAdam(head, foreach=True, **HP)
    plan, topology = optimizer.kernel_plan, optimizer.topology
    picky = types.SimpleNamespace(plan=plan, unsupported=lambda xp, params: f"{len(params)} tensors are too many")
    monkeypatch.setattr(neat.kernel_selection, "registered", lambda: {plan.name: picky})
    with pytest.raises(ValueError, match=r"kernels chosen at construction \('foreach'\).*6 tensors are too many"):
        optimizer.add_param_group({"params": unfreeze(backbone)})
    assert len(optimizer.param_groups) == 1 and optimizer.topology is topology and optimizer.kernel_plan is plan
