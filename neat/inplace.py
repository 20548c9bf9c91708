"""``neat.NGAdam``: NG-Adam that updates mutable arrays in place (NumPy, CuPy, PyTorch tensors).

Every step goes through the core, :func:`neat.functional.step` with ``inplace=True``
and the optimizer's :class:`~neat.topology.Topology` (so a gradient ``None`` marks an
inactive tensor, SPEC v2): the parameters, the moments and the small state (every
:class:`~neat.state.GameState` field) are written into this optimizer's arrays, so every
parameter and state array keeps its identity and its memory for the optimizer's whole life.

A checkpoint (:meth:`NGAdam.state_dict`) is :mod:`neat.checkpoint`'s content, flat: its
:data:`~neat.checkpoint.HEADER` entries (spec version, hyperparameters, ``player_of``, graph,
``GameState`` fields) and the moments ``exp_avg.k`` / ``exp_avg_sq.k``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

import array_api_compat

from neat import arrays, checkpoint, functional
from neat.config import DEFAULTS, NGAdamConfig
from neat.kernel_selection import KernelPlan, check_plan_runs, select_plan
from neat.kernels import StepKernels
from neat.players import Players
from neat.topology import Topology


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
        self.config = NGAdamConfig(lr, betas, eps, weight_decay, gamma, zeta, mu, step_bounds, leak)
        self._params = functional._as_list(params, "params")
        self._xp = arrays.namespace_of(self._params, "params")
        _check_mutable(self._xp, self._params)
        self._topology = Topology.build(len(self._params), players, graph, mu=self.config.mu)
        self._state = functional.init_state(self._params, self._topology)
        #: The kernels every step runs (:class:`~neat.kernel_selection.KernelPlan`), chosen once as torch.optim does.
        self.kernel_plan: KernelPlan = select_plan(self._xp, self._params, kernels)

    def __repr__(self) -> str:
        shapes = ", ".join(str(tuple(p.shape)) for p in self._params)
        return f"neat.NGAdam({len(self._params)} arrays: {shapes};\n  {self.config};\n  {self.kernel_plan})"

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

    def add_params(self, params: Sequence[Any], *, players=None, graph=None) -> None:
        """Arrays that join the game after the start (SPEC "Growing the game"), with ``m = v = 0``
        and ``t_k = 0``, as new players with ``z = 0``: ``players`` lists of indices into ``params``
        (``None``: one player per array); ``graph``: the new players' ``(i, j, w)`` edges in the grown
        game's numbering (``None``: chained after the last player). They take the indices after the
        existing arrays; the state of the players already playing is unchanged. Checked before any
        change (mutable arrays of this namespace and statistics dtype that the kernels run)."""
        new = functional._as_list(params, "params")
        _check_mutable(self._xp, [*self._params, *new])
        n = self._topology.num_players
        topology = self._topology.grown([n + p for p in Players.from_spec(players, len(new)).owner], graph)
        state = functional.grown_state(self._state, new, topology)
        check_plan_runs(self.kernel_plan, self._xp, [*self._params, *new])
        self._params.extend(new)
        self._topology, self._state = topology, state

    def step(self, grads: Sequence[Any], *, lr=None, weight_decay=None) -> None:
        """Apply one step in place. ``lr`` / ``weight_decay`` override the configured ones for
        this step (a scalar, or one value per tensor). Nothing is read back to the host."""
        _check_writeable(self._params)
        with _autograd_off(self._xp):
            functional.step(
                self._params,
                grads,
                self._state,
                self.config,
                lr=lr,
                weight_decay=weight_decay,
                kernels=self.kernel_plan,
                inplace=True,
                topology=self._topology,
            )  # the game state too is written into this optimizer's arrays

    def diagnostics(self) -> dict:
        """Per-player ``alignment``, ``kappa``, ``step_scale``; ``mean_alignment``, ``skipped_steps``
        (SPEC "Diagnostics"), as arrays copied from the state, so later steps leave them alone."""
        return {key: self._xp.asarray(value, copy=True) for key, value in functional.diagnostics(self._state).items()}

    def state_dict(self) -> dict:
        """The checkpoint as NumPy arrays and Python numbers, flat: ``numpy.savez(path, **opt.state_dict())``
        (:func:`neat.checkpoint.header` and the moments ``exp_avg.k``, ``exp_avg_sq.k``)."""
        state = self._state
        result = checkpoint.header(self.config, self._topology, state.game)
        for k, (m, v) in enumerate(zip(state.exp_avg, state.exp_avg_sq)):
            result[f"exp_avg.{k}"], result[f"exp_avg_sq.{k}"] = checkpoint.to_host(m), checkpoint.to_host(v)
        return result

    def load_state_dict(self, state_dict: Mapping) -> None:
        """Restore a :meth:`state_dict` (or the ``numpy.load`` of its ``savez``) into the existing arrays.

        Everything is validated first (keys, then :mod:`neat.checkpoint`: spec version, players,
        hyperparameters, graph, counts, shapes, finiteness); on any error nothing changes.
        Hyperparameters and graph weights are taken from ``state_dict``, as in ``torch.optim``.
        """
        config, graph = checkpoint.checked_settings(state_dict, self.config, self._topology, name="state_dict")
        moment_keys = [tuple(f"{moment}.{k}" for moment in checkpoint.MOMENTS) for k in range(len(self._params))]
        expected = [*checkpoint.HEADER, *(key for keys in moment_keys for key in keys)]
        checkpoint.require(state_dict, expected, "state_dict")
        unexpected = sorted(set(state_dict) - set(expected))
        if unexpected:
            raise ValueError(f"state_dict has unexpected keys {unexpected}")
        game, exp_avg, exp_avg_sq = checkpoint.checked_state(
            state_dict,
            [(state_dict[m], state_dict[v]) for m, v in moment_keys],
            self._topology,
            [tuple(p.shape) for p in self._params],
            name="state_dict",
        )
        state = self._state
        targets = [*state.game, *state.exp_avg, *state.exp_avg_sq]
        for target, value in zip(targets, [*game, *exp_avg, *exp_avg_sq]):
            target[...] = self._xp.asarray(value, dtype=target.dtype, device=array_api_compat.device(target))
        self.config = config
        self._topology = Topology(self._topology.players, graph, config.mu)
        stats_dtype = state.game.log_step.dtype
        self._state = state._replace(
            tables=self._topology.tables(self._xp, array_api_compat.device(state.game.log_step), stats_dtype)
        )


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
