"""The learning-rate schedule every optimizer trains with (NEAT included): linear warmup, then
cosine (or linear) decay to ``final_factor`` × the peak at the last step.

The runner writes ``peak_lr × factor(step)`` into every param group before each step, so
AdamW, NAdamW, LAMB, Lion, SGD and NEAT all see the same curve; weight decay that is
multiplied by the learning rate (AdamW-style) follows it. Each record carries
``Schedule.as_record()``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Schedule:
    warmup_fraction: float = 0.05
    decay: str = "cosine"  # "cosine" | "linear" | "constant"
    final_factor: float = 0.0

    def __post_init__(self):
        if not 0.0 <= self.warmup_fraction < 1.0:
            raise ValueError(f"warmup_fraction must be in [0, 1), got {self.warmup_fraction}")
        if self.decay not in ("cosine", "linear", "constant"):
            raise ValueError(f"decay must be 'cosine', 'linear' or 'constant', got {self.decay!r}")
        if not 0.0 <= self.final_factor <= 1.0:
            raise ValueError(f"final_factor must be in [0, 1], got {self.final_factor}")

    def warmup_steps(self, total: int) -> int:
        return int(round(self.warmup_fraction * total))

    def factor(self, step: int, total: int) -> float:
        """Multiplier of the peak learning rate at ``step`` (1-based) of a ``total``-step run."""
        if not 1 <= step <= total:
            raise ValueError(f"step {step} outside 1..{total}")
        warmup = self.warmup_steps(total)
        if step <= warmup:
            return step / warmup
        if self.decay == "constant" or total == warmup:
            return 1.0
        progress = (step - warmup) / (total - warmup)  # in (0, 1]; 1 at the last step
        shape = 0.5 * (1.0 + math.cos(math.pi * progress)) if self.decay == "cosine" else 1.0 - progress
        return self.final_factor + (1.0 - self.final_factor) * shape

    def as_record(self) -> dict:
        return asdict(self)


DEFAULT = Schedule()


def apply(optimizer, peak_lrs: list[float], factor: float) -> None:
    """Set every param group's ``lr`` to its peak × ``factor`` (a float: fused AdamW and NEAT take it)."""
    for group, peak in zip(optimizer.param_groups, peak_lrs):
        group["lr"] = peak * factor
