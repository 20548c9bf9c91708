"""PyTorch adapter: an ``nn.Module`` → tensors, players and a player graph; conformance driver.

Players: one per module that directly owns parameters, in registration order
(a parameter shared by several modules belongs to the first). Graph: a chain in
player order, or with ``graph="fx"`` the model's real data flow traced by
``torch.fx`` (two players are joined when one's output reaches the other
without passing through a third; residual connections give the extra edges).
"""

from __future__ import annotations

import sys

from neat.hookspecs import hookimpl
from neat.plugins import AdapterInfo, ParamLayout


def module_layout(module, graph=None) -> ParamLayout:
    """The :class:`ParamLayout` of ``module``; ``graph``: ``None`` (chain), ``"fx"`` or an explicit graph."""
    names: list[str] = []
    tensors: list = []
    players: list[list[int]] = []
    player_names: list[str] = []
    seen: set[int] = set()
    for module_name, owner in module.named_modules():
        group = []
        for name, param in owner.named_parameters(recurse=False):
            if id(param) in seen:
                continue
            seen.add(id(param))
            group.append(len(tensors))
            tensors.append(param)
            names.append(f"{module_name}.{name}" if module_name else name)
        if group:
            players.append(group)
            player_names.append(module_name)
    if not tensors:
        raise ValueError(f"{type(module).__qualname__} has no parameters to optimize")
    if isinstance(graph, str):
        if graph != "fx":
            raise ValueError(f"Invalid graph: {graph!r} (expected None, 'fx', a weight matrix or (i, j, weight) edges)")
        graph = fx_edges(module, player_names)
    return ParamLayout(tensors=tensors, names=names, players=players, graph=graph, player_names=player_names)


def fx_edges(module, player_names) -> list:
    """Undirected ``(i, j, 1.0)`` edges between players whose data flows directly from one to the other."""
    import torch.fx

    try:
        traced = torch.fx.symbolic_trace(module)
    except Exception as error:  # torch.fx raises many types for untraceable code
        raise TypeError(
            f"graph='fx': torch.fx cannot trace {type(module).__qualname__} ({type(error).__name__}: "
            f"{error}); pass graph=None for a chain or an explicit graph"
        ) from error
    players_of = {name: i for i, name in enumerate(player_names)}
    node_players = {node: _players_used(node, players_of) for node in traced.graph.nodes}
    edges: set[tuple[int, int]] = set()
    for node, players in node_players.items():
        upstream = _nearest_upstream_players(node, node_players)
        edges.update((min(i, j), max(i, j)) for i in players for j in upstream if i != j)
        edges.update((i, j) for i in players for j in players if i < j)  # players inside one traced leaf
    return [(i, j, 1.0) for i, j in sorted(edges)]


def _players_used(node, players_of) -> set:
    """Players whose parameters a node applies: a called module (and the modules inside it),
    or the owners of the parameters an op reads directly (``F.linear(x, self.weight)``)."""
    if node.op == "call_module":
        return {i for name, i in players_of.items() if name == node.target or name.startswith(node.target + ".")}
    if node.op in ("call_function", "call_method"):
        owners = (arg.target.rpartition(".")[0] for arg in node.all_input_nodes if arg.op == "get_attr")
        return {players_of[owner] for owner in owners if owner in players_of}
    return set()


def _nearest_upstream_players(node, node_players) -> set:
    """Players reached walking back from ``node``'s inputs, stopping at the first player on each path."""
    found, stack, visited = set(), list(node.all_input_nodes), set()
    while stack:
        current = stack.pop()
        if current in visited:
            continue
        visited.add(current)
        if node_players[current]:
            found |= node_players[current]
        else:
            stack.extend(current.all_input_nodes)
    return found


@hookimpl
def neat_param_layout(obj, graph):
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(obj, torch.nn.Module):
        return module_layout(obj, graph=graph)
    return None


def run_golden(problem, dtype_name: str, **options) -> list:
    """Train :class:`neat.torch.NGAdam` on a golden problem; the params after every step (float64 NumPy).
    ``options``: more constructor arguments, e.g. ``foreach=True``."""
    import torch

    from neat.torch import NGAdam

    dtype = getattr(torch, dtype_name)
    params = [torch.tensor(p, dtype=dtype) for p in problem.params]
    optimizer = NGAdam(params, players=problem.players, graph=problem.weights, **problem.hyperparameters, **options)
    history = []
    for grads in problem.grads:
        for p, g in zip(params, grads):
            p.grad = None if g is None else torch.tensor(g, dtype=dtype)  # None: inactive (SPEC v2)
        optimizer.step()
        history.append([p.detach().to(torch.float64).numpy().copy() for p in params])
    return history


@hookimpl
def neat_adapter_info():
    return AdapterInfo(name="torch.NGAdam", requires=("torch",), dtypes=("float64", "float32"), run=run_golden)
