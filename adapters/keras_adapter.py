"""Keras 3 adapter: a model's trainable variables → players and player graph.

* **Players** are the layers that own trainable weights (SPEC "Objects"), in the
  order their first variable appears in ``model.trainable_variables``.
* **Graph**: for a functional or ``Sequential`` model, two players are joined
  (weight 1) when data flows from one to the other through layers without
  weights only (so a residual ``Add`` joins the block's input layer to its
  output layer). A nested functional model is expanded; another layer with
  several weighted sub-layers chains them and connects through its first
  (inbound) and last (outbound) one. A subclassed model gets the chain.

Importing this module imports no framework; the hooks answer ``None`` until
Keras has been imported by the user. The conformance hooks import the front end,
``neat.keras`` (which picks an installed Keras backend before it imports Keras).
"""

from __future__ import annotations

import importlib.util
import sys
import warnings
from typing import Any

import numpy as np

from neat import hyperparameters
from neat.hookspecs import hookimpl
from neat.plugins import AdapterInfo, ParamLayout, no_graph_names

_INPUT = -1  # frontier marker: "reached from a model input through weightless layers"


def _keras():
    return sys.modules.get("keras")


def _owners(model) -> dict[int, Any]:
    """``id(variable) → the layer that created it`` for every layer under ``model`` (itself included)."""
    owners = {}
    for layer in model._flatten_layers(include_self=True, recursive=True):
        for variable in layer._trainable_variables + layer._non_trainable_variables:
            owners[id(variable)] = layer
    return owners


def _player_name(layer, variable) -> str:
    """The layer's path: the variable's path without its last component."""
    path = getattr(variable, "path", variable.name)
    return path.rsplit("/", 1)[0] if "/" in path else layer.name


def group_by_layer(model, variables) -> tuple[list[list[int]], list[str], list[Any]]:
    """Players (tensor indices), their names and their layers: one player per owning layer."""
    owners = _owners(model)
    players: list[list[int]] = []
    names: list[str] = []
    layers: list[Any] = []
    index_of: dict[int, int] = {}
    for k, variable in enumerate(variables):
        layer = owners.get(id(variable), model)
        if id(layer) not in index_of:
            index_of[id(layer)] = len(players)
            players.append([])
            names.append(_player_name(layer, variable))
            layers.append(layer)
        players[index_of[id(layer)]].append(k)
    return players, names, layers


class _GraphBuilder:
    """Undirected player edges from a functional graph, contracting weightless layers."""

    def __init__(self, layers):
        self.layers = layers
        self.edges: set[tuple[int, int]] = set()

    def connect(self, sources, targets):
        for i in sources:
            for j in targets:
                if i != j and i != _INPUT and j != _INPUT:
                    self.edges.add((min(i, j), max(i, j)))

    def players_under(self, operation) -> list[int]:
        """Players owned by ``operation`` or its sub-layers, in player order."""
        keras = _keras()
        if not isinstance(operation, keras.layers.Layer):
            return []
        inside = {id(layer) for layer in operation._flatten_layers(include_self=True, recursive=True)}
        return [i for i, layer in enumerate(self.layers) if id(layer) in inside]

    def ends(self, operation) -> tuple[set[int], set[int]]:
        """``(entry, exit)`` players of one operation; wires its inside into ``edges``."""
        functional = _functional_of(operation)
        if functional is not None:
            return self.walk(functional)
        players = self.players_under(operation)
        for a, b in zip(players, players[1:]):  # chained inside, in player order
            self.connect({a}, {b})
        return set(players[:1]), set(players[-1:])

    def walk(self, functional) -> tuple[set[int], set[int]]:
        """Wire the edges of ``functional``; return the players reached first from its inputs
        and those that reach its outputs through weightless layers (with ``_INPUT`` when an
        input itself reaches an output that way)."""
        frontier: dict[int, set[int]] = {}  # id(node) → players last met on the way to it
        entry: set[int] = set()
        for depth in sorted(functional._nodes_by_depth, reverse=True):  # inputs first
            for node in functional._nodes_by_depth[depth]:
                parents = [frontier.get(id(p), {_INPUT}) for p in node.parent_nodes]
                arriving = set().union(*parents) if parents else {_INPUT}
                first, last = self.ends(node.operation)
                self.connect(arriving, first)
                if _INPUT in arriving:
                    entry |= first
                passes_through = not first or _INPUT in last  # weightless, or a nested model's skip path
                frontier[id(node)] = (last - {_INPUT}) | (arriving if passes_through else set())
        exits = set()
        for tensor in functional._outputs:
            history = tensor._keras_history
            node = history.operation._inbound_nodes[history.node_index]
            exits |= frontier[id(node)]
        return entry, exits


def _functional_of(operation):
    """The functional graph behind ``operation`` (a Functional model or a built Sequential), or None."""
    if isinstance(operation, _keras().Sequential):
        return operation._functional
    return operation if hasattr(operation, "_nodes_by_depth") else None


def layer_graph(model, layers) -> list[tuple[int, int, float]] | None:
    """Edges between players from the model's layer connectivity; ``None`` (chain) when it has none."""
    functional = _functional_of(model)
    if functional is None:
        return None
    builder = _GraphBuilder(layers)
    builder.walk(functional)
    return [(i, j, 1.0) for i, j in sorted(builder.edges)]


def model_layout(model) -> ParamLayout:
    """``model``'s :class:`ParamLayout`: its ``trainable_variables``, players and graph."""
    variables = list(model.trainable_variables)
    players, names, layers = group_by_layer(model, variables)
    return ParamLayout(
        tensors=variables,
        names=[v.path for v in variables],
        players=players,
        graph=layer_graph(model, layers),
        player_names=names,
    )


@hookimpl(tryfirst=True)  # before the torch adapter: on the torch backend a Keras model is a torch Module
def neat_param_layout(obj, graph):
    keras = _keras()
    if keras is None or not isinstance(obj, keras.Model):
        return None
    no_graph_names(graph, "a Keras model's graph is its layer connectivity")
    return model_layout(obj)


def _run_golden(problem, dtype_name: str) -> list:
    """Train ``neat.keras.NGAdam`` on a golden problem with ``optimizer.apply`` on Keras variables."""
    import keras

    from neat.keras import NGAdam

    hp = problem.hyperparameters
    variables = [
        keras.Variable(np.asarray(p, dtype=dtype_name), dtype=dtype_name, name=f"param_{k}")
        for k, p in enumerate(problem.params)
    ]
    optimizer = NGAdam(
        **hyperparameters.framework_values("keras", dict(hp, lr=float(hp["lr"]))),
        players=problem.players,
        graph=np.asarray(problem.weights).tolist(),
    )
    trajectory = []
    for grads in problem.grads:
        # A ``None`` gradient is an inactive tensor and a huge one is infinite in float32: on purpose here.
        with warnings.catch_warnings(), np.errstate(over="ignore"):
            warnings.filterwarnings("ignore", message="Gradients do not exist for variables")
            optimizer.apply(
                [None if g is None else keras.ops.convert_to_tensor(np.asarray(g, dtype=dtype_name)) for g in grads],
                variables,
            )
        trajectory.append([np.asarray(keras.ops.convert_to_numpy(v.value), dtype=np.float64) for v in variables])
    return trajectory


def _unavailable(reason: str):
    return AdapterInfo(
        name="keras.NGAdam", requires=("keras",), dtypes=("float32",), run=_run_golden, skip_reason=lambda: reason
    )


@hookimpl
def neat_adapter_info():
    """Imports ``neat.keras`` and so Keras (which fixes its backend from ``KERAS_BACKEND`` for the
    process; the front end sets it to an installed backend if the configured one is not)."""
    if importlib.util.find_spec("keras") is None:
        return _unavailable("keras is not installed")
    try:
        import neat.keras  # noqa: F401
    except ImportError as error:  # no installed backend, or the one KERAS_BACKEND names fails to import
        return _unavailable(f"keras cannot be imported ({error}); set KERAS_BACKEND to an installed backend")
    import keras

    return AdapterInfo(
        name=f"keras.NGAdam[{keras.config.backend()}]", requires=("keras",), dtypes=("float32",), run=_run_golden
    )
