"""``state[p]["step"]``: each tensor's step count ``t_k`` (SPEC "State"), where ``torch.optim`` keeps
``step``; the game state's ``tensor_count`` owns it, ``state`` and ``state_dict()`` show live views."""

from __future__ import annotations

import copy
import io

import pytest
import torch

from neat.torch import NGAdam
from tests.torch.models import HP, batch, mlp, train

F64 = torch.float64


def saved_and_loaded(state_dict):
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def test_step_is_a_live_view_of_the_tensor_count():
    model = mlp()
    optimizer = NGAdam(model, **HP)
    params = list(model.parameters())
    assert all(len(optimizer.state[p]) == 0 for p in params)  # lazy, as torch.optim
    train(model, optimizer, 2)
    counts = optimizer.game_state.tensor_count
    for k, param in enumerate(params):
        step = optimizer.state[param]["step"]
        assert step.shape == () and step.dtype == torch.int32 and int(step) == 2
        assert step.data_ptr() == counts[k].data_ptr()  # one owner: no copy that could drift
    model[4].requires_grad_(False)  # the last layer sits out: its count stays behind
    steps = [optimizer.state[p]["step"] for p in params]
    train(model, optimizer, 3)
    assert [int(step) for step in steps] == [5, 5, 5, 5, 2, 2] == counts.tolist()
    assert optimizer.state_dict()["state"][0]["step"] is optimizer.state[params[0]]["step"]


def test_a_tensor_gets_its_step_with_its_first_gradient():
    model = mlp()
    optimizer = NGAdam(model, **HP)
    model[0].requires_grad_(False)
    train(model, optimizer, 2)
    first = next(model.parameters())
    assert first not in optimizer.state or "step" not in optimizer.state[first]
    model[0].requires_grad_(True)
    train(model, optimizer, 1)
    assert int(optimizer.state[first]["step"]) == 1 and int(optimizer.state[model[2].weight]["step"]) == 3


def test_a_resumed_run_restores_the_steps_through_the_game_state():
    model = mlp()
    optimizer = NGAdam(model, **HP)
    model[4].requires_grad_(False)
    train(model, optimizer, 2)
    model[4].requires_grad_(True)
    train(model, optimizer, 1)
    saved = saved_and_loaded(optimizer.state_dict())
    assert [int(saved["state"][k]["step"]) for k in range(6)] == [3, 3, 3, 3, 1, 1]
    resumed_model = copy.deepcopy(model)
    resumed = NGAdam(resumed_model, **HP)
    resumed.load_state_dict(saved)
    counts = resumed.game_state.tensor_count
    assert counts.tolist() == [3, 3, 3, 3, 1, 1]
    for k, param in enumerate(resumed_model.parameters()):
        assert resumed.state[param]["step"].data_ptr() == counts[k].data_ptr()
    assert all(torch.equal(a, b) for a, b in zip(train(resumed_model, resumed, 2), train(model, optimizer, 2)))


@pytest.mark.parametrize("form", ["tensor", "float", "int"])
def test_a_saved_step_may_be_any_number_equal_to_the_count(form):
    """torch.optim's test_load_nontensor_step: a step saved as a Python number loads."""
    model = mlp()
    optimizer = NGAdam(model, **HP)
    train(model, optimizer, 2)
    saved = copy.deepcopy(optimizer.state_dict())
    for state in saved["state"].values():
        state["step"] = {"tensor": torch.tensor(2.0), "float": 2.0, "int": 2}[form]
    optimizer.load_state_dict(saved)
    assert int(optimizer.state[next(model.parameters())]["step"]) == 2
    train(model, optimizer, 1)
    assert optimizer.game_state.tensor_count.tolist() == [3] * 6


def test_a_step_that_disagrees_with_the_count_is_refused_without_changes():
    model = mlp()
    optimizer = NGAdam(model, **HP)
    train(model, optimizer, 2)
    saved = copy.deepcopy(optimizer.state_dict())
    saved["state"][3]["step"] = torch.tensor(5.0)
    before = copy.deepcopy(optimizer.state_dict())
    with pytest.raises(ValueError, match=r"parameter 3 has step tensor\(5\.\) but its count in the game state"):
        optimizer.load_state_dict(saved)
    after = optimizer.state_dict()
    assert optimizer.game_state.tensor_count.tolist() == [2] * 6
    for k, state in before["state"].items():
        assert all(torch.equal(value, after["state"][k][key]) for key, value in state.items())


def test_a_state_dict_without_steps_loads():
    """Checkpoints written before ``step`` was in the state: the game state's count restores it."""
    model = mlp()
    optimizer = NGAdam(model, **HP)
    train(model, optimizer, 3)
    saved = copy.deepcopy(optimizer.state_dict())
    for state in saved["state"].values():
        del state["step"]
    resumed_model = copy.deepcopy(model)
    resumed = NGAdam(resumed_model, **HP)
    resumed.load_state_dict(saved)
    assert [int(resumed.state[p]["step"]) for p in resumed_model.parameters()] == [3] * 6
    assert all(torch.equal(a, b) for a, b in zip(train(resumed_model, resumed, 2), train(model, optimizer, 2)))


def test_adamw_loads_an_ngadam_state_dict_and_goes_on():
    """With the game off (gamma = zeta = 0) NG-Adam is AdamW: AdamW resumes its run."""
    data = batch(dtype=F64)
    model = mlp(dtype=F64)
    optimizer = NGAdam(model, lr=0.01, gamma=0.0, zeta=0.0)
    train(model, optimizer, 3, data=data)
    adamw_model = copy.deepcopy(model)
    adamw = torch.optim.AdamW(adamw_model.parameters(), lr=0.01)
    adamw.load_state_dict(copy.deepcopy(optimizer.state_dict()))
    assert int(adamw.state[next(adamw_model.parameters())]["step"]) == 3
    continued, resumed = train(model, optimizer, 3, data=data), train(adamw_model, adamw, 3, data=data)
    assert int(adamw.state[next(adamw_model.parameters())]["step"]) == 6
    for a, b in zip(resumed, continued):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
