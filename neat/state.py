"""The optimizer state of NG-Adam (SPEC.md, "State"), a pytree of arrays."""

from __future__ import annotations

from typing import Any, NamedTuple


class NGAdamState(NamedTuple):
    """Explicit state; every field is an array or a list of arrays.

    * ``count``: step count ``t`` (int32, 0-d); ``skipped``: skipped-step count.
    * ``log_step``: per-player log-step ``z`` (float32, ``n``).
    * ``alignment``, ``conflict``: last ``a`` and ``κ`` per player (float32), for diagnostics.
    * ``exp_avg``, ``exp_avg_sq``: per-tensor ``m`` and ``v``.
    * ``membership``: the ``K × n`` one-hot player map; ``smoothing``: ``S = (I + μL)^{-1}``.
      Both are fixed at ``init`` and carried so that a step needs nothing but the state.
    """

    count: Any
    skipped: Any
    log_step: Any
    alignment: Any
    conflict: Any
    exp_avg: list
    exp_avg_sq: list
    membership: Any
    smoothing: Any

    @property
    def num_tensors(self) -> int:
        return len(self.exp_avg)

    @property
    def num_players(self) -> int:
        return self.log_step.shape[0]
