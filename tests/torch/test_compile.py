"""``torch.compile(opt.step, fullgraph=True)``: one graph without a break, the eager numbers, no
recompilation when a scheduler changes a tensor lr, none after dynamo's first when it cycles
betas, and no plug-in lookup inside the traced step."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch._dynamo
from torch._dynamo.utils import counters

import neat.arrays
import neat.kernel_selection
from neat.torch import NGAdam
from tests.torch.models import HP, assert_close_lists, batch, mlp

PLAYERS = [[0, 1], [2, 3], [4, 5]]


@pytest.fixture(autouse=True)
def fresh_dynamo():
    """Every test compiles from scratch and counts its own graphs."""
    torch._dynamo.reset()
    counters.clear()
    yield
    torch._dynamo.reset()


def featured(model):
    """Three groups (a tensor lr, maximize, no weight decay), and a frozen tensor: the sub-game."""
    model[2].bias.requires_grad_(False)
    return NGAdam(
        [
            {"params": model[0].parameters(), "lr": torch.tensor(0.02), "maximize": True},
            {"params": model[2].parameters(), "weight_decay": 0.0},
            {"params": model[4].parameters(), "lr": 0.01},
        ],
        players=PLAYERS,
        **{key: value for key, value in HP.items() if key != "lr"},
    )


def plain(model):
    return NGAdam(model, **HP)


def train(model, optimizer, steps, step, scheduler=None, strict_after=None):
    """``steps`` full-batch steps through ``step``; from step ``strict_after`` on, a recompilation
    is an error."""
    x, y = batch()
    for index in range(steps):
        with torch._dynamo.config.patch(error_on_recompile=strict_after is not None and index >= strict_after):
            optimizer.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            step()
        if scheduler is not None:
            with warnings.catch_warnings():  # a compiled step bypasses torch.optim's step-count hook
                warnings.filterwarnings("ignore", r"Detected call of `lr_scheduler\.step\(\)`", UserWarning)
                scheduler.step()
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("make", [plain, featured], ids=["module", "groups-maximize-frozen"])
def test_compiled_step_is_one_graph_and_matches_eager(make):
    eager_model, compiled_model = mlp(), mlp()
    eager_optimizer = make(eager_model)
    expected = train(eager_model, eager_optimizer, 5, eager_optimizer.step)
    optimizer = make(compiled_model)
    actual = train(compiled_model, optimizer, 5, torch.compile(optimizer.step, fullgraph=True), strict_after=0)
    assert counters["stats"]["unique_graphs"] == 1 and not counters["graph_break"]
    assert_close_lists(actual, expected, rtol=1e-5, atol=1e-6)
    assert torch.equal(optimizer.game_state.tensor_count, eager_optimizer.game_state.tensor_count)
    torch.testing.assert_close(optimizer.game_state.log_step, eager_optimizer.game_state.log_step)


def run_scheduled(make_scheduler, compiled, strict_after=None):
    model = mlp()
    optimizer = NGAdam(model, **{**HP, "lr": torch.tensor(HP["lr"])})
    step = torch.compile(optimizer.step, fullgraph=True) if compiled else optimizer.step  # before the scheduler
    scheduler = make_scheduler(optimizer)  # wraps optimizer.step
    return train(model, optimizer, 10, step, scheduler, strict_after), optimizer


def test_scheduler_changing_a_tensor_lr_never_recompiles():
    def step_lr(optimizer):
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)

    actual, optimizer = run_scheduled(step_lr, compiled=True, strict_after=0)
    expected, _ = run_scheduled(step_lr, compiled=False)
    assert counters["stats"]["unique_graphs"] == 1
    assert isinstance(optimizer.param_groups[0]["lr"], torch.Tensor)
    assert_close_lists(actual, expected, rtol=1e-5, atol=1e-6)


def test_one_cycle_lr_changing_lr_and_betas_does_not_recompile_after_dynamos_first():
    """OneCycleLR writes a new float beta1 every step: dynamo compiles once with it constant and
    once with it as an input (its "automatic dynamic"); after that, no step recompiles."""

    def one_cycle(optimizer):
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.05, total_steps=20)

    actual, optimizer = run_scheduled(one_cycle, compiled=True, strict_after=2)
    expected, _ = run_scheduled(one_cycle, compiled=False)
    assert counters["stats"]["unique_graphs"] == 2
    assert optimizer.param_groups[0]["betas"][0] not in (0.9, 0.95)  # the scheduler cycled beta1
    assert_close_lists(actual, expected, rtol=1e-5, atol=1e-6)


def test_traced_step_asks_no_plugin(monkeypatch):
    """The namespace and kernels are resolved at construction: the step never asks the plug-ins."""
    model = mlp()
    optimizer = NGAdam(model, **HP)

    def refuse(*args, **kwargs):
        raise AssertionError("a plug-in lookup inside the step")

    for module, name in (
        (neat.arrays, "namespace_of"),
        (neat.kernel_selection, "registered"),
        (neat.kernel_selection, "default_kernel_set"),
    ):
        monkeypatch.setattr(module, name, refuse)
    train(model, optimizer, 2, torch.compile(optimizer.step, fullgraph=True, backend="eager"))
    train(model, optimizer, 1, optimizer.step)
    assert int(optimizer.game_state.count) == 3
