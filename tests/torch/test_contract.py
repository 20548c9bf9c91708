"""neat.torch.NGAdam honours torch.optim's contract: AdamW's defaults, validation and words, every
hyperparameter in defaults / param_groups, schedulers that cycle betas, maximize, complex
parameters, named parameters."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch

import neat
from neat.torch import GAME_KEYS, NGAdam
from tests.torch.models import HP, assert_close_lists, batch, mlp, train

F64 = torch.float64


def relative_error(actual, expected) -> float:
    return max(torch.max(torch.abs(a - e) / torch.abs(e).clamp_min(1e-300)).item() for a, e in zip(actual, expected))


def train_f64(model, optimizer, steps=12, scheduler=None):
    return train(model, optimizer, steps, data=batch(dtype=F64), scheduler=scheduler)


def test_defaults_are_adamw_defaults_and_every_hyperparameter_is_in_the_groups():
    model = mlp()
    adamw = torch.optim.AdamW(model.parameters())
    optimizer = NGAdam(model)
    for key in ("lr", "betas", "eps", "weight_decay", "maximize", "foreach", "fused"):
        assert optimizer.defaults[key] == adamw.defaults[key], key
    expected_keys = {"lr", "betas", "eps", "weight_decay", "maximize", "foreach", "fused", *GAME_KEYS}
    assert expected_keys <= set(optimizer.defaults)
    for group in optimizer.param_groups:
        assert expected_keys <= set(group)
        assert group["gamma"] == optimizer.config.gamma and group["step_bounds"] == optimizer.config.step_bounds


def test_defaults_with_gamma_zeta_zero_are_adamw_with_its_defaults():
    a, b = mlp(dtype=F64), mlp(dtype=F64)
    actual = train_f64(a, NGAdam(a, gamma=0.0, zeta=0.0))
    expected = train_f64(b, torch.optim.AdamW(b.parameters()))
    assert relative_error(actual, expected) <= 1e-12


@pytest.mark.parametrize("flags", [{}, {"foreach": False}], ids=["default", "generic"])
def test_maximize_is_adamw_maximize(flags):
    a, b = mlp(dtype=F64), mlp(dtype=F64)
    actual = train_f64(a, NGAdam(a, gamma=0.0, zeta=0.0, maximize=True, **flags))
    expected = train_f64(b, torch.optim.AdamW(b.parameters(), maximize=True))
    assert relative_error(actual, expected) <= 1e-12


def test_maximize_per_group_is_adamw_maximize_per_group():
    def groups(model):
        return [
            {"params": model[0].parameters(), "maximize": True, "lr": 0.02},
            {"params": list(model[2].parameters()) + list(model[4].parameters())},
        ]

    a, b = mlp(dtype=F64), mlp(dtype=F64)
    actual = train_f64(a, NGAdam(groups(a), players=[[0, 1], [2, 3], [4, 5]], gamma=0.0, zeta=0.0))
    expected = train_f64(b, torch.optim.AdamW(groups(b)))
    assert relative_error(actual, expected) <= 1e-12


def test_maximize_with_the_game_is_the_step_of_minus_f():
    """maximize=True on f takes exactly the steps of maximize=False on -f (gradients negated)."""

    def run(maximize):
        model = mlp(dtype=F64)
        optimizer = NGAdam(model, **HP, maximize=maximize)
        x, y = batch(dtype=F64)
        for _ in range(8):
            optimizer.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x), y)
            (loss if maximize else -loss).backward()
            optimizer.step()
        return [p.detach().clone() for p in model.parameters()]

    assert_close_lists(run(True), run(False), rtol=0, atol=0)


def complex_problem(seed=0):
    generator = torch.Generator().manual_seed(seed)
    params = [
        torch.randn(3, 4, dtype=torch.complex128, generator=generator),
        torch.randn(5, dtype=torch.complex128, generator=generator),
    ]
    target = torch.randn(4, dtype=torch.complex128, generator=generator)
    return params, target


def run_complex(make, steps=15):
    """Complex parameters, a real loss; returns the parameters as view_as_real copies."""
    params, target = complex_problem()
    params = [p.requires_grad_() for p in params]
    optimizer = make(params)
    for _ in range(steps):
        optimizer.zero_grad()
        ((params[0] @ target).abs().pow(2).sum() + (params[1] * (2 - 1j) - 1).abs().pow(2).sum()).backward()
        optimizer.step()
    return [torch.view_as_real(p.detach()).clone() for p in params]


@pytest.mark.parametrize("flags", [{}, {"foreach": True}, {"foreach": False}], ids=["default", "foreach", "generic"])
def test_complex_parameters_reduce_to_adamw(flags):
    hp = dict(lr=0.01, betas=(0.9, 0.99), weight_decay=0.05)
    actual = run_complex(lambda p: NGAdam(p, players=[[0], [1]], gamma=0.0, zeta=0.0, **hp, **flags))
    expected = run_complex(lambda p: torch.optim.AdamW(p, **hp))
    assert relative_error(actual, expected) <= 1e-12


def test_complex_parameters_play_as_their_real_and_imaginary_parts():
    """SPEC "Objects": a complex tensor is the real tensor of view_as_real, game included."""
    actual = run_complex(lambda p: NGAdam(p, players=[[0], [1]], **HP))
    params, target = complex_problem()
    real = [torch.view_as_real(p).clone().requires_grad_() for p in params]
    optimizer = NGAdam(real, players=[[0], [1]], **HP)
    for _ in range(15):
        optimizer.zero_grad()
        as_complex = [torch.view_as_complex(p) for p in real]
        ((as_complex[0] @ target).abs().pow(2).sum() + (as_complex[1] * (2 - 1j) - 1).abs().pow(2).sum()).backward()
        optimizer.step()
    assert_close_lists(actual, [p.detach() for p in real], rtol=1e-12, atol=1e-14)


def test_complex_parameters_keep_complex_moments_as_adamw():
    param = torch.zeros(2, dtype=torch.complex64, requires_grad=True)
    optimizer = NGAdam([param])
    param.grad = torch.tensor([1 + 2j, -1j], dtype=torch.complex64)
    optimizer.step()
    for key in ("exp_avg", "exp_avg_sq"):
        assert optimizer.state[param][key].dtype == torch.complex64 and optimizer.state[param][key].shape == (2,)
    assert optimizer.game_state.log_step.dtype == torch.float32


def one_cycle(optimizer):
    return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.05, total_steps=20)


def cyclic(optimizer):
    return torch.optim.lr_scheduler.CyclicLR(optimizer, base_lr=1e-3, max_lr=0.05, step_size_up=4)


@pytest.mark.parametrize("make_scheduler", [one_cycle, cyclic], ids=["OneCycleLR", "CyclicLR"])
def test_schedulers_that_cycle_betas_drive_the_step_as_in_adamw(make_scheduler):
    a, b = mlp(dtype=F64), mlp(dtype=F64)
    ngadam, adamw = NGAdam(a, gamma=0.0, zeta=0.0), torch.optim.AdamW(b.parameters())
    actual = train_f64(a, ngadam, 12, make_scheduler(ngadam))
    expected = train_f64(b, adamw, 12, make_scheduler(adamw))
    assert relative_error(actual, expected) <= 1e-12
    assert ngadam.param_groups[0]["betas"][0] != 0.9  # the scheduler did move beta1


def test_one_cycle_betas_reach_the_game():
    """With the game on, each step uses the group's current betas (and lr): the functional API
    driven by the values the scheduler wrote gives the same parameters."""
    model = mlp(dtype=F64)
    optimizer = NGAdam(model, **{**HP, "weight_decay": 0.0})
    scheduler = one_cycle(optimizer)
    x, y = batch(dtype=F64)
    params = [p.detach().clone() for p in model.parameters()]
    state = neat.ng_adam(**HP).init(params, players=[[0, 1], [2, 3], [4, 5]])
    twin = mlp(dtype=F64)
    for _ in range(10):
        group = optimizer.param_groups[0]
        config = neat.NGAdamConfig(**{**HP, "lr": group["lr"], "betas": group["betas"], "weight_decay": 0.0})
        with torch.no_grad():
            for p, value in zip(twin.parameters(), params):
                p.copy_(value)
        twin.zero_grad()
        torch.nn.functional.mse_loss(twin(x), y).backward()
        params, state = neat.functional.step(params, [p.grad.clone() for p in twin.parameters()], state, config)
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        optimizer.step()
        scheduler.step()
    assert_close_lists(list(model.parameters()), params, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    "key, value", [("gamma", 0.1), ("zeta", 0.0), ("mu", 2.0), ("step_bounds", (0.8, 1.2)), ("leak", 0.5)]
)
def test_game_keys_cannot_differ_per_group(key, value):
    model = mlp()
    with pytest.raises(ValueError, match=f"param group 1 has {key}=.*one per optimizer"):
        NGAdam([{"params": model[0].parameters()}, {"params": model[2].parameters(), key: value}])
    same = NGAdam(
        [{"params": model[0].parameters(), "gamma": 0.5, "step_bounds": [0.5, 2.0]}], gamma=0.5, players=[[0, 1]]
    )
    assert same.param_groups[0]["gamma"] == 0.5


@pytest.mark.parametrize(
    "key, value", [("gamma", 0.1), ("zeta", 0.0), ("mu", 2.0), ("step_bounds", (0.8, 1.2)), ("leak", 0.5)]
)
def test_a_game_value_every_group_sets_is_the_optimizers(key, value):
    """As torch.optim: a key every group sets is the groups' value, not the constructor's default."""
    a, b = mlp(dtype=F64), mlp(dtype=F64)
    groups = [
        {"params": a[0].parameters(), key: value},
        {"params": [*a[2].parameters(), *a[4].parameters()], key: value},
    ]
    grouped = NGAdam(groups, players=[[0, 1], [2, 3], [4, 5]])
    built = NGAdam(b, **{key: value})
    assert getattr(grouped.config, key) == getattr(built.config, key) == grouped.defaults[key]
    assert grouped.state_dict()["neat"][key] == getattr(built.config, key)
    assert_close_lists(train_f64(a, grouped, 4), train_f64(b, built, 4), rtol=0, atol=0)


def test_groups_share_one_kernel_request():
    """A group may ask for kernels (torch.optim: flags per group); NG-Adam runs one set for all groups."""
    model = mlp()
    with pytest.raises(ValueError, match="param groups ask for different kernels: .*one kernel set for all groups"):
        NGAdam([{"params": model[0].parameters(), "foreach": True}, {"params": model[2].parameters(), "fused": True}])
    with pytest.raises(ValueError, match="param groups ask for different kernels"):
        NGAdam([{"params": model[0].parameters(), "fused": False}, {"params": model[2].parameters()}], fused=True)
    asked = NGAdam(
        [{"params": model[0].parameters(), "foreach": False, "fused": False}, {"params": model[2].parameters()}],
        players=[[0, 1], [2, 3]],
    )
    assert asked.kernel_plan.name == "generic"
    assert [group["foreach"] for group in asked.param_groups] == [False, None]  # each group keeps its own
    repeated = NGAdam(
        [{"params": model[0].parameters(), "fused": True}, {"params": model[2].parameters()}],
        fused=True,
        players=[[0, 1], [2, 3]],
    )
    assert repeated.kernel_plan.name == "numba"
    train(model, asked, 1)
    asked.param_groups[1]["foreach"] = True  # now asks for others: refused at the step
    with pytest.raises(ValueError, match="^foreach is fixed for a run .*build a new optimizer"):
        asked.step()
    asked.param_groups[1]["foreach"] = False  # repeats the request: accepted
    asked.step()


INVALID = [
    (dict(lr=-1.0), "Invalid learning rate: -1.0"),
    (dict(lr=float("inf")), "Invalid learning rate: inf"),
    (dict(lr=float("nan")), "Invalid learning rate: nan"),
    (dict(lr=torch.tensor(-1e-3)), "Invalid learning rate"),
    (dict(lr=torch.tensor([1e-3, 1e-3])), "Tensor lr must be 1-element"),
    (dict(lr="0.1"), "Invalid learning rate"),
    (dict(eps=-1e-8), "Invalid epsilon value: -1e-08"),
    (dict(eps=float("inf")), "Invalid epsilon value: inf"),
    (dict(weight_decay=-0.1), "Invalid weight_decay value: -0.1"),
    (dict(weight_decay=np.float32("nan")), "Invalid weight_decay value: nan"),
    (dict(betas=(1.0, 0.999)), "Invalid beta parameter at index 0: 1.0"),
    (dict(betas=(0.9, -0.1)), "Invalid beta parameter at index 1: -0.1"),
    (dict(betas=(0.9, float("nan"))), "Invalid beta parameter at index 1: nan"),
    (dict(betas=0.9), "Invalid betas"),
    (dict(gamma=float("inf")), "Invalid gamma"),
    (dict(step_bounds=(2.0, 0.5)), "Invalid step_bounds"),
    (dict(maximize=1), "Invalid maximize"),
]


@pytest.mark.parametrize("bad, message", INVALID, ids=[str(case[0]) for case in INVALID])
def test_invalid_values_are_rejected_in_torch_words(bad, message):
    """At construction, and in a param group (the game's keys there: see the per-optimizer test)."""
    with pytest.raises(ValueError, match=message):
        NGAdam(mlp(), **bad)
    if not set(bad) & set(GAME_KEYS):
        with pytest.raises(ValueError, match=message + ".* in param group 0"):
            NGAdam([{"params": mlp().parameters(), **bad}])


@pytest.mark.parametrize(
    "bad",
    [
        dict(lr=-1.0),
        dict(eps=-1e-8),
        dict(weight_decay=-0.1),
        dict(betas=(1.0, 0.9)),
        dict(betas=(0.9, 1.5)),
        dict(lr=torch.tensor([1e-3, 1e-3])),
    ],
    ids=str,
)
def test_messages_start_with_torch_optims_own(bad):
    with pytest.raises(ValueError) as expected:
        torch.optim.AdamW(mlp().parameters(), **bad)
    with pytest.raises(ValueError) as actual:
        NGAdam(mlp(), **bad)
    assert str(actual.value).startswith(str(expected.value))


@pytest.mark.parametrize(
    "values",
    [
        dict(lr=np.float32(0.02), weight_decay=np.float64(0.01), eps=np.float32(1e-8)),
        dict(lr=torch.tensor(0.02), weight_decay=torch.tensor([0.01])),
        dict(betas=(np.float64(0.9), np.float32(0.99)), gamma=np.float64(0.8), leak=torch.tensor(0.05)),
    ],
    ids=["numpy", "tensors", "numpy-betas"],
)
def test_numpy_scalars_and_one_element_tensors_are_accepted(values):
    a, b = mlp(), mlp()
    expected = train(a, NGAdam(a, **HP), 4)
    actual = train(b, NGAdam(b, **{**HP, **values}, foreach=False), 4)
    assert_close_lists(actual, expected, rtol=1e-6, atol=1e-7)


def test_tensor_betas_updated_in_place_equal_float_betas():
    def run(betas, **flags):
        model = mlp(dtype=F64)
        optimizer = NGAdam(model, **{**HP, "betas": betas}, **flags)
        trained = train(model, optimizer, 3)
        for group in optimizer.param_groups:
            if isinstance(group["betas"][0], torch.Tensor):
                group["betas"][0].fill_(0.8)
            else:
                group["betas"] = (0.8, group["betas"][1])
        return trained + train(model, optimizer, 3)

    expected = run((0.9, 0.99))
    for flags in (dict(foreach=False), dict(foreach=True)):  # the foreach kernels read them on the device too
        assert_close_lists(
            run((torch.tensor(0.9, dtype=F64), torch.tensor(0.99, dtype=F64)), **flags),
            expected,
            rtol=1e-12,
            atol=1e-14,
        )


def test_named_parameters_give_one_player_per_layer_like_the_module():
    a, b = mlp(), mlp()
    by_module, by_names = NGAdam(a, **HP), NGAdam(b.named_parameters(), **HP)
    assert by_names.players == by_module.players and by_names.player_names == by_module.player_names == ["0", "2", "4"]
    assert by_names.param_groups[0]["param_names"][:2] == ["0.weight", "0.bias"]
    assert_close_lists(train(b, by_names, 6), train(a, by_module, 6), rtol=0, atol=0)


def test_named_param_groups_give_players_from_the_names():
    model = mlp()
    named = dict(model.named_parameters())
    groups = [
        {"params": [(name, named[name]) for name in ("0.weight", "2.weight", "0.bias")], "lr": 0.05},
        {"params": [(name, named[name]) for name in ("2.bias", "4.weight", "4.bias")]},
    ]
    optimizer = NGAdam(groups)
    assert [list(p) for p in optimizer.players.groups] == [[0, 2], [1, 3], [4, 5]]
    assert optimizer.player_names == ["0", "2", "4"]


def test_plain_parameters_warn_once_that_players_are_per_tensor():
    with pytest.warns(UserWarning, match=r"named_parameters\(\)") as record:
        optimizer = NGAdam(mlp().parameters())
    assert len([w for w in record if issubclass(w.category, UserWarning)]) == 1
    assert optimizer.players.num_players == 6
    assert record[0].filename == __file__  # points at the caller's line
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        NGAdam(mlp())
        NGAdam(mlp().named_parameters())
        NGAdam(mlp().parameters(), players=[[0, 1], [2, 3], [4, 5]])
        NGAdam([torch.zeros(3, requires_grad=True)])


def test_groups_of_an_old_state_dict_get_the_new_keys():
    model = mlp()
    optimizer = NGAdam(model, **HP)
    train(model, optimizer, 2)
    state_dict = optimizer.state_dict()
    for group in state_dict["param_groups"]:
        for key in ("maximize", "foreach", "fused", "betas", *GAME_KEYS):
            del group[key]
    resumed = NGAdam(mlp(), **HP)
    resumed.load_state_dict(state_dict)
    assert resumed.param_groups[0]["maximize"] is False and resumed.param_groups[0]["gamma"] == HP["gamma"]
    assert resumed.param_groups[0]["betas"] == HP["betas"]


def test_a_state_dict_with_other_game_hyperparameters_is_refused():
    model = mlp()
    optimizer = NGAdam(model, **HP)
    train(model, optimizer, 2)
    state_dict = optimizer.state_dict()
    with pytest.raises(ValueError, match="state dict has gamma=0.8 but this optimizer has gamma=0.5"):
        NGAdam(mlp(), **{**HP, "gamma": 0.5}).load_state_dict(state_dict)
    state_dict["param_groups"][0]["lr"] = float("inf")
    with pytest.raises(ValueError, match="state dict: Invalid learning rate: inf in param group 0"):
        NGAdam(mlp(), **HP).load_state_dict(state_dict)
    state_dict["param_groups"][0]["lr"] = HP["lr"]
    other_flags = NGAdam(mlp(), **HP, foreach=False)
    other_flags.load_state_dict(state_dict)  # the kernel flags are this optimizer's
    assert other_flags.param_groups[0]["foreach"] is False


def test_a_single_tensor_is_refused_in_torch_optims_words():
    with pytest.raises(
        TypeError,
        match=r"^params argument given to the optimizer should be an iterable of Tensors or dicts, "
        r"but got torch\.FloatTensor$",
    ):
        NGAdam(torch.nn.Parameter(torch.zeros(3)))


def test_a_resumed_state_dict_is_the_saved_one():
    """load_state_dict adds no key to the groups (torch's __setstate__ adds a ``differentiable``
    default for its own optimizers; NGAdam has no such flag)."""
    model = mlp()
    optimizer = NGAdam(model, **HP)
    train(model, optimizer, 2)
    saved = copy.deepcopy(optimizer.state_dict())
    resumed = NGAdam(copy.deepcopy(model), **HP)
    resumed.load_state_dict(saved)
    assert resumed.state_dict()["param_groups"] == saved["param_groups"]
    assert "differentiable" not in resumed.defaults and resumed.defaults == optimizer.defaults


@pytest.mark.parametrize("flags", [{"fused": True}, {}], ids=["fused", "default"])
def test_built_on_meta_then_materialized_in_place(flags):
    """As torch's fused AdamW: an optimizer of ``meta`` parameters is built, refuses to step them
    (``torch.optim``'s words for ``fused=True``), and steps once they are materialized in place
    (``to_empty`` swapping the parameters' contents), as one built on them."""
    with torch.device("meta"):
        meta_model = mlp()
    optimizer = NGAdam(meta_model, **HP, **flags)
    assert optimizer.kernel_plan is None and "chosen at the first step" in repr(optimizer)
    optimizer.step()  # no gradients: nothing to do, as torch.optim
    for p in meta_model.parameters():
        p.grad = torch.ones_like(p)
    message = "`fused=True` requires all the params to be floating point Tensors" if flags else "meta device"
    with pytest.raises(RuntimeError, match=message):
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    swap = torch.__future__.get_swap_module_params_on_conversion()
    torch.__future__.set_swap_module_params_on_conversion(True)
    try:
        meta_model.to_empty(device="cpu")
    finally:
        torch.__future__.set_swap_module_params_on_conversion(swap)
    reference = mlp(seed=3)
    meta_model.load_state_dict(reference.state_dict())
    assert all(p is q for p, q in zip(meta_model.parameters(), optimizer.param_groups[0]["params"]))
    built = NGAdam(reference, **HP, **flags)
    assert all(torch.equal(a, b) for a, b in zip(train(meta_model, optimizer, 3), train(reference, built, 3)))
    assert optimizer.kernel_plan is built.kernel_plan
