"""``neat.NGAdam``: NG-Adam that updates mutable arrays in place (NumPy, CuPy, PyTorch tensors).

Every step goes through the core, :func:`neat.functional.step` with ``inplace=True``:
the parameters and moments are written into the given arrays, and the small
per-player state it returns (``t``, skipped count, ``z``, ``a``, ``κ``) is copied
into this optimizer's own arrays, so every parameter and state array keeps its
identity and its memory for the optimizer's whole life.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any, Sequence

import array_api_compat
import numpy as np

from neat import arrays, functional
from neat._version import SPEC_VERSION
from neat.config import DEFAULTS, NGAdamConfig
from neat.kernels import StepKernels
from neat.players import PlayerGraph, Players

#: The per-player and global state written back after each step (SPEC "State").
_SMALL_STATE = ("count", "skipped", "log_step", "alignment", "conflict")
_PLAYER_ARRAYS = ("log_step", "alignment", "conflict")
_SCALAR_HYPERPARAMETERS = ("lr", "eps", "weight_decay", "gamma", "zeta", "mu", "leak")
_PAIR_HYPERPARAMETERS = ("betas", "step_bounds")
_FIXED_KEYS = ("spec_version", "step", "skipped", *_PLAYER_ARRAYS, "player_of", "graph",
               *_SCALAR_HYPERPARAMETERS, *_PAIR_HYPERPARAMETERS)


class NGAdam:
    """NG-Adam (SPEC.md steps 0–9) on a list of mutable arrays, updated in place.

    ``opt = neat.NGAdam(params, lr=1e-3, players=[[0, 1], [2]])``; then ``opt.step(grads)``
    each iteration. ``players``: lists of tensor indices (None: one player per
    tensor); ``graph``: ``n × n`` weights, ``(i, j, w)`` edges or None (chain).
    ``kernels``: the two array passes (None: the backend's fused kernels if it has
    them, else :data:`neat.kernels.GENERIC`). Immutable arrays (JAX) are refused:
    use the functional :func:`neat.ng_adam`.
    """

    def __init__(self, params: Sequence[Any], lr: float = DEFAULTS["lr"], *, betas=DEFAULTS["betas"],
                 eps: float = DEFAULTS["eps"], weight_decay: float = DEFAULTS["weight_decay"],
                 gamma: float = DEFAULTS["gamma"], zeta: float = DEFAULTS["zeta"], mu: float = DEFAULTS["mu"],
                 step_bounds=DEFAULTS["step_bounds"], leak: float = DEFAULTS["leak"], players=None, graph=None,
                 kernels: "StepKernels | None" = None):
        self.config = NGAdamConfig(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, gamma=gamma,
                                   zeta=zeta, mu=mu, step_bounds=step_bounds, leak=leak)
        self._params = functional._as_list(params, "params")
        self._xp = arrays.namespace_of(self._params, "params")
        _check_mutable(self._xp, self._params)
        self._players = Players.from_spec(players, len(self._params))
        self._graph = PlayerGraph.from_spec(graph, self._players.num_players)
        self._state = functional.init_state(self._params, self._players, self._graph, mu=self.config.mu)
        self._kernels = kernels

    @property
    def params(self) -> list:
        """The parameter arrays, the very objects given to the constructor."""
        return list(self._params)

    @property
    def state(self):
        """The live :class:`neat.NGAdamState`; its arrays are overwritten by every step."""
        return self._state

    def step(self, grads: Sequence[Any], *, lr=None, weight_decay=None) -> None:
        """Apply one step in place. ``lr`` / ``weight_decay`` override the configured ones for
        this step (a scalar, or one value per tensor). Nothing is read back to the host."""
        _check_mutable(self._xp, self._params)
        with _autograd_off(self._xp):
            _, new_state = functional.step(self._params, grads, self._state, self.config,
                                           lr=lr, weight_decay=weight_decay, kernels=self._kernels, inplace=True)
            for name in _SMALL_STATE:
                getattr(self._state, name)[...] = getattr(new_state, name)

    def diagnostics(self) -> dict:
        """Per-player ``alignment``, ``kappa``, ``step_scale``; ``mean_alignment``, ``skipped_steps``
        (SPEC "Diagnostics"), as arrays copied from the state, so later steps leave them alone."""
        return {key: self._xp.asarray(value, copy=True)
                for key, value in functional.diagnostics(self._state).items()}

    def state_dict(self) -> dict:
        """The state as NumPy arrays and Python numbers, flat: ``numpy.savez(path, **opt.state_dict())``."""
        state, config = self._state, self.config
        result = {"spec_version": SPEC_VERSION, "step": int(_to_numpy(state.count)),
                  "skipped": int(_to_numpy(state.skipped))}
        result.update({name: _to_numpy(getattr(state, name)) for name in _PLAYER_ARRAYS})
        for k, (m, v) in enumerate(zip(state.exp_avg, state.exp_avg_sq)):
            result[f"exp_avg.{k}"], result[f"exp_avg_sq.{k}"] = _to_numpy(m), _to_numpy(v)
        result["player_of"] = np.asarray(self._players.owner, dtype=np.int64)
        result["graph"] = self._graph.weights.copy()
        result.update({name: getattr(config, name) for name in (*_SCALAR_HYPERPARAMETERS, *_PAIR_HYPERPARAMETERS)})
        return result

    def load_state_dict(self, state_dict: Mapping) -> None:
        """Restore a :meth:`state_dict` (or the ``numpy.load`` of its ``savez``) into the existing arrays.

        Everything is validated first (keys, spec version, number of tensors, players,
        shapes, finiteness, hyperparameters, graph); on any error nothing changes.
        Hyperparameters and graph weights are taken from ``state_dict``, as in ``torch.optim``.
        """
        config, graph, host = self._validated(state_dict)
        xp, state = self._xp, self._state
        smoothing = graph.smoothing(config.mu)
        targets = [state.count, state.skipped, *(getattr(state, name) for name in _PLAYER_ARRAYS),
                   *state.exp_avg, *state.exp_avg_sq, state.smoothing]
        for target, value in zip(targets, [*host, smoothing]):
            target[...] = xp.asarray(value, dtype=target.dtype, device=array_api_compat.device(target))
        self.config, self._graph = config, graph

    def _validated(self, state_dict) -> tuple[NGAdamConfig, PlayerGraph, list]:
        """Check ``state_dict`` against this optimizer; return its config, graph and the host arrays
        in the order ``count, skipped, log_step, alignment, conflict, exp_avg…, exp_avg_sq…``."""
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"state_dict must be a mapping, got {type(state_dict).__qualname__}")
        _require_keys(state_dict, _FIXED_KEYS)
        if int(np.asarray(state_dict["spec_version"])) != SPEC_VERSION:
            raise ValueError(f"state_dict is for spec version {state_dict['spec_version']}, "
                             f"this is spec version {SPEC_VERSION}")
        player_of = np.asarray(state_dict["player_of"])
        num_tensors = len(self._params)
        if player_of.shape != (num_tensors,):
            raise ValueError(f"state_dict holds {player_of.size} tensors but this optimizer has {num_tensors}")
        if not np.array_equal(player_of, self._players.owner):
            raise ValueError(f"state_dict players differ: tensor owners {player_of.tolist()}, "
                             f"this optimizer's {list(self._players.owner)}")
        moment_keys = [f"exp_avg.{k}" for k in range(num_tensors)] + [f"exp_avg_sq.{k}" for k in range(num_tensors)]
        _require_keys(state_dict, moment_keys)
        unexpected = sorted(set(state_dict) - set(_FIXED_KEYS) - set(moment_keys))
        if unexpected:
            raise ValueError(f"state_dict has unexpected keys {unexpected}")

        config = NGAdamConfig(**{name: float(np.asarray(state_dict[name])) for name in _SCALAR_HYPERPARAMETERS},
                              **{name: tuple(np.asarray(state_dict[name], dtype=np.float64).tolist())
                                 for name in _PAIR_HYPERPARAMETERS})
        graph = PlayerGraph.from_spec(np.asarray(state_dict["graph"], dtype=np.float64), self._players.num_players)
        counters = [_count(state_dict, name) for name in ("step", "skipped")]
        per_player = [_finite(state_dict, name, (self._players.num_players,)) for name in _PLAYER_ARRAYS]
        moments = [_finite(state_dict, key, tuple(p.shape)) for key, p in zip(moment_keys, self._params * 2)]
        for key, v in zip(moment_keys[num_tensors:], moments[num_tensors:]):
            if np.any(v < 0):
                raise ValueError(f"state_dict[{key!r}] has negative entries (a second moment is >= 0)")
        return config, graph, [*counters, *per_player, *moments]


def _check_mutable(xp, params: Sequence[Any]) -> None:
    """In place needs writeable arrays of real floating dtype, each given once (metadata only)."""
    if array_api_compat.is_jax_namespace(xp):
        raise TypeError("neat.NGAdam updates arrays in place, and JAX arrays are immutable; use the functional "
                        "API instead: opt = neat.ng_adam(...); state = opt.init(params); "
                        "params, state = opt.step(params, grads, state)")
    arrays.check_floating(xp, params, "params")
    seen: dict[int, int] = {}
    for k, p in enumerate(params):
        if not getattr(getattr(p, "flags", None), "writeable", True):  # NumPy's flag; CuPy, torch have none
            raise ValueError(f"params[{k}] is read-only (flags.writeable is False); neat.NGAdam writes "
                             "parameters in place, so pass writeable arrays")
        if id(p) in seen:
            raise ValueError(f"params[{k}] is the same array as params[{seen[id(p)]}]; give each array once")
        seen[id(p)] = k


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


def _count(state_dict: Mapping, key: str) -> np.ndarray:
    value = np.asarray(state_dict[key])
    if value.shape != () or not np.issubdtype(value.dtype, np.integer) or not 0 <= value <= np.iinfo(np.int32).max:
        raise ValueError(f"state_dict[{key!r}] must be a non-negative integer, got {state_dict[key]!r}")
    return value


def _finite(state_dict: Mapping, key: str, shape: tuple) -> np.ndarray:
    value = np.asarray(state_dict[key])
    if value.shape != shape:
        raise ValueError(f"state_dict[{key!r}] has shape {value.shape}, expected {shape}")
    if not (np.issubdtype(value.dtype, np.floating) and np.all(np.isfinite(value))):
        raise ValueError(f"state_dict[{key!r}] must hold finite floating values")
    return value
