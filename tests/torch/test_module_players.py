"""Players of param groups: ``NGAdam(groups, module=model)`` gives every tensor its layer's player,
players and graph in the module's order, whatever groups hold the tensors (the decay / no-decay
groups trainers build); named groups give players in module-tree order."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neat.players import PlayerGraph
from neat.torch import NGAdam
from tests.torch.models import HP, assert_close_lists
from tests.torch.test_layout import Residual


def blocks(seed: int = 0) -> torch.nn.Module:
    """Two pre-norm blocks and a head: ``0.0`` LayerNorm, ``0.1`` Linear, ``1.0``, ``1.1``, ``2``."""
    torch.manual_seed(seed)

    def block():
        return torch.nn.Sequential(torch.nn.LayerNorm(6), torch.nn.Linear(6, 6), torch.nn.Tanh())

    return torch.nn.Sequential(block(), block(), torch.nn.Linear(6, 3))


def decay_groups(model, weight_decay=0.1, no_decay=0.0) -> list[dict]:
    """Trainer-style groups of unnamed tensors: matrices decay; biases and LayerNorm weights do not
    (unless ``no_decay`` says otherwise)."""
    params = list(model.parameters())
    return [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": no_decay},
    ]


def tensor_sets(optimizer) -> list[set[int]]:
    """Each player's tensors, as the ids of the tensor objects."""
    return [{id(optimizer._params[k]) for k in group} for group in optimizer.players.groups]


def test_module_gives_the_layer_players_of_the_module_to_unnamed_groups():
    model = blocks()
    by_module, by_groups = NGAdam(model), NGAdam(decay_groups(model), module=model)
    assert by_groups.player_names == by_module.player_names == ["0.0", "0.1", "1.0", "1.1", "2"]
    assert tensor_sets(by_groups) == tensor_sets(by_module)
    np.testing.assert_array_equal(by_groups.graph.weights, PlayerGraph.chain(5).weights)  # module order
    assert [g["weight_decay"] for g in by_groups.param_groups] == [0.1, 0.0]


def test_module_players_train_like_the_module_itself():
    """Same players, graph and hyperparameters (one weight decay in both groups) in another tensor
    order: the same training."""
    decay = HP["weight_decay"]
    x, y = torch.randn(16, 6, generator=torch.Generator().manual_seed(1)), torch.randn(16, 3)
    runs = []
    for make in (lambda m: NGAdam(m, **HP), lambda m: NGAdam(decay_groups(m, decay, decay), module=m, **HP)):
        model = blocks()
        optimizer = make(model)
        for _ in range(5):
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            optimizer.step()
        runs.append([p.detach().clone() for p in model.parameters()])
    assert_close_lists(runs[1], runs[0], rtol=1e-6, atol=1e-7)


def test_module_leaves_out_layers_whose_tensors_are_not_given():
    model = blocks()
    given = [p for name, p in model.named_parameters() if not name.startswith("1.0.")]  # 1.0 frozen
    optimizer = NGAdam([{"params": given}], module=model)
    assert optimizer.player_names == ["0.0", "0.1", "1.1", "2"]
    np.testing.assert_array_equal(optimizer.graph.weights, PlayerGraph.chain(4).weights)


def test_module_with_fx_graph_takes_the_data_flow_of_the_module():
    model = Residual()
    groups = decay_groups(model)
    by_groups = NGAdam(groups, module=model, graph="fx")
    by_module = NGAdam(model, graph="fx")
    assert by_groups.player_names == by_module.player_names == ["", "inp", "a", "b", "out"]
    np.testing.assert_array_equal(by_groups.graph.weights, by_module.graph.weights)
    assert by_groups.graph.weights[0, 4] == 1.0  # the residual edge


def test_module_with_fx_graph_keeps_the_edges_between_the_given_layers():
    model = Residual()
    given = [p for name, p in model.named_parameters() if not name.startswith("a.")]
    optimizer = NGAdam(given, module=model, graph="fx")
    assert optimizer.player_names == ["", "inp", "b", "out"]
    edges = {(i, j) for i, j in zip(*np.nonzero(np.triu(optimizer.graph.weights)))}
    assert edges == {(0, 1), (2, 3), (0, 3)}  # "" – inp, b – out, "" – out; a's edges are gone with it


def test_tensor_outside_the_module_is_refused_before_anything_changes():
    model = blocks()
    stranger = torch.nn.Parameter(torch.zeros(4, 2))
    with pytest.raises(ValueError, match=r"parameter 6 \(shape \[4, 2\]\) that is not a parameter of the module="):
        NGAdam([{"params": list(model.parameters())[:6]}, {"params": [stranger]}], module=model)


@pytest.mark.parametrize(
    ("params", "keywords", "error", "message"),
    [
        (lambda m: m, {}, ValueError, "got a module twice"),
        (lambda m: m.parameters(), {"players": [[0]]}, ValueError, "players= and module= both set the players"),
    ],
)
def test_module_conflicts_are_refused(params, keywords, error, message):
    model = blocks()
    with pytest.raises(error, match=message):
        NGAdam(params(model), module=model, **keywords)


def test_module_must_be_a_module():
    model = blocks()
    with pytest.raises(TypeError, match="module= must be an nn.Module, got list"):
        NGAdam(model.parameters(), module=list(model.parameters()))


def test_fx_graph_without_a_module_names_both_ways_to_give_one():
    with pytest.raises(ValueError, match=r"needs an nn.Module \(as params or module=\)"):
        NGAdam(blocks().parameters(), graph="fx")


def test_named_groups_keep_each_block_together():
    """Named groups split by weight decay: the names say which block a layer is in, not where it
    sits in the block, so a block's players stay together (first appearance inside the block)
    rather than every LayerNorm being chained after the whole network."""
    model = blocks()
    named = list(model.named_parameters())
    groups = [
        {"params": [(n, p) for n, p in named if p.ndim >= 2], "weight_decay": 0.1},
        {"params": [(n, p) for n, p in named if p.ndim < 2], "weight_decay": 0.0},
    ]
    optimizer = NGAdam(groups)
    assert optimizer.player_names == ["0.1", "0.0", "1.1", "1.0", "2"]
    assert tensor_sets(optimizer) == [tensor_sets(NGAdam(model))[i] for i in (1, 0, 3, 2, 4)]


def test_named_parameters_in_one_group_keep_the_module_order():
    model = blocks()
    assert NGAdam(model.named_parameters()).player_names == NGAdam(model).player_names


def test_unnamed_groups_warning_points_to_module():
    with pytest.warns(UserWarning, match=r"NGAdam\(param_groups, module=model\)"):
        NGAdam(decay_groups(blocks()))
