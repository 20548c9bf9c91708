"""The content of a NEAT checkpoint, built and validated once for every front end.

A checkpoint holds:

* ``spec_version``: the version of docs/spec.md the state belongs to;
* the hyperparameters, under the field names of :class:`~neat.config.NGAdamConfig`
  (:data:`HYPERPARAMETERS`): the values the optimizer is configured with (floats; ``betas`` and
  ``step_bounds`` pairs);
* ``player_of``: each tensor's player index ``P(k)`` (``K`` integers);
* ``graph``: the player graph's ``n × n`` weights ``W``;
* every :class:`~neat.state.GameState` field under its name (``count``, ``skipped``,
  ``tensor_count``, ``log_step``, ``alignment``, ``conflict``);
* the moments ``exp_avg`` and ``exp_avg_sq`` of every tensor (named ``exp_avg.k`` in messages).

:data:`SETTINGS` names the first four entries, :data:`HEADER` those and the ``GameState`` fields.
:func:`settings` and :func:`header` build them from an optimizer's pieces (its config, topology
and game state), with each array put into the front end's format by a ``convert`` function (by
default a host NumPy copy). :func:`checked_settings` and :func:`checked_state` validate a loaded
checkpoint against an optimizer (spec version, players, hyperparameters, graph; counts, shapes,
finiteness) and return its values on the host; they raise ``ValueError`` naming the entry, so
that a front end changes nothing when a checkpoint is refused.

How each front end puts the content into its framework's format:

* ``neat.NGAdam`` (in place): ``state_dict()`` is flat, for ``numpy.savez``: the :data:`HEADER`
  entries (NumPy arrays and Python numbers) and the moments ``"exp_avg.k"``, ``"exp_avg_sq.k"``.
  ``load_state_dict`` takes the hyperparameters and the graph from the checkpoint (the players
  must be the optimizer's).
* ``neat.torch.NGAdam``: ``state_dict()`` is torch's own ``"state"`` (``exp_avg``, ``exp_avg_sq``
  per parameter; absent for a tensor that never had a gradient) and ``"param_groups"`` (the live
  per-group hyperparameters, which schedulers change and torch's ``load_state_dict`` restores),
  plus ``"neat"``: the :data:`HEADER` entries, arrays as tensors, the hyperparameters those the
  optimizer was built with (its ``defaults``). ``load_state_dict`` also requires the graph and the
  game's hyperparameters (:data:`FIXED_FOR_A_RUN`) to be the optimizer's.
* ``neat.keras.NGAdam``: ``get_config()["neat"]`` is the :data:`SETTINGS` (JSON: arrays as lists)
  once the optimizer is built, beside AdamW's arguments from which ``from_config`` rebuilds it; when
  that optimizer is built they are checked as for torch. ``lr`` is the value of Keras' float32
  learning-rate variable (a learning-rate schedule stays Keras' own; ``lr`` is then the default).
  The ``GameState`` fields and the moments are optimizer variables (``neat_<field>``,
  ``<variable path>_exp_avg``, ``…_exp_avg_sq``), which ``model.save`` writes and
  ``load_own_variables`` checks before it assigns any.
* ``neat.optax``: the state pytree is the checkpoint (optax's convention: pickle or orbax it).
  :class:`~neat.optax.NGAdamOptaxState` holds the :class:`~neat.state.GameState`, the moments as
  pytrees like the parameters and the game's tables (each tensor's player, the graph's ``S``);
  the hyperparameters are the transformation's arguments (or ``optax.inject_hyperparams``' state),
  as for every optax transformation.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import array_api_compat
import array_api_compat.numpy
import numpy as np

from neat import hyperparameters
from neat._version import SPEC_VERSION
from neat.config import NGAdamConfig
from neat.players import PlayerGraph
from neat.state import GameState
from neat.topology import Topology

#: The hyperparameters' names, in the schema's order (that of :class:`~neat.config.NGAdamConfig`).
HYPERPARAMETERS = hyperparameters.NAMES

#: The game's hyperparameters, fixed for a run (SPEC "Hyperparameters").
GAME_HYPERPARAMETERS = hyperparameters.FIXED_FOR_A_RUN

#: What a checkpoint holds besides the state: spec version, hyperparameters, players, graph.
SETTINGS = ("spec_version", *HYPERPARAMETERS, "player_of", "graph")

#: Every entry of a checkpoint but the moments.
HEADER = (*SETTINGS, *GameState._fields)

#: The per-tensor moments.
MOMENTS = ("exp_avg", "exp_avg_sq")

#: The entries a resumed run keeps from its optimizer: the graph and the game's hyperparameters
#: (with the players, which every front end requires).
FIXED_FOR_A_RUN = ("graph", *GAME_HYPERPARAMETERS)


def host(value) -> np.ndarray:
    """``value`` as a NumPy array to read: an array of NumPy, CuPy, PyTorch or JAX brought to the
    host (a view of host memory where it already is there), a number or nested list as it is."""
    if array_api_compat.is_torch_array(value):
        value = value.detach()
    if array_api_compat.is_cupy_array(value) or array_api_compat.is_torch_array(value):
        value = array_api_compat.to_device(value, "cpu")
    return np.asarray(value)


def to_host(array) -> np.ndarray:
    """A NumPy copy of ``array`` (any namespace), owned by the checkpoint: never a live array."""
    return np.array(host(array), copy=True)


def settings(config: NGAdamConfig, topology: Topology, convert: Callable[[np.ndarray], Any] = to_host) -> dict:
    """The :data:`SETTINGS` of an optimizer configured by ``config`` playing ``topology``;
    ``player_of`` and ``graph`` (NumPy arrays) go through ``convert``."""
    return {
        "spec_version": SPEC_VERSION,
        **{name: getattr(config, name) for name in HYPERPARAMETERS},
        "player_of": convert(np.asarray(topology.players.owner, dtype=np.int64)),
        "graph": convert(topology.graph.weights),
    }


def header(config: NGAdamConfig, topology: Topology, game: GameState, convert: Callable = to_host) -> dict:
    """The :data:`HEADER`: :func:`settings` and the fields of the live ``game``, every array
    through ``convert``."""
    return {
        **settings(config, topology, convert),
        **{name: convert(value) for name, value in zip(GameState._fields, game)},
    }


def checked_settings(
    saved: Mapping,
    config: NGAdamConfig,
    topology: Topology,
    *,
    fixed: Collection[str] = (),
    name: str = "checkpoint",
) -> tuple[NGAdamConfig, PlayerGraph]:
    """The hyperparameters and graph of the checkpoint ``saved`` (a mapping holding the
    :data:`SETTINGS`), checked against an optimizer configured by ``config`` playing ``topology``:
    the spec version is this package's, ``player_of`` is the optimizer's (as many tensors, the same
    owners), the hyperparameters and the graph are valid, and the entries named in ``fixed``
    (hyperparameter names, ``"graph"``) equal the optimizer's. ``name`` is the checkpoint's in messages."""
    require(saved, SETTINGS, name)
    version = host(saved["spec_version"])
    if version.ndim != 0 or version.item() != SPEC_VERSION:
        raise ValueError(f"{name} is for spec version {saved['spec_version']!r}, this is spec version {SPEC_VERSION}")
    owner = np.asarray(topology.players.owner)
    player_of = host(saved["player_of"])
    if player_of.shape != owner.shape:
        raise ValueError(f"{name} holds {player_of.size} tensors but this optimizer has {owner.size}")
    if not np.array_equal(player_of, owner):
        raise ValueError(
            f"{name} players differ: tensor owners {player_of.tolist()}, this optimizer's {owner.tolist()}"
        )
    values = {key: _hyperparameter(saved, key, getattr(config, key), name) for key in HYPERPARAMETERS}
    try:
        loaded = NGAdamConfig(**values)
        graph = PlayerGraph.from_spec(host(saved["graph"]), topology.num_players)  # an array: never read as edges
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name}: {error}") from None
    for key in fixed:
        theirs, ours = (
            (graph.weights, topology.graph.weights) if key == "graph" else (getattr(loaded, key), getattr(config, key))
        )
        if not np.array_equal(theirs, ours):
            raise ValueError(
                f"{name} has {key}={np.asarray(theirs).tolist()} but this optimizer has "
                f"{key}={np.asarray(ours).tolist()}: the graph and the game's hyperparameters are fixed "
                "for a run; build the optimizer with the checkpoint's"
            )
    return loaded, graph


def checked_state(
    saved: Mapping,
    moments: Sequence[tuple[Any, Any]],
    topology: Topology,
    shapes: Sequence[tuple[int, ...]],
    *,
    name: str = "checkpoint",
) -> tuple[GameState, list, list]:
    """The ``GameState`` fields of ``saved`` and the moments ``moments[k] = (exp_avg, exp_avg_sq)``
    of tensor ``k`` (shape ``shapes[k]``; ``(None, None)``: the tensor has no moments yet), checked
    for an optimizer playing ``topology``: counts are non-negative int32 values and no tensor's count
    exceeds the step count, the other fields and the moments are finite floats of the right shapes,
    second moments are non-negative. Returns the fields, the ``exp_avg`` and the ``exp_avg_sq`` as
    host arrays (``None`` kept)."""
    require(saved, GameState._fields, name)
    like = GameState.zeros(array_api_compat.numpy, topology.num_tensors, topology.num_players, np.float64, None)
    game = GameState(*(_game_field(saved, key, getattr(like, key), name) for key in GameState._fields))
    if np.any(game.tensor_count > game.count):
        raise ValueError(
            f"{name}['tensor_count'] exceeds the step count: a tensor cannot have taken more steps than the optimizer"
        )
    first: list = []
    second: list = []
    for k, ((m, v), shape) in enumerate(zip(moments, shapes)):
        if (m is None) != (v is None):
            raise ValueError(f"{name} has only one of exp_avg.{k} and exp_avg_sq.{k}: a tensor has both or neither")
        if m is not None:
            m, v = _finite(f"exp_avg.{k}", m, shape, name), _finite(f"exp_avg_sq.{k}", v, shape, name)
            if np.any(v < 0):
                raise ValueError(f"{name}['exp_avg_sq.{k}'] has negative entries (a second moment is >= 0)")
        first.append(m)
        second.append(v)
    return game, first, second


def require(saved, keys, name: str = "checkpoint") -> None:
    """``saved`` is a mapping holding ``keys`` (``TypeError`` / ``ValueError`` naming the missing ones)."""
    if not isinstance(saved, Mapping):
        raise TypeError(f"{name} must be a mapping, got {type(saved).__qualname__}")
    missing = [key for key in keys if key not in saved]
    if missing:
        raise ValueError(f"{name} is missing keys {missing}")


def _hyperparameter(saved: Mapping, key: str, like, name: str):
    """A saved hyperparameter as a float, or a tuple of floats where ``like`` is a pair."""
    value = host(saved[key])
    if not np.issubdtype(value.dtype, np.number) or value.shape != np.shape(like):
        raise ValueError(f"{name}[{key!r}] must be {'a pair of numbers' if np.ndim(like) else 'a number'}")
    return tuple(value.astype(np.float64).tolist()) if isinstance(like, tuple) else float(value)


def _game_field(saved: Mapping, key: str, like: np.ndarray, name: str) -> np.ndarray:
    """A ``GameState`` field shaped like ``like``: non-negative int32 counts, or finite floats."""
    if not np.issubdtype(like.dtype, np.integer):
        return _finite(key, saved[key], like.shape, name)
    value = host(saved[key])
    valid = (
        value.shape == like.shape
        and np.issubdtype(value.dtype, np.integer)
        and np.all((value >= 0) & (value <= np.iinfo(np.int32).max))
    )
    if not valid:
        raise ValueError(
            f"{name}[{key!r}] must hold non-negative integers (int32) of shape {like.shape}, got {saved[key]!r}"
        )
    return value


def _finite(key: str, value, shape: tuple, name: str) -> np.ndarray:
    value = host(value)
    if value.shape != tuple(shape):
        raise ValueError(f"{name}[{key!r}] has shape {value.shape}, expected {tuple(shape)}")
    if not (np.issubdtype(value.dtype, np.floating) and np.all(np.isfinite(value))):
        raise ValueError(f"{name}[{key!r}] must hold finite floating values")
    return value
