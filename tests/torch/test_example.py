"""examples/torch_mlp.py trains the digits MLP to a useful accuracy with NG-Adam."""

from __future__ import annotations

import importlib.util
import pathlib
import re

import pytest

pytest.importorskip("sklearn", reason="the example needs scikit-learn")

EXAMPLE = pathlib.Path(__file__).parents[2] / "examples" / "torch_mlp.py"


def test_example_learns_digits(capsys):
    spec = importlib.util.spec_from_file_location("torch_mlp_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(["--epochs", "10"])
    accuracy = float(re.findall(r"test accuracy ([0-9.]+)", capsys.readouterr().out)[-1])
    assert accuracy > 0.9
