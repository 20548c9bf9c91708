"""The pytest plug-in of the conformance suite.

It adds the options ``--neat-backend``, ``--neat-adapter`` (which rows to run:
comma-separated names or shell patterns; all rows when neither is given),
``--neat-kernels`` (which kernel sets the backend rows use) and
``--neat-matrix=PATH``; parametrizes the checks (tests marked ``neat_check``)
over the backend rows (backend × kernel set × dtype, :func:`discovery.backend_rows`),
the adapters and their dtypes, and the golden problems; and prints the matrix
row × check at the end of the session.

Golden-problem fixtures: ``golden_problem`` (every tensor active on every step),
``inactive_problem`` (some gradients are ``None``), ``skipping_problem`` (every
tensor active, some steps skipped) and ``any_problem``.
"""

from __future__ import annotations

import sys

import pytest

from neat.conformance import discovery, runner
from neat.conformance.matrix import FAILED, PASSED, SKIPPED, Matrix
from neat.conformance.tolerances import DTYPES
from neat.plugins import AdapterInfo, BackendInfo

MATRIX = pytest.StashKey[Matrix]()
CELLS = pytest.StashKey[dict]()
SELECTION = pytest.StashKey[dict]()


def pytest_addoption(parser):
    group = parser.getgroup("neat", "NEAT conformance suite")
    group.addoption(
        "--neat-backend",
        action="append",
        default=None,
        metavar="NAME",
        help="check only these backends (names or shell patterns, comma-separated, repeatable)",
    )
    group.addoption(
        "--neat-adapter",
        action="append",
        default=None,
        metavar="NAME",
        help="check only these adapters (names or shell patterns, comma-separated, repeatable)",
    )
    group.addoption(
        "--neat-kernels",
        action="append",
        default=None,
        metavar="NAME",
        help="backend rows only for these kernel sets (names or shell patterns, comma-separated)",
    )
    group.addoption(
        "--neat-matrix",
        default=None,
        metavar="PATH",
        help="also write the conformance matrix to PATH (JSON if it ends in .json, else text)",
    )


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "neat_check(name, row=None, registration=False): a NEAT conformance "
        "check (a matrix column); name and row may use {neat_dtype}-style "
        "fields of the parameters; registration=True also gets broken adapters "
        "(a backend check taking the backend_row fixture gets every row)",
    )
    config.stash[MATRIX] = Matrix()
    config.stash[CELLS] = {}
    config.pluginmanager.register(_Recorder(config), "neat-conformance-recorder")
    if config.getoption("neat_backend") or config.getoption("neat_adapter"):
        selection(config)  # an unknown name is a usage error before collection starts


def _patterns(values):
    if values is None:
        return None
    return [p.strip() for value in values for p in value.split(",") if p.strip()]


def selection(config) -> dict:
    """The rows to run: ``{"backends": [BackendRow...], "adapters": [...], "full": bool}``."""
    if SELECTION not in config.stash:
        backends, adapters = _patterns(config.getoption("neat_backend")), _patterns(config.getoption("neat_adapter"))
        full = backends is None and adapters is None
        try:
            config.stash[SELECTION] = {
                "backends": discovery.backend_rows(
                    discovery.select(discovery.backends(), None if full else backends or [], "backend"),
                    _patterns(config.getoption("neat_kernels")),
                ),
                "adapters": discovery.select(discovery.adapters(), None if full else adapters or [], "adapter"),
                "full": full,
            }
        except LookupError as error:
            raise pytest.UsageError(str(error)) from None
    return config.stash[SELECTION]


def _skip_marks(record, kind: str) -> list:
    unavailable = discovery.unavailable_reason(record)
    return [pytest.mark.skip(reason=f"{kind} {record.name}: {unavailable}")] if unavailable else []


def _adapter_params(records, with_dtype: bool) -> list:
    """One parameter per adapter (and per dtype it declares), skipped with the reason where it cannot run."""
    params = []
    for record in records:
        marks = _skip_marks(record, "adapter")
        if with_dtype:
            params += [
                pytest.param(record, dtype, marks=marks, id=f"{record.name}-{dtype}")
                for dtype in DTYPES
                if dtype in record.dtypes
            ]
        else:
            params.append(pytest.param(record, marks=marks, id=record.name))
    return params


def _backend_params(rows, with_dtype: bool) -> list:
    """``(backend, kernel set[, dtype])`` per row (and per dtype the row's kernel set runs)."""
    params = []
    for row in rows:
        marks = _skip_marks(row.backend, "backend")
        ident = row.backend.name if row.kernel_set is None else f"{row.backend.name}-{row.kernel_set}"
        if with_dtype:
            params += [
                pytest.param(row.backend, row.kernel_set, dtype, marks=marks, id=f"{ident}-{dtype}")
                for dtype in DTYPES
                if dtype in row.dtypes
            ]
        else:
            params.append(pytest.param(row.backend, row.kernel_set, marks=marks, id=ident))
    return params


#: Golden-problem fixtures and the problems each one runs.
PROBLEM_FIXTURES = {
    "golden_problem": lambda p: not p.has_inactive,
    "inactive_problem": lambda p: p.has_inactive,
    "skipping_problem": lambda p: not p.has_inactive and bool(p.skipped_steps),
    "any_problem": lambda p: True,
}


def pytest_generate_tests(metafunc):
    marker = metafunc.definition.get_closest_marker("neat_check")
    if marker is None:
        return
    chosen = selection(metafunc.config)
    names = metafunc.fixturenames
    with_dtype = "neat_dtype" in names
    registration = marker.kwargs.get("registration", False)
    if "backend_row" in names:  # registration: every row, broken ones included
        metafunc.parametrize("backend_row", chosen["backends"], ids=[r.name for r in chosen["backends"]])
    if "neat_backend" in names:
        rows = [r for r in chosen["backends"] if not isinstance(r.backend, discovery.BrokenPlugin) and r.error is None]
        metafunc.parametrize(
            ["neat_backend", "kernel_set", "neat_dtype"][: 3 if with_dtype else 2], _backend_params(rows, with_dtype)
        )
    if "neat_adapter" in names:
        records = chosen["adapters"]
        if registration:
            metafunc.parametrize("neat_adapter", records, ids=[r.name for r in records])
        else:
            working = [r for r in records if not isinstance(r, discovery.BrokenPlugin)]
            metafunc.parametrize(
                ["neat_adapter", "neat_dtype"] if with_dtype else "neat_adapter", _adapter_params(working, with_dtype)
            )
    for fixture, wanted in PROBLEM_FIXTURES.items():
        if fixture in names:
            metafunc.parametrize(fixture, sorted(name for name, p in runner.problems().items() if wanted(p)))


def _cell(item) -> tuple[str, str] | None:
    marker = item.get_closest_marker("neat_check")
    if marker is None:
        return None
    params = getattr(getattr(item, "callspec", None), "params", {})
    fields = {key: getattr(value, "name", value) for key, value in params.items()}
    if "backend_row" in params:
        row = f"backend {fields['backend_row']}"
    elif "neat_backend" in params:
        kernel_set = params.get("kernel_set")
        row = f"backend {fields['neat_backend']}" + (f" [{kernel_set}]" if kernel_set else "")
    elif "neat_adapter" in params:
        row = f"adapter {fields['neat_adapter']}"
    else:
        row = marker.kwargs["row"].format(**fields)
    return row, marker.args[0].format(**fields)


_ROW_TYPES = (BackendInfo, AdapterInfo, discovery.BrokenPlugin, discovery.BackendRow)


def pytest_collection_modifyitems(session, config, items):
    cells, matrix = config.stash[CELLS], config.stash[MATRIX]
    kept, dropped = [], []
    for item in items:
        cell = _cell(item)
        if cell is None:
            kept.append(item)
            continue
        params = getattr(getattr(item, "callspec", None), "params", {})
        rows = [params[f] for f in ("backend_row", "neat_backend", "neat_adapter") if f in params]
        if any(not isinstance(row, _ROW_TYPES) for row in rows):
            dropped.append(item)  # the empty parameter set of a kind with no selected row
            continue
        if not selection(config)["full"] and not rows:
            dropped.append(item)  # the reference rows run only when no row is selected
            continue
        cells[item.nodeid] = cell
        matrix.declare(*cell)
        kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def _reason(report) -> str:
    if report.skipped:
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        return reason.removeprefix("Skipped: ")
    crash = getattr(report.longrepr, "reprcrash", None)
    message = crash.message if crash is not None else str(report.longrepr)
    return message.splitlines()[0] if message else "failed"


class _Recorder:
    """Fills the matrix from the test reports and prints it at the end of the session."""

    def __init__(self, config):
        self.config = config

    def pytest_runtest_logreport(self, report):
        cell = self.config.stash[CELLS].get(report.nodeid)
        if cell is None:
            return
        matrix = self.config.stash[MATRIX]
        if report.failed:
            matrix.add(*cell, FAILED, _reason(report))
        elif report.skipped:
            matrix.add(*cell, SKIPPED, _reason(report))
        elif report.when == "call":
            matrix.add(*cell, PASSED)

    def pytest_terminal_summary(self, terminalreporter):
        matrix = self.config.stash[MATRIX]
        if not matrix:
            return
        terminalreporter.write_sep("=", "NEAT conformance matrix")
        terminalreporter.write_line(matrix.render())
        path = self.config.getoption("neat_matrix")
        if path:
            matrix.write(path)
            terminalreporter.write_line(f"matrix written to {path}")


def child_command(matrix_path, *options: str) -> list[str]:
    """The command line of a child pytest session of the installed conformance suite (this
    interpreter) that writes its matrix to ``matrix_path``; ``options``: the suite's selections."""
    return [
        *(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "neat.conformance.plugin"),
        *("--pyargs", "neat.conformance", f"--neat-matrix={matrix_path}", *options),
    ]


def merge_child_matrix(config, data: dict, rename=lambda row: row) -> None:
    """Fold the matrix of a child pytest session (see ``test_keras_backends``) into this session's."""
    config.stash[MATRIX].merge(data, rename)
