"""A copy of an NGAdam (``copy.deepcopy``, ``pickle``, ``torch.save`` / ``torch.load``) is an
optimizer that goes on: its game state, moments and step counts are the original's, its kernels,
tables and views are rebuilt, and its next steps equal the original's bit for bit."""

from __future__ import annotations

import copy
import io
import pickle

import pytest
import torch

from neat.state import GameState
from neat.torch import NGAdam
from tests.torch.models import HP, mlp, train


def gradients(params, step: int) -> list:
    """Gradients of step ``step``, the same for the original and the copy (a frozen last tensor at step 1)."""
    generator = torch.Generator().manual_seed(100 + step)
    grads = [torch.randn(p.shape, generator=generator, dtype=p.dtype) for p in params]
    if step == 1:
        grads[-1] = None
    return grads


def step_with(optimizer, step: int) -> None:
    params = [p for group in optimizer.param_groups for p in group["params"]]
    for param, grad in zip(params, gradients(params, step)):
        param.grad = grad
    optimizer.step()


def torch_saved(optimizer):
    buffer = io.BytesIO()
    torch.save(optimizer, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)


COPIES = {
    "deepcopy": copy.deepcopy,
    "pickle": lambda optimizer: pickle.loads(pickle.dumps(optimizer)),
    "torch.save": torch_saved,
}


def assert_same_optimizer_state(copied, original) -> None:
    """Parameters, per-tensor state (step, moments) and game state equal bit for bit."""
    copied_params = [p for group in copied.param_groups for p in group["params"]]
    original_params = [p for group in original.param_groups for p in group["params"]]
    for mine, theirs in zip(copied_params, original_params):
        assert torch.equal(mine, theirs)
        assert copied.state[mine].keys() == original.state[theirs].keys()
        for key, value in original.state[theirs].items():
            assert torch.equal(copied.state[mine][key], value), key
    for name, mine, theirs in zip(GameState._fields, copied.game_state, original.game_state):
        assert torch.equal(mine, theirs), name


@pytest.mark.parametrize("flags", [{}, {"foreach": True}, {"foreach": False}], ids=["default", "foreach", "generic"])
@pytest.mark.parametrize("how", list(COPIES))
def test_a_copy_steps_as_the_original_bit_for_bit(how, flags):
    model = mlp()
    original = NGAdam([*model.named_parameters()], **HP, **flags)
    for step in range(3):  # step 1 leaves the last tensor out: a sub-game, and a tensor count behind
        step_with(original, step)
    copied = COPIES[how](original)
    assert copied.kernel_plan is original.kernel_plan  # the same registered plan, chosen again
    assert_same_optimizer_state(copied, original)
    for step in range(3, 8):
        step_with(original, step)
        step_with(copied, step)
        assert_same_optimizer_state(copied, original)
    assert int(copied.game_state.count) == 8 and copied.game_state.tensor_count.tolist()[-1] == 7


def test_a_copy_shares_nothing_with_the_original():
    model = mlp()
    original = NGAdam(model, **HP)
    train(model, original, 2)
    copied = copy.deepcopy(original)
    before = [value.clone() for value in original.game_state]
    moments = {key: value.clone() for key, value in original.state[next(model.parameters())].items()}
    step_with(copied, 0)
    for name, value, kept in zip(GameState._fields, original.game_state, before):
        assert torch.equal(value, kept), name
    for key, value in original.state[next(model.parameters())].items():
        assert torch.equal(value, moments[key]), key
    first = copied.param_groups[0]["params"][0]
    assert copied.state[first]["step"].data_ptr() == copied.game_state.tensor_count.data_ptr()
    assert int(copied.state[first]["step"]) == 3 and int(original.state[next(model.parameters())]["step"]) == 2


def test_a_model_and_its_optimizer_copied_together_train_on():
    """``deepcopy({"model": ..., "optimizer": ...})`` (as trainers checkpoint): the copy optimizes the copied model."""
    model = mlp()
    optimizer = NGAdam(model, **HP)
    train(model, optimizer, 3)
    copied = copy.deepcopy({"model": model, "optimizer": optimizer})
    assert all(p is q for p, q in zip(copied["model"].parameters(), copied["optimizer"].param_groups[0]["params"]))
    expected = train(model, optimizer, 4)
    assert all(torch.equal(a, b) for a, b in zip(train(copied["model"], copied["optimizer"], 4), expected))


def test_a_copy_keeps_public_attributes_and_groups():
    model = mlp()
    original = NGAdam(model, **HP, foreach=True)
    train(model, original, 1)
    copied = pickle.loads(pickle.dumps(original))
    assert {k for k in vars(copied) if not k.startswith("_")} == {k for k in vars(original) if not k.startswith("_")}
    assert copied.config == original.config and copied.player_names == original.player_names
    assert copied.players == original.players and (copied.graph.weights == original.graph.weights).all()
    assert copied.defaults == original.defaults and "differentiable" not in copied.defaults
    assert [{k: v for k, v in g.items() if k != "params"} for g in copied.param_groups] == [
        {k: v for k, v in g.items() if k != "params"} for g in original.param_groups
    ]
    assert repr(copied) == repr(original)


@pytest.mark.parametrize("how", list(COPIES))
def test_a_copy_of_a_grown_optimizer_steps_as_the_original_and_grows_alike(how):
    """A copy keeps the grown game (players, graph and how it was built) and the step counts' views."""
    model = mlp()
    first, *rest = list(model.parameters())
    original = NGAdam([first], **HP)
    step_with(original, 0)
    original.add_param_group({"params": rest, "players": [list(range(len(rest)))]})  # chained after the first
    for step in range(1, 3):
        step_with(original, step)
    copied = COPIES[how](original)
    assert copied.players.owner == original.players.owner
    assert_same_optimizer_state(copied, original)
    for copy_of in (original, copied):
        copy_of.state[[p for g in copy_of.param_groups for p in g["params"]][1]]["step"].fill_(0)
        assert copy_of.game_state.tensor_count.tolist()[1] == 0  # state["step"] is a view of t_k
        copy_of.game_state.tensor_count[1] = 2
    extra = [torch.nn.Parameter(torch.zeros(3)) for _ in (original, copied)]
    for optimizer, parameter in zip((original, copied), extra):
        optimizer.add_param_group({"params": [parameter]})  # the chain rule travels with the copy
        assert optimizer.graph.weights[-1, -2] == 1.0
    for step in range(3, 6):
        step_with(original, step)
        step_with(copied, step)
        assert_same_optimizer_state(copied, original)
