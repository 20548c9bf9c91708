"""Results as JSON lines: one line per run, appended to ``<results>/<workload>.jsonl``."""

from __future__ import annotations

import json
import os
from pathlib import Path


def path_for(results: Path, workload: str, kind: str = "") -> Path:
    return Path(results) / f"{workload}{'_' + kind if kind else ''}.jsonl"


def append(path: Path, record: dict) -> None:
    """One line, one ``write`` on an ``O_APPEND`` descriptor, so concurrent runs never interleave."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def load(path: Path) -> list[dict]:
    if not Path(path).exists():
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


PHASES = ("tune", "seed", "target", "sweep", "steptime")


def load_all(results: Path) -> list[dict]:
    """Every benchmark record under ``results`` (``*.jsonl`` lines with a known ``phase``; other
    tools' files in the same folder are left alone)."""
    return [
        r
        for p in sorted(Path(results).glob("*.jsonl"))
        for r in load(p)
        if isinstance(r, dict) and r.get("phase") in PHASES
    ]


def key(record: dict) -> tuple:
    """What makes a run unique: resuming skips a run whose key is already recorded."""
    return (
        record["workload"],
        record["optimizer"],
        record["phase"],
        record.get("trial"),
        record.get("round", 0),
        record["seed"],
        record["steps"],
        json.dumps(record["hp"], sort_keys=True),
        json.dumps(record.get("schedule"), sort_keys=True),
    )
