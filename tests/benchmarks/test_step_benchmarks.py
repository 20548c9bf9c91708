"""Smoke runs of the step-time benchmarks (one round each): they run, and print what they measure."""

import pytest

from benchmarks import numpy_step, torch_step

pytest.importorskip("numba", reason="the numba kernels need numba (optional: pip install 'neat-nash[cpu]')")


def test_torch_step_prints_a_row_per_candidate_with_its_ratio(capsys):
    torch_step.main(["--steps", "1", "--warmup", "0", "--block", "1", "--cases", "w1-train", "--candidates", "fused"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| w1-train")]
    assert [row.split("|")[2].strip() for row in rows] == ["AdamW(fused=True)", "NGAdam(fused=True) [numba]"]
    assert float(rows[1].split("|")[5].split()[0]) > 0


def test_torch_step_refuses_an_unknown_candidate():
    with pytest.raises(SystemExit):
        torch_step.main(["--candidates", "fastest"])


def test_game_seconds_times_the_fused_call_the_compiled_game_and_the_array_game():
    seconds = numpy_step.game_seconds(players=10, rounds=3)
    assert set(seconds) == {"fused", "compiled", "numpy"}
    assert all(0 < value < 1 for value in seconds.values())


def test_read_bandwidth_prints_both_loops_on_both_allocators(capsys):
    from benchmarks import read_bandwidth

    read_bandwidth.main(["--elements", "65536", "--rounds", "1", "--threads", "1"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.endswith("GB/s read)")]
    assert len(rows) == 4
    for memory in ("torch (4 KiB pages)", "NumPy (huge pages)"):
        for loop in ("square root and divide", "multiplies only"):
            assert sum(line.startswith(memory) and loop in line for line in rows) == 1


def test_pass_times_prints_both_passes_and_the_baseline(capsys):
    from benchmarks import pass_times

    pass_times.main(["--rounds", "1", "--threads", "1", "--layers", "1", "--width", "16"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "---" not in line]
    names = [row.split(" | ")[0].removeprefix("| ") for row in rows[1:]]
    assert names == ["NEAT statistics pass", "NEAT update pass", "AdamW(fused=True) step"]
    assert [row.split(" | ")[2] for row in rows[1:]] == ["3 + 0", "4 + 3", "4 + 3"]
    assert all(float(row.split(" | ")[1]) > 0 for row in rows[1:])
