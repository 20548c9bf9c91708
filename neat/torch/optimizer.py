"""The optimizer: :class:`NGAdam`, its constructor (arguments checked, param groups, players and
graph, array namespace, kernels, game state) and its public views of the game."""

from __future__ import annotations

import dataclasses
import os
import sys

import torch

from neat import arrays, functional
from neat.config import DEFAULTS, NGAdamConfig
from neat.hyperparameters import NAMES, PER_STEP
from neat.kernel_selection import KernelPlan, select_plan
from neat.state import GameState
from neat.topology import Topology
from neat.torch.distributed import local_shard
from neat.torch.groups import (
    GAME_KEYS,
    check_group,
    common_game,
    groups_players_graph,
    host_setting,
    module_players,
    players_of_names,
    warn_one_player_per_tensor,
)
from neat.torch.growth import Growing
from neat.torch.kernel_flags import device_request, groups_request
from neat.torch.tensors import moments_dtype, real
from neat.torch.validation import checked_betas, checked_scalar

#: ``torch.optim.AdamW``'s defaults, which the torch front end takes (:data:`neat.config.DEFAULTS`
#: keeps the core's own).
TORCH_DEFAULTS = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2)


class NGAdam(Growing):
    """NG-Adam (docs/spec.md) as a ``torch.optim.Optimizer``, with ``torch.optim.AdamW``'s defaults.

    ``params``: an ``nn.Module`` (one player per module), ``named_parameters()`` (one player per
    module prefix of the names), an iterable of tensors (one player per tensor, unless
    ``players=``) or of param-group dicts. ``module``: the ``nn.Module`` that owns the parameters,
    when they come as tensors or groups (the decay / no-decay groups that Hugging Face's ``Trainer``
    builds): each tensor's player is its layer there, in the module's order, whatever group holds
    it. A group may set its own ``lr``, ``weight_decay``, ``betas``, ``eps`` (each may also change
    from step to step: schedulers, SPEC v2.1) and ``maximize``; the game's ``gamma``, ``zeta``,
    ``mu``, ``step_bounds``, ``leak`` are one
    per optimizer. ``lr``, ``weight_decay``, ``eps`` and ``betas`` may be one-element tensors,
    which schedulers update in place: a compiled step reads them as inputs and is not recompiled
    (a float that changes, such as the beta1 that ``OneCycleLR`` writes, costs dynamo one
    recompilation, after which it is an input too). ``players``: lists of tensor indices in
    parameter order. ``graph``: ``None`` (chain), ``"fx"`` (with a module), an ``n×n`` weight
    matrix or ``(i, j, weight)`` edges. ``maximize``: ascend the objective (the step is that of
    ``-f``). ``foreach``, ``fused``: as in ``torch.optim.AdamW`` (:func:`kernel_request`); every
    kernel set gives the numbers of the generic one. ``add_param_group`` after construction grows
    the game (SPEC "Growing the game", :mod:`neat.torch.growth`): progressive unfreezing works.
    """

    __module__ = "neat.torch"  # its public path, which reprs, pickles and docs name

    @torch.compiler.disable  # host work (players, graph, kernels), never traced: as torch.optim's add_param_group
    def __init__(
        self,
        params,
        lr=TORCH_DEFAULTS["lr"],
        betas=TORCH_DEFAULTS["betas"],
        eps=TORCH_DEFAULTS["eps"],
        weight_decay=TORCH_DEFAULTS["weight_decay"],
        gamma=DEFAULTS["gamma"],
        zeta=DEFAULTS["zeta"],
        mu=DEFAULTS["mu"],
        step_bounds=DEFAULTS["step_bounds"],
        leak=DEFAULTS["leak"],
        players=None,
        graph=None,
        *,
        module=None,
        maximize=False,
        foreach=None,
        fused=None,
    ) -> None:
        given = {name: value for name, value in locals().items() if name in NAMES}  # the schema's, as passed
        given["betas"] = checked_betas(betas)
        given.update({key: checked_scalar(given[key], key) for key in ("lr", "eps", "weight_decay")})
        config = NGAdamConfig(**{name: host_setting(value) for name, value in given.items()})
        self._graph_rule = graph if isinstance(graph, str) else "chain" if graph is None else "explicit"
        groups, players, graph, self.player_names = groups_players_graph(params, players, graph, module)
        per_step = {key: given[key] for key in PER_STEP}
        game = {key: getattr(config, key) for key in GAME_KEYS}
        super().__init__(groups, dict(per_step, maximize=maximize, foreach=foreach, fused=fused, **game))
        self.config = dataclasses.replace(config, **common_game(self.param_groups))  # the groups' one game
        self.defaults.update({key: getattr(self.config, key) for key in GAME_KEYS})
        self._kernel_request = groups_request(self.param_groups)  # one kernel set for all groups
        self._params = [p for group in self.param_groups for p in group["params"]]
        if module is None:
            players = self._players_from_names(params, players)
        else:
            players, graph, self.player_names = module_players(module, self._params, graph)
        self.topology = Topology.build(len(self._params), players, graph, mu=self.config.mu)
        self._prepare(game=None)
        for index, group in enumerate(self.param_groups):
            check_group(group, index, self.config)

    @torch.compiler.disable
    def _prepare(self, game: GameState | None) -> None:
        """Everything derived from the parameters and the kernel request: the device, array
        namespace and statistics dtype, the kernel plan, the game state (``game``, or zeros: SPEC
        "State") and, by :meth:`_derive`, its tables, views and the moments' lists. Run at
        construction, on a copy (:meth:`__setstate__`) and at the first step of parameters built on
        the ``meta`` device (whose kernels wait until they are materialized, e.g. by ``to_empty``)."""
        self._params = [p for group in self.param_groups for p in group["params"]]
        self._device = _one_device(self._params)
        local = [real(local_shard(p)) for p in self._params]
        self._xp = arrays.namespace_of(local, "params")
        arrays.check_floating(self._xp, local, "params")
        self._stats_dtype = arrays.statistics_dtype(self._xp, [moments_dtype(p) for p in local])
        if game is None:
            game = GameState.zeros(self._xp, len(local), self.topology.num_players, self._stats_dtype, self._device)
        self._game = game
        self._exp_avg, self._exp_avg_sq = [], []
        #: The kernels every eager step runs (:class:`~neat.kernel_selection.KernelPlan`), chosen once
        #: (``None`` while the parameters are on ``meta``).
        self.kernel_plan: KernelPlan | None = None
        if self._device.type != "meta":
            self.kernel_plan = select_plan(self._xp, local, device_request(self._kernel_request, self._device))
            self._kernels = self.kernel_plan.kernels  # the passes, also wrapped for sharded parameters
        self._derive()

    def _players_from_names(self, params, players):
        """Players from the parameter names of ``named_parameters()`` (one per module prefix,
        ``"0.weight"`` and ``"0.bias"`` → player ``"0"``) when none were given; a warning when
        several unnamed tensors would each be a player of their own."""
        if players is not None or isinstance(params, torch.nn.Module):
            return players
        names = [name for group in self.param_groups for name in group.get("param_names", ())]
        if len(names) == len(self._params):
            players, self.player_names = players_of_names(names)
        elif len(self._params) > 1:
            warn_one_player_per_tensor(
                len(self._params),
                "pass the module (NGAdam(model)), model.named_parameters(), the module that owns the groups' "
                "tensors (NGAdam(param_groups, module=model)) or players=[[tensor indices], ...]",
                stacklevel=_user_stacklevel(),
            )
        return players

    def __repr__(self) -> str:
        """torch.optim's listing of the groups, then the kernel plan."""
        plan = self.kernel_plan or "chosen at the first step on the parameters' device (now meta)"
        return f"{super().__repr__()}\nKernel plan: {plan}"

    @property
    def players(self):
        """The :class:`~neat.players.Players` of the game (grown by :meth:`add_param_group`)."""
        return self.topology.players

    @property
    def graph(self):
        """The :class:`~neat.players.PlayerGraph` of the game (grown by :meth:`add_param_group`)."""
        return self.topology.graph

    @torch.compiler.disable  # copies are host work, never traced
    def __getstate__(self) -> dict:
        """What a copy (``copy.deepcopy``, ``pickle``, ``torch.save``) holds: torch's ``defaults``,
        ``state`` and ``param_groups``, and under ``"neat"`` what the game needs to go on: the
        config, players, graph (and how it was built), player names, kernel request and the game
        state (SPEC "State").
        Everything else is rebuilt from these by :meth:`__setstate__`."""
        return {
            **super().__getstate__(),
            "neat": dict(
                config=self.config,
                players=self.topology.players,
                graph=self.topology.graph,
                player_names=self.player_names,
                kernel_request=self._kernel_request,
                graph_rule=self._graph_rule,
                game=self._game._asdict(),
            ),
        }

    @torch.compiler.disable
    def __setstate__(self, state: dict) -> None:
        """torch's, with groups of older state dicts given this optimizer's missing keys (as
        ``torch.optim.Adam`` fills in ``maximize`` or ``foreach``) and no ``differentiable`` default
        (torch's adds one for its own optimizers; NG-Adam has no such flag). A copy's state
        (:meth:`__getstate__`) then rebuilds the game: its topology, kernels and tables, around the
        copied game state, so the copy steps as the original would, bit for bit."""
        copied = state.get("neat")  # None for torch's load_state_dict, which sets groups and state only
        own_keys = set(state.get("defaults", getattr(self, "defaults", {})))
        super().__setstate__({key: value for key, value in state.items() if key != "neat"})
        for key in set(self.defaults) - own_keys:
            del self.defaults[key]
        for group in self.param_groups:
            for key, value in self.defaults.items():
                group.setdefault(key, value)
        if copied is not None:
            self.config, self.player_names = copied["config"], copied["player_names"]
            self._kernel_request, self._graph_rule = copied["kernel_request"], copied["graph_rule"]
            self.topology = Topology(copied["players"], copied["graph"], self.config.mu)
            self._prepare(GameState(**copied["game"]))

    def diagnostics(self) -> dict:
        """:func:`neat.diagnostics` of the current state: per-player ``alignment``, ``kappa``,
        ``step_scale``; ``mean_alignment``, ``skipped_steps`` (tensors; reading them syncs)."""
        return functional.diagnostics(self._game)

    @property
    def game_state(self) -> GameState:
        """The live :class:`~neat.state.GameState` (overwritten in place by every step)."""
        return self._game


#: Where the frames between a user's call and a warning live: this package and torch's compiler
#: wrappers (``torch.compiler.disable`` adds a frame around the constructor).
_INTERNAL_DIRECTORIES = (os.path.dirname(__file__), os.path.dirname(torch._dynamo.__file__))


def _user_stacklevel() -> int:
    """The ``stacklevel`` of a warning issued by the caller of this function that points at the
    user's line: the first frame outside :data:`_INTERNAL_DIRECTORIES`."""
    frame, level = sys._getframe(1), 1
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_INTERNAL_DIRECTORIES):
        frame, level = frame.f_back, level + 1
    return level


def _one_device(tensors) -> torch.device:
    devices = {p.device for p in tensors}
    if len(devices) != 1:
        raise ValueError(f"NGAdam needs all parameters on one device, got {sorted(map(str, devices))}")
    return devices.pop()
