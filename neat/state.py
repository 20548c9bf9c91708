"""The optimizer state of NG-Adam (docs/spec.md, "State"), a pytree of arrays.

:class:`GameState` is the one list of the game's small state fields; front ends
store, restore and checkpoint exactly these fields (``GameState._fields``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import array_api_compat

from neat.topology import GameTables


class GameState(NamedTuple):
    """The small state of the game (SPEC "State"), updated by every step.

    * ``count``: global step count ``t``; ``skipped``: skipped-step count (int32, 0-d);
    * ``tensor_count``: per-tensor step counts ``t_k`` (int32, ``K``);
    * ``log_step``: per-player log-step ``z``; ``alignment``, ``conflict``: the last ``a`` and ``κ``
      (``n``, in the statistics dtype).
    """

    count: Any
    skipped: Any
    tensor_count: Any
    log_step: Any
    alignment: Any
    conflict: Any

    @classmethod
    def zeros(cls, xp, num_tensors: int, num_players: int, stats_dtype, device) -> GameState:
        def integers(shape):
            return xp.zeros(shape, dtype=xp.int32, device=device)

        def floats():
            return xp.zeros((num_players,), dtype=stats_dtype, device=device)

        return cls(integers(()), integers(()), integers((num_tensors,)), floats(), floats(), floats())

    def grown(self, xp, num_new_tensors: int, num_new_players: int) -> GameState:
        """The state after tensors and players join (SPEC "Growing the game"): new ``t_k = 0``, new
        players' ``z = a = κ = 0``; the existing entries, ``t`` and the skipped count unchanged (new
        arrays, on the device and in the dtypes of the current ones)."""

        def extended(array, count):
            zeros = xp.zeros((count,), dtype=array.dtype, device=array_api_compat.device(array))
            return xp.concat([array, zeros])

        per_player = (extended(field, num_new_players) for field in (self.log_step, self.alignment, self.conflict))
        return GameState(self.count, self.skipped, extended(self.tensor_count, num_new_tensors), *per_player)


class NGAdamState(NamedTuple):
    """Explicit state of the functional API: the game state, the moments ``m, v`` per tensor and
    the :class:`~neat.topology.GameTables` of the full game (fixed at ``init``)."""

    game: GameState
    exp_avg: list
    exp_avg_sq: list
    tables: GameTables

    @property
    def num_tensors(self) -> int:
        return len(self.exp_avg)

    @property
    def num_players(self) -> int:
        return self.game.log_step.shape[0]
