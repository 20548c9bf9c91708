"""Param groups: built from what ``NGAdam`` is given (a module, through its adapter; tensors,
named or not; group dicts) with the players and graph that come with it, and checked against
the optimizer's values."""

from __future__ import annotations

import numbers
import warnings

import torch

from neat import hyperparameters, plugins
from neat.torch.validation import checked_betas, checked_scalar, host

#: The game's hyperparameters (SPEC "Hyperparameters": fixed for a run), from the schema: one value
#: per optimizer; a param group may repeat the optimizer's value, never set another. (The kernel
#: flags ``foreach``, ``fused`` are one request for all groups: :mod:`neat.torch.kernel_flags`.)
GAME_KEYS = hyperparameters.FIXED_FOR_A_RUN


def groups_players_graph(params, players, graph, module=None):
    """Param groups, players and graph from a module (its layout from the adapters,
    :func:`neat.plugins.param_layout`), tensors or param-group dicts. With ``module=`` the players
    and graph are left to :func:`module_players`, once the groups are built."""
    if isinstance(params, torch.nn.Module):
        if module is not None:
            raise ValueError("NGAdam got a module twice: pass NGAdam(model) or NGAdam(param_groups, module=model)")
        layout = plugins.param_layout(params, graph=graph if isinstance(graph, str) else None)
        return (
            [{"params": list(layout.tensors)}],
            layout.players if players is None else players,
            layout.graph if graph is None or isinstance(graph, str) else graph,
            list(layout.player_names),
        )
    if module is not None and not isinstance(module, torch.nn.Module):
        raise TypeError(f"module= must be an nn.Module, got {type(module).__qualname__}")
    if module is not None and players is not None:
        raise ValueError("players= and module= both set the players: give one of them")
    if isinstance(graph, str) and module is None:
        raise ValueError(f"graph={graph!r} needs an nn.Module (as params or module=), got {type(params).__qualname__}")
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


def module_players(module, tensors, graph) -> tuple[list[list[int]], object, list[str]]:
    """Players, graph and player names of ``tensors`` (the optimizer's, in group order) from
    ``module``'s layout: each tensor goes to the layer that owns it, whatever group holds it; the
    players come in the module's order, a layer none of whose tensors is given is left out, and
    the graph is a chain in that order (``graph=None``), the module's data-flow graph restricted to
    these players (``"fx"``), or ``graph`` itself (over these players)."""
    layout = plugins.param_layout(module, graph=graph if isinstance(graph, str) else None)
    layer_of = {id(layout.tensors[k]): layer for layer, ks in enumerate(layout.players or ()) for k in ks}
    by_layer: dict[int, list[int]] = {}
    for k, tensor in enumerate(tensors):
        if id(tensor) not in layer_of:
            raise ValueError(
                f"NGAdam got parameter {k} (shape {list(tensor.shape)}) that is not a parameter of the "
                f"module= given ({type(module).__qualname__}): pass the module that owns every parameter"
            )
        by_layer.setdefault(layer_of[id(tensor)], []).append(k)
    layers = sorted(by_layer)  # the module's order
    if isinstance(graph, str):
        number = {layer: n for n, layer in enumerate(layers)}
        graph = [(number[i], number[j], w) for i, j, w in layout.graph if i in number and j in number]
    return [by_layer[layer] for layer in layers], graph, [layout.player_names[layer] for layer in layers]


def players_of_names(names) -> tuple[list[list[int]], list[str]]:
    """One player per module prefix of the parameter names (``"0.weight"``, ``"0.bias"`` → ``"0"``),
    and the prefixes, in module-tree order as far as the names tell it: a module's own player
    before those of its submodules, sibling submodules in the order their first parameter appears.

    Names split into groups (decay / no-decay) do not say where a module sits among its siblings,
    but they do say which block it is in: this order keeps each block's players together (a
    block's LayerNorm next to its attention, not chained after the whole network) and is the
    order of first appearance when the names come as ``named_parameters()`` gives them. For the
    module's own order pass ``module=``."""
    players: dict[str, list[int]] = {}
    first: dict[tuple[str, ...], int] = {}  # a module path and its ancestors → where each first appears
    for k, name in enumerate(names):
        prefix = name.rpartition(".")[0]
        players.setdefault(prefix, []).append(k)
        for path in _ancestry(prefix):
            first.setdefault(path, k)
    order = sorted(players, key=lambda prefix: [first[path] for path in _ancestry(prefix)])
    return [players[prefix] for prefix in order], order


def _ancestry(prefix: str) -> list[tuple[str, ...]]:
    """The module paths from the top down to ``prefix``: ``"h.0.ln"`` → ``h``, ``h.0``, ``h.0.ln``."""
    parts = prefix.split(".") if prefix else []
    return [tuple(parts[:depth]) for depth in range(1, len(parts) + 1)]


def warn_one_player_per_tensor(count: int, how: str, stacklevel: int) -> None:
    """The warning for ``count`` parameters without names, each a player of its own; ``how``: how to
    get one player per layer instead."""
    warnings.warn(
        f"NGAdam got {count} parameters without names: each tensor is a player of its own. "
        f"For one player per layer {how}.",
        UserWarning,
        stacklevel=stacklevel + 1,
    )


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
    values = {key: host_setting(groups[0][key]) for key in GAME_KEYS}
    for index, group in enumerate(groups[1:], start=1):
        for key in GAME_KEYS:
            if not _same_setting(group[key], values[key]):
                raise ValueError(
                    f"param group {index} has {key}={group[key]!r} but group 0 has {groups[0][key]!r}: {key} is "
                    "one per optimizer (the game's gamma, zeta, mu, step_bounds, leak are fixed for a run): "
                    "give every group the same value, or set it in NGAdam(...)"
                )
    return values


def host_setting(value):
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
