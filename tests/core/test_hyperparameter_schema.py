"""Every front end's signature, the config and the checkpoint agree with the hyperparameter schema
(:mod:`neat.hyperparameters`): the same keywords, in each framework's spelling, with the schema's defaults."""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import inspect

import pytest

import neat
from neat import checkpoint, hyperparameters
from neat.config import NGAdamConfig
from neat.hyperparameters import SCHEMA

#: ``(module, attribute, framework, hyperparameters it takes)``: the public entry points.
FRONT_ENDS = [
    ("neat", "ng_adam", None, hyperparameters.NAMES),
    ("neat", "NGAdam", None, hyperparameters.NAMES),
    ("neat.torch", "NGAdam", "torch", hyperparameters.NAMES),
    ("neat.optax", "ng_adam", "optax", hyperparameters.NAMES),
    (
        "neat.optax",
        "scale_by_ng_adam",
        "optax",
        tuple(n for n in hyperparameters.NAMES if n not in ("lr", "weight_decay")),
    ),
    ("neat.keras", "NGAdam", "keras", hyperparameters.NAMES),
]
NEEDS = {"neat.torch": "torch", "neat.optax": "optax", "neat.keras": "keras"}


def _entry(module_name, attribute):
    needed = NEEDS.get(module_name)
    if needed and importlib.util.find_spec(needed) is None:
        pytest.skip(f"{needed} is an optional framework")
    entry = getattr(importlib.import_module(module_name), attribute)
    return entry.__init__ if inspect.isclass(entry) else entry


@pytest.mark.parametrize(("module_name", "attribute", "framework", "names"), FRONT_ENDS)
def test_signature_spells_every_hyperparameter_with_the_schema_default(module_name, attribute, framework, names):
    parameters = inspect.signature(_entry(module_name, attribute)).parameters
    for name in names:
        spec = hyperparameters.BY_NAME[name]
        keywords, default = spec.keywords(framework), spec.default_in(framework)
        assert all(k in parameters for k in keywords), f"{module_name}.{attribute} lacks {keywords}"
        found = tuple(parameters[k].default for k in keywords)
        if name == "lr" and framework == "optax":  # optax.adamw's learning_rate is required
            assert found == (inspect.Parameter.empty,)
            continue
        expected = default if len(keywords) == 2 else (default,)
        assert found == tuple(expected), f"{module_name}.{attribute}: {keywords} default {found} != schema {expected}"


def test_config_is_the_schema_typed_record():
    fields = dataclasses.fields(NGAdamConfig)
    assert tuple(f.name for f in fields) == hyperparameters.NAMES
    assert NGAdamConfig() == NGAdamConfig(**hyperparameters.DEFAULTS)
    assert neat.DEFAULTS == hyperparameters.DEFAULTS


def test_checkpoint_lists_come_from_the_schema():
    assert checkpoint.HYPERPARAMETERS == hyperparameters.NAMES
    assert set(checkpoint.FIXED_FOR_A_RUN) - {"graph"} == set(hyperparameters.FIXED_FOR_A_RUN)
    assert set(hyperparameters.PER_STEP) == {"lr", "betas", "eps", "weight_decay"}  # SPEC v2.1


@pytest.mark.parametrize("spec", SCHEMA, ids=lambda h: h.name)
def test_every_rule_refuses_a_value_outside_it_by_name(spec):
    """Each component's default passes; a value just outside the rule raises ``ValueError`` naming it."""
    assert spec.validated(spec.default) == spec.default
    outside = {"lr": -1.0, "eps": -1.0, "weight_decay": -1.0, "gamma": 1.5, "zeta": -1.0, "mu": -1.0, "leak": 1.0}
    if spec.is_pair:
        bad_pairs = {"betas": [(1.0, 0.999), (0.9, -0.1)], "step_bounds": [(0.0, 2.0), (0.5, 0.9)]}[spec.name]
        for index, bad in enumerate(bad_pairs):
            with pytest.raises(ValueError, match=rf"Invalid {spec.name}\[{index}\]"):
                spec.validated(bad)
        with pytest.raises(ValueError, match=rf"Invalid {spec.name}: .*expected a pair"):
            spec.validated(0.5)
    else:
        with pytest.raises(ValueError, match=rf"Invalid {spec.name}: .*must satisfy"):
            spec.validated(outside[spec.name])
    with pytest.raises(ValueError, match="expected a real number"):
        spec.validated((True, True) if spec.is_pair else "1")
