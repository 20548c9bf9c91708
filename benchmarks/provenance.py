"""What code produced a record, and the check that a record's code is a commit's code.

A record's ``source`` holds the digests of the harness and the library, the git revision
(``git``: short, ``commit``: full) and whether those files differed from the commit (``dirty``).
The digest covers ``benchmarks/*.py`` and every ``*.py`` under ``neat/``, ``backends/`` and
``adapters/`` of the checkout that is imported, as they are on disk when the process starts
(computed once per process); ``dirty`` is ``git status --porcelain`` on the same files (not on
the results a run appends to, which would make every recording run dirty).

Protocol v3 records only from a clean tree (:func:`require_clean`; ``--allow-dirty`` records
``dirty: true`` and the report leaves such records out of its tables), and its report recomputes
each record's digests from ``git`` objects of the recorded commit (:func:`verify`).
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import subprocess
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parent.parent
HARNESS = ("benchmarks",)
LIBRARY = ("neat", "backends", "adapters")


class ProvenanceError(RuntimeError):
    """A record's code cannot be checked out, or the tree is not clean enough to record from."""


def _pattern(folder: str) -> str:
    """The Python files of ``folder`` that a digest covers (the harness: its top level only)."""
    return f"{folder}/*.py" if folder == "benchmarks" else f"{folder}/**/*.py"


def _covered(name: str, folder: str) -> bool:
    """Whether the repository path ``name`` is one of the files ``_pattern(folder)`` selects."""
    parts = PurePosixPath(name).parts
    if folder == "benchmarks":
        return len(parts) == 2 and parts[0] == folder and name.endswith(".py")
    return len(parts) >= 2 and parts[0] == folder and fnmatch.fnmatch(parts[-1], "*.py")


def _files(folders, root: Path) -> list[Path]:
    return [p for folder in folders for p in sorted(root.glob(_pattern(folder))) if p.is_file()]


def _hash(items: Iterable[tuple[str, bytes]]) -> str:
    """sha256 (12 hex digits) over (relative path, bytes) pairs, in the order given."""
    h = hashlib.sha256()
    for name, content in items:
        h.update(name.encode() + b"\0")
        h.update(content + b"\0")
    return h.hexdigest()[:12]


def digest(folders, root: Path = ROOT) -> str:
    """The digest of the folders' Python files as they are on disk."""
    return _hash((str(p.relative_to(root)), p.read_bytes()) for p in _files(folders, root))


def _git(*args, root: Path = ROOT) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def _blobs(commit: str, names: list[str], root: Path) -> list[bytes]:
    """The bytes of ``commit:name`` for each name (one ``git cat-file --batch``)."""
    request = "".join(f"{commit}:{name}\n" for name in names).encode()
    out = subprocess.run(["git", "cat-file", "--batch"], cwd=root, input=request, capture_output=True, timeout=60)
    data, blobs, at = out.stdout, [], 0
    for name in names:
        end = data.index(b"\n", at)
        header = data[at:end].split()
        if len(header) != 3 or header[1] != b"blob":
            raise ProvenanceError(f"{commit}:{name} is not a file of that commit")
        size = int(header[2])
        blobs.append(data[end + 1 : end + 1 + size])
        at = end + 1 + size + 1
    return blobs


@functools.lru_cache(maxsize=64)
def committed_digest(commit: str, folders: tuple[str, ...], root: Path = ROOT) -> str:
    """The digest of the folders' Python files as committed in ``commit`` (same files, same order
    as :func:`digest` of a clean checkout of it); raises :class:`ProvenanceError` for an unknown commit."""
    listing = _git("ls-tree", "-r", "--name-only", commit, "--", *folders, root=root)
    if listing is None:
        raise ProvenanceError(f"commit {commit!r} is not in this repository's history (git ls-tree failed)")
    names = []
    for folder in folders:
        mine = [n for n in listing.splitlines() if _covered(n, folder)]
        names += sorted(mine, key=lambda n: PurePosixPath(n).parts)
    return _hash(zip(names, _blobs(commit, names, root) if names else []))


def dirty(folders=HARNESS + LIBRARY, root: Path = ROOT) -> bool | None:
    """True when a tracked or untracked Python file the digest of ``folders`` covers differs from
    HEAD (None: no git)."""
    status = _git("status", "--porcelain", "--", *(f":(glob){_pattern(folder)}" for folder in folders), root=root)
    return None if status is None else bool(status.strip())


def describe(root: Path = ROOT) -> dict:
    """``{harness, library, source, git, commit, dirty}`` of the tree at ``root`` now."""
    revision = _git("rev-parse", "HEAD", root=root)
    commit = revision.strip() if revision else None
    return dict(
        harness=digest(HARNESS, root),
        library=digest(LIBRARY, root),
        source=digest(HARNESS + LIBRARY, root),
        git=commit[:7] if commit else None,
        commit=commit,
        dirty=dirty(root=root),
    )


@functools.lru_cache(maxsize=1)
def current() -> dict:
    """:func:`describe` of this checkout, cached at first use (the code a process runs)."""
    return describe()


def require_clean(source: dict, allow_dirty: bool) -> None:
    """Refuse to record from a tree whose harness or library differs from its commit (or that is
    not a git checkout), unless ``allow_dirty`` (such records carry ``dirty: true``)."""
    if allow_dirty or source.get("dirty") is False:
        return
    why = "has uncommitted changes to" if source.get("dirty") else "is not a git checkout of"
    raise ProvenanceError(
        f"this tree {why} the library or the harness (benchmarks/*.py, neat/, backends/, adapters/): commit "
        "them first so that every record names code that can be checked out, or pass --allow-dirty (such "
        "records carry dirty: true and are left out of every headline table)"
    )


def verify(records: Iterable[dict], root: Path = ROOT) -> int:
    """Check each record's harness and library digests against its commit's sources; returns how
    many distinct sources were checked, raises :class:`ProvenanceError` naming the first mismatch."""
    seen = set()
    for r in records:
        source = r.get("source") or {}
        key = (source.get("commit"), source.get("harness"), source.get("library"))
        if key in seen:
            continue
        what = f"record {r.get('workload')} {r.get('optimizer')} {r.get('phase')} seed {r.get('seed')}"
        if not all(key):
            raise ProvenanceError(f"{what}: no commit or digest recorded (source={source})")
        commit = key[0]
        for name, folders in (("harness", HARNESS), ("library", LIBRARY)):
            expected = committed_digest(commit, folders, root)
            if source[name] != expected:
                raise ProvenanceError(
                    f"{what}: its {name} digest {source[name]} does not match the sources of commit "
                    f"{commit} ({expected}); the record was edited or produced by other code"
                )
        seen.add(key)
    return len(seen)
