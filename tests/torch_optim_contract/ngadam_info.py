"""NGAdam's entry for torch's optimizer database (``torch.testing._internal.common_optimizers``):
what it supports, the configurations the suite runs, the inputs it must refuse, and the one list
of torch tests it is excluded from (each where NG-Adam differs from Adam by the rule itself)."""

from __future__ import annotations

import torch
from torch.testing._internal.common_device_type import tol, toleranceOverride
from torch.testing._internal.common_methods_invocations import DecorateInfo
from torch.testing._internal.common_optimizers import (
    ErrorOptimizerInput,
    OptimizerInfo,
    OptimizerInput,
    _get_device_type,
    get_error_inputs_for_all_optims,
)

from neat.torch import NGAdam


def optim_inputs_func_ngadam(device, dtype=None) -> list[OptimizerInput]:
    """AdamW's configurations that NG-Adam has (no ``amsgrad``, no ``capturable`` argument), a
    tensor ``lr`` (every kernel set takes one), and the game's own: off (``gamma = zeta = 0``,
    Adam's step), uncoupled (``mu = 0``) and strong."""
    inputs = [
        OptimizerInput(params=None, kwargs={}, desc="default"),
        OptimizerInput(params=None, kwargs={"lr": 0.01}, desc="non-default lr"),
        OptimizerInput(params=None, kwargs={"weight_decay": 0.1}, desc="nonzero weight_decay"),
        OptimizerInput(params=None, kwargs={"weight_decay": 0.1, "maximize": True}, desc="maximize"),
        OptimizerInput(params=None, kwargs={"lr": torch.tensor(0.001)}, desc="Tensor lr"),
        # last: test_param_groups_lr refuses these in a group of their own (EXCLUDED), after the ones above
        OptimizerInput(params=None, kwargs={"gamma": 0.0, "zeta": 0.0}, desc="game off"),
        OptimizerInput(params=None, kwargs={"mu": 0.0}, desc="uncoupled players"),
        OptimizerInput(params=None, kwargs={"gamma": 1.0, "zeta": 0.5, "step_bounds": (0.25, 4.0)}, desc="strong game"),
    ]
    if dtype == torch.float16:  # as for Adam: a 1e-8 eps vanishes next to float16 moments
        for optim_input in inputs:
            optim_input.kwargs["eps"] = 0.1
    return inputs


def optim_error_inputs_func_ngadam(device, dtype) -> list[ErrorOptimizerInput]:
    """Every optimizer's error inputs, AdamW's that apply (betas, weight decay), and NG-Adam's own
    (the game's hyperparameters, groups that set two games or two kernel sets, both kernel flags)."""
    error_inputs = get_error_inputs_for_all_optims(device, dtype)
    if _get_device_type(device) != "cpu":
        return error_inputs
    sample, sample2 = (torch.nn.Parameter(torch.randn(1, 1, device=device, dtype=dtype)) for _ in range(2))

    def refused(kwargs, regex, desc, error_type=ValueError, params=None):
        return ErrorOptimizerInput(
            OptimizerInput(params=params, kwargs=kwargs, desc=desc), error_type=error_type, error_regex=regex
        )

    return error_inputs + [
        refused(dict(lr=1e-2, betas=(1.0, 0.0)), "Invalid beta parameter at index 0: 1.0", "beta1 in [0, 1)"),
        refused(dict(lr=1e-2, weight_decay=-1), "Invalid weight_decay value: -1", "weight_decay >= 0"),
        refused(dict(lr=-1e-2), "Invalid learning rate: -0.01", "lr >= 0"),
        refused(dict(eps=-1e-8), "Invalid epsilon value: -1e-08", "eps >= 0"),
        refused(dict(gamma=1.5), r"Invalid gamma: 1.5", "gamma in [0, 1]"),
        refused(dict(zeta=-0.1), r"Invalid zeta: -0.1", "zeta >= 0"),
        refused(dict(mu=-1.0), r"Invalid mu: -1.0", "mu >= 0"),
        refused(dict(step_bounds=(2.0, 0.5)), r"Invalid step_bounds\[0\]: 2.0", "step_bounds around 1"),
        refused(dict(leak=1.0), r"Invalid leak: 1.0", "leak in [0, 1)"),
        refused(
            dict(foreach=True, fused=True),
            "`fused` and `foreach` cannot be `True` together",
            "both kernel flags",
            error_type=RuntimeError,
            params=[sample],
        ),
        refused(
            {},
            "param groups ask for different kernels",
            "groups with two kernel sets",
            params=[{"params": [sample], "foreach": True}, {"params": [sample2], "fused": True}],
        ),
        refused(
            {},
            "param group 1 has gamma=0.5 but group 0 has 0.1",
            "groups with two games",
            params=[{"params": [sample], "gamma": 0.1}, {"params": [sample2]}],
        ),
    ]


_NAMED_PLAYERS = (
    "players come from the parameters: named ones (name0, name1) make one player per module prefix, "
    "unnamed ones one player per tensor, and a state dict of one game is refused by the other"
)
_ONE_GAME = (
    "the game's gamma, zeta, mu, step_bounds, leak are one per optimizer (SPEC: fixed for a run): the "
    "game configurations of optim_inputs_func, in one param group beside a group of the defaults, are refused"
)

#: The torch tests NGAdam is excluded from, each with the reason (only where NG-Adam differs from Adam
#: by the rule itself) and the error the difference raises. The runner marks each a strict expected
#: failure that must fail with that error: another failure, or a pass, fails the run.
EXCLUDED: dict[str, tuple[type[BaseException], str]] = {
    "test_complex_2d": (
        AssertionError,
        "a complex tensor is one player; its real and imaginary parts given as two tensors are two "
        "players, whose game (per-player sums, SPEC steps 3-7) differs",
    ),
    "test_can_load_from_to_named_state_dict_is_named_optim0_False_is_named_optim1_True": (ValueError, _NAMED_PLAYERS),
    "test_can_load_from_to_named_state_dict_is_named_optim0_True_is_named_optim1_False": (ValueError, _NAMED_PLAYERS),
    "test_state_dict_deterministic_is_named_optim0_False_is_named_optim1_True": (ValueError, _NAMED_PLAYERS),
    "test_state_dict_deterministic_is_named_optim0_True_is_named_optim1_False": (ValueError, _NAMED_PLAYERS),
    "test_param_groups_lr": (ValueError, _ONE_GAME),
}


NGADAM_INFO = OptimizerInfo(
    NGAdam,
    optim_inputs_func=optim_inputs_func_ngadam,
    optim_error_inputs_func=optim_error_inputs_func_ngadam,
    supported_impls=("foreach", "fused"),  # no `differentiable` argument
    not_og_supported_flags=("foreach", "fused", "maximize"),
    supports_fused_on=("cpu", "cuda"),  # numba on CPU, Triton on CUDA (neat.torch.FUSED_KERNELS)
    has_capturable_arg=False,
    supports_sparse=False,
    supports_complex=True,
    supports_param_groups=True,
    supports_multiple_devices=False,  # one device per optimizer (the game's state lives on it)
    decorators=(
        # torch lowers the lr of the optimizers named AdamW or Muon to 1e-5 in this test, since their
        # default decoupled weight decay moves parameters without gradients; NGAdam has AdamW's
        # (weight_decay=1e-2): over its 18 steps here (lr 1e-3, three of them 1e-2) the parameter
        # shrinks by 4.5e-4 of itself, and by nothing else (a step with moments would move it by lr).
        DecorateInfo(
            toleranceOverride({torch.float32: tol(atol=0.0, rtol=5e-4)}),
            "TestOptimRenewed",
            "test_step_is_noop_for_zero_grads",
        ),
    ),
)
