"""state_dict / load_state_dict: a resumed run continues bit-identically; mismatches are refused."""

from __future__ import annotations

import copy
import io

import pytest
import torch

from neat import checkpoint
from neat.state import GameState
from neat.torch import NGAdam
from tests.torch.models import HP, assert_close_lists, mlp, train


def saved_and_loaded(state_dict):
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_resumed_run_continues_bit_identically(dtype):
    model = mlp(dtype=dtype)
    optimizer = NGAdam(model, **HP)
    train(model, optimizer, 4)
    checkpoint = saved_and_loaded({"model": model.state_dict(), "optimizer": optimizer.state_dict()})
    uninterrupted = train(model, optimizer, 4)

    resumed_model = mlp(seed=7, dtype=dtype)
    resumed_model.load_state_dict(checkpoint["model"])
    resumed = NGAdam(resumed_model, **HP)
    resumed.load_state_dict(checkpoint["optimizer"])
    for p in resumed_model.parameters():
        assert resumed.state[p]["exp_avg"].dtype == torch.float32
    assert_close_lists(train(resumed_model, resumed, 4), uninterrupted, rtol=0, atol=0)
    for name, value, restored in zip(GameState._fields, optimizer.game_state, resumed.game_state):
        assert torch.equal(restored, value), name


def test_state_dict_holds_the_global_state():
    """The "neat" entry is the checkpoint header (neat.checkpoint) as tensors, beside torch's own state and groups."""
    model = mlp()
    optimizer = NGAdam(model, **HP)
    train(model, optimizer, 3)
    neat_state = saved_and_loaded(optimizer.state_dict())["neat"]
    assert list(neat_state) == list(checkpoint.HEADER)
    assert int(neat_state["count"]) == 3 and neat_state["log_step"].shape == (3,)
    assert neat_state["tensor_count"].tolist() == [3] * 6 and neat_state["spec_version"] == 2
    assert neat_state["player_of"].tolist() == [0, 0, 1, 1, 2, 2]
    assert neat_state["graph"].tolist() == [[0, 1, 0], [1, 0, 1], [0, 1, 0]]
    assert {key: neat_state[key] for key in checkpoint.HYPERPARAMETERS} == HP
    for name, value in zip(GameState._fields, optimizer.game_state):
        assert torch.equal(neat_state[name], value), name
    assert set(optimizer.state_dict()["state"][0]) == {"step", "exp_avg", "exp_avg_sq"}


def test_mismatched_state_dict_is_refused_without_changes():
    model = mlp()
    optimizer = NGAdam(model, **HP)
    train(model, optimizer, 2)
    good = copy.deepcopy(optimizer.state_dict())
    before = copy.deepcopy(optimizer.state_dict())

    def changed(change):
        bad = copy.deepcopy(good)
        change(bad)
        return bad

    cases = [
        (changed(lambda d: d["neat"].update(player_of=torch.tensor([0, 0, 0, 0, 1, 1]))), "players differ"),
        (changed(lambda d: d["state"][0].update(exp_avg=torch.zeros(3, 3))), r"'exp_avg.0'\] has shape"),
        ({key: value for key, value in good.items() if key != "neat"}, "'neat'"),
        (changed(lambda d: d["neat"].update(graph=[[0, 2, 0], [2, 0, 1], [0, 1, 0]])), "has graph="),
        (changed(lambda d: d["neat"].update(zeta=0.1)), "has zeta=0.1 but this optimizer has zeta=0.3"),
        (changed(lambda d: d["neat"].update(lr=-1.0)), "Invalid lr"),
        (changed(lambda d: d["neat"].update(spec_version=1)), "spec version 1"),
        (changed(lambda d: d["neat"].pop("player_of")), r"missing keys \['player_of'\]"),
        (changed(lambda d: d["neat"]["log_step"].fill_(float("nan"))), r"'log_step'\] must hold finite"),
        (changed(lambda d: d["neat"]["count"].fill_(-1)), r"'count'\] must hold non-negative"),
        (changed(lambda d: d["state"][2]["exp_avg"].fill_(float("inf"))), r"'exp_avg.2'\] must hold finite"),
        (changed(lambda d: d["state"][3]["exp_avg_sq"].fill_(-1.0)), r"'exp_avg_sq.3'\] has negative"),
        (changed(lambda d: d["state"][1].pop("exp_avg_sq")), "only one of exp_avg.1 and exp_avg_sq.1"),
    ]
    for bad, message in cases:
        with pytest.raises(ValueError, match=message):
            optimizer.load_state_dict(bad)
    after = optimizer.state_dict()
    for k, state in before["state"].items():
        for key, value in state.items():
            assert torch.equal(after["state"][k][key], value)
    assert torch.equal(after["neat"]["log_step"], before["neat"]["log_step"])

    smaller = NGAdam(torch.nn.Linear(6, 16), **HP)
    with pytest.raises(ValueError):
        smaller.load_state_dict(good)


def test_resume_with_a_tensor_that_never_had_a_gradient():
    """A tensor without moments yet (frozen so far) gets them once it has a gradient, also after a load."""

    def unfreeze_and_train(model, optimizer):
        model[4].bias.requires_grad_(True)
        return train(model, optimizer, 3)

    model = mlp()
    model[4].bias.requires_grad_(False)
    optimizer = NGAdam(model, **HP)
    train(model, optimizer, 3)
    checkpoint = saved_and_loaded({"model": model.state_dict(), "optimizer": optimizer.state_dict()})
    assert model[4].bias not in optimizer.state and len(checkpoint["optimizer"]["state"]) == 5
    uninterrupted = unfreeze_and_train(model, optimizer)

    resumed_model = mlp(seed=7)
    resumed_model[4].bias.requires_grad_(False)
    resumed_model.load_state_dict(checkpoint["model"])
    resumed = NGAdam(resumed_model, **HP)
    resumed.load_state_dict(checkpoint["optimizer"])
    assert_close_lists(unfreeze_and_train(resumed_model, resumed), uninterrupted, rtol=0, atol=0)
    assert resumed.game_state.tensor_count.tolist() == [6, 6, 6, 6, 6, 3]
