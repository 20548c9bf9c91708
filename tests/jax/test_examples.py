"""The Flax examples run (a few steps each) and their loss goes down."""

import importlib.util
import math
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("name", ["flax_nnx", "flax_linen_trainstate"])
def test_example_trains(name, capsys):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    first, last = module.main(["--steps", "8"])
    assert math.isfinite(last) and last < first
    assert "step scale per player" in capsys.readouterr().out
