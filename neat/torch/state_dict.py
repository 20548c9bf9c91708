"""The state dict: torch's ``{"state", "param_groups"}`` plus ``"neat"`` (the game state,
:mod:`neat.checkpoint`'s header), and its checked restore."""

from __future__ import annotations

import numpy as np
import torch

from neat import checkpoint
from neat.state import GameState
from neat.torch.distributed import local_shard
from neat.torch.groups import check_group
from neat.torch.step import Stepping
from neat.torch.tensors import moments_dtype, real


class Checkpointing(Stepping):
    """The part of :class:`neat.torch.NGAdam` that saves and restores its state."""

    @torch.compiler.disable  # as torch.optim's: host work, never traced
    def state_dict(self) -> dict:
        """torch's ``{"state", "param_groups"}`` (per-tensor ``step``, ``exp_avg``, ``exp_avg_sq``,
        ``step`` a 0-d int32 view of the tensor's count ``t_k`` in the game state; the live per-group
        hyperparameters) plus ``"neat"``: :func:`neat.checkpoint.header` with arrays as
        tensors (spec version, the hyperparameters this optimizer was built with, ``player_of``,
        the graph and every :class:`~neat.state.GameState` field)."""
        state_dict = super().state_dict()
        state_dict["neat"] = checkpoint.header(self.config, self.topology, self._game, convert=_tensor_copy)
        return state_dict

    @torch.compiler.disable
    def load_state_dict(self, state_dict: dict) -> None:
        """Restore a :meth:`state_dict`; raises ``ValueError`` (before changing anything) when it
        belongs to another spec version, other players, another graph or other game
        hyperparameters, holds invalid counts or moments of other shapes or non-finite values, or
        its groups hold invalid values, or a parameter's ``step`` differs from its count in the game
        state (``tensor_count``, which restores it; a state dict without ``step`` loads too). The
        kernel flags ``foreach``, ``fused`` stay this optimizer's (its kernels were chosen at
        construction)."""
        if "neat" not in state_dict:
            raise ValueError("not an NGAdam state dict: it has no 'neat' entry (the game state)")
        game = self._checked(state_dict)
        moments = {k: dict(state) for k, state in state_dict["state"].items()}
        kernel_flags = [(group["foreach"], group["fused"]) for group in self.param_groups]
        super().load_state_dict({key: value for key, value in state_dict.items() if key != "neat"})
        for group, (foreach, fused) in zip(self.param_groups, kernel_flags):
            group.update(foreach=foreach, fused=fused)
        saved_ids = [i for group in state_dict["param_groups"] for i in group["params"]]
        for saved_id, param in zip(saved_ids, self._params):
            if saved_id in moments:  # torch casts state to the param dtype; m, v keep theirs (bit-exact)
                for key in checkpoint.MOMENTS:
                    self.state[param][key] = moments[saved_id][key].to(
                        device=param.device, dtype=moments_dtype(param), copy=True
                    )
        torch._foreach_copy_(list(self._game), [torch.as_tensor(value) for value in game])
        self._collect_moments()  # state["step"]: views of the restored tensor_count

    def _checked(self, state_dict) -> GameState:
        """``state_dict`` checked against this optimizer, by :mod:`neat.checkpoint` (its ``"neat"``
        entry and the moments of ``"state"``: spec version, players, graph and game
        hyperparameters equal to this optimizer's, counts, shapes, finiteness) and by
        ``torch.optim``'s rules (the param groups); its ``GameState`` fields on the host."""
        saved = state_dict["neat"]
        checkpoint.checked_settings(
            saved, self.config, self.topology, fixed=checkpoint.FIXED_FOR_A_RUN, name="state dict"
        )
        for index, group in enumerate(state_dict["param_groups"]):
            try:
                check_group({**self.defaults, **group}, index, self.config)
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
            [tuple(real(local_shard(param)).shape) for param in self._params],
            name="state dict",
        )
        _check_steps([moment.get("step") for moment in moments], game.tensor_count)
        return game


def _check_steps(steps, tensor_count) -> None:
    """Each saved ``step`` (a tensor or a number; ``None`` where absent) is its tensor's count in the
    game state: the count has one owner, ``tensor_count``, which the load restores."""
    for k, (step, count) in enumerate(zip(steps, tensor_count.tolist())):
        if step is None:
            continue
        value = checkpoint.host(step)
        if value.shape != () or not np.issubdtype(value.dtype, np.number) or value.item() != count:
            raise ValueError(
                f"state dict: parameter {k} has step {step!r} but its count in the game state "
                f"(neat tensor_count) is {count}: they must agree"
            )


def _tensor_copy(array) -> torch.Tensor:
    """An array of the checkpoint as a tensor of its own (on the array's device)."""
    return torch.as_tensor(array).clone()


def _host_moment(moment, param):
    """A saved moment of ``param`` as :mod:`neat.checkpoint` checks it (``None`` where absent): in the
    moments' dtype, the local shard, complex values as their real and imaginary parts, on the host."""
    if moment is None:
        return None
    return checkpoint.host(real(local_shard(torch.as_tensor(moment).to(dtype=moments_dtype(param)))))
