"""Growing the game (SPEC "Growing the game"): ``add_param_group`` after construction, as
progressive unfreezing (Lightning's ``BackboneFinetuning``) calls it.

The new group's tensors join the game with ``m = v = 0`` and ``t_k = 0``; they form new players,
each with ``z = 0``:

* ``"players": [[indices into the group's params], ...]`` in the group: those players;
* else, when the group has ``param_names`` (named parameters): one new player per module prefix
  (``"3.weight"``, ``"3.bias"`` → ``"3"``), also where a player already playing has that label
  (names are relative to the module ``named_parameters`` was called on);
* else one player per tensor (with the constructor's warning when there are several).

The graph gains the new players by the rule that built it: a chain (``graph=None`` at
construction) chains them after the last player; an explicit graph, and ``graph="fx"``, need the
group's ``"graph"``: ``(i, j, weight)`` edges in the grown game's player numbering, each naming a
new player (``[]`` for none), or the grown ``n × n`` matrix. (With ``graph="fx"`` every
parameter of the traced module, frozen ones included, is in the game from the start, sitting out
while its ``grad`` is ``None``; a joining tensor comes from outside that module, so the trace
cannot place it.) ``"players"`` and ``"graph"`` are taken out of the group (the state dict's
``"neat"`` entry records the players and the graph).
Players, graph and ``S`` are those of :meth:`neat.topology.Topology.grown`; the game state grows by
:meth:`neat.state.GameState.grown`; nothing of the tensors and players already playing changes.
"""

from __future__ import annotations

import torch

from neat import arrays, functional
from neat.kernel_selection import check_plan_runs
from neat.players import Players
from neat.state import NGAdamState
from neat.torch.distributed import device_mesh, local_shard
from neat.torch.groups import check_group, players_of_names, warn_one_player_per_tensor
from neat.torch.kernel_flags import check_kernel_flags
from neat.torch.state_dict import Checkpointing
from neat.torch.tensors import moments_dtype, real
from neat.torch.traceable import TRACEABLE_NAMESPACE

#: The keys of a param group that say how its tensors join the game (taken out of the group).
GROWTH_KEYS = ("players", "graph")


class Growing(Checkpointing):
    """The part of :class:`neat.torch.NGAdam` that lets tensors join after construction."""

    player_names: list[str]
    _graph_rule: str  # how the graph was built: "chain", "explicit" or "fx"
    _num_groups: int  # the param groups whose tensors play

    def add_param_group(self, param_group: dict) -> None:
        """``torch.optim.Optimizer.add_param_group``, then the group's tensors join the game (see
        the module docstring). Refused, with nothing changed, for torch's reasons (a parameter
        already in a group: "some parameters appear in more than one parameter group"), for an
        invalid value (``lr``, ``weight_decay``, ``betas``…), for a per-optimizer key (the game's
        ``gamma, zeta, mu, step_bounds, leak``, ``foreach``, ``fused``) that differs from the
        optimizer's, for parameters on another
        device, of another statistics dtype or that the kernels chosen at construction cannot run."""
        if "topology" not in self.__dict__:  # the constructor's groups: the game is built after them
            super().add_param_group(param_group)
            return
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group)}")
        how = {key: param_group.pop(key) for key in GROWTH_KEYS if key in param_group}
        count = len(self.param_groups)
        try:
            super().add_param_group(param_group)
            self._join(count, **how)
        except BaseException:
            del self.param_groups[count:]
            param_group.update(how)
            raise

    def _join(self, index: int, players=None, graph=None) -> None:
        """The tensors of param group ``index`` (just appended) join the game: checked first, then
        the topology, the game state and everything derived from them are replaced at once."""
        group = self.param_groups[index]
        check_group(group, index, self.config)
        check_kernel_flags([group], self._kernel_request)
        new = list(group["params"])
        if not new:
            self._derive()
            return
        local = [real(local_shard(p)) for p in new]
        self._check_joining(new, local)
        player_of_new, labels = self._new_players(group, players, index)
        topology = self.topology.grown(player_of_new, self._new_edges(graph))
        game = self._game.grown(self._xp, len(new), topology.num_players - self.topology.num_players)
        self._params.extend(new)
        self.topology, self._game = topology, game
        if self.player_names:
            self.player_names.extend(labels)
        self._derive()

    def _check_joining(self, new, local) -> None:
        """The joining tensors fit the game: one device, the same array namespace and statistics
        dtype, floating, and runnable by the kernels chosen at construction."""
        devices = {str(p.device) for p in new} - {str(self._device)}
        if devices:
            raise ValueError(f"NGAdam needs all parameters on one device ({self._device}), the new group has {devices}")
        arrays.check_floating(self._xp, local, "params")
        all_local = [real(local_shard(p)) for p in self._params] + local
        stats_dtype = arrays.statistics_dtype(self._xp, [moments_dtype(p) for p in all_local])
        if stats_dtype != self._stats_dtype:
            raise ValueError(
                f"the new group would change the game's statistics dtype from {self._stats_dtype} to {stats_dtype} "
                '(SPEC "State": a game keeps its statistics dtype); add parameters of the existing dtypes'
            )
        if self.kernel_plan is not None:  # on meta the kernels are chosen at the first step, for every tensor
            check_plan_runs(self.kernel_plan, self._xp, all_local)

    def _new_players(self, group: dict, players, index: int) -> tuple[list[int], list[str]]:
        """Each joining tensor's player in the grown game and the new players' labels (module
        docstring: ``players``, else the names' module prefixes, else one player per tensor)."""
        n, count = self.topology.num_players, len(group["params"])
        labels = None
        if players is None and "param_names" in group:
            players, labels = players_of_names(group["param_names"])
        elif players is None:
            if count > 1:
                warn_one_player_per_tensor(
                    count,
                    "give the group 'players': [[indices into its params], ...] (or names, in an NGAdam of "
                    "named parameters)",
                    stacklevel=4,
                )
            return list(range(n, n + count)), [f"param_groups[{index}][{i}]" for i in range(count)]
        try:
            joining = Players.from_spec(players, count)
        except ValueError as error:
            raise ValueError(f"param group {index}: {error} (indices into the group's params)") from None
        if labels is None:
            labels = [f"param_groups[{index}].players[{i}]" for i in range(joining.num_players)]
        return [n + player for player in joining.owner], labels

    def _new_edges(self, graph):
        """The new players' edges for :meth:`neat.topology.Topology.grown`: the group's ``graph``, or
        the chain rule; a graph not built as a chain needs the group's edges."""
        if graph is None and self._graph_rule != "chain":
            raise ValueError(
                f"this NGAdam's graph was built {'by torch.fx' if self._graph_rule == 'fx' else 'explicitly'}: "
                "give the new players' edges in the group, 'graph': [(i, j, weight), ...] in the grown game's "
                "player numbering ([] for none)"
            )
        return graph

    def load_state_dict(self, state_dict: dict) -> None:
        """:meth:`Checkpointing.load_state_dict`, after groups put into ``param_groups`` directly have
        joined (:meth:`_adopt_new_groups`). A grown optimizer's checkpoint loads into an optimizer
        grown the same way (the same groups added in the same order: same players and graph)."""
        self._adopt_new_groups()
        super().load_state_dict(state_dict)

    def _init_group(self) -> None:
        """The step's host-side preparation (:meth:`Stepping._init_group`), after groups put into
        ``param_groups`` directly have joined (:meth:`_adopt_new_groups`)."""
        self._adopt_new_groups()
        super()._init_group()

    def _adopt_new_groups(self) -> None:
        """Groups put into ``param_groups`` directly, after those the game knows (Lightning's
        ``BaseFinetuning`` restores its unfrozen groups so on resume), join as :meth:`add_param_group`'s."""
        if len(self.param_groups) == self._num_groups:
            return
        known = self.param_groups[: self._num_groups]
        flat = [p for group in known for p in group["params"]]
        if len(self.param_groups) < self._num_groups or len(flat) != len(self._params):
            raise ValueError(
                "NGAdam's param_groups lost groups or parameters the game plays: only groups added after "
                "the existing ones can join (SPEC 'Growing the game')"
            )
        if any(a is not b for a, b in zip(flat, self._params)):
            raise ValueError("NGAdam's param_groups hold other parameters than the game's: only new groups can join")
        added = self.param_groups[self._num_groups :]
        self.param_groups = known
        for index, group in enumerate(added):
            try:
                self.add_param_group(group)
            except BaseException:
                self.param_groups.extend(added[index:])  # left as given: refused again at the next step
                raise

    def _derive(self) -> None:
        """Everything derived from the parameters, the topology and the game state (at construction,
        and again when tensors join): the moment lists (and ``state["step"]`` views of the game
        state's counts), the device mesh, each tensor's group, the caches built from these and, once
        the kernels are chosen, the core's state with the game tables of the kernels' namespace,
        the host views of the game state and the tables of the traceable namespace."""
        self._collect_moments()
        self._mesh = device_mesh(self._params)
        self._sharded = {}
        self._group_of = torch.tensor(
            [i for i, group in enumerate(self.param_groups) for _ in group["params"]],
            dtype=torch.long,
            device=self._device,
        )
        self._num_groups = len(self.param_groups)
        self._hyperparameters = {}
        if self.kernel_plan is None:  # parameters on meta: the kernels and their tables wait for a device
            return
        game_tables = functional.game_tables(self._kernels, self.topology, self._xp, self._device, self._stats_dtype)
        self._state = NGAdamState(self._game, self._exp_avg, self._exp_avg_sq, game_tables)
        self._host_game = functional.host_game(self._kernels, self._game)  # views of self._game
        self._traced_tables = self.topology.tables(TRACEABLE_NAMESPACE, self._device, self._stats_dtype)
