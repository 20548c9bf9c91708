"""``python -m benchmarks gpu --dry-run``: the prepared GPU run at toy sizes on the CPU, and its time guards."""

import math

from benchmarks import gpu, records
from benchmarks.__main__ import main


def test_dry_run_writes_a_line_per_part_and_per_run(tmp_path):
    assert main(["gpu", "--dry-run", "--out", str(tmp_path), "--limit", "300"]) == 0
    lines = records.load(tmp_path / "gpu.jsonl")
    assert [line["part"] for line in lines[:2]] == ["conformance", "steptime"] and all(
        line["dry_run"] for line in lines
    )
    check = lines[0]
    assert (
        check["returncode"] == 0
        and "--neat-backend=torch-cuda,cupy" in check["command"]
        and "collected" in check["tail"]
    )
    times = lines[1]["ms"]
    assert times["AdamW(fused=True)"]["ratio"] == 1.0 and times["neat.torch.NGAdam(fused=True)"]["ms"] > 0
    runs = lines[2:]
    assert len(runs) == 2 * len(gpu.TOY) * 2  # seeds × sizes × (AdamW, NEAT)
    assert {(r["seed"], r["size"]["name"], r["optimizer"]) for r in runs} == {
        (s, g.name, o) for s in (1, 2) for g in gpu.TOY for o in ("adamw", "neat")
    }
    for r in runs:
        assert r["steps_done"] == r["size"]["steps"] and not r["truncated"] and math.isfinite(r["val_bits_per_byte"])
        assert r["source"]["commit"] and r["machine"]["device"] == "cpu"


def test_time_guards_stop_a_run_and_skip_the_rest_cleanly(tmp_path):
    slow = gpu.GPT("toy-long", 16, 1, 2, 32, 4, 60, 1e-3)
    cut = gpu.train_gpt(slow, "neat", 1, "cpu", seconds=0.0)
    assert cut["steps_done"] == 25 and cut["truncated"]  # the clock is read every 25 steps
    logged = []
    clock = gpu.Clock(gpu.MARGIN_S)  # nothing left
    assert gpu.gpt_runs("cpu", True, clock, logged.append) == 0
    assert len(logged) == 1 and "out of time" in logged[0]["skipped"]
