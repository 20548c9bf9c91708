"""JAX pytree adapter: a pytree of ``jax.Array`` (a dict, Flax ``params``, an ``nnx.State``
or ``nnx.Module``) → tensors, players and a chain graph; and the conformance driver of
:func:`neat.optax.ng_adam`.

Leaves are taken in pytree order (``jax.tree.flatten``: dict keys sorted). By default a
leaf's player is its parent path, so every module subtree (``params['Dense_0']``) is one
player, and players form a chain in the order they first appear (SPEC "Objects").
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Hashable
from typing import Any

from neat import hyperparameters
from neat.backends.jax_backend import from_numpy, x64_enabled
from neat.hookspecs import hookimpl
from neat.plugins import AdapterInfo, ParamLayout, no_graph_names


def path_name(path) -> str:
    """``('params', 'Dense_0', 'kernel')``-style key path as ``"params/Dense_0/kernel"``."""
    parts = []
    for key in path:
        for attribute in ("key", "name", "idx"):
            if hasattr(key, attribute):
                parts.append(str(getattr(key, attribute)))
                break
        else:
            parts.append(str(key))
    return "/".join(parts)


def parent_player(path) -> str:
    """The default player of a leaf: its parent path (its module subtree)."""
    return path_name(path[:-1])


def pytree_layout(tree, players: Callable[[tuple], Hashable] | Any = None) -> ParamLayout:
    """The leaves of ``tree`` with their names and players.

    ``players``: ``None`` (one player per parent path), a function from a leaf's key
    path to a player name (leaves with the same name share a player), or explicit
    lists of leaf indices in pytree order (passed to the core unchanged).
    """
    import jax

    with_paths, _ = jax.tree_util.tree_flatten_with_path(tree, is_leaf=_is_variable)
    if not with_paths:
        raise ValueError("params: the pytree has no array leaves")
    paths = [path for path, _ in with_paths]
    tensors = [jax.tree.leaves(leaf)[0] if _is_variable(leaf) else leaf for _, leaf in with_paths]
    names = [path_name(path) for path in paths]
    if players is not None and not callable(players):
        return ParamLayout(tensors=tensors, names=names, players=players)
    player_of = players or parent_player
    groups: dict[Hashable, list[int]] = {}
    for k, path in enumerate(paths):
        groups.setdefault(player_of(path), []).append(k)
    return ParamLayout(
        tensors=tensors, names=names, players=list(groups.values()), player_names=tuple(str(name) for name in groups)
    )


def _is_variable(node) -> bool:
    """An ``nnx.Variable`` (one array): its path ends at the variable, not at its ``value``."""
    nnx = sys.modules.get("flax.nnx")
    return nnx is not None and isinstance(node, nnx.Variable)


def _jax_pytree(obj):
    """``obj`` as a pytree of parameters if it is one of ours (JAX arrays / Flax state), else ``None``."""
    jax = sys.modules.get("jax")
    if jax is None or isinstance(obj, (jax.Array, list, tuple)):  # a plain sequence is the core's own input
        return None
    nnx = sys.modules.get("flax.nnx")
    if nnx is not None and isinstance(obj, nnx.Module):
        obj = nnx.state(obj, nnx.Param)
    leaves = jax.tree.leaves(obj)
    if leaves and all(isinstance(leaf, jax.Array) for leaf in leaves):
        return obj
    return None


@hookimpl
def neat_param_layout(obj, graph):
    tree = _jax_pytree(obj)
    if tree is None:
        return None
    no_graph_names(graph, "a pytree's players are chained in pytree order")
    return pytree_layout(tree)


def run_golden(problem, dtype_name: str) -> list:
    """Train ``neat.optax.ng_adam`` through ``optax.apply_updates`` on a golden problem (one jitted
    ``lax.scan`` over the steps; with inactive tensors, one jitted step per step, a tensor without a
    gradient being a ``None`` leaf); return the parameters after every step as float64 NumPy arrays."""
    import jax
    import numpy as np
    import optax

    import neat.optax

    hp = problem.hyperparameters
    tx = neat.optax.ng_adam(
        **hyperparameters.framework_values("optax", hp),
        players=problem.players,
        graph=problem.weights,
    )
    params = [from_numpy(p, dtype_name) for p in problem.params]

    def train_step(carry, step_grads):
        params, state = carry
        updates, state = tx.update(step_grads, state, params)
        params = optax.apply_updates(params, updates)
        return (params, state), params

    if problem.has_inactive:
        step = jax.jit(lambda carry, step_grads: train_step(carry, step_grads)[0])
        carry, history = (params, tx.init(params)), []
        for step_grads in problem.grads:
            carry = step(carry, [None if g is None else from_numpy(g, dtype_name) for g in step_grads])
            history.append([np.asarray(p, dtype=np.float64) for p in carry[0]])
        return history
    grads = [
        from_numpy(np.stack([step[k] for step in problem.grads]), dtype_name) for k in range(len(params))
    ]  # one (steps, *shape) array per tensor
    _, stacked = jax.jit(lambda p, g: jax.lax.scan(train_step, (p, tx.init(p)), g))(params, grads)
    stacked = [np.asarray(h, dtype=np.float64) for h in stacked]
    return [[h[step] for h in stacked] for step in range(problem.num_steps)]


@hookimpl
def neat_adapter_info():
    """float64 is listed only when JAX's x64 mode is on (``JAX_ENABLE_X64=1``); without it JAX has no float64."""
    try:
        dtypes = ("float32", "float64") if x64_enabled() else ("float32",)
    except ImportError:  # jax missing: ``requires`` makes the suite skip this adapter
        dtypes = ("float32",)
    return AdapterInfo(name="optax.ng_adam", requires=("jax", "optax"), dtypes=dtypes, run=run_golden)
