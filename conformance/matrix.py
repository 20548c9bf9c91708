"""The conformance matrix: backend/adapter × check → pass / FAIL / skip, with the reasons.

A row is a backend stepped by one kernel set (``backend numpy [generic]``), an
adapter, or the reference. A cell gathers the outcomes of every test item of that
row and check (golden problems, dtypes…): any failure makes it ``FAIL``; otherwise any pass makes
it ``pass`` (``pass*`` when some items were skipped); otherwise it is ``skip``.
"""

from __future__ import annotations

import json
from pathlib import Path

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"

#: Known checks in the order of the matrix columns; others follow in the order they appear.
COLUMN_ORDER = [
    "registration",
    "golden/float64",
    "golden/float32",
    "golden/float16",
    "golden/bfloat16",
    "diagnostics",
    "inactive",
    "per-tensor",
    "adamw",
    "skips",
    "state",
    "bad-input",
    "subprocess",
]
_NOTES_PER_CELL = 2


class Matrix:
    """Outcomes by ``(row, check)``; rows sorted by name, checks in :data:`COLUMN_ORDER`."""

    def __init__(self):
        self.cells: dict[tuple[str, str], list[tuple[str, str]]] = {}

    def declare(self, row: str, check: str) -> None:
        self.cells.setdefault((row, check), [])

    def add(self, row: str, check: str, outcome: str, reason: str = "") -> None:
        self.cells.setdefault((row, check), []).append((outcome, reason))

    def __bool__(self) -> bool:
        return bool(self.cells)

    @property
    def rows(self) -> list[str]:
        return sorted({row for row, _ in self.cells})

    @property
    def checks(self) -> list[str]:
        found = list(dict.fromkeys(check for _, check in self.cells))
        return sorted(
            found, key=lambda c: (COLUMN_ORDER.index(c) if c in COLUMN_ORDER else len(COLUMN_ORDER), found.index(c))
        )

    def status(self, row: str, check: str) -> tuple[str, list[str]] | None:
        """``(label, reasons)`` of a cell, or ``None`` when the row has no such check."""
        if (row, check) not in self.cells:
            return None
        outcomes = self.cells[(row, check)]
        kinds = {outcome for outcome, _ in outcomes}
        failures = list(dict.fromkeys(r for o, r in outcomes if o == FAILED))
        skips = list(dict.fromkeys(r for o, r in outcomes if o == SKIPPED))
        if FAILED in kinds:
            return "FAIL", failures
        if PASSED in kinds:
            return ("pass*" if skips else "pass"), skips
        return ("skip" if outcomes else "not run"), skips

    @property
    def failed(self) -> bool:
        return any(self.status(row, check)[0] == "FAIL" for row, check in self.cells)

    def to_dict(self) -> dict:
        table: dict = {}
        for row, check in self.cells:
            label, reasons = self.status(row, check)
            table.setdefault(row, {})[check] = {"status": label, "reasons": reasons}
        return {"rows": table}

    def merge(self, data: dict, rename=lambda row: row) -> None:
        """Add the cells of another session's :meth:`to_dict` (e.g. a child process), rows renamed by ``rename``."""
        reasons_are = {"FAIL": FAILED, "pass*": SKIPPED, "skip": SKIPPED, "not run": SKIPPED, "pass": PASSED}
        for row, checks in data["rows"].items():
            for check, cell in checks.items():
                status = cell["status"]
                for reason in cell["reasons"] or ([""] if status in ("FAIL", "skip") else []):
                    self.add(rename(row), check, reasons_are[status], reason)
                if status in ("pass", "pass*"):
                    self.add(rename(row), check, PASSED)

    def render(self) -> str:
        """A plain-text table, then one line per skipped or failed cell with its reason."""
        checks = self.checks
        header = ["", *checks]
        lines = [[row, *((self.status(row, c) or ("—", []))[0] for c in checks)] for row in self.rows]
        widths = [max(len(str(line[i])) for line in [header, *lines]) for i in range(len(header))]
        text = ["  ".join(str(cell).ljust(w) for cell, w in zip(line, widths)).rstrip() for line in [header, *lines]]
        notes = []
        for row in self.rows:
            statuses = {c: self.status(row, c) for c in checks if self.status(row, c)}
            labels = {label for label, _ in statuses.values()}
            reasons = {tuple(r) for _, r in statuses.values()}
            if labels == {"skip"} and len(reasons) == 1:
                notes.append(f"{row}: every check skipped: {'; '.join(next(iter(reasons)))}")
                continue
            for check, (label, why) in statuses.items():
                if label != "pass":
                    more = f" (and {len(why) - _NOTES_PER_CELL} more)" if len(why) > _NOTES_PER_CELL else ""
                    notes.append(f"{row} × {check}: {label}: {'; '.join(why[:_NOTES_PER_CELL])}{more}")
        return "\n".join(text + ([""] + notes if notes else []))

    def write(self, path: str | Path) -> None:
        """JSON when ``path`` ends in ``.json``, else the rendered text."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".json":
            path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        else:
            path.write_text(self.render() + "\n")
