"""``neat.NGAdam``: NG-Adam that updates mutable arrays in place (NumPy, CuPy, PyTorch tensors).

Every step goes through the core, :func:`neat.functional.step` with ``inplace=True``
and the optimizer's :class:`~neat.topology.Topology` (so a gradient ``None`` marks an
inactive tensor, SPEC v2): the parameters and moments are written into the given
arrays, and the small state it returns (every :class:`~neat.state.GameState` field)
is copied into this optimizer's own arrays, so every parameter and state array keeps
its identity and its memory for the optimizer's whole life.

A checkpoint (:meth:`NGAdam.state_dict`) holds exactly: the spec version, the
``GameState`` fields by name, the moments ``exp_avg.k`` / ``exp_avg_sq.k``, the
hyperparameters (the fields of :class:`~neat.config.NGAdamConfig`), the players
(``player_of``: each tensor's player) and the graph weights.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import array_api_compat
import numpy as np

from neat import arrays, functional
from neat._version import SPEC_VERSION
from neat.config import DEFAULTS, NGAdamConfig
from neat.kernel_selection import select_kernels
from neat.kernels import StepKernels
from neat.players import PlayerGraph
from neat.state import GameState
from neat.topology import Topology

#: Hyperparameter names, in the order of :class:`NGAdamConfig`.
_HYPERPARAMETERS = tuple(f.name for f in dataclasses.fields(NGAdamConfig))
_FIXED_KEYS = ("spec_version", *GameState._fields, "player_of", "graph", *_HYPERPARAMETERS)


class NGAdam:
    """NG-Adam (docs/spec.md steps 0–9) on a list of mutable arrays, updated in place.

    ``opt = neat.NGAdam(params, lr=1e-3, players=[[0, 1], [2]])``; then ``opt.step(grads)``
    each iteration (``grads[k] = None``: tensor ``k`` has no gradient this step).
    ``players``: lists of tensor indices (None: one player per tensor); ``graph``:
    ``n × n`` weights, ``(i, j, w)`` edges or None (chain). ``kernels``: the two
    array passes (None: the fastest registered kernel set for these arrays, a
    registered name such as ``"generic"``, or a kernels object). Immutable arrays
    (JAX) are refused: use the functional :func:`neat.ng_adam`.
    """

    def __init__(
        self,
        params: Sequence[Any],
        lr: float = DEFAULTS["lr"],
        *,
        betas=DEFAULTS["betas"],
        eps: float = DEFAULTS["eps"],
        weight_decay: float = DEFAULTS["weight_decay"],
        gamma: float = DEFAULTS["gamma"],
        zeta: float = DEFAULTS["zeta"],
        mu: float = DEFAULTS["mu"],
        step_bounds=DEFAULTS["step_bounds"],
        leak: float = DEFAULTS["leak"],
        players=None,
        graph=None,
        kernels: str | StepKernels | None = None,
    ):
        self.config = NGAdamConfig(
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            gamma=gamma,
            zeta=zeta,
            mu=mu,
            step_bounds=step_bounds,
            leak=leak,
        )
        self._params = functional._as_list(params, "params")
        self._xp = arrays.namespace_of(self._params, "params")
        _check_mutable(self._xp, self._params)
        self._topology = Topology.build(len(self._params), players, graph, mu=self.config.mu)
        self._state = functional.init_state(self._params, self._topology)
        self._kernels = select_kernels(self._xp, self._params, kernels)  # chosen once, as torch.optim does

    @property
    def params(self) -> list:
        """The parameter arrays, the very objects given to the constructor."""
        return list(self._params)

    @property
    def state(self):
        """The live :class:`neat.NGAdamState`; its arrays are overwritten by every step."""
        return self._state

    @property
    def topology(self) -> Topology:
        """Players, graph and ``μ`` of the game."""
        return self._topology

    def step(self, grads: Sequence[Any], *, lr=None, weight_decay=None) -> None:
        """Apply one step in place. ``lr`` / ``weight_decay`` override the configured ones for
        this step (a scalar, or one value per tensor). Nothing is read back to the host."""
        _check_writeable(self._params)
        with _autograd_off(self._xp):
            _, new_state = functional.step(
                self._params,
                grads,
                self._state,
                self.config,
                lr=lr,
                weight_decay=weight_decay,
                kernels=self._kernels,
                inplace=True,
                topology=self._topology,
            )
            for name in GameState._fields:
                getattr(self._state.game, name)[...] = getattr(new_state.game, name)

    def diagnostics(self) -> dict:
        """Per-player ``alignment``, ``kappa``, ``step_scale``; ``mean_alignment``, ``skipped_steps``
        (SPEC "Diagnostics"), as arrays copied from the state, so later steps leave them alone."""
        return {key: self._xp.asarray(value, copy=True) for key, value in functional.diagnostics(self._state).items()}

    def state_dict(self) -> dict:
        """The checkpoint as NumPy arrays and Python numbers, flat: ``numpy.savez(path, **opt.state_dict())``."""
        game = self._state.game
        result: dict = {"spec_version": SPEC_VERSION}
        result.update({name: _to_numpy(getattr(game, name)) for name in GameState._fields})
        for k, (m, v) in enumerate(zip(self._state.exp_avg, self._state.exp_avg_sq)):
            result[f"exp_avg.{k}"], result[f"exp_avg_sq.{k}"] = _to_numpy(m), _to_numpy(v)
        result["player_of"] = np.asarray(self._topology.players.owner, dtype=np.int64)
        result["graph"] = self._topology.graph.weights.copy()
        result.update({name: getattr(self.config, name) for name in _HYPERPARAMETERS})
        return result

    def load_state_dict(self, state_dict: Mapping) -> None:
        """Restore a :meth:`state_dict` (or the ``numpy.load`` of its ``savez``) into the existing arrays.

        Everything is validated first (keys, spec version, number of tensors, players,
        shapes, counts, finiteness, hyperparameters, graph); on any error nothing changes.
        Hyperparameters and graph weights are taken from ``state_dict``, as in ``torch.optim``.
        """
        config, graph, values = self._validated(state_dict)
        state = self._state
        targets = [*(getattr(state.game, name) for name in GameState._fields), *state.exp_avg, *state.exp_avg_sq]
        for target, value in zip(targets, values):
            target[...] = self._xp.asarray(value, dtype=target.dtype, device=array_api_compat.device(target))
        self.config = config
        self._topology = Topology(self._topology.players, graph, config.mu)
        stats_dtype = state.game.log_step.dtype
        self._state = state._replace(
            tables=self._topology.tables(self._xp, array_api_compat.device(state.game.log_step), stats_dtype)
        )

    def _validated(self, state_dict) -> tuple[NGAdamConfig, PlayerGraph, list]:
        """Check ``state_dict`` against this optimizer; return its config, graph and the host arrays
        in the order of the ``GameState`` fields, then ``exp_avg…``, then ``exp_avg_sq…``."""
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"state_dict must be a mapping, got {type(state_dict).__qualname__}")
        _require_keys(state_dict, _FIXED_KEYS)
        if int(np.asarray(state_dict["spec_version"])) != SPEC_VERSION:
            raise ValueError(
                f"state_dict is for spec version {state_dict['spec_version']}, this is spec version {SPEC_VERSION}"
            )
        players = self._topology.players
        player_of = np.asarray(state_dict["player_of"])
        num_tensors = len(self._params)
        if player_of.shape != (num_tensors,):
            raise ValueError(f"state_dict holds {player_of.size} tensors but this optimizer has {num_tensors}")
        if not np.array_equal(player_of, players.owner):
            raise ValueError(
                f"state_dict players differ: tensor owners {player_of.tolist()}, this optimizer's {list(players.owner)}"
            )
        moment_keys = [f"exp_avg.{k}" for k in range(num_tensors)] + [f"exp_avg_sq.{k}" for k in range(num_tensors)]
        _require_keys(state_dict, moment_keys)
        unexpected = sorted(set(state_dict) - set(_FIXED_KEYS) - set(moment_keys))
        if unexpected:
            raise ValueError(f"state_dict has unexpected keys {unexpected}")

        config = NGAdamConfig(
            **{name: _hyperparameter(state_dict[name], getattr(self.config, name)) for name in _HYPERPARAMETERS}
        )
        graph = PlayerGraph.from_spec(np.asarray(state_dict["graph"], dtype=np.float64), players.num_players)
        game = [_game_field(state_dict, name, getattr(self._state.game, name)) for name in GameState._fields]
        counts = dict(zip(GameState._fields, game))
        if np.any(counts["tensor_count"] > counts["count"]):
            raise ValueError(
                "state_dict['tensor_count'] exceeds the step count: a tensor cannot have taken "
                "more steps than the optimizer"
            )
        moments = [_finite(state_dict, key, tuple(p.shape)) for key, p in zip(moment_keys, self._params * 2)]
        for key, v in zip(moment_keys[num_tensors:], moments[num_tensors:]):
            if np.any(v < 0):
                raise ValueError(f"state_dict[{key!r}] has negative entries (a second moment is >= 0)")
        return config, graph, [*game, *moments]


def _check_mutable(xp, params: Sequence[Any]) -> None:
    """In place needs writeable arrays of real floating dtype, each given once (metadata only)."""
    if array_api_compat.is_jax_namespace(xp):
        raise TypeError(
            "neat.NGAdam updates arrays in place, and JAX arrays are immutable; use the functional "
            "API instead: opt = neat.ng_adam(...); state = opt.init(params); "
            "params, state = opt.step(params, grads, state)"
        )
    arrays.check_floating(xp, params, "params")
    _check_writeable(params)
    seen: dict[int, int] = {}
    for k, p in enumerate(params):
        if id(p) in seen:
            raise ValueError(f"params[{k}] is the same array as params[{seen[id(p)]}]; give each array once")
        seen[id(p)] = k


def _check_writeable(params: Sequence[Any]) -> None:
    """Every parameter can be written (NumPy's flag, which may change after construction)."""
    for k, p in enumerate(params):
        if not getattr(getattr(p, "flags", None), "writeable", True):  # CuPy and torch have none
            raise ValueError(
                f"params[{k}] is read-only (flags.writeable is False); neat.NGAdam writes "
                "parameters in place, so pass writeable arrays"
            )


def _autograd_off(xp):
    """PyTorch records in-place writes to leaf tensors that require grad; an optimizer step must not."""
    if array_api_compat.is_torch_namespace(xp):
        import torch

        return torch.no_grad()
    return contextlib.nullcontext()


def _to_numpy(array) -> np.ndarray:
    """A host copy of ``array`` as a NumPy array (for state_dict only, never inside a step)."""
    if array_api_compat.is_cupy_array(array) or array_api_compat.is_torch_array(array):
        array = array_api_compat.to_device(array, "cpu")
    return np.from_dlpack(array).copy()


def _require_keys(state_dict: Mapping, keys) -> None:
    missing = [key for key in keys if key not in state_dict]
    if missing:
        raise ValueError(f"state_dict is missing keys {missing}")


def _hyperparameter(value, like):
    """A stored hyperparameter as a float, or a tuple of floats where ``like`` is a pair."""
    if isinstance(like, tuple):
        return tuple(np.asarray(value, dtype=np.float64).tolist())
    return float(np.asarray(value))


def _game_field(state_dict: Mapping, key: str, like) -> np.ndarray:
    """A ``GameState`` field shaped like the live ``like``: non-negative int32 counts, or finite floats."""
    if not array_api_compat.array_namespace(like).isdtype(like.dtype, "integral"):
        return _finite(state_dict, key, tuple(like.shape))
    value = np.asarray(state_dict[key])
    valid = (
        value.shape == tuple(like.shape)
        and np.issubdtype(value.dtype, np.integer)
        and np.all((value >= 0) & (value <= np.iinfo(np.int32).max))
    )
    if not valid:
        raise ValueError(
            f"state_dict[{key!r}] must hold non-negative integers of shape {tuple(like.shape)}, got {state_dict[key]!r}"
        )
    return value


def _finite(state_dict: Mapping, key: str, shape: tuple) -> np.ndarray:
    value = np.asarray(state_dict[key])
    if value.shape != shape:
        raise ValueError(f"state_dict[{key!r}] has shape {value.shape}, expected {shape}")
    if not (np.issubdtype(value.dtype, np.floating) and np.all(np.isfinite(value))):
        raise ValueError(f"state_dict[{key!r}] must hold finite floating values")
    return value
