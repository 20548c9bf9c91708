"""The validated hyperparameters of a run (:class:`NGAdamConfig`, the schema's typed record) and
those one step reads (:class:`StepHyperparameters`); names, defaults and rules are
:mod:`neat.hyperparameters`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

from neat.hyperparameters import BY_NAME, DEFAULTS, NAMES

__all__ = ["DEFAULTS", "NGAdamConfig", "StepHyperparameters"]


@dataclass(frozen=True)
class NGAdamConfig:
    """Validated NG-Adam hyperparameters; invalid values raise ``ValueError`` naming them."""

    lr: float = DEFAULTS["lr"]
    betas: tuple[float, float] = DEFAULTS["betas"]
    eps: float = DEFAULTS["eps"]
    weight_decay: float = DEFAULTS["weight_decay"]
    gamma: float = DEFAULTS["gamma"]
    zeta: float = DEFAULTS["zeta"]
    mu: float = DEFAULTS["mu"]
    step_bounds: tuple[float, float] = DEFAULTS["step_bounds"]
    leak: float = DEFAULTS["leak"]

    def __post_init__(self):
        for name in NAMES:  # the schema's rules, in its order (neat.hyperparameters)
            object.__setattr__(self, name, BY_NAME[name].validated(getattr(self, name)))

    @property
    def log_step_bounds(self) -> tuple[float, float]:
        """``(log λmin, log λmax)``, the clip range of the log-step (SPEC step 7)."""
        return math.log(self.step_bounds[0]), math.log(self.step_bounds[1])


class StepHyperparameters(NamedTuple):
    """The hyperparameters one step reads (SPEC steps 2–9), under the names :class:`NGAdamConfig`
    gives them, so :func:`neat.functional.step` takes either. For a framework that traces them
    (optax ``inject_hyperparams``, SPEC "per-step η, ω and traced hyperparameters"): the values
    may be 0-d arrays and are not validated here (the front end validates concrete ones)."""

    lr: Any
    betas: tuple[Any, Any]
    eps: Any
    weight_decay: Any
    gamma: Any
    zeta: Any
    leak: Any
    log_step_bounds: tuple[Any, Any]

    @classmethod
    def read(cls, config, **changes) -> StepHyperparameters:
        """What a step reads of ``config`` (an :class:`NGAdamConfig` or a step's values), with
        ``changes`` (a step's own ``lr``, ``betas``… by name)."""
        return cls(**{name: changes[name] if name in changes else getattr(config, name) for name in cls._fields})

    @classmethod
    def of(cls, values, log=math.log) -> StepHyperparameters:
        """What a step reads of ``values`` (a mapping by the schema's names, numbers or arrays):
        everything but ``mu`` (in the tables' ``S``), ``step_bounds`` as their logs by ``log``."""
        low, high = values["step_bounds"]
        read = {name: values[name] for name in cls._fields if name != "log_step_bounds"}
        return cls(**dict(read, betas=tuple(values["betas"])), log_step_bounds=(log(low), log(high)))
