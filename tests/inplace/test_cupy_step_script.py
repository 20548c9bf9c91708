"""benchmarks/cupy_step.py (a script, not a timed test): GPT-2 small shapes, and a clear exit without a GPU."""

import importlib.util
import math
import sys
from pathlib import Path

import pytest

from neat.backends import cupy_backend
from neat.players import Players

PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "cupy_step.py"
spec = importlib.util.spec_from_file_location("neat_benchmark_cupy_step", PATH)
cupy_step = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = cupy_step
spec.loader.exec_module(cupy_step)


def test_gpt2_small_shapes():
    shapes, players = cupy_step.gpt2_small_shapes()
    assert len(shapes) == 148
    assert sum(math.prod(s) for s in shapes) == 124_439_808
    assert Players.from_spec(players, len(shapes)).num_players == 14


def test_without_gpu_the_script_says_nothing_was_measured(tmp_path, monkeypatch):
    monkeypatch.setattr(cupy_backend, "_skip_reason", lambda: "no CUDA device")
    with pytest.raises(SystemExit, match="needs CuPy and a CUDA GPU.*Nothing measured"):
        cupy_step.main(["--output", str(tmp_path / "out.md")])
    assert not (tmp_path / "out.md").exists()
