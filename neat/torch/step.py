"""The step: one call of :func:`neat.functional.step` in place (SPEC steps 0–9) on the
parameters that have gradients, after ``torch.optim``'s host-side preparation (lazy moments,
the sub-game of the active tensors)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from neat import functional
from neat.config import NGAdamConfig, StepHyperparameters
from neat.kernel_selection import KernelPlan
from neat.kernels import GENERIC, StepKernels
from neat.state import GameState, NGAdamState
from neat.topology import GameTables, Topology
from neat.torch.distributed import ShardReducedKernels, local_shard, shard_kernels
from neat.torch.groups import check_fixed
from neat.torch.hyperparameters import GroupValues
from neat.torch.kernel_flags import check_kernel_flags, device_request
from neat.torch.tensors import moments_dtype, real
from neat.torch.traceable import TRACEABLE_NAMESPACE


class Stepping(GroupValues):
    """The part of :class:`neat.torch.NGAdam` that steps, on the state its constructor builds."""

    config: NGAdamConfig
    topology: Topology
    _params: list[torch.Tensor]  # in parameter order, across the groups
    _xp: Any  # the parameters' array namespace
    kernel_plan: KernelPlan | None  # chosen at construction (foreach / fused); None on meta
    _kernel_request: str | None  # what the groups' foreach / fused flags ask for
    _prepare: Callable[[GameState | None], None]  # (re)builds everything derived (NGAdam._prepare)
    _kernels: StepKernels  # its passes
    _game: GameState  # the live game state
    _host_game: GameState  # what the kernels write: views of _game
    _state: NGAdamState  # the core's state: _game, the moment lists, the game tables
    _traced_tables: GameTables  # the game tables on TRACEABLE_NAMESPACE
    _exp_avg: list[torch.Tensor]  # real views of the local shards of self.state's moments
    _exp_avg_sq: list[torch.Tensor]
    _pending: set[int]  # tensors that have no moments yet
    _mesh: Any  # the DTensor parameters' device mesh, or None
    _sharded: dict[tuple[int, ...], ShardReducedKernels]  # per pattern of active tensors

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
        with the kernels chosen at construction. A changed fixed-for-a-run value is refused first."""
        check_fixed(self.param_groups, self.config)
        check_kernel_flags(self.param_groups, self._kernel_request)
        if self.kernel_plan is None and not self._materialized():
            return
        self._init_group()
        params, grads = [real(p) for p in self._params], self._gradients()
        if self._mesh is not None:
            self._play_shards(params, grads)
        elif torch.compiler.is_compiling():
            self._play(params, grads, GENERIC, TRACEABLE_NAMESPACE, self._traced_tables, self._game)
        else:
            self._play(params, grads, self.kernel_plan, self._xp, self._state.tables, self._host_game)

    def _materialized(self) -> bool:
        """Whether a step of parameters built on ``meta`` can run: once they are on a real device
        (materialized in place: ``module.to_empty(device=...)`` under
        ``torch.__future__.set_swap_module_params_on_conversion(True)``), the kernels, tables and
        game state are built there. While they are on ``meta``: a no-op when none has a gradient (as
        ``torch.optim`` skips them), else ``RuntimeError`` (``torch.optim``'s words for ``fused=True``)."""
        if any(p.device.type == "meta" for p in self._params):
            if all(p.grad is None for p in self._params):
                return False
            device_request(self._kernel_request, torch.device("meta"))  # fused=True: torch.optim's error
            raise RuntimeError(
                "NGAdam cannot step parameters on the meta device: materialize them in place first "
                "(module.to_empty(device=...) with torch.__future__.set_swap_module_params_on_conversion(True))"
            )
        self._prepare(None)
        return True

    @torch.compiler.disable
    def _play_shards(self, params, grads) -> None:
        """DTensor parameters (FSDP2): the kernels on the local shards, their statistics summed over
        the shards (:class:`ShardReducedKernels`); always eager (a graph break under ``torch.compile``)."""
        grads = [None if g is None else local_shard(g) for g in grads]
        kernels = shard_kernels(self._sharded, self._kernels, self._mesh, self._params, grads, self._stats_dtype)
        self._play([local_shard(p) for p in params], grads, kernels, self._xp, self._state.tables, self._host_game)

    def _play(self, params, grads, kernels, xp, tables, game) -> None:
        """:func:`neat.functional.step` in place with this step's group values; ``game``: the game
        state (:attr:`game_state`, or NumPy views of it, :func:`neat.functional.host_game`), which
        the step writes in place."""
        values = self._step_values()
        config = StepHyperparameters.read(self.config, **values)
        state = self._state._replace(game=game, tables=tables)
        functional.step(
            params,
            grads,
            state,
            config,
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
            state["step"] = self._game.tensor_count[k]  # t_k (SPEC "State"), a live view: one owner
            for key in ("exp_avg", "exp_avg_sq"):
                state[key] = torch.zeros_like(param, dtype=moments_dtype(param), memory_format=torch.preserve_format)
            self._exp_avg[k], self._exp_avg_sq[k] = (real(local_shard(state[key])) for key in ("exp_avg", "exp_avg_sq"))
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
                grads.append(None if grad is None else real(grad))
        return grads

    def _collect_moments(self) -> None:
        """Point the state's moment lists at ``self.state`` (real views of the local shards) and each
        tensor's ``state["step"]`` at its count ``t_k`` in the game state (a 0-d int32 view of
        ``tensor_count``: the game state owns the count, ``state`` shows it where ``torch.optim``
        keeps ``step``). A tensor that has never had a gradient has no state yet (as in
        ``torch.optim``): its moments are a read-only zero of its shape, never touched since the
        tensor is inactive."""
        self._pending = set()
        for k, param in enumerate(self._params):
            state = self.state.get(param, {})
            if "exp_avg" in state:
                state["step"] = self._game.tensor_count[k]
                moments = [real(local_shard(state["exp_avg"])), real(local_shard(state["exp_avg_sq"]))]
            else:
                self._pending.add(k)
                local = real(local_shard(param))
                moments = [torch.zeros((), dtype=moments_dtype(local), device=local.device).expand(local.shape)] * 2
            for target, moment in zip((self._exp_avg, self._exp_avg_sq), moments):
                if k < len(target):
                    target[k] = moment
                else:
                    target.append(moment)
