"""Smoke variant of the benchmark suite (tiny budgets, W4 digits, which ships with scikit-learn),
plus exact checks of the pieces the numbers depend on: the AdamW alignment probe, LAMB, Lion,
the shared tuning points and steps-to-target."""

import json
import math

import numpy as np
import pytest
import torch

from benchmarks import analysis, records, tuning
from benchmarks.__main__ import main
from benchmarks.lamb import Lamb
from benchmarks.lion import Lion
from benchmarks.optimizers import OPTIMIZERS
from benchmarks.probe import adam_alignment
from benchmarks.protocol import SWEEP
from benchmarks.workloads import WORKLOADS, available
from neat.adapters.torch_adapter import module_layout
from neat.torch import NGAdam


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    argv = [
        "run",
        "W4",
        "--optimizers",
        "adamw",
        "neat",
        "lion",
        "--trials",
        "2",
        "--seeds",
        "2",
        "--steps",
        "40",
        "--results",
        str(results),
    ]
    assert main(argv) == 0
    assert main(["sweep", "W4", "--seeds", "1", "--only", "gamma", "--steps", "40", "--results", str(results)]) == 0
    assert main(["steptime", "--workloads", "W4", "--steps", "2", "--rounds", "1", "--results", str(results)]) == 0
    assert main(["report", "--results", str(results)]) == 0
    return results, argv


def test_jsonl_records_every_run_with_its_config_seed_metrics_and_machine(smoke):
    results, _ = smoke
    runs = records.load(results / "W4.jsonl")
    assert len(runs) == 3 * (2 + 1)  # per optimizer: 2 tuning trials, 1 extra seed
    for r in runs:
        assert {"hp", "seed", "evals", "train_time_s", "machine", "command", "best_metric", "trace"} <= set(r)
        assert r["steps"] == 40 and r["machine"]["cores"] >= 1
        assert [e["step"] for e in r["evals"]][0] == 0 and r["evals"][-1]["step"] == 40
        assert all(math.isfinite(e["val_loss"]) for e in r["evals"])
        assert "--steps 40" in r["command"]
    neat = [r for r in runs if r["optimizer"] == "neat"]
    assert all(len(r["trace"]["step_scale"][0]) == len(r["players"]) == 8 for r in neat)
    lows, highs = zip(*[r["hp"].get("step_width") and (1 / r["hp"]["step_width"], r["hp"]["step_width"]) for r in neat])
    assert all(
        lo - 1e-3 <= s <= hi + 1e-3
        for r, lo, hi in zip(neat, lows, highs)
        for row in r["trace"]["step_scale"]
        for s in row
    )
    adamw = [r for r in runs if r["optimizer"] == "adamw"]
    assert all(-1 <= a <= 1 for r in adamw for row in r["trace"]["alignment"] for a in row)


def test_target_is_the_median_of_tuned_adamw_and_report_is_written(smoke):
    results, _ = smoke
    runs = records.load(results / "W4.jsonl")
    adamw = analysis.final_runs(runs, "adamw")
    assert [r["seed"] for r in adamw] == [0, 1] and adamw[0]["hp"] == adamw[1]["hp"]
    tuned = [r for r in runs if r["optimizer"] == "adamw" and r["phase"] == "tune"]
    assert adamw[0]["best_metric"] == min(r["best_metric"] for r in tuned)  # val loss: lower is better
    goal = analysis.target(runs)
    assert goal == pytest.approx(np.median([r["best_metric"] for r in adamw]))
    report = (results / "report.md").read_text()
    assert f"| W4 (val_loss) | {goal:.4g} | adamw |" in report
    assert "W6" in report and "no GPU" in report  # what was not done is said
    cost = records.load(results / "steptime.jsonl")[0]
    assert set(cost["ms_per_step"]) == set(OPTIMIZERS) and all(v[0] > 0 for v in cost["ms_per_step"].values())
    assert "| W4 | " in report.split("## Cost of a step")[1]
    for png in ("profile.png", "curves_W4.png", "heatmap_W4.png", "conflict.png"):
        assert (results / png).stat().st_size > 1000


def test_defaults_sweep_moves_one_hyperparameter_at_adamw_tuned_lr(smoke):
    results, _ = smoke
    sweep = records.load(results / "W4_sweep.jsonl")
    adamw = analysis.final_runs(records.load(results / "W4.jsonl"), "adamw")[0]
    assert sorted(r["hp"]["gamma"] for r in sweep) == sorted(SWEEP["gamma"])
    assert all(r["hp"]["lr"] == adamw["hp"]["lr"] and r["optimizer"] == "neat" for r in sweep)
    assert all(
        {k: v for k, v in r["hp"].items() if k != "gamma"} == {k: v for k, v in sweep[0]["hp"].items() if k != "gamma"}
        for r in sweep
    )
    assert "## NEAT defaults sweep" in (results / "report.md").read_text()


def test_rerunning_resumes_instead_of_repeating(smoke):
    results, argv = smoke
    before = (results / "W4.jsonl").read_text()
    assert main(argv) == 0
    assert (results / "W4.jsonl").read_text() == before


def test_steps_to_target_is_the_first_evaluation_at_or_past_it():
    run = dict(
        metric="accuracy",
        higher_is_better=True,
        evals=[
            dict(step=0, time_s=0.0, accuracy=0.1),
            dict(step=10, time_s=1.0, accuracy=0.5),
            dict(step=20, time_s=2.0, accuracy=0.7),
            dict(step=30, time_s=3.0, accuracy=0.6),
        ],
    )
    assert analysis.reached(run, 0.6) == (20.0, 2.0)
    assert analysis.reached(run, 0.9) == (math.inf, math.inf)


def test_every_optimizer_tries_the_same_relative_learning_rates_and_decays():
    def unit(value, rule):
        return math.log(value / rule[1]) / math.log(rule[2] / rule[1])

    reference = None
    for spec in OPTIMIZERS.values():
        points = tuning.trials(spec.space, 4)
        assert len(points) == 4 and all(set(p) == set(spec.space) for p in points)
        coords = [
            (round(unit(p["lr"], spec.space["lr"]), 2), round(unit(p["weight_decay"], spec.space["weight_decay"]), 2))
            for p in points
        ]
        reference = reference or coords
        assert coords == reference, spec.name


def test_adamw_probe_equals_neat_alignment_when_neat_reduces_to_adamw():
    """γ = ζ = 0 makes NG-Adam exactly AdamW (SPEC), so the probe on AdamW must read NEAT's own a_i."""
    torch.manual_seed(0)
    model_a = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Tanh(), torch.nn.Linear(4, 3)).double()
    model_b = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Tanh(), torch.nn.Linear(4, 3)).double()
    model_b.load_state_dict(model_a.state_dict())
    hp = dict(lr=0.05, weight_decay=0.01)
    adamw = OPTIMIZERS["adamw"].make(model_a, hp)
    neat = NGAdam(model_b, gamma=0.0, zeta=0.0, **hp)
    layout = module_layout(model_a)
    params, players = list(layout.tensors), [list(group) for group in layout.players]
    x, y = torch.randn(16, 5, dtype=torch.float64), torch.randn(16, 3, dtype=torch.float64)
    for _ in range(5):
        for model in (model_a, model_b):
            model.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
        probe = adam_alignment(adamw, params, players)
        adamw.step()
        neat.step()
        np.testing.assert_allclose(probe.numpy(), neat.diagnostics()["alignment"].numpy(), atol=1e-6)
        for p, q in zip(model_a.parameters(), model_b.parameters()):
            np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), atol=1e-9)
    assert probe.abs().sum() > 0


def test_lamb_and_lion_follow_their_published_update_rules():
    theta, g1, g2 = np.array([1.0, -2.0, 0.5]), np.array([0.3, 0.1, -0.4]), np.array([-0.2, 0.5, 0.1])
    lr, wd, b1, b2, eps = 0.1, 0.01, 0.9, 0.999, 1e-6
    p = torch.nn.Parameter(torch.tensor(theta))
    lamb = Lamb([p], lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd)
    expected, m, v = theta.copy(), 0.0, 0.0
    for t, g in enumerate((g1, g2), start=1):
        p.grad = torch.tensor(g)
        lamb.step()
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        r = (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps) + wd * expected
        expected = expected - lr * np.linalg.norm(expected) / np.linalg.norm(r) * r
        np.testing.assert_allclose(p.detach().numpy(), expected, rtol=1e-12)

    p = torch.nn.Parameter(torch.tensor(theta))
    lion = Lion([p], lr=lr, betas=(0.9, 0.99), weight_decay=wd)
    expected, m = theta.copy(), np.zeros(3)
    for g in (g1, g2):
        p.grad = torch.tensor(g)
        lion.step()
        expected = expected * (1 - lr * wd) - lr * np.sign(0.9 * m + 0.1 * g)
        m = 0.99 * m + 0.01 * g
        np.testing.assert_allclose(p.detach().numpy(), expected, rtol=1e-12)


@pytest.mark.parametrize("name", ["W1", "W2", "W3", "W5"])
def test_other_workloads_build_and_take_a_step(name):
    ok, why = available(WORKLOADS[name])
    if not ok:
        pytest.skip(why)  # the Debian package dataset-fashion-mnist is not installed on this machine
    problem = WORKLOADS[name].build()
    model = problem.model_factory()
    loss = problem.loss(model, problem.sample(torch.Generator().manual_seed(0), 4))
    loss.backward()
    assert math.isfinite(loss.item()) and all(p.grad is not None for p in model.parameters())
    metrics = problem.evaluate(model)
    assert math.isfinite(metrics[WORKLOADS[name].metric])
    json.dumps(metrics)


def _sweep_record(workload, seed, best, **hp):
    base = dict(lr=1e-3, gamma=0.5, zeta=0.05)
    return dict(workload=workload, seed=seed, best_metric=best, higher_is_better=False, hp={**base, **hp})


def test_defaults_rule_changes_a_default_only_when_it_wins_every_paired_seed_on_two_workloads():
    current = dict(gamma=0.5, zeta=0.05)
    runs = []
    for w in ("W1", "W4"):
        for s in range(3):
            runs += [
                _sweep_record(w, s, 1.0 + s),
                _sweep_record(w, s, 0.9 + s, gamma=1.0),  # wins every seed
                _sweep_record(w, s, 0.5 + s if s else 1.5, zeta=0.2),
            ]  # loses seed 0
    chosen = analysis.choose_defaults(runs, current)
    assert chosen["gamma"]["chosen"] == 1.0 and chosen["zeta"]["chosen"] == 0.05
    assert chosen["gamma"]["evidence"][1.0] == {"W1": 1.9, "W4": 1.9}
    one_workload = [r for r in runs if r["workload"] == "W1"]
    assert analysis.choose_defaults(one_workload, current)["gamma"]["chosen"] == 0.5
