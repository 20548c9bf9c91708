"""Players and player graph of the variables an ``NGAdam`` is built with, as a
:class:`~neat.plugins.ParamLayout`: a bound model's, from its adapter (reached
through :func:`neat.plugins.param_layout` only), or, without a model, the
variables' owning paths on a chain.
"""

from __future__ import annotations

from neat import plugins
from neat.plugins import ParamLayout


def bound_model_layout(model, variables) -> ParamLayout:
    """``model``'s layout (one player per layer, the layer graph) for ``variables``, some or all of
    its trainable variables: each player keeps its variables among them, players come in the order
    of their first variable there, and a player left without any is dropped with its edges."""
    layout = plugins.param_layout(model)
    variables = list(variables)
    index = {id(tensor): k for k, tensor in enumerate(layout.tensors)}
    foreign = [v.path for v in variables if id(v) not in index]
    if foreign:
        raise ValueError(
            f"NGAdam is bound to a model that does not train {foreign}: bind the model these "
            "variables belong to, or pass players="
        )
    player_of = {k: p for p, group in enumerate(layout.players or ()) for k in group}
    kept: dict[int, list[int]] = {}  # the model's player → its tensors among ``variables``
    for k, variable in enumerate(variables):
        kept.setdefault(player_of[index[id(variable)]], []).append(k)
    number = {player: n for n, player in enumerate(kept)}
    graph = layout.graph
    if graph is not None:
        graph = sorted(
            (min(number[i], number[j]), max(number[i], number[j]), w)
            for i, j, w in graph
            if i in number and j in number
        )
    return ParamLayout(
        tensors=variables,
        names=[v.path for v in variables],
        players=list(kept.values()),
        graph=graph,
        player_names=[layout.player_names[player] for player in kept],
    )


def path_layout(variables) -> ParamLayout:
    """Without a model: one player per owning path (a variable's path less its last part), chain graph."""
    variables = list(variables)
    names = [v.path.rsplit("/", 1)[0] for v in variables]
    player_names = list(dict.fromkeys(names))
    players = [[k for k, name in enumerate(names) if name == player] for player in player_names]
    return ParamLayout(
        tensors=variables, names=[v.path for v in variables], players=players, graph=None, player_names=player_names
    )
