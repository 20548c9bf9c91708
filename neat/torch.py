"""PyTorch front end: :class:`NGAdam`, a ``torch.optim.Optimizer`` running SPEC.md through the core.

``NGAdam(model)`` is the one-line form: one player per module that owns
parameters, chained in registration order (``graph="fx"``: the model's traced
data flow). Each step calls :func:`neat.functional.step` in place with the
``torch._foreach_*`` kernels of :mod:`neat.backends.torch_backend`
(``foreach=False``: the generic array-API kernels).

Parameters whose ``grad`` is ``None`` sit the step out: the step runs over the
tensors that have gradients, and a player none of whose tensors has one keeps
its log-step and is left out of that step's game (its graph edges with it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from neat import arrays, functional
from neat._version import SPEC_VERSION
from neat.backends.torch_backend import ForeachKernels
from neat.config import DEFAULTS, NGAdamConfig
from neat.kernels import GENERIC
from neat.players import PlayerGraph, Players
from neat.state import NGAdamState

__all__ = ["NGAdam"]

#: Keys of the NEAT entry of :meth:`NGAdam.state_dict` holding the global state.
GLOBAL_STATE = ("count", "skipped", "log_step", "alignment", "conflict")
_GROUP_KEYS = {"params", "lr", "weight_decay"}


@dataclass(frozen=True)
class _Plan:
    """The game of one set of tensors with gradients: their players, player map and ``S``."""

    tensors: tuple[int, ...]
    players: torch.Tensor  # indices of the players taking part, on the device
    every_player: bool
    membership: torch.Tensor
    smoothing: torch.Tensor


class NGAdam(torch.optim.Optimizer):
    """NG-Adam (SPEC.md) as a ``torch.optim.Optimizer``.

    ``params``: an ``nn.Module``, an iterable of tensors or of param-group dicts
    (per-group ``lr`` and ``weight_decay``). ``players``: lists of tensor indices
    in parameter order (default: one per module for a module, one per tensor
    otherwise). ``graph``: ``None`` (chain), ``"fx"`` (modules only), an ``n×n``
    weight matrix or ``(i, j, weight)`` edges. ``foreach``: ``None``/``True`` use
    the foreach kernels, ``False`` the generic ones (same numbers).
    """

    def __init__(self, params, lr=DEFAULTS["lr"], betas=DEFAULTS["betas"], eps=DEFAULTS["eps"],
                 weight_decay=DEFAULTS["weight_decay"], gamma=DEFAULTS["gamma"], zeta=DEFAULTS["zeta"],
                 mu=DEFAULTS["mu"], step_bounds=DEFAULTS["step_bounds"], leak=DEFAULTS["leak"],
                 players=None, graph=None, foreach=None):
        self.config = NGAdamConfig(lr=_host_number(lr, "lr"), betas=betas, eps=eps,
                                   weight_decay=_host_number(weight_decay, "weight_decay"), gamma=gamma,
                                   zeta=zeta, mu=mu, step_bounds=step_bounds, leak=leak)
        groups, players, graph, self.player_names = _groups_players_graph(params, players, graph)
        super().__init__(groups, dict(lr=lr, weight_decay=weight_decay))
        for group in self.param_groups:
            _check_group(group)
        self.foreach = foreach
        self._tensors = [p for group in self.param_groups for p in group["params"]]
        self._group_of = [i for i, group in enumerate(self.param_groups) for _ in group["params"]]
        self.players = Players.from_spec(players, len(self._tensors))
        self.graph = PlayerGraph.from_spec(graph, self.players.num_players)
        self._device = _one_device(self._tensors)
        xp = arrays.namespace_of(self._tensors, "params")
        arrays.check_floating(xp, self._tensors, "params")
        self._stats_dtype = arrays.statistics_dtype(xp, [arrays.state_dtype(xp, p.dtype) for p in self._tensors])
        n = self.players.num_players
        self._global = {
            "count": torch.zeros((), dtype=torch.int32, device=self._device),
            "skipped": torch.zeros((), dtype=torch.int32, device=self._device),
            **{key: torch.zeros(n, dtype=torch.float32, device=self._device)
               for key in ("log_step", "alignment", "conflict")},
        }
        self._plans: dict[tuple[int, ...], _Plan] = {}

    def add_param_group(self, param_group: dict) -> None:
        """Only during construction: the players and the graph are fixed once built."""
        if hasattr(self, "players"):
            raise ValueError("NGAdam's players and graph are fixed at construction: add_param_group afterwards "
                             "is not supported; build a new NGAdam with every parameter")
        super().add_param_group(param_group)

    # -- the step -----------------------------------------------------------------------------
    def step(self, closure=None):
        """One NG-Adam step (SPEC steps 0–9) over the parameters that have gradients."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self._step()
        return loss

    @torch.compiler.disable
    @torch.no_grad()
    def _step(self) -> None:
        """The step itself. Under ``torch.compile`` it runs eagerly (a graph break): dynamo cannot
        trace the plug-in lookup and array-API namespaces of the core; the model still compiles."""
        tensors = tuple(k for k, p in enumerate(self._tensors) if p.grad is not None)
        if not tensors:
            return
        params = [self._tensors[k] for k in tensors]
        grads = [p.grad for p in params]
        for k, g in zip(tensors, grads):
            if g.is_sparse:
                raise RuntimeError(f"NGAdam does not support sparse gradients (parameter {k})")
        plan = self._plan(tensors)
        moments = [self._moments(p) for p in params]
        state = NGAdamState(
            count=self._global["count"], skipped=self._global["skipped"],
            **{key: self._global[key] if plan.every_player else self._global[key][plan.players]
               for key in ("log_step", "alignment", "conflict")},
            exp_avg=[_local(m["exp_avg"]) for m in moments], exp_avg_sq=[_local(m["exp_avg_sq"]) for m in moments],
            membership=plan.membership, smoothing=plan.smoothing)
        kernels = GENERIC if self.foreach is False else ForeachKernels()
        mesh = _device_mesh(params)
        if mesh is not None:
            kernels = ShardReducedKernels(kernels, mesh, [_placements(p, mesh) for p in params])
            params, grads = [_local(p) for p in params], [_local(g) for g in grads]
        _, new = functional.step(params, grads, state, self.config, lr=self._per_tensor("lr", tensors),
                                 weight_decay=self._per_tensor("weight_decay", tensors),
                                 kernels=kernels, inplace=True)
        self._global["count"].copy_(new.count)
        self._global["skipped"].copy_(new.skipped)
        for key in ("log_step", "alignment", "conflict"):
            if plan.every_player:
                self._global[key].copy_(getattr(new, key))
            else:
                self._global[key].index_copy_(0, plan.players, getattr(new, key))

    def _moments(self, param) -> dict:
        """``m`` and ``v`` of ``param`` (SPEC "State": float32 for 16-bit params), made on first use."""
        state = self.state[param]
        if "exp_avg" not in state:
            dtype = _moments_dtype(param)
            state["exp_avg"] = torch.zeros_like(param, dtype=dtype, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(param, dtype=dtype, memory_format=torch.preserve_format)
        return state

    def _per_tensor(self, key: str, tensors) -> list:
        """A param-group value (float or tensor, e.g. set by an LR scheduler) per tensor, on the device."""
        values = [torch.as_tensor(group[key], dtype=self._stats_dtype, device=self._device).reshape(())
                  for group in self.param_groups]
        return [values[self._group_of[k]] for k in tensors]

    def _plan(self, tensors: tuple[int, ...]) -> _Plan:
        """Player map and ``S`` for the tensors with gradients: the game is played by the players
        owning them, on the graph those players induce (computed once per pattern, in float64)."""
        plan = self._plans.get(tensors)
        if plan is None:
            owner = self.players.owner
            taking_part = sorted({owner[k] for k in tensors})
            position = {player: i for i, player in enumerate(taking_part)}
            groups = [[] for _ in taking_part]
            for local, k in enumerate(tensors):
                groups[position[owner[k]]].append(local)
            sub_players = Players.from_spec(groups, len(tensors))
            sub_graph = PlayerGraph(self.graph.weights[np.ix_(taking_part, taking_part)])

            def device(values, dtype):
                return torch.tensor(values, dtype=dtype, device=self._device)

            plan = _Plan(tensors=tensors, players=device(taking_part, torch.long),
                         every_player=len(taking_part) == self.players.num_players,
                         membership=device(sub_players.membership(), self._stats_dtype),
                         smoothing=device(sub_graph.smoothing(self.config.mu), self._stats_dtype))
            self._plans[tensors] = plan
        return plan

    # -- diagnostics and checkpoints ------------------------------------------------------------
    def diagnostics(self) -> dict:
        """:func:`neat.diagnostics` of the current state: per-player ``alignment``, ``kappa``,
        ``step_scale``; ``mean_alignment``, ``skipped_steps`` (tensors; reading them syncs)."""
        g = self._global
        return functional.diagnostics(NGAdamState(g["count"], g["skipped"], g["log_step"], g["alignment"],
                                                  g["conflict"], [], [], None, None))

    def state_dict(self) -> dict:
        """torch's ``{"state", "param_groups"}`` (per-tensor ``exp_avg``, ``exp_avg_sq``) plus
        ``"neat"``: the global state (step count, skipped steps, per-player log-step, last
        alignment and conflict), the players, the graph and the spec version."""
        state_dict = super().state_dict()
        state_dict["neat"] = {
            "spec_version": SPEC_VERSION,
            "players": [list(group) for group in self.players.groups],
            "graph": self.graph.weights.tolist(),
            **{key: value.clone() for key, value in self._global.items()},
        }
        return state_dict

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore a :meth:`state_dict`; raises ``ValueError`` (before changing anything) when it
        belongs to other players, another graph or other parameter shapes."""
        if "neat" not in state_dict:
            raise ValueError("not an NGAdam state dict: it has no 'neat' entry (global NEAT state)")
        saved = state_dict["neat"]
        self._check_compatible(state_dict, saved)
        moments = {k: dict(state) for k, state in state_dict["state"].items()}
        super().load_state_dict({key: value for key, value in state_dict.items() if key != "neat"})
        saved_ids = [i for group in state_dict["param_groups"] for i in group["params"]]
        for saved_id, param in zip(saved_ids, self._tensors):
            if saved_id in moments:  # torch casts state to the param dtype; m, v keep theirs (bit-exact)
                for key in ("exp_avg", "exp_avg_sq"):
                    self.state[param][key] = moments[saved_id][key].to(
                        device=param.device, dtype=_moments_dtype(param), copy=True)
        for key, value in self._global.items():
            value.copy_(saved[key])

    def _check_compatible(self, state_dict, saved) -> None:
        if saved.get("spec_version") != SPEC_VERSION:
            raise ValueError(f"state dict is from NEAT spec version {saved.get('spec_version')}, "
                             f"this is version {SPEC_VERSION}")
        players = [list(group) for group in self.players.groups]
        if [list(group) for group in saved["players"]] != players:
            raise ValueError(f"state dict players {saved['players']} do not match this optimizer's {players}")
        if not np.array_equal(np.asarray(saved["graph"], dtype=np.float64), self.graph.weights):
            raise ValueError("state dict player graph does not match this optimizer's graph")
        for key, value in self._global.items():
            if tuple(saved[key].shape) != tuple(value.shape):
                raise ValueError(f"state dict '{key}' has shape {tuple(saved[key].shape)}, "
                                 f"expected {tuple(value.shape)}")
        saved_ids = [i for group in state_dict["param_groups"] for i in group["params"]]
        if len(saved_ids) != len(self._tensors):
            raise ValueError(f"state dict has {len(saved_ids)} parameters, this optimizer has {len(self._tensors)}")
        for k, (saved_id, param) in enumerate(zip(saved_ids, self._tensors)):
            for key, value in state_dict["state"].get(saved_id, {}).items():
                if tuple(value.shape) != tuple(param.shape):
                    raise ValueError(f"state dict '{key}' of parameter {k} has shape {tuple(value.shape)}, "
                                     f"the parameter has shape {tuple(param.shape)}")


class ShardReducedKernels:
    """Kernels for DTensor-sharded parameters (FSDP2): the inner kernels run on the local
    shards and the per-tensor statistics are summed over the shards (SPEC step 3 sums the whole
    tensor); a tensor replicated along a mesh dimension counts once (its coordinate-0 copy)."""

    def __init__(self, inner, mesh, placements):
        self.inner, self.mesh, self.placements = inner, mesh, placements

    def statistics(self, xp, grads, exp_avg, exp_avg_sq, previous, stats_dtype):
        import torch.distributed as dist

        stats, finite = self.inner.statistics(xp, grads, exp_avg, exp_avg_sq, previous, stats_dtype)
        non_finite = (~finite).to(stats_dtype).reshape(1)
        for dim in range(self.mesh.ndim):
            first = self.mesh.get_local_rank(dim) == 0
            counted = [1.0 if placement[dim].is_shard() or first else 0.0 for placement in self.placements]
            stats = stats * torch.tensor(counted, dtype=stats_dtype, device=stats.device)[:, None]
            both = torch.cat([stats.reshape(-1), non_finite])
            dist.all_reduce(both, group=self.mesh.get_group(dim))
            stats, non_finite = both[:-1].reshape(stats.shape), both[-1:]
        return stats, non_finite[0] == 0

    def update(self, *args, **kwargs):
        return self.inner.update(*args, **kwargs)


def _moments_dtype(param):
    """float32 for 16-bit parameters, else the parameter's dtype (SPEC "State")."""
    return torch.float32 if torch.finfo(param.dtype).bits < 32 else param.dtype


def _local(tensor):
    """The local shard of a DTensor (sharing its storage), or the tensor itself."""
    return tensor.to_local() if hasattr(tensor, "device_mesh") and hasattr(tensor, "to_local") else tensor


def _device_mesh(params):
    """The one device mesh of the DTensor parameters, or ``None`` when there are none."""
    meshes = {id(p.device_mesh): p.device_mesh for p in params if hasattr(p, "device_mesh")}
    if len(meshes) > 1:
        raise ValueError("NGAdam needs all DTensor parameters on one device mesh")
    return next(iter(meshes.values()), None)


def _placements(param, mesh):
    """A placement per mesh dimension; a plain tensor is replicated."""
    if hasattr(param, "placements"):
        return tuple(param.placements)
    from torch.distributed.tensor import Replicate

    return (Replicate(),) * mesh.ndim


def _host_number(value, name: str) -> float:
    """A hyperparameter given as a number or a one-element tensor, read once at construction."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"Invalid {name}: a tensor {name} must have one element, got shape {tuple(value.shape)}")
        return float(value)
    return value


def _check_group(group: dict) -> None:
    unsupported = sorted(set(group) - _GROUP_KEYS - {"initial_lr"})
    neat_keys = [key for key in unsupported if key in DEFAULTS]
    if neat_keys:
        raise ValueError(f"param group sets {neat_keys}: only 'lr' and 'weight_decay' may differ per group "
                         "(the NEAT hyperparameters are global to the game)")
    for key in ("lr", "weight_decay"):
        value = _host_number(group[key], key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise ValueError(f"Invalid {key} in a param group: {group[key]!r} (must be a number >= 0)")


def _groups_players_graph(params, players, graph):
    """Param groups, players and graph from a module, tensors or param-group dicts."""
    if isinstance(params, torch.nn.Module):
        from neat.adapters.torch_adapter import module_layout

        layout = module_layout(params, graph=graph if isinstance(graph, str) else None)
        return ([{"params": list(layout.tensors)}], layout.players if players is None else players,
                layout.graph if graph is None or isinstance(graph, str) else graph, list(layout.player_names))
    if isinstance(graph, str):
        raise ValueError(f"graph={graph!r} needs an nn.Module as params, got {type(params).__qualname__}")
    if isinstance(params, torch.Tensor):
        raise TypeError("params must be an nn.Module or an iterable of tensors or dicts, got a single tensor")
    groups = list(params)
    if not groups:
        raise ValueError("NGAdam got an empty parameter list")
    if not isinstance(groups[0], dict):
        groups = [{"params": groups}]
    return groups, players, graph, []


def _one_device(tensors) -> torch.device:
    devices = {p.device for p in tensors}
    if len(devices) != 1:
        raise ValueError(f"NGAdam needs all parameters on one device, got {sorted(map(str, devices))}")
    return devices.pop()
