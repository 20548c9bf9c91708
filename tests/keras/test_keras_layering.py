"""The Keras front end and its adapter depend one way: ``neat.adapters.keras_adapter`` may import
``neat.keras``; ``neat.keras`` reaches the adapters only through :mod:`neat.plugins`."""

from __future__ import annotations

import ast
from pathlib import Path

FRONT_END = Path(__file__).parents[2] / "neat" / "keras"


def imported(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth (``from a import b`` gives ``a`` and ``a.b``)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def test_the_front_end_imports_no_adapter():
    modules = sorted(FRONT_END.glob("*.py"))
    assert len(modules) > 1
    for path in modules:
        adapters = [name for name in imported(path) if name == "neat.adapters" or name.startswith("neat.adapters.")]
        assert not adapters, f"{path.name} imports {adapters}: reach adapters through neat.plugins.param_layout"
