"""The optimizer: :class:`NGAdam`, its constructor (arguments checked, param groups, players and
graph, array namespace, kernels, game state) and its public views of the game."""

from __future__ import annotations

import warnings

import torch

from neat import arrays, functional
from neat.config import DEFAULTS, NGAdamConfig
from neat.kernel_selection import KernelPlan, select_plan
from neat.state import GameState, NGAdamState
from neat.topology import Topology
from neat.torch.distributed import device_mesh, local_shard
from neat.torch.groups import check_group, groups_players_graph, players_of_names
from neat.torch.kernel_flags import kernel_request
from neat.torch.state_dict import Checkpointing
from neat.torch.tensors import moments_dtype, real
from neat.torch.traceable import TRACEABLE_NAMESPACE
from neat.torch.validation import checked_betas, checked_scalar, host

#: ``torch.optim.AdamW``'s defaults, which the torch front end takes (:data:`neat.config.DEFAULTS`
#: keeps the core's own).
TORCH_DEFAULTS = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2)


class NGAdam(Checkpointing):
    """NG-Adam (docs/spec.md) as a ``torch.optim.Optimizer``, with ``torch.optim.AdamW``'s defaults.

    ``params``: an ``nn.Module`` (one player per module), ``named_parameters()`` (one player per
    module prefix of the names), an iterable of tensors (one player per tensor, unless
    ``players=``) or of param-group dicts. A group may set its own ``lr``, ``weight_decay``,
    ``betas``, ``eps`` (each may also change from step to step: schedulers, SPEC v2.1) and
    ``maximize``; the game's ``gamma``, ``zeta``, ``mu``, ``step_bounds``, ``leak`` are one
    per optimizer. ``lr``, ``weight_decay``, ``eps`` and ``betas`` may be one-element tensors,
    which schedulers update in place: a compiled step reads them as inputs and is not recompiled
    (a float that changes, such as the beta1 that ``OneCycleLR`` writes, costs dynamo one
    recompilation, after which it is an input too). ``players``: lists of tensor indices in
    parameter order. ``graph``: ``None`` (chain), ``"fx"`` (modules only), an ``n×n`` weight
    matrix or ``(i, j, weight)`` edges. ``maximize``: ascend the objective (the step is that of
    ``-f``). ``foreach``, ``fused``: as in ``torch.optim.AdamW`` (:func:`kernel_request`); every
    kernel set gives the numbers of the generic one.
    """

    __module__ = "neat.torch"  # its public path, which reprs, pickles and docs name

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
        maximize=False,
        foreach=None,
        fused=None,
    ) -> None:
        betas = checked_betas(betas)
        lr, eps, weight_decay = (
            checked_scalar(value, key) for key, value in (("lr", lr), ("eps", eps), ("weight_decay", weight_decay))
        )
        self.config = NGAdamConfig(
            lr=host(lr),
            betas=tuple(map(host, betas)),
            eps=host(eps),
            weight_decay=host(weight_decay),
            gamma=host(gamma),
            zeta=host(zeta),
            mu=host(mu),
            step_bounds=tuple(map(host, step_bounds)),
            leak=host(leak),
        )
        groups, players, graph, self.player_names = groups_players_graph(params, players, graph)
        config = self.config
        super().__init__(
            groups,
            dict(
                lr=lr,
                betas=betas,
                eps=eps,
                weight_decay=weight_decay,
                maximize=maximize,
                foreach=foreach,
                fused=fused,
                gamma=config.gamma,
                zeta=config.zeta,
                mu=config.mu,
                step_bounds=config.step_bounds,
                leak=config.leak,
            ),
        )
        for index, group in enumerate(self.param_groups):
            check_group(group, index, self.defaults)
        self._params = [p for group in self.param_groups for p in group["params"]]
        players = self._players_from_names(params, players)
        self.topology = Topology.build(len(self._params), players, graph, mu=config.mu)
        self._device = _one_device(self._params)
        local = [real(local_shard(p)) for p in self._params]
        self._xp = arrays.namespace_of(local, "params")
        arrays.check_floating(self._xp, local, "params")
        self._stats_dtype = arrays.statistics_dtype(self._xp, [moments_dtype(p) for p in local])
        self._game = GameState.zeros(self._xp, len(local), self.topology.num_players, self._stats_dtype, self._device)
        self._exp_avg, self._exp_avg_sq = [], []
        #: The kernels every eager step runs (:class:`~neat.kernel_selection.KernelPlan`), chosen once.
        self.kernel_plan: KernelPlan = select_plan(self._xp, local, kernel_request(foreach, fused, self._device))
        self._kernels = self.kernel_plan.kernels  # the passes, also wrapped for sharded parameters
        game_tables = functional.game_tables(self._kernels, self.topology, self._xp, self._device, self._stats_dtype)
        self._state = NGAdamState(self._game, self._exp_avg, self._exp_avg_sq, game_tables)
        self._host_game = functional.host_game(self._kernels, self._game)  # views of self._game
        self._traced_tables = self.topology.tables(TRACEABLE_NAMESPACE, self._device, self._stats_dtype)
        self._collect_moments()
        self._mesh = device_mesh(self._params)
        self._sharded = {}
        self._group_of = torch.tensor(
            [i for i, group in enumerate(self.param_groups) for _ in group["params"]],
            dtype=torch.long,
            device=self._device,
        )
        self._hyperparameters = {}

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
            warnings.warn(
                f"NGAdam got {len(self._params)} parameters without names: each tensor is a player of "
                "its own. For one player per layer pass the module (NGAdam(model)) or "
                "model.named_parameters(), or give players=[[tensor indices], ...].",
                UserWarning,
                stacklevel=3,
            )
        return players

    def __repr__(self) -> str:
        """torch.optim's listing of the groups, then the kernel plan."""
        return f"{super().__repr__()}\nKernel plan: {self.kernel_plan}"

    @property
    def players(self):
        """The :class:`~neat.players.Players` of the game (fixed at construction)."""
        return self.topology.players

    @property
    def graph(self):
        """The :class:`~neat.players.PlayerGraph` of the game (fixed at construction)."""
        return self.topology.graph

    def add_param_group(self, param_group: dict) -> None:
        """Only during construction: the players and the graph are fixed once built."""
        if "topology" in self.__dict__:
            raise ValueError(
                "NGAdam's players and graph are fixed at construction: add_param_group afterwards "
                "is not supported; build a new NGAdam with every parameter"
            )
        super().add_param_group(param_group)

    def __setstate__(self, state: dict) -> None:
        """torch's, and groups of older state dicts get this optimizer's missing keys (as ``torch.optim.Adam``
        fills in ``maximize`` or ``foreach``)."""
        super().__setstate__(state)
        for group in self.param_groups:
            for key, value in self.defaults.items():
                group.setdefault(key, value)

    def diagnostics(self) -> dict:
        """:func:`neat.diagnostics` of the current state: per-player ``alignment``, ``kappa``,
        ``step_scale``; ``mean_alignment``, ``skipped_steps`` (tensors; reading them syncs)."""
        return functional.diagnostics(self._game)

    @property
    def game_state(self) -> GameState:
        """The live :class:`~neat.state.GameState` (overwritten in place by every step)."""
        return self._game


def _one_device(tensors) -> torch.device:
    devices = {p.device for p in tensors}
    if len(devices) != 1:
        raise ValueError(f"NGAdam needs all parameters on one device, got {sorted(map(str, devices))}")
    return devices.pop()
