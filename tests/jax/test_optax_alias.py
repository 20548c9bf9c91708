"""optax's own generic optimizer tests run on ``neat.optax.ng_adam``: ``AliasTest`` of the installed
wheel's ``optax/_src/alias_test.py`` (its code, not a copy).

How. ``AliasTest``'s generic tests are parameterized over the wheel's ``_OPTIMIZERS_UNDER_TEST``,
expanded by absl's ``parameterized`` when the class is built at import, so patching that tuple
afterwards changes nothing (and a reload would assign it again). Instead this module builds its
own absl parameterized class from the wheel's test functions: every generated ``AliasTest``
method whose parameters are those of the reference entry ``adamw`` (``opt_name`` and
``opt_kwargs``: the generic tests; ``test_explicit_dtype``, about ``mu_dtype``, has no
``opt_kwargs`` and is not generic) gives its test function (``__wrapped__``, set by absl's
``functools.wraps``) and its other parameters (target, dtype, …, read from the generated method's
closure, ``testcase_params``); the class runs that function with those parameters for each entry
of :data:`NEAT_UNDER_TEST`. So a new axis or a new generic test in a later wheel is picked up,
and :func:`test_the_generic_alias_tests_are_found` fails if the wheel's layout changes. The
wheel's ``_get_opt`` (``getattr(optax._src.alias, name)``) is patched during these tests to also
resolve NEAT's names.

CI: ``python -m pytest tests/jax/test_optax_alias.py`` (absl's parameterized tests run under pytest).
"""

import inspect
from collections.abc import Mapping
from unittest import mock

from absl.testing import parameterized
from optax._src import alias_test

import neat.optax

#: The entry of ``_OPTIMIZERS_UNDER_TEST`` whose cases are replayed on NEAT (same signature and defaults).
REFERENCE = "adamw"

#: NEAT's entries, as the wheel writes its own (with a learning rate per optimizer): the default game,
#: and NGE removing the whole conflicting projection. At ``learning_rate=1e-1`` (adamw's entry) NG-Adam
#: does not always converge on the Rosenbrock targets: on a one-player problem NGE strips the braking
#: part of a gradient that opposes the last direction, and the run can slide along the valley
#: (defaults, complex64: 1.04 from the minimizer after 10000 steps; gamma=1, zeta=0.2, float32: 24).
#: At 1e-2 both entries end within 8e-3 of it on every target (the test allows 3e-2).
NEAT_UNDER_TEST = (
    {"opt_name": "neat_ng_adam", "opt_kwargs": {"learning_rate": 1e-2}},
    {"opt_name": "neat_ng_adam", "opt_kwargs": {"learning_rate": 1e-2, "gamma": 1.0, "zeta": 0.05}},
)
FACTORIES = {"neat_ng_adam": neat.optax.ng_adam}

#: The generic tests of optax 0.2.8's ``AliasTest`` (later wheels may add more).
GENERIC = {
    "test_optimization",
    "test_optimizers_accept_extra_args",
    "test_optimizers_can_be_wrapped_in_inject_hyperparams",
    "test_preserve_dtype",
    "test_state_shape_dtype_shard_stability",
    "test_gradient_accumulation",
}


def _generic_tests() -> dict:
    """``{name: (the wheel's test function, [its parameters other than the optimizer, per reference case])}``."""
    found: dict = {}
    for name, method in vars(alias_test.AliasTest).items():
        if not name.startswith("test") or not callable(method) or not hasattr(method, "__wrapped__"):
            continue
        params = inspect.getclosurevars(method).nonlocals.get("testcase_params")
        if isinstance(params, Mapping) and params.get("opt_name") == REFERENCE and "opt_kwargs" in params:
            test = method.__wrapped__
            found.setdefault(test.__name__, (test, []))[1].append(
                {key: value for key, value in params.items() if key not in ("opt_name", "opt_kwargs")}
            )
    return found


def _label(value) -> str:
    return getattr(value, "__name__", str(value)).lstrip("_")


def _neat_cases(cases: list) -> list:
    """Each reference case with each NEAT entry, named ``<entry>_<parameters>``."""
    return [
        dict(entry, **case, testcase_name="_".join([f"neat{number}", *map(_label, case.values())]))
        for number, entry in enumerate(NEAT_UNDER_TEST)
        for case in cases
    ]


_WHEELS_GET_OPT = alias_test._get_opt


def _get_opt(test_case, opt_name: str):
    """The wheel's ``_get_opt``, knowing NEAT's names too."""
    return FACTORIES[opt_name] if opt_name in FACTORIES else _WHEELS_GET_OPT(test_case, opt_name)


class _WithNeatOptimizers(parameterized.TestCase):
    def setUp(self):
        super().setUp()
        patcher = mock.patch.object(alias_test, "_get_opt", _get_opt)
        patcher.start()
        self.addCleanup(patcher.stop)


GENERIC_TESTS = _generic_tests()

NeatAliasTest = type(
    "NeatAliasTest",
    (_WithNeatOptimizers,),
    {name: parameterized.named_parameters(*_neat_cases(cases))(test) for name, (test, cases) in GENERIC_TESTS.items()},
)


def test_the_generic_alias_tests_are_found():
    """The discovery above still matches the wheel: every generic test of optax 0.2.8 is replayed on
    as many cases as each optimizer of ``_OPTIMIZERS_UNDER_TEST`` has in ``AliasTest``."""
    assert GENERIC <= set(GENERIC_TESTS), sorted(GENERIC - set(GENERIC_TESTS))
    optimizers = len(alias_test._OPTIMIZERS_UNDER_TEST)
    for name, (_, cases) in GENERIC_TESTS.items():
        generated = sum(1 for method in vars(alias_test.AliasTest) if method.rstrip("0123456789") == name)
        assert len(cases) >= 1 and generated == optimizers * len(cases), (name, generated, len(cases))
