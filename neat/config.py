"""Hyperparameters of NG-Adam and their validation (docs/spec.md, "Hyperparameters")."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, NamedTuple

#: Defaults. NEAT's own (gamma, zeta, mu, step_bounds, leak) were kept by the
#: one-at-a-time sweep of the benchmark suite; rule and evidence in
#: ``benchmarks/results/v1/defaults.md`` (``python -m benchmarks sweep W1 … W5``).
DEFAULTS: dict[str, Any] = dict(
    lr=1e-3,
    betas=(0.9, 0.999),
    eps=1e-8,
    weight_decay=0.0,
    gamma=0.5,
    zeta=0.05,
    mu=1.0,
    step_bounds=(0.5, 2.0),
    leak=0.01,
)


def _number(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"Invalid {name}: {value!r} (expected a real number)")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"Invalid {name}: {value!r} (must be finite)")
    return value


def _pair(name: str, value) -> tuple[float, float]:
    try:
        first, second = value
    except (TypeError, ValueError):
        raise ValueError(f"Invalid {name}: {value!r} (expected a pair of numbers)") from None
    return _number(f"{name}[0]", first), _number(f"{name}[1]", second)


def _require(ok: bool, name: str, value, rule: str) -> None:
    if not ok:
        raise ValueError(f"Invalid {name}: {value!r} (must satisfy {rule})")


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
        scalars = {
            name: _number(name, getattr(self, name))
            for name in ("lr", "eps", "weight_decay", "gamma", "zeta", "mu", "leak")
        }
        for name, value in scalars.items():
            object.__setattr__(self, name, value)
        beta1, beta2 = _pair("betas", self.betas)
        low, high = _pair("step_bounds", self.step_bounds)
        object.__setattr__(self, "betas", (beta1, beta2))
        object.__setattr__(self, "step_bounds", (low, high))
        _require(self.lr >= 0, "lr", self.lr, "lr >= 0")
        _require(0 <= beta1 < 1, "betas[0]", beta1, "0 <= beta1 < 1")
        _require(0 <= beta2 < 1, "betas[1]", beta2, "0 <= beta2 < 1")
        _require(self.eps >= 0, "eps", self.eps, "eps >= 0")
        _require(self.weight_decay >= 0, "weight_decay", self.weight_decay, "weight_decay >= 0")
        _require(0 <= self.gamma <= 1, "gamma", self.gamma, "0 <= gamma <= 1")
        _require(self.zeta >= 0, "zeta", self.zeta, "zeta >= 0")
        _require(self.mu >= 0, "mu", self.mu, "mu >= 0")
        _require(0 < low <= 1, "step_bounds[0]", low, "0 < min <= 1")
        _require(high >= 1, "step_bounds[1]", high, "max >= 1")
        _require(0 <= self.leak < 1, "leak", self.leak, "0 <= leak < 1")

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
