"""What code produced a record: a hash of the harness and the library source, the git revision,
and whether those files differ from the committed revision (the dirty flag).

The digest covers ``benchmarks/*.py`` and every ``*.py`` under ``neat/``, ``backends/`` and
``adapters/`` of the checkout that is imported, as they are on disk when the process starts
(computed once per process); ``dirty`` is ``git status --porcelain`` on the same files (not on
the results a run appends to, which would make every recording run dirty).
"""

from __future__ import annotations

import functools
import hashlib
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HARNESS = ("benchmarks",)
LIBRARY = ("neat", "backends", "adapters")


def _pattern(folder: str) -> str:
    """The Python files of ``folder`` that a digest covers (the harness: its top level only)."""
    return f"{folder}/*.py" if folder == "benchmarks" else f"{folder}/**/*.py"


def _files(folders, root: Path) -> list[Path]:
    return [p for folder in folders for p in sorted(root.glob(_pattern(folder))) if p.is_file()]


def digest(folders, root: Path = ROOT) -> str:
    """sha256 (12 hex digits) over the relative paths and bytes of the folders' Python files."""
    h = hashlib.sha256()
    for path in _files(folders, root):
        h.update(str(path.relative_to(root)).encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()[:12]


def _git(*args, root: Path = ROOT) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def dirty(folders=HARNESS + LIBRARY, root: Path = ROOT) -> bool | None:
    """True when a tracked or untracked Python file the digest of ``folders`` covers differs from
    HEAD (None: no git)."""
    status = _git("status", "--porcelain", "--", *(f":(glob){_pattern(folder)}" for folder in folders), root=root)
    return None if status is None else bool(status.strip())


@functools.lru_cache(maxsize=1)
def current() -> dict:
    """``{harness, library, source, git, dirty}`` for this process (cached at first use)."""
    revision = _git("rev-parse", "--short", "HEAD")
    return dict(
        harness=digest(HARNESS),
        library=digest(LIBRARY),
        source=digest(HARNESS + LIBRARY),
        git=revision.strip() if revision else None,
        dirty=dirty(),
    )
