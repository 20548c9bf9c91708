"""Smoke variant of the benchmark suite (tiny budgets, W4 digits, which ships with scikit-learn),
plus exact checks of the pieces the numbers depend on: the schedule, the splits, the target rule,
the paired bootstrap, provenance, the AdamW alignment probe, LAMB, Lion, NAdamW, the harness
transcription of NEAT, the shared tuning points and steps-to-target."""

import json
import math
import re
import subprocess

import numpy as np
import pytest
import torch

from benchmarks import analysis, data, protocol, provenance, records, tuning
from benchmarks.__main__ import main
from benchmarks.lamb import Lamb
from benchmarks.lion import Lion
from benchmarks.nadamw import NAdamW
from benchmarks.optimizers import OPTIMIZERS
from benchmarks.probe import adam_alignment
from benchmarks.schedule import Schedule
from benchmarks.variants import HarnessNEAT
from benchmarks.workloads import WORKLOADS, available
from neat.adapters.torch_adapter import module_layout
from neat.torch import NGAdam

STEPS = 40


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    argv = [
        "run",
        "W4",
        "--optimizers",
        "adamw",
        "neat",
        "var_smooth_nsa",
        "--trials",
        "3",
        "--seeds",
        "2",
        "--steps",
        str(STEPS),
        "--results",
        str(results),
    ]
    assert main(argv) == 0
    assert main(["steptime", "--workloads", "W4", "--steps", "2", "--rounds", "2", "--results", str(results)]) == 0
    assert main(["report", "--results", str(results)]) == 0
    return results, argv


def test_records_carry_protocol_schedule_splits_and_provenance(smoke):
    results, _ = smoke
    runs = records.load(results / "W4.jsonl")
    source = provenance.current()
    for r in runs:
        assert r["protocol"] == 2 and r["schedule"] == Schedule().as_record()
        assert r["source"] == source and set(source) == {"harness", "library", "source", "git", "commit", "dirty"}
        assert isinstance(r["source"]["dirty"], bool) and len(r["source"]["harness"]) == 12
        assert r["eval_every"] <= 0.025 * r["steps"] or r["eval_every"] == 1
        steps = [e["step"] for e in r["evals"]]
        assert steps[0] == 0 and steps[-1] == r["steps"] and max(np.diff(steps)) <= max(1, 0.025 * r["steps"])
        factors = [e["lr_factor"] for e in r["evals"]]
        assert factors[-1] == 0.0 and max(factors) == pytest.approx(1.0, abs=0.05)  # warmup + cosine to 0
        if r["phase"] == "tune":
            assert r["seed"] == protocol.TUNE_SEED and r["splits"] == ["val"] and "test" not in r["evals"][-1]
        else:
            assert r["splits"] == ["val", "test"] and math.isfinite(r["evals"][-1]["test"]["val_loss"])
    seeds = {r["seed"] for r in runs if r["phase"] == "seed"}
    assert seeds == {1, 2} and protocol.TUNE_SEED not in seeds
    targets = [r for r in runs if r["phase"] == "target"]
    assert {r["seed"] for r in targets} == set(protocol.TARGET_SEEDS)
    assert all(r["optimizer"] == "adamw" and r["steps"] == protocol.TARGET_RULE.steps(STEPS) for r in targets)
    neat = [r for r in runs if r["optimizer"] == "neat"]
    assert all(len(r["trace"]["step_scale"][0]) == len(r["players"]) == 8 for r in neat)
    assert all(0.5 - 1e-3 <= s <= 2.0 + 1e-3 for r in neat for row in r["trace"]["step_scale"] for s in row)


def test_tuning_widens_at_the_edge_and_selects_on_validation(smoke):
    results, _ = smoke
    runs = records.load(results / "W4.jsonl")
    for name in ("adamw", "neat"):
        tuned = [r for r in runs if r["optimizer"] == name and r["phase"] == "tune"]
        best = analysis.selection(runs, name)
        last = [r for r in tuned if r["round"] == best["round"]]
        assert len(last) == 3 and best["best_val"] == min(r["best_val"] for r in last if not r["diverged"])
        for rnd in range(best["round"]):  # every earlier round ended at an edge, and the next widened it
            earlier = [r for r in tuned if r["round"] == rnd]
            side = tuning.edge(protocol.selected(earlier, False)["hp"], [r["hp"] for r in earlier])
            assert side is not None
            assert [r["space"]["lr"] for r in tuned if r["round"] == rnd + 1][0] == list(
                tuning.widen({k: tuple(v) for k, v in earlier[0]["space"].items()}, side)["lr"]
            )
        finals = analysis.final_runs(runs, name)
        assert [r["seed"] for r in finals] == [1, 2] and all(r["hp"] == best["hp"] for r in finals)


def test_report_and_printed_summary(smoke, capsys):
    results, argv = smoke
    before = (results / "W4.jsonl").read_text()
    assert main(argv) == 0  # resumes: nothing is rerun
    assert (results / "W4.jsonl").read_text() == before
    out = capsys.readouterr().out
    assert "W4: target" in out and "val_loss (test split)" in out and "steps ratio to AdamW" in out
    report = (results / "report.md").read_text()
    goal = analysis.target(records.load(results / "W4.jsonl"))
    assert f"| W4 (val_loss, {goal:.4g}) |" in report
    assert "## Pre-registered variants" in report and "## Size trend" in report and "W6" in report
    cost = records.load(results / "steptime.jsonl")[0]
    assert list(cost["ms_per_step"])[0] == "adamw" and cost["reference"] == "torch.optim.AdamW(fused=True)"
    assert "| W4 | " in report.split("## Cost of a step")[1]
    for png in ("profile.png", "curves_W4.png"):
        assert (results / png).stat().st_size > 1000


def test_schedule_warmup_then_cosine_or_linear_decay():
    s = Schedule(warmup_fraction=0.1, decay="cosine", final_factor=0.0)
    f = [s.factor(t, 100) for t in range(1, 101)]
    assert f[:10] == pytest.approx([(t + 1) / 10 for t in range(10)])
    assert f[9] == 1.0 and f[-1] == pytest.approx(0.0) and f[54] == pytest.approx(0.5, abs=0.02)
    assert all(a >= b for a, b in zip(f[9:], f[10:]))
    lin = Schedule(warmup_fraction=0.0, decay="linear", final_factor=0.1)
    assert lin.factor(1, 10) == pytest.approx(1 - 0.9 * 0.1) and lin.factor(10, 10) == pytest.approx(0.1)
    with pytest.raises(ValueError):
        Schedule(decay="step")
    with pytest.raises(ValueError):
        s.factor(0, 100)


def test_splits_are_disjoint_and_evaluated_separately():
    d = data.digits()
    assert len(d["x_train"]) + len(d["x_val"]) + len(d["x_test"]) == 1797
    rows = {split: {tuple(x) for x in d[f"x_{split}"]} for split in ("train", "val", "test")}
    assert not rows["val"] & rows["test"] and not rows["train"] & rows["test"]
    text = data.stdlib_text()
    assert len(text["val"]) > 0 and len(text["test"]) > 0
    problem = WORKLOADS["W4"].build()
    model = problem.model_factory()
    assert problem.evaluate(model, "val") != problem.evaluate(model, "test")


def _target_run(seed, values, length, budget=10, higher=False):
    evals = [dict(step=i * 2, test=dict(acc=v)) for i, v in enumerate(values)]
    return dict(
        optimizer="adamw",
        phase="target",
        seed=seed,
        hp={},
        metric="acc",
        higher_is_better=higher,
        budget_steps=budget,
        steps=length * budget,
        evals=evals,
    )


def test_registered_target_is_the_median_best_test_value_of_2x_adamw_runs_within_the_budget():
    # steps 0, 2, ..., 20; budget 10: only steps <= 10 count (the later, better values are ignored)
    registered = protocol.TARGET_RULES["v2.0"]
    runs = [
        _target_run(101, [9, 8, 7, 6, 5, 4, 1, 1, 1, 1, 1], 2),  # best within budget: 4
        _target_run(102, [9, 8, 7, 6, 5, 3, 1, 1, 1, 1, 1], 2),  # 3
        _target_run(103, [9, 8, 7, 6, 5, 6, 1, 1, 1, 1, 1], 2),  # 5
    ]
    assert analysis.target(runs, registered) == 4.0
    assert analysis.target(runs) is None  # 2x runs are not the current rule's target runs
    higher = [_target_run(101, [0.1, 0.5, 0.4, 0.45, 0.4, 0.3, 0.9], 2, higher=True)]
    assert analysis.target(higher, registered) == 0.5


def test_amended_target_is_the_median_best_test_value_of_1x_adamw_runs_within_three_quarters():
    # steps 0, 2, ..., 20; budget 20: only steps <= 15 count
    assert protocol.TARGET_RULE == protocol.TARGET_RULES["v2.1"]
    runs = [
        _target_run(101, [9, 8, 7, 6, 5, 4, 4, 3, 1, 1, 1], 1, budget=20),  # best at steps <= 15: 3
        _target_run(102, [9, 8, 7, 6, 5, 3, 2, 2, 2, 1, 1], 1, budget=20),  # 2
        _target_run(103, [9, 8, 7, 6, 5, 6, 5, 4, 1, 1, 1], 1, budget=20),  # 4
        _target_run(104, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 2, budget=10),  # a 2x run: another rule's
    ]
    assert analysis.target(runs) == 3.0


def _final(seed, steps_to, budget=100, every=10):
    """A run whose test accuracy crosses 0.9 at ``steps_to`` (inf: never)."""
    evals = [dict(step=s, test=dict(acc=0.95 if s >= steps_to else 0.5)) for s in range(0, budget + 1, every)]
    return dict(seed=seed, metric="acc", higher_is_better=True, steps=budget, eval_every=every, evals=evals)


def test_paired_bootstrap_interval_verdict_and_detectable_difference():
    ref = [_final(s, 60) for s in range(1, 6)]
    same = analysis.compare([_final(s, 60) for s in range(1, 6)], ref, 0.9, ms_ratios=[1.0, 1.0, 1.0])
    assert same["steps_ratio"] == 1.0 and same["steps_interval"] == (1.0, 1.0)
    assert same["steps_verdict"] == "no detectable difference" and same["detectable"] == pytest.approx(1 + 10 / 60)
    fast = analysis.compare([_final(s, 30) for s in range(1, 6)], ref, 0.9, ms_ratios=[3.0, 3.0, 3.0])
    assert fast["steps_ratio"] == 0.5 and fast["steps_interval"][1] < 1 and fast["steps_verdict"].startswith("fewer")
    assert fast["seconds_ratio"] == 1.5 and fast["seconds_verdict"].startswith("more")
    mixed = analysis.compare([_final(s, t) for s, t in zip(range(1, 6), (30, 90, 40, 80, 60))], ref, 0.9)
    assert mixed["steps_interval"][0] < 1 < mixed["steps_interval"][1]
    assert mixed["steps_verdict"] == "no detectable difference" and mixed["detectable"] > 1.5
    miss = analysis.compare([_final(s, math.inf) for s in range(1, 6)], ref, 0.9)
    assert miss["reached"] == 0 and math.isinf(miss["steps_ratio"]) and miss["steps_verdict"].startswith("more")
    # the log-ratio rule: sd 0.5, n 4 -> exp(2.8 * 0.5 / 2)
    assert analysis.detectable_ratio([0.5, -0.5, 0.5, -0.5], 0.0) == pytest.approx(
        math.exp((analysis.Z_ALPHA + analysis.Z_POWER) * np.std([0.5, -0.5, 0.5, -0.5], ddof=1) / 2)
    )


def test_decision_rule_needs_wins_no_losses_and_a_geometric_mean_below_the_bar():
    def recs(workload, optimizer, steps_to):
        out = [
            dict(
                _final(s, t),
                workload=workload,
                optimizer=optimizer,
                phase="seed",
                hp={},
                fixed={},
                round=0,
            )
            for s, t in zip(range(1, 6), steps_to)
        ]
        tune = dict(out[0], phase="tune", seed=0, best_val=0.9, diverged=False, trial=0)
        return [tune, *out]

    per = {}
    for w in ("A", "B", "C"):
        long_runs = [
            dict(_target_run(s, [0.5, 0.9, 0.9], 1, higher=True, budget=100), workload=w, fixed={})
            for s in (101, 102, 103)
        ]
        per[w] = [
            *long_runs,
            *recs(w, "adamw", [60] * 5),
            *recs(w, "neat", [60, 70, 60, 70, 60]),
            *recs(w, "good", [30, 40, 30, 40, 30]),
            *recs(w, "bad", [30, 40, math.inf, math.inf, 30] if w == "C" else [30] * 5),
        ]
    decision = analysis.decide(per, ["good", "bad"], ["A", "B", "C"])
    assert decision["variants"]["good"]["wins"] == 3 and decision["variants"]["good"]["eligible"]
    assert decision["variants"]["bad"]["losses"] == 1 and not decision["variants"]["bad"]["eligible"]
    assert decision["proposal"] == "good"


def test_source_digest_changes_with_the_code_and_dirty_flag_follows_git(tmp_path):
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "neat").mkdir()
    (tmp_path / "benchmarks" / "a.py").write_text("x = 1\n")
    (tmp_path / "neat" / "b.py").write_text("y = 1\n")
    before = provenance.digest(("benchmarks", "neat"), tmp_path)
    assert provenance.digest(("benchmarks", "neat"), tmp_path) == before
    (tmp_path / "neat" / "b.py").write_text("y = 2\n")
    assert provenance.digest(("benchmarks", "neat"), tmp_path) != before
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([*git, "add", "."], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-qm", "x"], cwd=tmp_path, check=True)
    assert provenance.dirty(("benchmarks", "neat"), tmp_path) is False
    (tmp_path / "benchmarks" / "results").mkdir()
    (tmp_path / "benchmarks" / "results" / "W1.jsonl").write_text("{}\n")  # a run's own records
    assert provenance.dirty(("benchmarks", "neat"), tmp_path) is False
    (tmp_path / "neat" / "sub").mkdir()
    (tmp_path / "neat" / "sub" / "c.py").write_text("z = 1\n")  # an untracked module counts
    assert provenance.dirty(("benchmarks", "neat"), tmp_path) is True
    (tmp_path / "neat" / "sub" / "c.py").unlink()
    (tmp_path / "benchmarks" / "a.py").write_text("x = 2\n")
    assert provenance.dirty(("benchmarks", "neat"), tmp_path) is True


def test_edge_check_and_widening():
    points = [dict(lr=v) for v in (1e-4, 1e-3, 1e-2)]
    assert tuning.edge(dict(lr=1e-2), points) == "high" and tuning.edge(dict(lr=1e-4), points) == "low"
    assert tuning.edge(dict(lr=1e-3), points) is None
    space = dict(lr=("log", 1e-4, 1e-2), weight_decay=("log", 1e-5, 1e-1))
    assert tuning.widen(space, "high")["lr"] == ("log", 1e-4, pytest.approx(1e-1))
    assert tuning.widen(space, "low")["lr"] == ("log", pytest.approx(1e-5), 1e-2)
    assert tuning.widen(space, "low")["weight_decay"] == space["weight_decay"]


def test_steps_to_target_is_the_first_test_evaluation_at_or_past_it():
    run = dict(
        metric="accuracy",
        higher_is_better=True,
        evals=[
            dict(step=0, test=dict(accuracy=0.1)),
            dict(step=10, test=dict(accuracy=0.5)),
            dict(step=20, test=dict(accuracy=0.7), val=dict(accuracy=0.99)),
            dict(step=30, test=dict(accuracy=0.6)),
        ],
    )
    assert analysis.reached(run, 0.6) == 20.0 and analysis.reached(run, 0.9) == math.inf
    assert analysis.reached(run, 0.9, split="val") == 20.0


def test_every_optimizer_tries_the_same_relative_learning_rates_and_decays():
    def unit(value, rule):
        return math.log(value / rule[1]) / math.log(rule[2] / rule[1])

    reference = None
    for spec in OPTIMIZERS.values():
        points = tuning.trials(spec.space, 12)
        assert len(points) == 12 and all(set(p) == set(spec.space) for p in points)
        coords = [
            (round(unit(p["lr"], spec.space["lr"]), 2), round(unit(p["weight_decay"], spec.space["weight_decay"]), 2))
            for p in points
        ]
        reference = reference or coords
        assert coords == reference, spec.name
        assert spec.space["lr"][2] / spec.space["lr"][1] >= 100  # at least two decades


def _pair_of_models():
    torch.manual_seed(0)
    a = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Tanh(), torch.nn.Linear(4, 3)).double()
    b = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Tanh(), torch.nn.Linear(4, 3)).double()
    b.load_state_dict(a.state_dict())
    return a, b


def test_harness_transcription_equals_the_library_with_variants_off():
    model_a, model_b = _pair_of_models()
    hp = dict(lr=0.05, weight_decay=0.01, gamma=0.7, zeta=0.2, mu=2.0, step_bounds=(0.5, 2.0), leak=0.05)
    lib = NGAdam(model_a, **hp)
    har = HarnessNEAT(model_b, **hp)
    smooth = HarnessNEAT(_pair_of_models()[1], **hp, alignment_ema=0.9)
    x, y = torch.randn(16, 5, dtype=torch.float64), torch.randn(16, 3, dtype=torch.float64)
    for step in range(8):
        for opt in (lib, har):
            opt.param_groups[0]["lr"] = 0.05 * (1 - step / 8)  # a schedule
        for model in (model_a, model_b):
            model.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
        lib.step()
        har.step()
        np.testing.assert_allclose(har.diagnostics()["step_scale"], lib.diagnostics()["step_scale"], rtol=1e-5)
        for p, q in zip(model_a.parameters(), model_b.parameters()):
            np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), atol=1e-10)
    assert any(abs(s - 1) > 1e-3 for s in har.diagnostics()["step_scale"].tolist())  # NSA moved
    assert smooth.alignment_ema == 0.9


def test_elementwise_variant_damps_only_conflicting_elements():
    p = torch.nn.Linear(2, 1, bias=False).double()
    opt = HarnessNEAT(p, lr=0.1, gamma=0.5, zeta=0.0, elementwise=True, betas=(0.0, 0.999))
    p.weight.grad = torch.tensor([[1.0, 1.0]], dtype=torch.float64)
    opt.step()
    p.weight.grad = torch.tensor([[2.0, -2.0]], dtype=torch.float64)  # second element conflicts with u
    opt.step()
    assert opt.state[p.weight]["exp_avg"].tolist() == [[2.0, -1.0]]  # beta1 = 0: m is the corrected gradient


def test_adamw_probe_equals_neat_alignment_when_neat_reduces_to_adamw():
    """γ = ζ = 0 makes NG-Adam exactly AdamW (SPEC), so the probe on AdamW must read NEAT's own a_i."""
    model_a, model_b = _pair_of_models()
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
    assert probe.abs().sum() > 0


THETA, GRADIENTS = np.array([1.0, -2.0, 0.5]), (np.array([0.3, 0.1, -0.4]), np.array([-0.2, 0.5, 0.1]))
LR, WD, B1, B2, EPS = 0.1, 0.01, 0.9, 0.999, 1e-6


def lamb_rule(theta, m, v, g, t):
    """LAMB (You et al. 2020): Adam's direction plus decay, scaled by the trust ratio ‖θ‖ / ‖r‖."""
    m, v = B1 * m + (1 - B1) * g, B2 * v + (1 - B2) * g * g
    r = (m / (1 - B1**t)) / (np.sqrt(v / (1 - B2**t)) + EPS) + WD * theta
    return theta - LR * np.linalg.norm(theta) / np.linalg.norm(r) * r, m, v


def lion_rule(theta, m, v, g, t):
    """Lion (Chen et al. 2023) with betas (0.9, 0.99): the sign of an interpolated momentum."""
    return theta * (1 - LR * WD) - LR * np.sign(0.9 * m + 0.1 * g), 0.99 * m + 0.01 * g, v


def nadamw_rule(theta, m, v, g, t):
    """NAdamW (Dozat 2016, decoupled decay): Nesterov's look-ahead on Adam's first moment."""
    m, v = B1 * m + (1 - B1) * g, B2 * v + (1 - B2) * g * g
    direction = ((B1 * m + (1 - B1) * g) / (1 - B1**t)) / (np.sqrt(v / (1 - B2**t)) + EPS)
    return theta * (1 - LR * WD) - LR * direction, m, v


@pytest.mark.parametrize(
    "optimizer, settings, rule",
    [
        (Lamb, dict(betas=(B1, B2), eps=EPS), lamb_rule),
        (Lion, dict(betas=(0.9, 0.99)), lion_rule),
        (NAdamW, dict(betas=(B1, B2), eps=EPS), nadamw_rule),
    ],
)
def test_lamb_lion_and_nadamw_follow_their_published_update_rules(optimizer, settings, rule):
    p = torch.nn.Parameter(torch.tensor(THETA))
    stepper = optimizer([p], lr=LR, weight_decay=WD, **settings)
    expected, m, v = THETA.copy(), np.zeros(3), np.zeros(3)
    for t, g in enumerate(GRADIENTS, start=1):
        p.grad = torch.tensor(g)
        stepper.step()
        expected, m, v = rule(expected, m, v, g, t)
        np.testing.assert_allclose(p.detach().numpy(), expected, rtol=1e-12)


@pytest.mark.parametrize(
    "optimizer, settings",
    [(Lamb, dict(lr=-0.1)), (Lion, dict(weight_decay=-1.0)), (NAdamW, dict(betas=(0.9, 1.0))), (NAdamW, dict(eps=-1))],
)
def test_lamb_lion_and_nadamw_refuse_invalid_hyperparameters_by_name(optimizer, settings):
    ((name, value),) = settings.items()
    with pytest.raises(
        ValueError, match=f"Invalid {optimizer.__name__} hyperparameters: .*{name}={re.escape(str(value))}"
    ):
        optimizer([torch.nn.Parameter(torch.zeros(2))], **settings)


def test_lamb_lion_and_nadamw_skip_parameters_without_a_gradient():
    for optimizer in (Lamb, Lion, NAdamW):
        with_grad, without = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
        with_grad.grad = torch.ones(2)
        instance = optimizer([with_grad, without], lr=0.1)
        instance.step()
        assert torch.equal(without, torch.ones(2)) and not instance.state[without]
        assert not torch.equal(with_grad, torch.ones(2))


def _build_and_step(name):
    problem = WORKLOADS[name].build()
    model = problem.model_factory()
    loss = problem.loss(model, problem.sample(torch.Generator().manual_seed(0), 4))
    loss.backward()
    assert math.isfinite(loss.item()) and all(p.grad is not None for p in model.parameters())
    for split in ("val", "test"):
        metrics = problem.evaluate(model, split)
        assert math.isfinite(metrics[WORKLOADS[name].metric])
        json.dumps(metrics)


@pytest.mark.parametrize("name", ["W1", "W2", "W3", "W5", "W3-128"])
def test_other_workloads_build_and_take_a_step(name, fashion_mnist_stand_in):
    """On generated Fashion-MNIST files (the workloads' data where they need it)."""
    assert available(WORKLOADS[name]) == (True, "")
    _build_and_step(name)


def test_w1_builds_on_the_installed_fashion_mnist():
    ok, why = available(WORKLOADS["W1"])
    if not ok:
        assert "apt-get install" in why  # a missing data set says how to get it
        pytest.skip(f"optional data set: {why}")
    _build_and_step("W1")


def test_missing_data_says_how_to_get_it(monkeypatch, capsys):
    monkeypatch.setattr(data, "fashion_mnist_available", lambda: False)
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "W1", "--results", "/nonexistent"])
    assert "apt-get install -y dataset-fashion-mnist" in str(exit_info.value)
    assert main(["steptime", "--workloads", "W1", "--steps", "1", "--rounds", "1", "--results", "/tmp/unused"]) == 0
    out = capsys.readouterr().out
    assert "W1: not measured" in out and "apt-get install -y dataset-fashion-mnist" in out


def _sweep_record(workload, seed, best, **hp):
    base = dict(lr=1e-3, gamma=0.5, zeta=0.05)
    return dict(workload=workload, seed=seed, best_val=best, higher_is_better=False, hp={**base, **hp})


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
    one_workload = [r for r in runs if r["workload"] == "W1"]
    assert analysis.choose_defaults(one_workload, current)["gamma"]["chosen"] == 0.5


def test_size_trend_plot_draws_the_widths_with_a_comparison(tmp_path):
    from benchmarks import report

    def summary(ratio, interval):
        comparison = dict(steps_ratio=ratio, steps_interval=interval)
        return dict(optimizers=dict(neat=dict(vs_adamw=comparison)))

    summaries = {"W3": summary(1.0, (0.9, math.inf)), "W3-128": summary(0.8, (0.7, 0.95))}
    parameters = {"W3": 1e5, "W3-128": 4e5, "W3-256": 1.6e6}
    assert report.plot_size_trend(tmp_path / "trend.png", summaries, parameters)
    assert (tmp_path / "trend.png").stat().st_size > 0
    assert not report.plot_size_trend(tmp_path / "none.png", {}, parameters)
    assert not (tmp_path / "none.png").exists()
