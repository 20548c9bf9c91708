"""PyTorch front end: :class:`NGAdam`, a ``torch.optim.Optimizer`` running SPEC.md through the core.

``NGAdam(model)`` is the one-line form: one player per module that owns
parameters, chained in registration order (``graph="fx"``: the model's traced
data flow). Each step is one call of :func:`neat.functional.step` in place, with
the kernel set chosen once, as ``torch.optim`` chooses its implementation:
``foreach`` / ``fused`` flags (see :func:`kernel_request`).

Parameters whose ``grad`` is ``None`` sit the step out (SPEC v2): the core plays
the sub-game of the players owning the other tensors, and each tensor counts its
own steps ``t_k`` for its bias corrections, as ``torch.optim.AdamW`` does.
"""

from __future__ import annotations

import numpy as np
import torch

from neat import arrays, functional
from neat._version import SPEC_VERSION
from neat.config import DEFAULTS, NGAdamConfig
from neat.kernel_selection import select_kernels
from neat.kernels import Statistics
from neat.state import GameState, NGAdamState
from neat.topology import Topology

__all__ = ["NGAdam", "kernel_request"]

_GROUP_KEYS = {"params", "lr", "weight_decay"}

#: The fused kernel set of each device type (``fused=True``).
FUSED_KERNELS = {"cpu": "numba", "cuda": "triton"}


def kernel_request(foreach, fused, device) -> str | None:
    """``torch.optim``'s ``foreach`` / ``fused`` flags as a request for
    :func:`neat.kernel_selection.select_kernels`: ``fused=True`` → the device's fused set
    (:data:`FUSED_KERNELS`), ``foreach=True`` or ``fused=False`` → ``"foreach"``,
    ``foreach=False`` → ``"generic"`` (one tensor at a time), both ``None`` → ``None``
    (the fastest registered set that runs these tensors)."""
    if foreach and fused:
        raise RuntimeError("`fused` and `foreach` cannot be `True` together.")
    if fused:
        if device.type not in FUSED_KERNELS:
            raise RuntimeError(f"`fused=True` needs a {' or '.join(sorted(FUSED_KERNELS))} device, "
                               f"the parameters are on {device.type}")
        return FUSED_KERNELS[device.type]
    if foreach is False:
        return "generic"
    return "foreach" if foreach or fused is False else None


class NGAdam(torch.optim.Optimizer):
    """NG-Adam (SPEC.md) as a ``torch.optim.Optimizer``.

    ``params``: an ``nn.Module``, an iterable of tensors or of param-group dicts
    (per-group ``lr`` and ``weight_decay``, which schedulers may change as floats
    or tensors). ``players``: lists of tensor indices in parameter order (default:
    one per module for a module, one per tensor otherwise). ``graph``: ``None``
    (chain), ``"fx"`` (modules only), an ``n×n`` weight matrix or ``(i, j, weight)``
    edges. ``foreach``, ``fused``: as in ``torch.optim.AdamW`` (:func:`kernel_request`);
    every kernel set gives the numbers of the generic one.
    """

    def __init__(self, params, lr=DEFAULTS["lr"], betas=DEFAULTS["betas"], eps=DEFAULTS["eps"],
                 weight_decay=DEFAULTS["weight_decay"], gamma=DEFAULTS["gamma"], zeta=DEFAULTS["zeta"],
                 mu=DEFAULTS["mu"], step_bounds=DEFAULTS["step_bounds"], leak=DEFAULTS["leak"],
                 players=None, graph=None, foreach=None, fused=None) -> None:
        self.config = NGAdamConfig(lr=_host_number(lr, "lr"), betas=betas, eps=eps,
                                   weight_decay=_host_number(weight_decay, "weight_decay"), gamma=gamma,
                                   zeta=zeta, mu=mu, step_bounds=step_bounds, leak=leak)
        groups, players, graph, self.player_names = _groups_players_graph(params, players, graph)
        super().__init__(groups, dict(lr=lr, weight_decay=weight_decay))
        for group in self.param_groups:
            _check_group(group)
        self.foreach, self.fused = foreach, fused
        self._params = [p for group in self.param_groups for p in group["params"]]
        self.topology = Topology.build(len(self._params), players, graph, mu=self.config.mu)
        self._device = _one_device(self._params)
        local = [_local(p) for p in self._params]
        xp = arrays.namespace_of(local, "params")
        arrays.check_floating(xp, local, "params")
        self._stats_dtype = arrays.statistics_dtype(xp, [_moments_dtype(p) for p in local])
        self._game = GameState.zeros(xp, len(local), self.topology.num_players, self._stats_dtype, self._device)
        self._exp_avg: list[torch.Tensor] = []
        self._exp_avg_sq: list[torch.Tensor] = []
        self._state = NGAdamState(self._game, self._exp_avg, self._exp_avg_sq,
                                  self.topology.tables(xp, self._device, self._stats_dtype))
        self._collect_moments()
        self._kernels = select_kernels(xp, local, kernel_request(foreach, fused, self._device))
        self._mesh = _device_mesh(self._params)
        self._sharded: dict[tuple[int, ...], ShardReducedKernels] = {}
        self._group_of = torch.tensor([i for i, group in enumerate(self.param_groups) for _ in group["params"]],
                                      dtype=torch.long, device=self._device)
        self._hyperparameters: dict[str, tuple] = {}

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
        grads = [p.grad for p in self._params]
        for k, g in enumerate(grads):
            if g is not None and g.is_sparse:
                raise RuntimeError(f"NGAdam does not support sparse gradients (parameter {k})")
        if self._pending:
            self._make_moments(grads)
        params, kernels = self._params, self._kernels
        if self._mesh is not None:
            params, kernels = [_local(p) for p in params], self._shard_kernels(grads)
            grads = [None if g is None else _local(g) for g in grads]
        _, new = functional.step(params, grads, self._state, self.config, lr=self._hyperparameter("lr"),
                                 weight_decay=self._hyperparameter("weight_decay"), kernels=kernels,
                                 inplace=True, topology=self.topology)
        if new.game is not self._game:
            torch._foreach_copy_(list(self._game), list(new.game))

    def _collect_moments(self) -> None:
        """Point the state's moment lists at ``self.state`` (the local shards of DTensors). A tensor
        that has never had a gradient has no moments yet (as in ``torch.optim``): it gets a
        read-only zero of its shape, never touched since the tensor is inactive."""
        self._pending = set()
        for k, param in enumerate(self._params):
            state = self.state.get(param, {})
            if "exp_avg" in state:
                moments = [_local(state["exp_avg"]), _local(state["exp_avg_sq"])]
            else:
                self._pending.add(k)
                local = _local(param)
                moments = [torch.zeros((), dtype=_moments_dtype(local), device=local.device).expand(local.shape)] * 2
            for target, moment in zip((self._exp_avg, self._exp_avg_sq), moments):
                if k < len(target):
                    target[k] = moment
                else:
                    target.append(moment)

    def _make_moments(self, grads) -> None:
        """Zero ``m`` and ``v`` (SPEC "State": float32 for 16-bit params) for tensors that have a
        gradient for the first time."""
        for k in [k for k in self._pending if grads[k] is not None]:
            param = self._params[k]
            state = self.state[param]
            for key in ("exp_avg", "exp_avg_sq"):
                state[key] = torch.zeros_like(param, dtype=_moments_dtype(param), memory_format=torch.preserve_format)
            self._exp_avg[k], self._exp_avg_sq[k] = _local(state["exp_avg"]), _local(state["exp_avg_sq"])
            self._pending.discard(k)

    def _hyperparameter(self, key: str):
        """A param-group value for the step: one float for all tensors, or a ``(K,)`` tensor on
        the device. Built again only when a group's float changed; tensor values (which
        schedulers may update in place) are read on the device at every step."""
        values = tuple(group[key] for group in self.param_groups)
        if any(isinstance(value, torch.Tensor) for value in values):
            return self._tensor_hyperparameter(values)
        cached = self._hyperparameters.get(key)
        if cached is None or cached[0] != values:
            per_tensor = values[0] if len(set(values)) == 1 else torch.tensor(
                values, dtype=self._stats_dtype, device=self._device)[self._group_of]
            cached = self._hyperparameters[key] = (values, per_tensor)
        return cached[1]

    def _tensor_hyperparameter(self, values):
        """One group: its tensor as a 0-d value (a CPU one stays a host scalar, no copy to the
        device). Several: a ``(K,)`` tensor on the device."""
        if len(values) == 1:
            return values[0].to(dtype=self._stats_dtype).reshape(())

        def on_device(value):
            if isinstance(value, torch.Tensor):
                return value.to(device=self._device, dtype=self._stats_dtype).reshape(())
            return torch.full((), value, dtype=self._stats_dtype, device=self._device)

        return torch.stack([on_device(value) for value in values])[self._group_of]

    def _shard_kernels(self, grads) -> ShardReducedKernels:
        """The kernels of the active tensors' sub-game, reducing statistics over the shards."""
        active = tuple(k for k, g in enumerate(grads) if g is not None)
        kernels = self._sharded.get(active)
        if kernels is None:
            kernels = self._sharded[active] = ShardReducedKernels(
                self._kernels, self._mesh, [_placements(self._params[k], self._mesh) for k in active],
                self._stats_dtype)
        return kernels

    # -- diagnostics and checkpoints ------------------------------------------------------------
    def diagnostics(self) -> dict:
        """:func:`neat.diagnostics` of the current state: per-player ``alignment``, ``kappa``,
        ``step_scale``; ``mean_alignment``, ``skipped_steps`` (tensors; reading them syncs)."""
        return functional.diagnostics(self._game)

    @property
    def game_state(self) -> GameState:
        """The live :class:`~neat.state.GameState` (overwritten in place by every step)."""
        return self._game

    def state_dict(self) -> dict:
        """torch's ``{"state", "param_groups"}`` (per-tensor ``exp_avg``, ``exp_avg_sq``) plus
        ``"neat"``: the :class:`~neat.state.GameState` fields (step counts, skipped steps,
        per-player log-step, last alignment and conflict), the players, the graph and the
        spec version."""
        state_dict = super().state_dict()
        state_dict["neat"] = {
            "spec_version": SPEC_VERSION,
            "players": [list(group) for group in self.players.groups],
            "graph": self.graph.weights.tolist(),
            **{name: value.clone() for name, value in zip(GameState._fields, self._game)},
        }
        return state_dict

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore a :meth:`state_dict`; raises ``ValueError`` (before changing anything) when it
        belongs to another spec version, other players, another graph or other shapes."""
        if "neat" not in state_dict:
            raise ValueError("not an NGAdam state dict: it has no 'neat' entry (the game state)")
        saved = state_dict["neat"]
        self._check_compatible(state_dict, saved)
        moments = {k: dict(state) for k, state in state_dict["state"].items()}
        super().load_state_dict({key: value for key, value in state_dict.items() if key != "neat"})
        saved_ids = [i for group in state_dict["param_groups"] for i in group["params"]]
        for saved_id, param in zip(saved_ids, self._params):
            if saved_id in moments:  # torch casts state to the param dtype; m, v keep theirs (bit-exact)
                for key in ("exp_avg", "exp_avg_sq"):
                    self.state[param][key] = moments[saved_id][key].to(
                        device=param.device, dtype=_moments_dtype(param), copy=True)
        torch._foreach_copy_(list(self._game), [saved[name] for name in GameState._fields])
        self._collect_moments()

    def _check_compatible(self, state_dict, saved) -> None:
        if saved.get("spec_version") != SPEC_VERSION:
            raise ValueError(f"state dict is from NEAT spec version {saved.get('spec_version')}, "
                             f"this is version {SPEC_VERSION}")
        players = [list(group) for group in self.players.groups]
        if [list(group) for group in saved["players"]] != players:
            raise ValueError(f"state dict players {saved['players']} do not match this optimizer's {players}")
        if not np.array_equal(np.asarray(saved["graph"], dtype=np.float64), self.graph.weights):
            raise ValueError("state dict player graph does not match this optimizer's graph")
        for name, value in zip(GameState._fields, self._game):
            if name not in saved or tuple(saved[name].shape) != tuple(value.shape):
                raise ValueError(f"state dict game state '{name}' is missing or has another shape "
                                 f"(expected {tuple(value.shape)})")
        saved_ids = [i for group in state_dict["param_groups"] for i in group["params"]]
        if len(saved_ids) != len(self._params):
            raise ValueError(f"state dict has {len(saved_ids)} parameters, this optimizer has {len(self._params)}")
        for k, (saved_id, param) in enumerate(zip(saved_ids, self._params)):
            for key, value in state_dict["state"].get(saved_id, {}).items():
                if tuple(value.shape) != tuple(param.shape):
                    raise ValueError(f"state dict '{key}' of parameter {k} has shape {tuple(value.shape)}, "
                                     f"the parameter has shape {tuple(param.shape)}")


class ShardReducedKernels:
    """Kernels for DTensor-sharded parameters (FSDP2): the inner kernels run on the local
    shards and the per-tensor sums are summed over the shards (SPEC step 3 sums the whole
    tensor); a tensor replicated along a mesh dimension counts once (its coordinate-0 copy).
    A non-finite local sum stays non-finite after the reduction, so every rank skips alike."""

    def __init__(self, inner, mesh, placements, stats_dtype):
        self.inner, self.mesh = inner, mesh
        self.name = f"{inner.name} over shards"
        self.game_xp = getattr(inner, "game_xp", None)
        device = torch.device(mesh.device_type)
        self._counted = [
            torch.tensor([1.0 if placement[dim].is_shard() or mesh.get_local_rank(dim) == 0 else 0.0
                          for placement in placements], dtype=stats_dtype, device=device)[:, None]
            for dim in range(mesh.ndim)]

    def statistics(self, xp, grads, exp_avg, exp_avg_sq, scalars, stats_dtype):
        import torch.distributed as dist

        statistics = self.inner.statistics(xp, grads, exp_avg, exp_avg_sq, scalars, stats_dtype)
        sums = torch.as_tensor(statistics.sums)
        for dim, counted in enumerate(self._counted):
            sums = (sums * counted).contiguous()
            dist.all_reduce(sums, group=self.mesh.get_group(dim))
        if not isinstance(statistics.sums, torch.Tensor):
            sums = sums.numpy()
        return Statistics(sums, statistics.direction)

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
