"""PyTorch front end: :class:`NGAdam`, a ``torch.optim.Optimizer`` running docs/spec.md through the core.

``NGAdam(model)`` is the one-line form: one player per module that owns
parameters, chained in registration order (``graph="fx"``: the model's traced
data flow); ``NGAdam(model.named_parameters())`` builds the same players from the
names. Each step is one call of :func:`neat.functional.step` in place, with the
namespace and kernel set resolved once at construction, as ``torch.optim`` chooses
its implementation: ``foreach`` / ``fused`` flags (see :func:`kernel_request`).

It follows ``torch.optim.AdamW``'s contract: the same defaults, validation and
``maximize``; every hyperparameter lives in ``defaults`` and ``param_groups``
(schedulers may change ``lr``, ``weight_decay`` and ``betas`` between steps, as
floats or as tensors updated in place); complex parameters are optimized as their
real and imaginary parts (SPEC "Objects"). ``torch.compile(opt.step, fullgraph=True)``
traces the whole step: no plug-in is asked inside it, and it runs the generic
kernels on a traceable namespace (:data:`TRACEABLE_NAMESPACE`).

Parameters whose ``grad`` is ``None`` sit the step out (SPEC v2): the core plays
the sub-game of the players owning the other tensors, and each tensor counts its
own steps ``t_k`` for its bias corrections, as ``torch.optim.AdamW`` does.
"""

from __future__ import annotations

import math
import numbers
import types
import warnings

import numpy as np
import torch

from neat import arrays, checkpoint, functional
from neat.config import DEFAULTS, NGAdamConfig, StepHyperparameters
from neat.kernel_selection import select_kernels
from neat.kernels import GENERIC, Statistics
from neat.state import GameState, NGAdamState
from neat.topology import Topology

__all__ = ["NGAdam", "kernel_request", "TORCH_DEFAULTS", "TRACEABLE_NAMESPACE"]

#: ``torch.optim.AdamW``'s defaults, which the torch front end takes (:data:`neat.config.DEFAULTS`
#: keeps the core's own).
TORCH_DEFAULTS = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2)

#: The game's hyperparameters (SPEC "Hyperparameters": fixed for a run).
GAME_KEYS = ("gamma", "zeta", "mu", "step_bounds", "leak")

#: One value per optimizer: the game's and the kernel flags (the kernels are chosen once). A param
#: group may repeat the optimizer's value, never set another.
PER_OPTIMIZER_KEYS = (*GAME_KEYS, "foreach", "fused")

#: Hyperparameters the core's step takes once for all tensors: every group must hold the same
#: value at a step (schedulers change them alike in every group).
PER_STEP_KEYS = ("betas", "eps")

#: torch.optim's words for the invalid values it names.
_TORCH_NAMES = {"lr": "learning rate", "eps": "epsilon value", "weight_decay": "weight_decay value"}

#: The fused kernel set of each device type (``fused=True``).
FUSED_KERNELS = {"cpu": "numba", "cuda": "triton"}

#: A module's own attributes, not copied into :data:`TRACEABLE_NAMESPACE`.
_MODULE_METADATA = frozenset(
    (
        "__name__",
        "__doc__",
        "__spec__",
        "__loader__",
        "__package__",
        "__file__",
        "__path__",
        "__cached__",
        "__builtins__",
    )
)


def _traceable_namespace():
    """``array_api_compat.torch`` with ``maximum`` / ``minimum`` that take a Python scalar in the
    tensor's dtype (the array-API rule) without ``torch.result_type``, which dynamo cannot
    trace; everything else is ``array_api_compat.torch``'s own."""
    import array_api_compat.torch as base

    namespace = types.ModuleType("neat.torch.traceable_namespace", _traceable_namespace.__doc__)
    namespace.__dict__.update({name: value for name, value in vars(base).items() if name not in _MODULE_METADATA})

    def scalar_free(function):
        def binary(x1, x2, /):
            if not isinstance(x1, torch.Tensor):
                x1 = torch.full((), x1, dtype=x2.dtype, device=x2.device)
            if not isinstance(x2, torch.Tensor):
                x2 = torch.full((), x2, dtype=x1.dtype, device=x1.device)
            return function(x1, x2)

        return binary

    namespace.maximum, namespace.minimum = scalar_free(torch.maximum), scalar_free(torch.minimum)
    return namespace


#: The array namespace of a step traced by ``torch.compile`` (see :func:`_traceable_namespace`).
TRACEABLE_NAMESPACE = _traceable_namespace()


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
            raise RuntimeError(
                f"`fused=True` needs a {' or '.join(sorted(FUSED_KERNELS))} device, the parameters are on {device.type}"
            )
        return FUSED_KERNELS[device.type]
    if foreach is False:
        return "generic"
    return "foreach" if foreach or fused is False else None


class NGAdam(torch.optim.Optimizer):
    """NG-Adam (docs/spec.md) as a ``torch.optim.Optimizer``, with ``torch.optim.AdamW``'s defaults.

    ``params``: an ``nn.Module`` (one player per module), ``named_parameters()`` (one player per
    module prefix of the names), an iterable of tensors (one player per tensor, unless
    ``players=``) or of param-group dicts. A group may set its own ``lr``, ``weight_decay`` and
    ``maximize``; ``betas`` and ``eps`` may change from step to step (schedulers) but must be the
    same in every group; the game's ``gamma``, ``zeta``, ``mu``, ``step_bounds``, ``leak`` are one
    per optimizer. ``lr``, ``weight_decay``, ``eps`` and ``betas`` may be one-element tensors,
    which schedulers update in place: a compiled step reads them as inputs and is not recompiled
    (a float that changes, such as the beta1 that ``OneCycleLR`` writes, costs dynamo one
    recompilation, after which it is an input too). ``players``: lists of tensor indices in
    parameter order. ``graph``: ``None`` (chain), ``"fx"`` (modules only), an ``n×n`` weight
    matrix or ``(i, j, weight)`` edges. ``maximize``: ascend the objective (the step is that of
    ``-f``). ``foreach``, ``fused``: as in ``torch.optim.AdamW`` (:func:`kernel_request`); every
    kernel set gives the numbers of the generic one.
    """

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
        betas = _checked_betas(betas)
        lr, eps, weight_decay = (
            _checked_scalar(value, key) for key, value in (("lr", lr), ("eps", eps), ("weight_decay", weight_decay))
        )
        self.config = NGAdamConfig(
            lr=_host(lr),
            betas=tuple(map(_host, betas)),
            eps=_host(eps),
            weight_decay=_host(weight_decay),
            gamma=_host(gamma),
            zeta=_host(zeta),
            mu=_host(mu),
            step_bounds=tuple(map(_host, step_bounds)),
            leak=_host(leak),
        )
        groups, players, graph, self.player_names = _groups_players_graph(params, players, graph)
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
            _check_group(group, index, self.defaults)
        self._shared_values()  # betas and eps agree across the groups
        self._params = [p for group in self.param_groups for p in group["params"]]
        players = self._players_from_names(params, players)
        self.topology = Topology.build(len(self._params), players, graph, mu=config.mu)
        self._device = _one_device(self._params)
        local = [_real(_local(p)) for p in self._params]
        self._xp = arrays.namespace_of(local, "params")
        arrays.check_floating(self._xp, local, "params")
        self._stats_dtype = arrays.statistics_dtype(self._xp, [_moments_dtype(p) for p in local])
        self._game = GameState.zeros(self._xp, len(local), self.topology.num_players, self._stats_dtype, self._device)
        self._exp_avg: list[torch.Tensor] = []
        self._exp_avg_sq: list[torch.Tensor] = []
        self._kernels = select_kernels(self._xp, local, kernel_request(foreach, fused, self._device))
        game_tables = functional.game_tables(self._kernels, self.topology, self._xp, self._device, self._stats_dtype)
        self._state = NGAdamState(self._game, self._exp_avg, self._exp_avg_sq, game_tables)
        self._host_game = functional.host_game(self._kernels, self._game)  # views of self._game
        self._traced_tables = self.topology.tables(TRACEABLE_NAMESPACE, self._device, self._stats_dtype)
        self._collect_moments()
        self._mesh = _device_mesh(self._params)
        self._sharded: dict[tuple[int, ...], ShardReducedKernels] = {}
        self._group_of = torch.tensor(
            [i for i, group in enumerate(self.param_groups) for _ in group["params"]],
            dtype=torch.long,
            device=self._device,
        )
        self._hyperparameters: dict[str, tuple] = {}

    def _players_from_names(self, params, players):
        """Players from the parameter names of ``named_parameters()`` (one per module prefix,
        ``"0.weight"`` and ``"0.bias"`` → player ``"0"``) when none were given; a warning when
        several unnamed tensors would each be a player of their own."""
        if players is not None or isinstance(params, torch.nn.Module):
            return players
        names = [name for group in self.param_groups for name in group.get("param_names", ())]
        if len(names) == len(self._params):
            players, self.player_names = _players_of_names(names)
        elif len(self._params) > 1:
            warnings.warn(
                f"NGAdam got {len(self._params)} parameters without names: each tensor is a player of "
                "its own. For one player per layer pass the module (NGAdam(model)) or "
                "model.named_parameters(), or give players=[[tensor indices], ...].",
                UserWarning,
                stacklevel=3,
            )
        return players

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

    # -- the step -----------------------------------------------------------------------------
    def step(self, closure=None):
        """One NG-Adam step (SPEC steps 0–9) over the parameters that have gradients."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self._step()
        return loss

    @torch.no_grad()
    def _step(self) -> None:
        """The step itself. Traceable by ``torch.compile``: there it plays with the generic kernels
        on :data:`TRACEABLE_NAMESPACE` (nothing resolved by a plug-in inside the trace); eagerly,
        with the kernels chosen at construction."""
        self._init_group()
        params, grads = [_real(p) for p in self._params], self._gradients()
        if self._mesh is not None:
            self._play_shards(params, grads)
        elif torch.compiler.is_compiling():
            self._play(params, grads, GENERIC, TRACEABLE_NAMESPACE, self._traced_tables, self._game)
        else:
            self._play(params, grads, self._kernels, self._xp, self._state.tables, self._host_game)

    @torch.compiler.disable
    def _play_shards(self, params, grads) -> None:
        """DTensor parameters (FSDP2): the kernels on the local shards, their statistics summed over
        the shards (:class:`ShardReducedKernels`); always eager (a graph break under ``torch.compile``)."""
        grads = [None if g is None else _local(g) for g in grads]
        kernels = self._shard_kernels(grads)
        self._play([_local(p) for p in params], grads, kernels, self._xp, self._state.tables, self._host_game)

    def _play(self, params, grads, kernels, xp, tables, game) -> None:
        """:func:`neat.functional.step` in place with this step's group values; ``game``: the game
        state (:attr:`game_state`, or NumPy views of it, :func:`neat.functional.host_game`), which
        the step writes in place."""
        (beta1, beta2), eps = self._shared_values()
        if torch.compiler.is_compiling():
            beta1, beta2, eps = (self._symbolic(value) for value in (beta1, beta2, eps))
        _check_betas_for(kernels, (beta1, beta2))
        lr, weight_decay = self._hyperparameter("lr"), self._hyperparameter("weight_decay")
        config = StepHyperparameters(
            lr=lr,
            betas=(beta1, beta2),
            eps=eps,
            weight_decay=weight_decay,
            gamma=self.config.gamma,
            zeta=self.config.zeta,
            leak=self.config.leak,
            log_step_bounds=self.config.log_step_bounds,
        )
        state = self._state._replace(game=game, tables=tables)
        functional.step(
            params,
            grads,
            state,
            config,
            lr=lr,
            weight_decay=weight_decay,
            kernels=kernels,
            inplace=True,
            topology=self.topology,
            xp=xp,
        )

    def _init_group(self) -> None:
        """The host-side preparation of a step: refuse sparse gradients; zero ``m`` and ``v`` (SPEC
        "State": float32 for 16-bit params) of tensors that have a gradient for the first time
        (``torch.optim``'s lazy state); build the sub-game of this step's active tensors (SPEC v2,
        cached per pattern). Named as ``torch.optim``'s optimizers name it: under ``torch.compile`` dynamo runs it
        eagerly while tracing and guards on the state, so the compiled step neither traces this
        host work (NumPy, new tensors) nor repeats it."""
        for k, param in enumerate(self._params):
            if param.grad is not None and param.grad.is_sparse:
                raise RuntimeError(f"NGAdam does not support sparse gradients (parameter {k})")
        active = tuple(k for k, param in enumerate(self._params) if param.grad is not None)
        if 0 < len(active) < len(self._params):  # the sub-game's tables for the traceable namespace
            sub, restriction = self.topology.restrict(active)
            sub.tables(TRACEABLE_NAMESPACE, self._device, self._stats_dtype)
            restriction.arrays(TRACEABLE_NAMESPACE, self._device)
        for k in [k for k in self._pending if self._params[k].grad is not None]:
            param = self._params[k]
            state = self.state[param]
            for key in ("exp_avg", "exp_avg_sq"):
                state[key] = torch.zeros_like(param, dtype=_moments_dtype(param), memory_format=torch.preserve_format)
            self._exp_avg[k], self._exp_avg_sq[k] = (_real(_local(state[key])) for key in ("exp_avg", "exp_avg_sq"))
            self._pending.discard(k)

    def _gradients(self) -> list:
        """The gradients as the core takes them: real views of complex ones, negated in the groups
        that ``maximize`` (the step of ``-f``, as ``torch.optim.AdamW``), ``None`` where absent."""
        grads = []
        for group in self.param_groups:
            for param in group["params"]:
                grad = param.grad
                if grad is not None and group["maximize"]:
                    grad = torch.neg(grad)
                grads.append(None if grad is None else _real(grad))
        return grads

    def _shared_values(self) -> tuple:
        """``betas`` and ``eps`` of this step, the same in every group (:data:`PER_STEP_KEYS`):
        floats, or 0-d tensors read on the device."""
        first = self.param_groups[0]
        for index, group in enumerate(self.param_groups[1:], start=1):
            for key in PER_STEP_KEYS:
                if not _same_value(group[key], first[key]):
                    raise ValueError(
                        f"param group {index} has {key}={group[key]!r} but group 0 has {first[key]!r}: "
                        f"NGAdam takes one {key} for all groups (each may change between steps)"
                    )
        beta1, beta2 = first["betas"]
        return (_step_scalar(beta1), _step_scalar(beta2)), _step_scalar(first["eps"])

    def _collect_moments(self) -> None:
        """Point the state's moment lists at ``self.state`` (real views of the local shards). A
        tensor that has never had a gradient has no moments yet (as in ``torch.optim``): it gets a
        read-only zero of its shape, never touched since the tensor is inactive."""
        self._pending = set()
        for k, param in enumerate(self._params):
            state = self.state.get(param, {})
            if "exp_avg" in state:
                moments = [_real(_local(state["exp_avg"])), _real(_local(state["exp_avg_sq"]))]
            else:
                self._pending.add(k)
                local = _real(_local(param))
                moments = [torch.zeros((), dtype=_moments_dtype(local), device=local.device).expand(local.shape)] * 2
            for target, moment in zip((self._exp_avg, self._exp_avg_sq), moments):
                if k < len(target):
                    target[k] = moment
                else:
                    target.append(moment)

    def _hyperparameter(self, key: str):
        """A param-group value for the step: one float for all tensors, or a ``(K,)`` tensor on
        the device. Built again only when a group's float changed; tensor values (which
        schedulers may update in place) are read on the device at every step."""
        values = tuple(_step_scalar(group[key]) for group in self.param_groups)
        if torch.compiler.is_compiling():
            values = tuple(self._symbolic(value) for value in values)
        if any(isinstance(value, torch.Tensor) for value in values):
            return self._tensor_hyperparameter(values)
        if all(value == values[0] for value in values[1:]):
            return values[0]
        cached = self._hyperparameters.get(key)
        if cached is None or cached[0] != values:
            per_tensor = torch.tensor(values, dtype=self._stats_dtype, device=self._device)[self._group_of]
            cached = self._hyperparameters[key] = (values, per_tensor)
        return cached[1]

    def _symbolic(self, value):
        """Under ``torch.compile``: a Python number as a 0-d tensor in the statistics dtype, formed
        by a multiplication, the one use of a float that dynamo keeps symbolic: a scheduler's new
        value is then an input of the compiled step, not a recompilation (after dynamo's first,
        which makes a float that changed dynamic). A tensor stays as it is."""
        if isinstance(value, torch.Tensor):
            return value
        return torch.ones((), dtype=self._stats_dtype, device=self._device) * value

    def _tensor_hyperparameter(self, values):
        """One group: its tensor as a 0-d value (a CPU one stays a host scalar, no copy to the
        device). Several: a ``(K,)`` tensor on the device."""
        if len(values) == 1:
            return values[0].to(dtype=self._stats_dtype)

        def on_device(value):
            if isinstance(value, torch.Tensor):
                return value.to(device=self._device, dtype=self._stats_dtype)
            return torch.full((), value, dtype=self._stats_dtype, device=self._device)

        return torch.stack([on_device(value) for value in values])[self._group_of]

    def _shard_kernels(self, grads) -> ShardReducedKernels:
        """The kernels of the active tensors' sub-game, reducing statistics over the shards."""
        active = tuple(k for k, g in enumerate(grads) if g is not None)
        kernels = self._sharded.get(active)
        if kernels is None:
            kernels = self._sharded[active] = ShardReducedKernels(
                self._kernels, self._mesh, [_placements(self._params[k], self._mesh) for k in active], self._stats_dtype
            )
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
        """torch's ``{"state", "param_groups"}`` (per-tensor ``exp_avg``, ``exp_avg_sq``; the live
        per-group hyperparameters) plus ``"neat"``: :func:`neat.checkpoint.header` with arrays as
        tensors (spec version, the hyperparameters this optimizer was built with, ``player_of``,
        the graph and every :class:`~neat.state.GameState` field)."""
        state_dict = super().state_dict()
        state_dict["neat"] = checkpoint.header(self.config, self.topology, self._game, convert=_tensor_copy)
        return state_dict

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore a :meth:`state_dict`; raises ``ValueError`` (before changing anything) when it
        belongs to another spec version, other players, another graph or other game
        hyperparameters, holds invalid counts or moments of other shapes or non-finite values, or
        its groups hold invalid values. The kernel flags ``foreach``, ``fused`` stay this optimizer's."""
        if "neat" not in state_dict:
            raise ValueError("not an NGAdam state dict: it has no 'neat' entry (the game state)")
        game = self._checked(state_dict)
        moments = {k: dict(state) for k, state in state_dict["state"].items()}
        super().load_state_dict({key: value for key, value in state_dict.items() if key != "neat"})
        for group in self.param_groups:  # the kernels were chosen at construction
            group.update(foreach=self.defaults["foreach"], fused=self.defaults["fused"])
        saved_ids = [i for group in state_dict["param_groups"] for i in group["params"]]
        for saved_id, param in zip(saved_ids, self._params):
            if saved_id in moments:  # torch casts state to the param dtype; m, v keep theirs (bit-exact)
                for key in checkpoint.MOMENTS:
                    self.state[param][key] = moments[saved_id][key].to(
                        device=param.device, dtype=_moments_dtype(param), copy=True
                    )
        torch._foreach_copy_(list(self._game), [torch.as_tensor(value) for value in game])
        self._collect_moments()

    def _checked(self, state_dict) -> GameState:
        """``state_dict`` checked against this optimizer, by :mod:`neat.checkpoint` (its ``"neat"``
        entry and the moments of ``"state"``: spec version, players, graph and game
        hyperparameters equal to this optimizer's, counts, shapes, finiteness) and by
        ``torch.optim``'s rules (the param groups); its ``GameState`` fields on the host."""
        saved = state_dict["neat"]
        checkpoint.checked_settings(
            saved, self.config, self.topology, fixed=checkpoint.FIXED_FOR_A_RUN, name="state dict"
        )
        kernel_flags = {key: self.defaults[key] for key in ("foreach", "fused")}  # this optimizer's, kept
        for index, group in enumerate(state_dict["param_groups"]):
            try:
                _check_group({**self.defaults, **group, **kernel_flags}, index, self.defaults)
            except ValueError as error:
                raise ValueError(f"state dict: {error}") from None
        saved_ids = [i for group in state_dict["param_groups"] for i in group["params"]]
        if len(saved_ids) != len(self._params):
            raise ValueError(f"state dict has {len(saved_ids)} parameters, this optimizer has {len(self._params)}")
        moments = [state_dict["state"].get(saved_id, {}) for saved_id in saved_ids]
        game, _, _ = checkpoint.checked_state(
            saved,
            [
                (_host_moment(moment.get("exp_avg"), param), _host_moment(moment.get("exp_avg_sq"), param))
                for moment, param in zip(moments, self._params)
            ],
            self.topology,
            [tuple(_real(_local(param)).shape) for param in self._params],
            name="state dict",
        )
        return game


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
            torch.tensor(
                [
                    1.0 if placement[dim].is_shard() or mesh.get_local_rank(dim) == 0 else 0.0
                    for placement in placements
                ],
                dtype=stats_dtype,
                device=device,
            )[:, None]
            for dim in range(mesh.ndim)
        ]

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


def _tensor_copy(array) -> torch.Tensor:
    """An array of the checkpoint as a tensor of its own (on the array's device)."""
    return torch.as_tensor(array).clone()


def _host_moment(moment, param):
    """A saved moment of ``param`` as :mod:`neat.checkpoint` checks it (``None`` where absent): in the
    moments' dtype, the local shard, complex values as their real and imaginary parts, on the host."""
    if moment is None:
        return None
    return checkpoint.host(_real(_local(torch.as_tensor(moment).to(dtype=_moments_dtype(param)))))


def _moments_dtype(param):
    """The parameter's dtype, or for 16-bit parameters float32 (complex64 for complex32) (SPEC "State")."""
    if torch.finfo(param.dtype).bits >= 32:
        return param.dtype
    return torch.complex64 if param.is_complex() else torch.float32


def _real(tensor):
    """A complex tensor as the real tensor of its real and imaginary parts (``view_as_real``,
    sharing its storage; SPEC "Objects"), a real one as it is."""
    return torch.view_as_real(tensor) if tensor.is_complex() else tensor


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


def _host(value):
    """A one-element tensor's value as a Python number (construction only), anything else as it is."""
    return value.detach().reshape(()).item() if isinstance(value, torch.Tensor) and value.numel() == 1 else value


def _real_number(value, name: str, invalid: str, where: str) -> float:
    """``value`` (a Python or NumPy real, or a one-element tensor, read on the host) as a float."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"Tensor {name} must be 1-element{where}")
        return float(_host(value))
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{invalid}: {value!r}{where} (expected a real number or a one-element tensor)")
    return float(value)


def _checked_scalar(value, key: str, where: str = ""):
    """``lr``, ``eps`` or ``weight_decay`` as ``torch.optim`` takes it (a number or a one-element
    tensor); ``ValueError`` in ``torch.optim``'s words when negative or not finite."""
    invalid = f"Invalid {_TORCH_NAMES[key]}"
    number = _real_number(value, key, invalid, where)
    if not (math.isfinite(number) and number >= 0):
        raise ValueError(
            f"{invalid}: {number if isinstance(value, torch.Tensor) else value}{where} (must be finite and >= 0)"
        )
    return value


def _checked_betas(betas, where: str = "") -> tuple:
    """``betas`` as ``torch.optim`` takes them: two numbers or one-element tensors in ``[0, 1)``,
    a one-element tensor made 0-d (``torch.optim``'s ``_to_scalar``)."""
    if isinstance(betas, torch.Tensor) or not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f"Invalid betas: {betas!r}{where} (expected a pair (beta1, beta2))")
    for index, beta in enumerate(betas):
        invalid = f"Invalid beta parameter at index {index}"
        number = _real_number(beta, f"betas[{index}]", invalid, where)
        if not 0.0 <= number < 1.0:
            raise ValueError(f"{invalid}: {number if isinstance(beta, torch.Tensor) else beta}{where}")
    return tuple(beta.reshape(()) if isinstance(beta, torch.Tensor) and beta.dim() else beta for beta in betas)


def _check_group(group: dict, index: int, defaults: dict) -> None:
    """A param group's values (its own or the defaults): ``torch.optim``'s rules for ``lr``,
    ``eps``, ``weight_decay`` and ``betas``; ``maximize`` a bool; the per-optimizer keys
    (:data:`PER_OPTIMIZER_KEYS`) equal to the optimizer's."""
    where = f" in param group {index}"
    for key in ("lr", "eps", "weight_decay"):
        _checked_scalar(group[key], key, where)
    group["betas"] = _checked_betas(group["betas"], where)
    if not isinstance(group["maximize"], bool):
        raise ValueError(f"Invalid maximize: {group['maximize']!r}{where} (expected True or False)")
    for key in PER_OPTIMIZER_KEYS:
        if not _same_setting(group[key], defaults[key]):
            raise ValueError(
                f"param group {index} sets {key}={group[key]!r} but NGAdam has {key}={defaults[key]!r}: "
                f"{key} is one per optimizer (the game's gamma, zeta, mu, step_bounds, leak and the "
                "kernel flags foreach, fused are fixed for a run); set it in NGAdam(...)"
            )


def _same_setting(value, expected) -> bool:
    """Whether a group's per-optimizer value equals the optimizer's (numbers compared as floats)."""
    if expected is None or isinstance(expected, bool):
        return value is expected
    try:
        return np.array_equal(
            np.asarray(
                _host(value) if not isinstance(value, (tuple, list)) else [_host(v) for v in value], dtype=np.float64
            ),
            np.asarray(expected),
        )
    except (TypeError, ValueError):
        return False


def _same_value(value, other) -> bool:
    """Whether two groups hold the same step value: equal numbers, or the same tensor (tensors
    are compared by identity, never read)."""
    if isinstance(value, tuple) and isinstance(other, tuple):
        return len(value) == len(other) and all(_same_value(a, b) for a, b in zip(value, other))
    if value is other:
        return True
    return not isinstance(value, torch.Tensor) and not isinstance(other, torch.Tensor) and value == other


def _step_scalar(value):
    """A group's value for the step: a tensor as 0-d (read on the device), a NumPy scalar as a
    Python number (a host value), a Python number as it is."""
    if isinstance(value, torch.Tensor):
        return value.reshape(())
    return float(value) if isinstance(value, np.generic) else value


def _check_betas_for(kernels, betas) -> None:
    """The foreach kernels take float betas (as ``torch.optim``'s foreach implementation does)."""
    if getattr(kernels, "inner", kernels).name == "foreach" and any(isinstance(b, torch.Tensor) for b in betas):
        raise ValueError(
            "tensor betas need foreach=False, fused=True or a torch.compile'd step: the foreach kernels "
            "take float betas"
        )


def _players_of_names(names) -> tuple[list[list[int]], list[str]]:
    """One player per module prefix of the parameter names (``"0.weight"``, ``"0.bias"`` → ``"0"``),
    in order of first appearance, and the prefixes."""
    players: dict[str, list[int]] = {}
    for k, name in enumerate(names):
        players.setdefault(name.rpartition(".")[0], []).append(k)
    return list(players.values()), list(players)


def _groups_players_graph(params, players, graph):
    """Param groups, players and graph from a module, tensors or param-group dicts."""
    if isinstance(params, torch.nn.Module):
        from neat.adapters.torch_adapter import module_layout

        layout = module_layout(params, graph=graph if isinstance(graph, str) else None)
        return (
            [{"params": list(layout.tensors)}],
            layout.players if players is None else players,
            layout.graph if graph is None or isinstance(graph, str) else graph,
            list(layout.player_names),
        )
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
