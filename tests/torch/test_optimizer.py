"""neat.torch.NGAdam as a torch optimizer: same numbers as the core, AdamW reduction, torch features."""

from __future__ import annotations

import pytest
import torch

import neat
from neat.torch import NGAdam
from tests.torch.models import HP, assert_close_lists, batch, mlp, train


def test_same_as_functional_api_over_20_steps():
    model = mlp()
    reference = [p.detach().clone() for p in model.parameters()]
    trained = train(model, NGAdam(model, **HP), steps=20)

    functional = neat.ng_adam(**HP)
    params = reference
    players = [[0, 1], [2, 3], [4, 5]]  # one player per Linear, chain graph: what NGAdam(model) builds
    state = functional.init(params, players=players, graph=None)
    x, y = batch()
    twin = mlp()
    for _ in range(20):
        with torch.no_grad():
            for p, value in zip(twin.parameters(), params):
                p.copy_(value)
        twin.zero_grad()
        torch.nn.functional.mse_loss(twin(x), y).backward()
        params, state = functional.step(params, [p.grad.clone() for p in twin.parameters()], state)
    assert_close_lists(trained, params, rtol=1e-5, atol=1e-6)


def adamw_run(dtype, steps=100, **adamw_options):
    model = mlp(dtype=dtype)
    adamw = torch.optim.AdamW(
        model.parameters(), lr=0.01, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.05, **adamw_options
    )
    return train(model, adamw, steps)


def ngadam_as_adamw(dtype, steps=100, **flags):
    model = mlp(dtype=dtype)
    optimizer = NGAdam(
        model, lr=0.01, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.05, gamma=0.0, zeta=0.0, mu=1.0, **flags
    )
    return train(model, optimizer, steps)


#: The kernel sets an NGAdam on CPU can be asked for: default, foreach, generic.
FLAGS = [{}, {"foreach": True}, {"foreach": False}]


@pytest.mark.parametrize("flags", FLAGS, ids=["default", "foreach", "generic"])
@pytest.mark.parametrize("adamw_kind", ["foreach", "fused"])
def test_reduces_to_adamw_float32(flags, adamw_kind):
    expected = adamw_run(torch.float32, **{adamw_kind: True})
    assert_close_lists(ngadam_as_adamw(torch.float32, **flags), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("flags", FLAGS, ids=["default", "foreach", "generic"])
def test_reduces_to_adamw_float64(flags):
    expected = adamw_run(torch.float64, foreach=True)
    actual = ngadam_as_adamw(torch.float64, **flags)
    for a, e in zip(actual, expected):
        assert torch.max(torch.abs(a - e) / torch.abs(e).clamp_min(1e-300)).item() <= 1e-12


@pytest.mark.parametrize("flags", FLAGS, ids=["default", "foreach", "generic"])
def test_reduces_to_adamw_when_some_parameters_sit_steps_out(flags):
    """SPEC v2: per-tensor step counts make gamma = zeta = 0 AdamW also when grads are missing."""

    def run(make):
        model = mlp(dtype=torch.float64)
        optimizer = make(model.named_parameters())
        x, y = batch(dtype=torch.float64)
        for step in range(12):
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            if step % 3 == 1:
                model[2].weight.grad = None  # one tensor of a player
            if step in (2, 3, 7):
                model[4].weight.grad = model[4].bias.grad = None  # a whole player
            optimizer.step()
        return [p.detach().clone() for p in model.parameters()]

    hp = dict(lr=0.01, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.05)
    expected = run(lambda params: torch.optim.AdamW(params, foreach=True, **hp))
    actual = run(lambda params: NGAdam(params, gamma=0.0, zeta=0.0, **hp, **flags))
    assert_close_lists(actual, expected, rtol=1e-12, atol=1e-14)


def test_parameters_without_grad_are_left_alone():
    model = mlp()
    frozen = model[2]
    frozen.weight.requires_grad_(False)
    frozen.bias.requires_grad_(False)
    optimizer = NGAdam(model, **HP)
    before = [p.detach().clone() for p in frozen.parameters()]
    train(model, optimizer, steps=5)
    assert_close_lists(list(frozen.parameters()), before, rtol=0, atol=0)
    assert frozen.weight not in optimizer.state
    assert optimizer.game_state.tensor_count.tolist() == [5, 5, 0, 0, 5, 5]
    step_scale = optimizer.diagnostics()["step_scale"]
    assert step_scale[1].item() == 1.0  # the frozen player's log-step stays 0
    assert step_scale[0].item() != 1.0 and step_scale[2].item() != 1.0


def test_game_without_a_player_is_the_game_of_the_others():
    """Players with no gradient sit out: the rest play on the graph they induce."""
    generator = torch.Generator().manual_seed(0)
    params = [torch.randn(3, generator=generator) for _ in range(4)]
    grads = [[torch.randn(3, generator=generator) for _ in range(4)] for _ in range(6)]
    kept = [p.clone() for p in params]
    weights = [[0, 1, 0, 2], [1, 0, 1, 0], [0, 1, 0, 1], [2, 0, 1, 0]]
    optimizer = NGAdam(params, players=[[0], [1], [2], [3]], graph=weights, **HP)
    reduced_params = [params[k].clone() for k in (0, 2, 3)]
    reduced = NGAdam(reduced_params, players=[[0], [1], [2]], graph=[[0, 0, 2], [0, 0, 1], [2, 1, 0]], **HP)
    for step_grads in grads:
        for k, (p, g) in enumerate(zip(params, step_grads)):
            p.grad = None if k == 1 else g.clone()
        for p, k in zip(reduced_params, (0, 2, 3)):
            p.grad = step_grads[k].clone()
        optimizer.step()
        reduced.step()
    assert_close_lists([params[k] for k in (0, 2, 3)], reduced_params, rtol=1e-6, atol=1e-7)
    assert torch.equal(params[1], kept[1])


def test_param_groups_give_per_tensor_lr_and_weight_decay():
    model = mlp()
    groups = [
        {"params": model[0].parameters(), "lr": 0.05, "weight_decay": 0.1},
        {"params": list(model[2].parameters()) + list(model[4].parameters())},
    ]
    optimizer = NGAdam(groups, players=[[0, 1], [2, 3], [4, 5]], **HP)
    trained = train(model, optimizer, steps=5)

    twin = mlp()
    params = [p.detach().clone() for p in twin.parameters()]
    state = neat.ng_adam(**HP).init(params, players=[[0, 1], [2, 3], [4, 5]])
    x, y = batch()
    config = neat.NGAdamConfig(**HP)
    for _ in range(5):
        twin.zero_grad()
        torch.nn.functional.mse_loss(twin(x), y).backward()
        grads = [p.grad.clone() for p in twin.parameters()]
        params, state = neat.functional.step(
            params,
            grads,
            state,
            config,
            lr=[0.05, 0.05] + [HP["lr"]] * 4,
            weight_decay=[0.1, 0.1] + [HP["weight_decay"]] * 4,
        )
        with torch.no_grad():
            for p, value in zip(twin.parameters(), params):
                p.copy_(value)
    assert_close_lists(trained, params, rtol=1e-5, atol=1e-6)


def test_lr_scheduler_drives_the_step():
    model = mlp()
    optimizer = NGAdam(model, **HP)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 1.0 if epoch < 3 else 0.0)
    after_three = train(model, optimizer, 3, scheduler=scheduler)
    assert optimizer.param_groups[0]["lr"] == 0.0
    decay_free = [p.detach().clone() for p in model.parameters()]
    train(model, optimizer, 3, scheduler=scheduler)
    assert_close_lists(list(model.parameters()), decay_free, rtol=0, atol=0)  # lr 0: nothing moves
    assert not torch.equal(after_three[0], mlp()[0].weight)


def test_group_values_changed_between_steps_are_used():
    """Floats written into param_groups (as schedulers do) take effect at the next step."""

    def run(lr_after, wd_after):
        model = mlp()
        optimizer = NGAdam(
            [
                {"params": model[0].parameters()},
                {"params": list(model[2].parameters()) + list(model[4].parameters()), "lr": 0.01},
            ],
            players=[[0, 1], [2, 3], [4, 5]],
            **HP,
        )
        train(model, optimizer, 2)
        optimizer.param_groups[0]["lr"], optimizer.param_groups[1]["weight_decay"] = lr_after, wd_after
        return train(model, optimizer, 2)

    changed, same = run(0.0, 0.3), run(HP["lr"], HP["weight_decay"])
    assert not torch.equal(changed[0], same[0]) and not torch.equal(changed[2], same[2])
    model = mlp()
    frozen = NGAdam(
        [{"params": model[0].parameters()}, {"params": list(model[2].parameters())}], players=[[0, 1], [2, 3]], **HP
    )
    before = train(model, frozen, 2)[:2]
    frozen.param_groups[0]["lr"] = 0.0
    assert_close_lists(train(model, frozen, 2)[:2], before, rtol=0, atol=0)


@pytest.mark.parametrize("groups", [1, 2])
def test_tensor_lr_updated_in_place_by_a_scheduler_equals_float_lr(groups):
    def run(lr):
        model = mlp()
        params = list(model.parameters())
        split = [{"params": params[:2]}, {"params": params[2:]}] if groups == 2 else [{"params": params}]
        optimizer = NGAdam(split, players=[[0, 1], [2, 3], [4, 5]], **{**HP, "lr": lr})
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
        return train(model, optimizer, 5, scheduler=scheduler), optimizer

    by_tensor, optimizer = run(torch.tensor(HP["lr"]))
    by_float, _ = run(HP["lr"])
    assert isinstance(optimizer.param_groups[0]["lr"], torch.Tensor)
    assert_close_lists(by_tensor, by_float, rtol=1e-6, atol=1e-7)


def test_tensor_lr_equals_float_lr():
    a, b = mlp(), mlp()
    by_float = train(a, NGAdam(a, **HP), 4)
    by_tensor = train(b, NGAdam(b, **{**HP, "lr": torch.tensor(HP["lr"])}), 4)
    assert_close_lists(by_tensor, by_float, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("flags", FLAGS, ids=["default", "foreach", "generic"])
def test_non_finite_gradient_skips_the_step(flags):
    model = mlp()
    optimizer = NGAdam(model, **flags, **HP)
    trained = train(model, optimizer, 3)
    moments = [dict((k, v.clone()) for k, v in optimizer.state[p].items()) for p in model.parameters()]
    log_step = optimizer.game_state.log_step.clone()
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    model[2].bias.grad[1] = float("nan")
    optimizer.step()
    assert_close_lists(list(model.parameters()), trained, rtol=0, atol=0)
    for p, saved in zip(model.parameters(), moments):
        for key, value in saved.items():
            assert torch.equal(optimizer.state[p][key], value)
    assert torch.equal(optimizer.game_state.log_step, log_step)
    assert int(optimizer.diagnostics()["skipped_steps"]) == 1 and int(optimizer.game_state.count) == 3
    assert optimizer.game_state.tensor_count.tolist() == [3] * 6


def test_grad_scaler_skips_inf_steps_and_matches_unscaled_training():
    plain_model, scaled_model = mlp(), mlp()
    plain = train(plain_model, NGAdam(plain_model, **HP), 4)
    optimizer = NGAdam(scaled_model, **HP)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    x, y = batch()
    for step in range(5):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(scaled_model(x), y)
        scaler.scale(loss * (float("inf") if step == 2 else 1.0)).backward()
        scaler.step(optimizer)
        scaler.update()
    assert int(optimizer.game_state.count) == 4
    assert_close_lists(list(scaled_model.parameters()), plain, rtol=1e-5, atol=1e-6)


def test_low_precision_params_keep_float32_state():
    model = mlp(dtype=torch.bfloat16)
    optimizer = NGAdam(model, **HP)
    train(model, optimizer, 3)
    for p in model.parameters():
        assert p.dtype == torch.bfloat16
        assert optimizer.state[p]["exp_avg"].dtype == torch.float32
        assert optimizer.state[p]["exp_avg_sq"].dtype == torch.float32


def test_autocast_training_runs_and_learns():
    model = mlp()
    optimizer = NGAdam(model, **HP)
    x, y = batch()
    losses = []
    for _ in range(15):
        optimizer.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = torch.nn.functional.mse_loss(model(x).float(), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_compiled_training_step_matches_eager():
    eager_model, compiled_model = mlp(), mlp()
    eager = train(eager_model, NGAdam(eager_model, **HP), 3)
    optimizer = NGAdam(compiled_model, **HP)
    x, y = batch()

    @torch.compile(backend="aot_eager")
    def training_step():
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(compiled_model(x), y).backward()
        optimizer.step()

    for _ in range(3):
        training_step()
    assert_close_lists(list(compiled_model.parameters()), eager, rtol=1e-5, atol=1e-6)


def test_bad_input_is_rejected_clearly():
    model = mlp()
    with pytest.raises(ValueError, match="gamma"):
        NGAdam(model, gamma=2.0)
    with pytest.raises(ValueError, match="Invalid learning rate"):
        NGAdam([{"params": model.parameters(), "lr": -1.0}])
    with pytest.raises(ValueError, match="Invalid beta parameter at index 1: 1.0"):  # a group's own betas, checked
        NGAdam([{"params": model[0].parameters(), "betas": (0.8, 1.0)}, {"params": model[2].parameters()}])
    with pytest.raises(ValueError, match="players"):
        NGAdam(model.parameters(), players=[[0, 1]])
    with pytest.raises(ValueError, match="nn.Module"):
        NGAdam(list(model.parameters()), graph="fx")
    with pytest.raises(ValueError, match="empty"):
        NGAdam([])
    with pytest.raises(TypeError, match="floating"):
        NGAdam([torch.zeros(3, dtype=torch.int64)])
    with pytest.raises(ValueError, match="more than one parameter group"):
        NGAdam(model).add_param_group({"params": [model[0].weight]})
    embedding = torch.nn.Embedding(10, 3, sparse=True)
    optimizer = NGAdam(embedding)
    embedding(torch.tensor([1, 2])).sum().backward()
    before = embedding.weight.detach().clone()
    with pytest.raises(RuntimeError, match="sparse"):
        optimizer.step()
    assert torch.equal(embedding.weight, before)
