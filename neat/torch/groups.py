"""Param groups: built from what ``NGAdam`` is given (a module, through its adapter; tensors,
named or not; group dicts) with the players and graph that come with it, and checked against
the optimizer's values."""

from __future__ import annotations

import numbers

import torch

from neat import hyperparameters, plugins
from neat.torch.validation import checked_betas, checked_scalar, host

#: The game's hyperparameters (SPEC "Hyperparameters": fixed for a run), from the schema: one value
#: per optimizer; a param group may repeat the optimizer's value, never set another. (The kernel
#: flags ``foreach``, ``fused`` are one request for all groups: :mod:`neat.torch.kernel_flags`.)
GAME_KEYS = hyperparameters.FIXED_FOR_A_RUN


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
        raise TypeError(  # torch.optim's words
            "params argument given to the optimizer should be an iterable of Tensors or dicts, but got "
            + torch.typename(params)
        )
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


def check_group(group: dict, index: int, config) -> None:
    """A param group's values (its own or the defaults): ``torch.optim``'s rules for ``lr``,
    ``eps``, ``weight_decay`` and ``betas``; ``maximize`` a bool; the game's keys
    (:data:`GAME_KEYS`) equal to the optimizer's (``config``, a :class:`~neat.config.NGAdamConfig`)."""
    where = f" in param group {index}"
    for key in ("lr", "eps", "weight_decay"):
        checked_scalar(group[key], key, where)
    group["betas"] = checked_betas(group["betas"], where)
    if not isinstance(group["maximize"], bool):
        raise ValueError(f"Invalid maximize: {group['maximize']!r}{where} (expected True or False)")
    for key in GAME_KEYS:
        if not _same_setting(group[key], getattr(config, key)):
            raise ValueError(
                f"param group {index} sets {key}={group[key]!r} but NGAdam has {key}={getattr(config, key)!r}: "
                f"{key} is one per optimizer (the game's gamma, zeta, mu, step_bounds, leak are fixed "
                "for a run); set it in NGAdam(...)"
            )


def common_game(groups: list[dict]) -> dict:
    """The game's values (:data:`GAME_KEYS`) of the param groups, read on the host: one per optimizer,
    so every group must hold group 0's (a group that sets none has the optimizer's, ``torch.optim``'s
    defaults); ``ValueError`` naming the first group that differs."""
    values = {key: _host_setting(groups[0][key]) for key in GAME_KEYS}
    for index, group in enumerate(groups[1:], start=1):
        for key in GAME_KEYS:
            if not _same_setting(group[key], values[key]):
                raise ValueError(
                    f"param group {index} has {key}={group[key]!r} but group 0 has {groups[0][key]!r}: {key} is "
                    "one per optimizer (the game's gamma, zeta, mu, step_bounds, leak are fixed for a run): "
                    "give every group the same value, or set it in NGAdam(...)"
                )
    return values


def _host_setting(value):
    """A game value as host numbers: a number, or a tuple of them for a pair."""
    return tuple(map(host, value)) if isinstance(value, (tuple, list)) else host(value)


def check_fixed(groups: list[dict], config) -> None:
    """Before a step: every group still holds the optimizer's game values (:data:`GAME_KEYS`, those
    of ``config``); an edit of one is refused naming it (SPEC v2.1: never ignored)."""
    for group in groups:
        for key in GAME_KEYS:
            value, expected = group[key], getattr(config, key)
            if value is not expected and not _same_setting(value, expected):
                raise hyperparameters.fixed_error(key, value, expected)


def _same_setting(value, expected) -> bool:
    """Whether a group's game value equals the optimizer's (numbers compared as floats, in
    plain Python: ``torch.compile`` traces this check, and would turn NumPy calls into tensors)."""
    if isinstance(expected, tuple):
        return (
            isinstance(value, (tuple, list)) and len(value) == len(expected) and all(map(_same_number, value, expected))
        )
    return _same_number(value, expected)


def _same_number(value, expected) -> bool:
    """Whether ``value`` (a number or a one-element tensor) equals the float ``expected``."""
    value = host(value)
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and float(value) == float(expected)
