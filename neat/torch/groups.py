"""Param groups: built from what ``NGAdam`` is given (a module, through its adapter; tensors,
named or not; group dicts) with the players and graph that come with it, and checked against
the optimizer's values."""

from __future__ import annotations

import numbers
import warnings

import torch

from neat import hyperparameters, plugins
from neat.torch.validation import checked_betas, checked_scalar, host

#: The game's hyperparameters (SPEC "Hyperparameters": fixed for a run), from the schema.
GAME_KEYS = hyperparameters.FIXED_FOR_A_RUN

#: One value per optimizer: the game's and the kernel flags (the kernels are chosen once). A param
#: group may repeat the optimizer's value, never set another.
PER_OPTIMIZER_KEYS = (*GAME_KEYS, "foreach", "fused")


def groups_players_graph(params, players, graph):
    """Param groups, players and graph from a module (its layout from the adapters,
    :func:`neat.plugins.param_layout`), tensors or param-group dicts."""
    if isinstance(params, torch.nn.Module):
        layout = plugins.param_layout(params, graph=graph if isinstance(graph, str) else None)
        return (
            [{"params": list(layout.tensors)}],
            layout.players if players is None else players,
            layout.graph if graph is None or isinstance(graph, str) else graph,
            list(layout.player_names),
        )
    if isinstance(graph, str):
        raise ValueError(f"graph={graph!r} needs an nn.Module as params, got {type(params).__qualname__}")
    if isinstance(params, torch.Tensor):
        raise TypeError("params must be an nn.Module or an iterable of tensors or dicts, got a single tensor")
    groups = list(params)
    if not groups:
        raise ValueError("NGAdam got an empty parameter list")
    if not isinstance(groups[0], dict):
        groups = [{"params": groups}]
    return groups, players, graph, []


def players_of_names(names) -> tuple[list[list[int]], list[str]]:
    """One player per module prefix of the parameter names (``"0.weight"``, ``"0.bias"`` → ``"0"``),
    in order of first appearance, and the prefixes."""
    players: dict[str, list[int]] = {}
    for k, name in enumerate(names):
        players.setdefault(name.rpartition(".")[0], []).append(k)
    return list(players.values()), list(players)


def warn_one_player_per_tensor(count: int, how: str, stacklevel: int) -> None:
    """The warning for ``count`` parameters without names, each a player of its own; ``how``: how to
    get one player per layer instead."""
    warnings.warn(
        f"NGAdam got {count} parameters without names: each tensor is a player of its own. "
        f"For one player per layer {how}.",
        UserWarning,
        stacklevel=stacklevel + 1,
    )


def check_group(group: dict, index: int, defaults: dict) -> None:
    """A param group's values (its own or the defaults): ``torch.optim``'s rules for ``lr``,
    ``eps``, ``weight_decay`` and ``betas``; ``maximize`` a bool; the per-optimizer keys
    (:data:`PER_OPTIMIZER_KEYS`) equal to the optimizer's."""
    where = f" in param group {index}"
    for key in ("lr", "eps", "weight_decay"):
        checked_scalar(group[key], key, where)
    group["betas"] = checked_betas(group["betas"], where)
    if not isinstance(group["maximize"], bool):
        raise ValueError(f"Invalid maximize: {group['maximize']!r}{where} (expected True or False)")
    for key in PER_OPTIMIZER_KEYS:
        if not _same_setting(group[key], defaults[key]):
            raise ValueError(
                f"param group {index} sets {key}={group[key]!r} but NGAdam has {key}={defaults[key]!r}: "
                f"{key} is one per optimizer (the game's gamma, zeta, mu, step_bounds, leak and the "
                "kernel flags foreach, fused are fixed for a run); set it in NGAdam(...)"
            )


def check_fixed(groups: list[dict], defaults: dict) -> None:
    """Before a step: every group still holds the optimizer's per-optimizer values
    (:data:`PER_OPTIMIZER_KEYS`); an edit of one is refused naming it (SPEC v2.1: never ignored)."""
    for group in groups:
        for key in PER_OPTIMIZER_KEYS:
            value, expected = group[key], defaults[key]
            if value is not expected and not _same_setting(value, expected):
                raise hyperparameters.fixed_error(key, value, expected)


def _same_setting(value, expected) -> bool:
    """Whether a group's per-optimizer value equals the optimizer's (numbers compared as floats, in
    plain Python: ``torch.compile`` traces this check, and would turn NumPy calls into tensors)."""
    if expected is None or isinstance(expected, bool):
        return value is expected
    if isinstance(expected, tuple):
        return (
            isinstance(value, (tuple, list)) and len(value) == len(expected) and all(map(_same_number, value, expected))
        )
    return _same_number(value, expected)


def _same_number(value, expected) -> bool:
    """Whether ``value`` (a number or a one-element tensor) equals the float ``expected``."""
    value = host(value)
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and float(value) == float(expected)
