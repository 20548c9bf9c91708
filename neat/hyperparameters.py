"""The hyperparameter schema: NG-Adam's nine hyperparameters, once (docs/spec.md "Hyperparameters").

Each :class:`Hyperparameter` has its name, symbol, default, validation rule, whether it may change
between steps and per parameter group (SPEC v2.1: ``η, ω, β1, β2, ε``) or is fixed for a run
(``γ, ζ, μ, λmin, λmax, ρ``: a change is refused, never ignored), and its spelling in each
framework's optimizer signature. Everything else derives from :data:`SCHEMA`: the core's
defaults and :class:`neat.config.NGAdamConfig`, the checkpoint's fixed-for-a-run entries, the
front ends' keyword names, the numba kernels' argument layout.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: The frameworks whose optimizer signatures spell hyperparameters their own way.
FRAMEWORKS = ("torch", "optax", "keras")


@dataclass(frozen=True)
class Rule:
    """One component's valid range: ``holds(value)`` and the rule as the error message states it."""

    holds: Callable[[float], bool]
    text: str


@dataclass(frozen=True)
class Hyperparameter:
    """One hyperparameter. ``rules``: one per component (a pair has two); ``per_step``: may change
    between steps and per group; ``spellings``: the framework's keyword(s) where they differ from
    ``name`` (a pair may be spelled as two keywords, optax ``b1, b2``); ``framework_defaults``: the
    framework front end's default where it follows that framework's own optimizer."""

    name: str
    symbol: str
    meaning: str
    default: Any
    rules: tuple[Rule, ...]
    per_step: bool
    spellings: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    framework_defaults: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_pair(self) -> bool:
        return len(self.rules) == 2

    def keywords(self, framework: str | None) -> tuple[str, ...]:
        """The keyword(s) of this hyperparameter in ``framework``'s signature (``None``: the core's)."""
        return self.spellings.get(framework or "", (self.name,))

    def default_in(self, framework: str | None = None) -> Any:
        """The default of ``framework``'s front end (``None``: the core's)."""
        return self.framework_defaults.get(framework, self.default) if framework else self.default

    def validated(self, value) -> Any:
        """``value`` as float(s), or ``ValueError`` naming the hyperparameter and the broken rule."""
        if not self.is_pair:
            number = _number(self.name, value)
            _check(self.rules[0], self.name, number)
            return number
        try:
            first, second = value
        except (TypeError, ValueError):
            raise ValueError(f"Invalid {self.name}: {value!r} (expected a pair of numbers)") from None
        pair = _number(f"{self.name}[0]", first), _number(f"{self.name}[1]", second)
        for index, (rule, number) in enumerate(zip(self.rules, pair)):
            _check(rule, f"{self.name}[{index}]", number)
        return pair


def _number(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"Invalid {name}: {value!r} (expected a real number)")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"Invalid {name}: {value!r} (must be finite)")
    return value


def _check(rule: Rule, name: str, value: float) -> None:
    if not rule.holds(value):
        raise ValueError(f"Invalid {name}: {value!r} (must satisfy {rule.text})")


def _at_least_zero(name: str) -> Rule:
    return Rule(lambda x: x >= 0, f"{name} >= 0")


def _unit_interval(name: str) -> Rule:
    return Rule(lambda x: 0 <= x < 1, f"0 <= {name} < 1")


#: The schema. NEAT's own defaults (gamma, zeta, mu, step_bounds, leak) were kept by the
#: one-at-a-time sweep of the benchmark suite; rule and evidence in
#: ``benchmarks/results/v1/defaults.md`` (``python -m benchmarks sweep W1 … W5``).
SCHEMA: tuple[Hyperparameter, ...] = (
    Hyperparameter(
        "lr",
        "η",
        "learning rate",
        1e-3,
        (_at_least_zero("lr"),),
        per_step=True,
        spellings={"optax": ("learning_rate",), "keras": ("learning_rate",)},
    ),
    Hyperparameter(
        "betas",
        "β1, β2",
        "moment decay rates",
        (0.9, 0.999),
        (_unit_interval("beta1"), _unit_interval("beta2")),
        per_step=True,
        spellings={"optax": ("b1", "b2"), "keras": ("beta_1", "beta_2")},
    ),
    Hyperparameter(
        "eps",
        "ε",
        "added after the square root, as in AdamW",
        1e-8,
        (_at_least_zero("eps"),),
        per_step=True,
        spellings={"keras": ("epsilon",)},
        framework_defaults={"keras": 1e-7},
    ),
    Hyperparameter(
        "weight_decay",
        "ω",
        "decoupled weight decay, as in AdamW",
        0.0,
        (_at_least_zero("weight_decay"),),
        per_step=True,
        framework_defaults={"torch": 1e-2, "optax": 1e-4, "keras": 0.004},
    ),
    Hyperparameter("gamma", "γ", "NGE strength", 0.5, (Rule(lambda x: 0 <= x <= 1, "0 <= gamma <= 1"),), False),
    Hyperparameter("zeta", "ζ", "NSA rate on the log-step", 0.05, (_at_least_zero("zeta"),), False),
    Hyperparameter("mu", "μ", "coupling strength of the player graph", 1.0, (_at_least_zero("mu"),), False),
    Hyperparameter(
        "step_bounds",
        "λmin, λmax",
        "bounds of a player's multiplier",
        (0.5, 2.0),
        (Rule(lambda x: 0 < x <= 1, "0 < min <= 1"), Rule(lambda x: x >= 1, "max >= 1")),
        per_step=False,
    ),
    Hyperparameter("leak", "ρ", "pull of the log-step back towards 0", 0.01, (_unit_interval("leak"),), False),
)

BY_NAME: dict[str, Hyperparameter] = {h.name: h for h in SCHEMA}
#: The names, in the schema's order (that of :class:`neat.config.NGAdamConfig`).
NAMES: tuple[str, ...] = tuple(BY_NAME)
#: May change between steps and per parameter group (SPEC v2.1).
PER_STEP: tuple[str, ...] = tuple(h.name for h in SCHEMA if h.per_step)
#: Fixed for a run: the game's hyperparameters; a change is refused with :func:`fixed_error`.
FIXED_FOR_A_RUN: tuple[str, ...] = tuple(h.name for h in SCHEMA if not h.per_step)
#: The core's defaults.
DEFAULTS: dict[str, Any] = {h.name: h.default for h in SCHEMA}


def defaults_in(framework: str) -> dict[str, Any]:
    """``{core name: default}`` of ``framework``'s front end."""
    return {h.name: h.default_in(framework) for h in SCHEMA}


def core_values(framework: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` keyed by ``framework``'s keywords as ``{core name: value}`` (a pair spelled as two
    keywords joined into one tuple); keywords of no hyperparameter, and hyperparameters absent from
    ``values``, are left out."""
    found = {}
    for spec in SCHEMA:
        keywords = spec.keywords(framework)
        if all(k in values for k in keywords):
            found[spec.name] = tuple(values[k] for k in keywords) if len(keywords) == 2 else values[keywords[0]]
    return found


def framework_values(framework: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` keyed by the core's names as ``framework``'s keyword arguments (a pair spelled as
    two keywords split in two): the inverse of :func:`core_values`."""
    keywords: dict[str, Any] = {}
    for name, value in values.items():
        spelled = BY_NAME[name].keywords(framework)
        keywords.update(zip(spelled, value) if len(spelled) == 2 else {spelled[0]: value})
    return keywords


def fixed_error(name: str, value, current) -> ValueError:
    """The error for a changed fixed-for-a-run hyperparameter (SPEC v2.1: refused, never ignored)."""
    return ValueError(
        f"{name} is fixed for a run (it was {current!r}, now {value!r}): build a new optimizer to change it"
    )
