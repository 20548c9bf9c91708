"""Interleaved timing: the candidates run in turn (A, B, C, A, B, C, …), so that load from other processes and
changes of clock speed hit them alike; each candidate's median is taken over its own timed calls."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


class Clock:
    """Times a call on ``read``: a mark is read before the call and one after it, and ``between(start, end)``
    gives the call's samples (seconds). It is asked only once every round has run, so a mark may be a device
    event still pending."""

    def __init__(self, read: Callable[[], Any] = time.perf_counter):
        self.read = read

    def between(self, start, end) -> list[float]:
        return [end - start]


#: Wall time.
WALL = Clock()
#: This process's CPU time (user + system, all its threads).
CPU = Clock(time.process_time)


class Log(Clock):
    """Samples the candidates take themselves and ``record`` (a Keras callback's step times, the ms per step of a
    round in :mod:`benchmarks.steptime`): a mark is the log's length, and a call's samples are those it recorded."""

    def __init__(self):
        self.samples: list[float] = []
        super().__init__(lambda: len(self.samples))

    def record(self, sample: float) -> None:
        self.samples.append(sample)

    def between(self, start, end) -> list[float]:
        return self.samples[start:end]


@dataclass(frozen=True)
class Timings:
    """Each candidate's samples on one clock, in the order they were taken."""

    samples: dict[Hashable, list[float]]

    @property
    def medians(self) -> dict[Hashable, float]:
        """The median sample of each candidate that has samples."""
        return {name: statistics.median(values) for name, values in self.samples.items() if values}


def interleaved(
    candidates: Mapping[Hashable, Callable[[], Any]],
    rounds: int,
    warmup: int = 0,
    *,
    repeat: int = 1,
    lead: int = 0,
    rotate: bool = False,
    block: Callable[[Any], Any] | None = None,
    clocks: Sequence[Clock] = (WALL,),
) -> list[Timings]:
    """One :class:`Timings` per clock of ``candidates`` (functions of no arguments) timed in turn: after ``warmup``
    untimed calls of each, in each of ``rounds`` rounds every candidate makes ``lead`` untimed calls, then
    ``repeat`` timed ones (so that a timed call can follow one of its own, as in training). With ``rotate``,
    round ``r`` starts at the ``r``-th candidate (A B C, B C A, C A B, …), so that none always follows the same
    one. ``block`` (e.g. ``jax.block_until_ready``) is called on every call's result, so that a timed call
    starts and is marked done with the device idle."""
    done = block or (lambda result: result)
    names = list(candidates)
    for name in names:
        for _ in range(warmup):
            done(candidates[name]())
    marks: dict[Hashable, list] = {name: [] for name in names}
    for index in range(rounds):
        shift = index % len(names) if rotate else 0
        for name in names[shift:] + names[:shift]:
            for _ in range(lead):
                done(candidates[name]())
            for _ in range(repeat):
                start = [clock.read() for clock in clocks]
                done(candidates[name]())
                marks[name].append((start, [clock.read() for clock in clocks]))
    return [
        Timings({name: [s for start, end in marks[name] for s in clock.between(start[i], end[i])] for name in names})
        for i, clock in enumerate(clocks)
    ]
