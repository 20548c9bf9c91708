"""Smoke runs of the step-time benchmarks (one round each): they run, and print what they measure; and exact
checks of what they share: GPT-2's shapes and the interleaved timing."""

import importlib.util
import math

import numpy as np
import pytest

from benchmarks import numpy_step, shapes, timing, torch_step

needs_numba = pytest.mark.skipif(
    importlib.util.find_spec("numba") is None,
    reason="the numba kernels need numba (optional: pip install 'neat-nash[cpu]')",
)


def _leaves(tree):
    """A nested dict's leaves, depth first in insertion order."""
    for value in tree.values():
        yield from _leaves(value) if isinstance(value, dict) else [value]


def test_gpt2_small_is_124m_parameters_in_148_tensors_in_each_derived_form():
    modules = shapes.gpt2_modules()
    every = shapes.flat(modules)
    assert (len(modules), len(every), sum(map(math.prod, every))) == (75, 148, 124_439_808)
    assert every[:3] == [(50257, 768), (1024, 768), (768,)] and every[-1] == (768,)
    per_module = shapes.per_module(modules)
    assert [name for name, _ in per_module[:4]] == ["wte", "wpe", "h0.ln_1", "h0.attn.c_attn"]
    assert [shape for _, module_shapes in per_module for shape in module_shapes] == every
    players = shapes.block_players(modules)
    assert [len(player) for player in players] == [2, *[12] * 12, 2]
    assert [index for player in players for index in player] == list(range(148))
    tree = shapes.nested(modules)
    assert list(_leaves(tree)) == every
    assert tree["h11"]["mlp"]["c_proj"] == {"kernel": (3072, 768), "bias": (768,)}


def test_four_blocks_dense_layers_are_32_tensors_of_28_3m_parameters():
    dense = shapes.dense_layers(shapes.gpt2_modules(), 4)
    assert [m.path for m in dense[:4]] == ["h0.attn.c_attn", "h0.attn.c_proj", "h0.mlp.c_fc", "h0.mlp.c_proj"]
    assert {m.block for m in dense} == {0, 1, 2, 3}
    every = shapes.flat(dense)
    assert (len(every), sum(map(math.prod, every))) == (32, 28_339_200)
    assert list(_leaves(shapes.nested(dense))) == every


def test_interleaved_calls_each_candidate_in_turn_and_blocks_on_every_result():
    calls, blocked = [], []
    candidates = {name: lambda name=name: calls.append(name) or name for name in "abc"}
    [timings] = timing.interleaved(candidates, 3, warmup=2, lead=1, repeat=2, rotate=True, block=blocked.append)
    assert "".join(calls) == "aabbcc" + "aaabbbccc" + "bbbcccaaa" + "cccaaabbb"
    assert blocked == calls
    assert {name: len(samples) for name, samples in timings.samples.items()} == {"a": 6, "b": 6, "c": 6}
    calls.clear()
    timing.interleaved(candidates, 2)
    assert "".join(calls) == "abcabc"


def test_interleaved_samples_are_each_timed_call_in_order_and_medians_theirs():
    now = [0.0]
    durations = {"a": iter([100.0, 3.0, 1.0, 2.0]), "b": iter([100.0, 5.0, 4.0, 9.0])}

    def candidate(name):
        def run():
            now[0] += next(durations[name])

        return run

    clock = timing.Clock(lambda: now[0])
    [timings] = timing.interleaved({name: candidate(name) for name in durations}, 3, warmup=1, clocks=[clock])
    assert timings.samples == {"a": [3.0, 1.0, 2.0], "b": [5.0, 4.0, 9.0]}
    assert timings.medians == {"a": 2.0, "b": 5.0}
    [untimed] = timing.interleaved({"a": lambda: None}, 0, clocks=[clock])
    assert (untimed.samples, untimed.medians) == ({"a": []}, {})


def test_each_clock_has_its_own_timings_and_a_log_holds_what_the_timed_calls_recorded():
    log, reads = timing.Log(), []
    counter = timing.Clock(lambda: reads.append(None) or len(reads))
    values = iter(range(100))
    candidates = {name: lambda: [log.record(next(values)) for _ in range(2)] for name in "ab"}
    ticks, recorded = timing.interleaved(candidates, 2, warmup=1, clocks=[counter, log])
    assert ticks.samples == {"a": [1, 1], "b": [1, 1]}
    assert recorded.samples == {"a": [4, 5, 8, 9], "b": [6, 7, 10, 11]}


@needs_numba
def test_torch_step_prints_a_row_per_candidate_with_its_ratio(capsys):
    torch_step.main(["--steps", "1", "--warmup", "0", "--block", "1", "--cases", "w1-train", "--candidates", "fused"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| w1-train")]
    assert [row.split("|")[2].strip() for row in rows] == ["AdamW(fused=True)", "NGAdam(fused=True) [numba]"]
    assert float(rows[1].split("|")[5].split()[0]) > 0


def test_torch_step_refuses_an_unknown_candidate():
    with pytest.raises(SystemExit):
        torch_step.main(["--candidates", "fastest"])


@needs_numba
def test_game_seconds_times_the_fused_call_the_compiled_game_and_the_array_game():
    seconds = numpy_step.game_seconds(players=10, rounds=3)
    assert set(seconds) == {"fused", "compiled", "numpy"}
    assert all(0 < value < 1 for value in seconds.values())


@needs_numba
def test_numpy_problem_runs_the_two_passes_and_the_whole_step():
    """The NumPy benchmark's candidates run on the kernels' current interface: the two passes move
    the parameters, and so does the whole in-place step."""
    problem = numpy_step.Problem([(4, 3), (5,)])
    before = [p.copy() for p in problem.params]
    problem.neat_step()
    assert all(not np.array_equal(a, b) for a, b in zip(problem.params, before))
    problem.ngadam()()


@needs_numba
def test_read_bandwidth_prints_both_loops_on_both_allocators(capsys):
    from benchmarks import read_bandwidth

    read_bandwidth.main(["--elements", "65536", "--rounds", "1", "--threads", "1"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.endswith("GB/s read)")]
    assert len(rows) == 4
    for memory in ("torch (4 KiB pages)", "NumPy (huge pages)"):
        for loop in ("square root and divide", "multiplies only"):
            assert sum(line.startswith(memory) and loop in line for line in rows) == 1


@needs_numba
def test_pass_times_prints_both_passes_and_the_baseline(capsys):
    from benchmarks import pass_times

    pass_times.main(["--rounds", "1", "--threads", "1", "--layers", "1", "--width", "16"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "---" not in line]
    names = [row.split(" | ")[0].removeprefix("| ") for row in rows[1:]]
    assert names == ["NEAT statistics pass", "NEAT update pass", "AdamW(fused=True) step"]
    assert [row.split(" | ")[2] for row in rows[1:]] == ["3 + 0", "4 + 3", "4 + 3"]
    assert all(float(row.split(" | ")[1]) > 0 for row in rows[1:])
