"""Protocol v3's machinery: provenance (clean trees only, digests checked against the commit),
the effective speed-up k, the statistics, the equal-effort grid on a toy workload, the plan and its
cost, the size-trend analysis, the verdict rule and the generated README section."""

import math
import subprocess

import pytest

from benchmarks import (
    analysis,
    analysis3,
    cost3,
    grid,
    inference,
    plan3,
    protocol3,
    provenance,
    readme,
    records,
    report3,
)
from benchmarks.__main__ import main
from benchmarks.effective import FRACTIONS, Effective, effective, isotonic
from benchmarks.workloads import W3_SIZE, WORKLOADS, w3_parameters

GIT = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]


def _commit(root, message="x") -> str:
    subprocess.run([*GIT, "add", "-A"], cwd=root, check=True)
    subprocess.run([*GIT, "commit", "-qm", message], cwd=root, check=True)
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path):
    """A tiny git repository with a harness and a library (nested modules, one name that sorts
    differently as a path and as a string: neat/a.py against neat/a/b.py)."""
    root = tmp_path / "repo"
    for name, text in {
        "benchmarks/run.py": "x = 1\n",
        "benchmarks/sub/ignored.py": "not covered\n",
        "neat/a.py": "a = 1\n",
        "neat/a/b.py": "b = 1\n",
        "adapters/c.py": "c = 1\n",
        "notes.txt": "not covered\n",
    }.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    subprocess.run([*GIT, "init", "-q"], cwd=root, check=True)
    _commit(root)
    return root


# --- provenance ------------------------------------------------------------------------------


def test_committed_digest_equals_the_clean_checkout_and_verify_catches_an_edited_record(repo):
    source = provenance.describe(repo)
    assert source["dirty"] is False and len(source["commit"]) == 40
    for name, folders in (("harness", provenance.HARNESS), ("library", provenance.LIBRARY)):
        assert provenance.committed_digest(source["commit"], folders, repo) == source[name]
    record = dict(workload="W1", optimizer="neat", phase="seed", seed=1, source=source)
    assert provenance.verify([record, dict(record, seed=2)], repo) == 1
    edited = dict(record, source=dict(source, library="0" * 12))
    with pytest.raises(provenance.ProvenanceError, match="library digest 000000000000 does not match"):
        provenance.verify([record, edited], repo)
    (repo / "neat" / "a" / "b.py").write_text("b = 2\n")
    assert provenance.describe(repo)["dirty"] is True
    later = _commit(repo, "change the library")
    moved = dict(record, source=dict(source, commit=later))  # the old digests under the new commit
    with pytest.raises(provenance.ProvenanceError, match="does not match the sources of commit"):
        provenance.verify([moved], repo)
    assert provenance.verify([record, dict(record, source=provenance.describe(repo))], repo) == 2
    with pytest.raises(provenance.ProvenanceError, match="not in this repository's history"):
        provenance.verify([dict(record, source=dict(source, commit="f" * 40))], repo)
    with pytest.raises(provenance.ProvenanceError, match="no commit or digest"):
        provenance.verify([dict(record, source=dict(source, commit=None))], repo)


def test_recording_refuses_a_dirty_tree_unless_allowed(tmp_path, monkeypatch):
    for state in (dict(dirty=True), dict(dirty=None)):
        with pytest.raises(provenance.ProvenanceError, match="--allow-dirty"):
            provenance.require_clean(state, allow_dirty=False)
        provenance.require_clean(state, allow_dirty=True)
    provenance.require_clean(dict(dirty=False), allow_dirty=False)
    monkeypatch.setattr(provenance, "current", lambda: dict(provenance.describe(), dirty=True))
    results = tmp_path / "v3"
    argv = ["v3", "--parts", "optional", "--workloads", "W4", "--steps", "2", "--results", str(results)]
    with pytest.raises(SystemExit, match="uncommitted changes"):
        main(argv)
    assert not results.exists()


# --- effective speed-up k --------------------------------------------------------------------


def test_isotonic_pools_adjacent_violators():
    assert isotonic([1.0, 3.0, 2.0, 4.0]) == [1.0, 2.5, 2.5, 4.0]
    assert isotonic([3.0, 2.0, 1.0]) == pytest.approx([2.0, 2.0, 2.0])
    assert isotonic([1.0, 2.0]) == [1.0, 2.0]


def test_k_is_where_the_other_optimizer_meets_adamws_curve_in_log_budget():
    curve = [0.80, 0.84, 0.86, 0.87]  # accuracy at 0.5, 0.7, 1.0, 1.4 × B
    assert effective(FRACTIONS, curve, 0.86, True) == Effective(1.0)
    assert effective(FRACTIONS, curve, 0.84, True).k == pytest.approx(0.7)
    assert effective(FRACTIONS, curve, 0.85, True).k == pytest.approx(math.sqrt(0.7 * 1.0))
    assert effective(FRACTIONS, curve, 0.865, True).k == pytest.approx(math.sqrt(1.0 * 1.4))
    assert effective(FRACTIONS, curve, 0.80, True) == Effective(0.5)  # AdamW's smallest budget matches exactly
    assert effective(FRACTIONS, curve, 0.88, True) == Effective(None, "above")
    assert effective(FRACTIONS, curve, 0.79, True) == Effective(None, "below")
    assert effective(FRACTIONS, curve, None, True) == Effective(None, "below")  # diverged: worse than any budget
    assert effective(FRACTIONS, [0.8, None, 0.86, 0.87], 0.85, True) == Effective(None, "missing")
    losses = [2.0, 1.8, 1.6, 1.5]  # lower is better
    assert effective(FRACTIONS, losses, 1.6, False).k == pytest.approx(1.0)
    assert effective(FRACTIONS, losses, 1.7, False).k == pytest.approx(math.sqrt(0.7))
    assert effective(FRACTIONS, losses, 1.4, False).censored == "above"
    bumpy = [0.80, 0.86, 0.84, 0.87]  # pooled to 0.80, 0.85, 0.85, 0.87: the first budget reaching 0.85 is 0.7
    assert effective(FRACTIONS, bumpy, 0.85, True).k == pytest.approx(0.7)
    assert Effective(None, "above").log_k == math.inf and Effective(2.0).log_k == pytest.approx(math.log(2))
    with pytest.raises(ValueError, match="one AdamW metric per fraction"):
        effective(FRACTIONS, curve[:3], 0.85, True)


# --- statistics ------------------------------------------------------------------------------


def test_holm_against_a_hand_calculation():
    # sorted: A 0.01 × 3 = 0.03; C 0.03 × 2 = 0.06; B 0.04 × 1 = 0.04 → kept at 0.06 (monotone)
    assert inference.holm(dict(A=0.01, B=0.04, C=0.03)) == pytest.approx(dict(A=0.03, B=0.06, C=0.06))
    assert inference.holm(dict(A=0.5, B=0.9)) == pytest.approx(dict(A=1.0, B=1.0))


def test_intervals_and_tests_of_log_k():
    t975_df2 = 4.302653  # Student t quantile (0.975, 2 df)
    mean, lo, hi = inference.t_interval([0.1, 0.2, 0.3])
    assert (mean, lo, hi) == pytest.approx(
        (0.2, 0.2 - t975_df2 * 0.1 / math.sqrt(3), 0.2 + t975_df2 * 0.1 / math.sqrt(3))
    )
    values = list(range(1, 11))
    mid, lo, hi, coverage = inference.median_interval(values)
    assert (mid, lo, hi) == (5.5, 2.0, 9.0) and coverage == pytest.approx(1 - 2 * 11 / 1024)
    assert inference.median_interval([-math.inf, *range(2, 10), math.inf])[1:3] == (2.0, 9.0)
    assert inference.sign_test([0.1] * 10) == pytest.approx(2 / 1024)
    assert inference.wilcoxon([0.1 * i for i in range(1, 11)]) == pytest.approx(2 / 1024)
    assert inference.sign_test([0.1, -0.1] * 5) == pytest.approx(1.0)
    logs = [math.log(1.2) + 0.01 * (i - 4.5) for i in range(10)]
    s = inference.log_ratio_summary(logs)
    assert s["value"] == pytest.approx(1.2, rel=1e-3) and s["low"] < 1.2 < s["high"] and s["p"] < 0.01
    assert "Student-t" in s["method"] and "Wilcoxon" in s["test"] and s["censored"] == 0
    censored = inference.log_ratio_summary([*logs[:8], math.inf, -math.inf])
    assert "order-statistic" in censored["method"] and "sign test" in censored["test"]
    assert (censored["above"], censored["below"]) == (1, 1) and math.isfinite(censored["high"])
    with pytest.raises(ValueError, match="nan"):
        inference.log_ratio_summary([0.1, math.nan])


def test_smallest_detectable_k_and_the_slope():
    t975_df9, t80_df9 = 2.262157, 0.883372
    assert inference.detectable(0.1, 10) == pytest.approx(
        math.exp((t975_df9 + t80_df9) * 0.1 / math.sqrt(10)), rel=1e-5
    )
    assert inference.detectable(0.1, 20) < inference.detectable(0.1, 10) < inference.detectable(0.2, 10)
    assert inference.detectable(0.1, 1) is None
    exact = inference.slope([1, 2, 3, 4], [0.5, 0.7, 0.9, 1.1])
    assert exact["slope"] == pytest.approx(0.2) and exact["low"] == pytest.approx(exact["high"])
    noisy = inference.slope([1, 2, 3, 4, 5], [0.52, 0.68, 0.93, 1.08, 1.31])
    assert noisy["low"] < 0.2 < noisy["high"] and noisy["n"] == 5


# --- synthetic v3 records --------------------------------------------------------------------


def _records(workload, k_of_seed, source, seeds=10, higher=True, budget=100, align=(-0.1, 0.05)):
    """AdamW's final test metric a + b·log f + c_s at every fraction (c_s: the seed's offset) and
    NEAT's at B equal to AdamW's at k_s·B, so k_s is known; tuning records select hp0."""
    a, b = (0.8, 0.05) if higher else (2.0, -0.3)
    out = []

    def rec(optimizer, phase, fraction, seed, final, hp, mean_alignment=0.0):
        return dict(
            protocol=3,
            workload=workload,
            optimizer=optimizer,
            phase=phase,
            budget_fraction=fraction,
            seed=seed,
            steps=round(fraction * budget),
            budget_steps=budget,
            hp=hp,
            trial=0,
            round=0,
            higher_is_better=higher,
            diverged=False,
            final_val=final,
            final_test=final,
            metric="accuracy" if higher else "bits_per_byte",
            source=source,
            trace=dict(step=[1, 2], mean_alignment=[mean_alignment, mean_alignment]),
            wall_time_s=36.0,
        )

    best, worse = dict(lr=1e-3, weight_decay=0.1, beta2=0.95), dict(lr=1e-2, weight_decay=0.0, beta2=0.999)
    for optimizer in ("adamw", "neat"):
        fractions = FRACTIONS if optimizer == "adamw" else (1.0,)
        for f in fractions:
            out.append(rec(optimizer, "tune", f, 0, a + b * math.log(f), best))
            out.append(rec(optimizer, "tune", f, 0, a + b * math.log(f) - (0.1 if higher else -0.1), worse))
    for s in range(1, seeds + 1):
        offset = 0.01 * ((s * 7) % 5 - 2)
        for f in FRACTIONS:
            out.append(rec("adamw", "seed", f, s, a + b * math.log(f) + offset, best, align[0] + 0.01 * offset))
        out.append(rec("neat", "seed", 1.0, s, a + b * math.log(k_of_seed(s)) + offset, best, align[1] + 0.01 * offset))
    return out


def _write(results, recs):
    results.mkdir(parents=True, exist_ok=True)
    for r in recs:
        records.append(records.path_for(results, r["workload"]), r)


def test_analysis_recovers_known_k_per_seed_and_the_paired_difference():
    source = dict(commit="c" * 40, harness="h", library="l", dirty=False)
    recs = _records("W1", lambda s: 1.2 * math.exp(0.02 * (s - 5.5)), source)
    ks = analysis3.k_per_seed(recs, "neat")
    assert [e.k for e in ks.values()] == pytest.approx([1.2 * math.exp(0.02 * (s - 5.5)) for s in range(1, 11)])
    s = analysis3.summarize(recs, "neat", [1.1] * 5)
    assert s["k"]["value"] == pytest.approx(1.2, rel=1e-6) and s["k"]["low"] < 1.2 < s["k"]["high"]
    assert s["difference"]["mean"] == pytest.approx(0.05 * math.log(1.2), rel=1e-6)
    assert s["k_seconds"]["value"] == pytest.approx(1.2 / 1.1, rel=1e-6) and s["budget"] == 100
    assert analysis3.resolves(recs)
    flat = [dict(r, final_test=0.8) if r["optimizer"] == "adamw" else r for r in recs]
    assert not analysis3.resolves(flat)
    al = analysis3.alignment({"W1": recs}, ["W1"])["W1"]
    assert al["adamw"]["mean"] == pytest.approx(-0.1, abs=1e-3) and al["neat"]["mean"] == pytest.approx(0.05, abs=1e-3)


def test_size_trend_recovers_k_per_width_and_its_slope_on_synthetic_data():
    true_slope = 0.1
    per = {}
    for c in plan3.SIZE:
        params = w3_parameters(int(c.workload.split("-")[1]))
        k = 1.0 * math.exp(true_slope * math.log(params / 3e5))
        per[c.workload] = _records(c.workload, lambda s, k=k: k * math.exp(0.01 * (s - 3)), {}, seeds=5, higher=False)
    trend = analysis3.size_trend(per)
    assert trend["fit"]["slope"] == pytest.approx(true_slope, abs=1e-3) and trend["fit"]["n"] == 4
    assert trend["fit"]["excludes_zero"] and trend["fit"]["consistent_with_paper"] is False
    assert analysis3.PAPER_SLOPE == pytest.approx(math.log(0.84 / 0.69) / math.log(1.2e9 / 50e6))
    lines = report3.size_table(trend)
    assert [line.split(" | ")[0] for line in lines[2:6]] == ["| 48", "| 96", "| 144", "| 192"]
    assert all("not recorded" not in line for line in lines)
    assert "not consistent with" in lines[-1] and "excludes 0" in lines[-1]
    per["W3-144"] = [r for r in per["W3-144"] if r["phase"] != "seed" or r["seed"] <= 2]  # a width still running
    partial = analysis3.size_trend(per)
    assert partial["fit"]["n"] == 3 and not partial["rows"]["W3-144"]["complete"]
    assert "| 2 of 5 (incomplete) |" in report3.size_table(partial)[4]


def test_verdict_follows_the_registered_rule_whichever_way_it_falls():
    def row(value, p, n=10, low=None, high=None):
        return dict(
            k=dict(value=value, p=p, p_holm=p, n=n, low=low or value * 0.9, high=high or value * 1.1, detectable=1.1)
        )

    ws = ["W1", "W5", "W3"]
    assert "fewer steps than AdamW on 2 of 3" in report3.verdict(
        dict(W1=row(1.3, 0.01), W5=row(1.2, 0.02), W3=row(1.0, 0.5)), ws
    )
    assert "more steps than AdamW on 1 of 3" in report3.verdict(
        dict(W1=row(0.8, 0.01), W5=row(1.0, 0.3), W3=row(1.0, 0.5)), ws
    )
    assert report3.verdict(dict(W1=row(1.3, 0.01), W5=row(0.8, 0.01), W3=row(1.0, 0.5)), ws).startswith(
        "v3 verdict: mixed"
    )
    none = report3.verdict(dict(W1=row(1.3, 0.2), W5=row(1.0, 0.6), W3=row(1.0, 0.5)), ws)
    assert "no detectable difference" in none and "detects k beyond 1.10" in none
    assert "lies inside the interval on 1 of 3" in report3.verdict(
        dict(W1=row(1.3, 0.2, low=1.0, high=1.5), W5=row(1.0, 0.6), W3=row(1.0, 0.5)), ws
    )
    assert "not yet reached — W3" in report3.verdict(
        dict(W1=row(1.3, 0.01), W5=row(1.2, 0.02), W3=row(1.0, 0.5, n=9)), ws
    )


def test_report_uses_verified_clean_records_and_fails_on_an_edited_one(repo, tmp_path):
    source = provenance.describe(repo)
    results = tmp_path / "v3"
    recs = [r for w in ("W1", "W5", "W3") for r in _records(w, lambda s: 1.1 + 0.01 * s, source, higher=w != "W3")]
    dirty = dict(recs[0], source=dict(source, dirty=True), seed=99, wall_time_s=3600.0)
    _write(results, [*recs, dirty])
    t = report3.tables(results, repo)
    assert t["dirty"] == 1 and t["workloads"] == ["W1", "W5", "W3"] and t["commits"] == [source["commit"]]
    rows = t["rows"]["neat"]
    assert all(rows[w]["k"]["n"] == 10 and "p_holm" in rows[w]["k"] for w in t["workloads"])
    assert t["verdict"].startswith("v3 verdict: NEAT (defaults) needs fewer steps than AdamW on 3 of 3")
    text = "\n".join(report3.markdown(t))
    assert "| W1 (accuracy, 100) | 1.15 [" in text and "Holm" in text and "NEAT (paper +0.08)" in text
    assert text.index("NEAT (paper +0.08)") < text.index(report3.ALIGNMENT_CAVEAT)  # the caveat follows the table
    assert f"Machine time of these records: {len(recs) * 36.0 / 3600:.1f} CPU-hours" in text  # the dirty one left out
    assert (
        "| W1 | NEAT (defaults) | 0.001, 0.1, 0.95 | 2 (1) | inside |" not in text
    )  # 2 rates: the selection is an edge
    assert "| W1 | NEAT (defaults) | 0.001, 0.1, 0.95 | 2 (1) | low |" in text
    edited = results / "W5.jsonl"
    lines = edited.read_text().splitlines()
    lines[3] = lines[3].replace(source["harness"], "0" * 12)
    edited.write_text("\n".join(lines) + "\n")
    with pytest.raises(provenance.ProvenanceError, match="harness digest 000000000000 does not match"):
        report3.tables(results, repo)


# --- tuning with equal effort on a toy workload ---------------------------------------------


def test_grid_points_extension_and_neighbours():
    rates = grid.learning_rates(4e-3)
    assert len(rates) == 7 and rates[3] == 4e-3 and rates[4] / rates[3] == pytest.approx(2.0)
    pts = grid.points(rates)
    assert len(pts) == 28 and {(p["weight_decay"], p["beta2"]) for p in pts} == {
        (0.0, 0.95),
        (0.1, 0.95),
        (0.0, 0.999),
        (0.1, 0.999),
    }
    assert (
        grid.edge(rates[-1], rates) == "high" and grid.edge(rates[0], rates) == "low" and grid.edge(4e-3, rates) is None
    )
    assert grid.extend(rates, "high") == [rates[-1] * 2, rates[-1] * 4]
    assert grid.neighbours(4e-3, rates) == rates[2:5] and grid.neighbours(rates[0], rates) == rates[:2]
    with pytest.raises(ValueError, match="side"):
        grid.extend(rates, "middle")


@pytest.fixture
def clean_source(monkeypatch):
    """This checkout's HEAD as a clean source, so records made here verify against HEAD's blobs."""
    head = provenance._git("rev-parse", "HEAD").strip()
    source = dict(
        harness=provenance.committed_digest(head, provenance.HARNESS),
        library=provenance.committed_digest(head, provenance.LIBRARY),
        source="",
        git=head[:7],
        commit=head,
        dirty=False,
    )
    monkeypatch.setattr(provenance, "current", lambda: source)
    return source


def test_every_optimizer_gets_the_same_grid_and_every_round_is_recorded(tmp_path, clean_source):
    cell = plan3.Cell(
        "W4", 8, 2, ("adamw", "neat", "neat_search"), part="optional", lr_points=3, decays=(0.0, 0.1), beta2s=(0.95,)
    )
    chosen = protocol3.CellRun(cell, tmp_path).run()
    runs = records.load(tmp_path / "W4.jsonl")
    assert all(r["protocol"] == 3 and r["part"] == "optional" and r["source"] == clean_source for r in runs)
    grids = {}
    for name in cell.optimizers:
        tuned = [r for r in runs if r["optimizer"] == name and r["phase"] == "tune" and r["budget_fraction"] == 1.0]
        first = [r for r in tuned if r["round"] == 0]
        grids[name] = sorted((r["hp"]["lr"], r["hp"]["weight_decay"], r["hp"]["beta2"]) for r in first)
        assert all(r["splits"] == ["val"] and r["seed"] == 0 for r in tuned)
        best = chosen[name][1.0]
        assert best["final_val"] == min(r["final_val"] for r in tuned if not r["diverged"])  # over every round
        last = max(r["round"] for r in tuned)
        for rnd in range(last + 1):  # a round follows only a selection at the edge of the rates so far
            so_far = [r for r in tuned if r["round"] <= rnd]
            side = grid.edge(protocol3.select_final(so_far, False)["hp"]["lr"], [r["hp"]["lr"] for r in so_far])
            assert (side is not None) == (rnd < last) or rnd == grid.MAX_ROUNDS - 1
        seeds = [r for r in runs if r["optimizer"] == name and r["phase"] == "seed" and r["budget_fraction"] == 1.0]
        assert sorted(r["seed"] for r in seeds) == [1, 2] and all(r["hp"] == best["hp"] for r in seeds)
    assert grids["adamw"] == grids["neat"] == grids["neat_search"] and len(grids["adamw"]) == 6
    own = [r["hp"] for r in runs if r["optimizer"] == "neat_search" and r["phase"] == "tune"]
    assert all({"gamma", "zeta", "mu", "step_width", "leak"} <= set(hp) for hp in own)
    for f in FRACTIONS:
        adamw = [r for r in runs if r["optimizer"] == "adamw" and r["phase"] == "seed" and r["budget_fraction"] == f]
        assert len(adamw) == 2 and all(r["steps"] == cell.steps_at(f) for r in adamw)
    retuned = [r for r in runs if r["optimizer"] == "adamw" and r["phase"] == "tune" and r["budget_fraction"] == 0.5]
    assert 2 <= len(retuned) <= 3 and {r["hp"]["weight_decay"] for r in retuned} == {
        chosen["adamw"][1.0]["hp"]["weight_decay"]
    }
    before = (tmp_path / "W4.jsonl").read_text()
    protocol3.CellRun(cell, tmp_path).run()  # resumes: nothing reruns
    assert (tmp_path / "W4.jsonl").read_text() == before
    per = analysis.by_workload(analysis3.usable(records.load_all(tmp_path))[0])
    assert set(analysis3.k_per_seed(per["W4"], "neat")) == {1, 2}
    with pytest.raises(protocol3.OutOfTime):
        protocol3.CellRun(plan3.Cell("W4", 9, 1, part="optional", lr_points=1), tmp_path, deadline=0.0).run()


def test_a_size_cell_inherits_only_a_complete_tuning(tmp_path):
    cell = plan3.Cell("W3-48", 10, 5, ("adamw", "neat"), part="size", decays=None, beta2s=None, inherit="W4")
    recs = _records("W4", lambda s: 1.0, {}, seeds=2)
    _write(tmp_path, [r for r in recs if r["phase"] == "tune"])  # NEAT's grid may still be running
    with pytest.raises(LookupError, match="W4's tuning, which is not complete"):
        protocol3.inherited(tmp_path, cell, "neat")
    _write(tmp_path, [r for r in recs if r["phase"] == "seed" and r["optimizer"] == "neat"][:1])
    assert protocol3.inherited(tmp_path, cell, "neat") == ((0.1,), (0.95,))


# --- the plan and its cost -------------------------------------------------------------------


def test_plan_budgets_and_equal_tokens_per_parameter():
    steps = {c.workload: c.steps for c in plan3.HEADLINE}
    assert steps["W1"] >= 4000 and steps["W5"] >= 4000 and steps["W3"] >= 3000
    assert all(c.seeds >= 10 for c in plan3.HEADLINE) and "W4" not in steps
    assert plan3.HEADLINE[0].budget_lengths()["tune"] == 7 * 2 * 2 * 4
    sizes = plan3.SIZE
    params = [w3_parameters(int(c.workload.split("-")[1])) for c in sizes]
    assert len(sizes) >= 4 and params[0] < 1.2e5 and 1e6 <= params[-1] <= 2e6
    tokens = [c.steps * WORKLOADS["W3"].batch_size * W3_SIZE["context"] / p for c, p in zip(sizes, params)]
    assert min(tokens) >= plan3.TOKENS_PER_PARAM and max(tokens) - min(tokens) < 0.05
    assert all(c.seeds >= 5 and c.inherit == "W3" for c in sizes)
    assert [c.steps for c in plan3.size_cells(tokens_per_param=10)] == pytest.approx(
        [2 * c.steps for c in sizes], abs=1
    )
    with pytest.raises(ValueError, match="at least 5 tokens"):
        plan3.size_cells(tokens_per_param=4)
    with pytest.raises(ValueError, match="unknown part"):
        plan3.cells(("everything",))


def test_cost_is_budget_lengths_times_a_run():
    cell = plan3.Cell("W1", 1000, 10)
    hours = cost3.cell_hours(cell, evaluation=0.1, per_step=0.01)
    run = 0.01 * 1000 + 0.1 * 11  # per-step work + eleven evaluations
    assert hours == pytest.approx({k: v * run / 3600 for k, v in cell.budget_lengths().items()})
    assert sum(cell.budget_lengths().values()) == pytest.approx(112 + 3 * 2.6 + 10 * (4 + 2.6))


# --- README ----------------------------------------------------------------------------------


def test_readme_benchmark_section_is_what_the_records_give():
    assert readme.current() == readme.section().strip("\n"), "run `python -m benchmarks report` to regenerate it"
    if not report3.tables(readme.V3):
        assert "v3: not yet run" in readme.current()


def test_readme_markers_are_required():
    with pytest.raises(ValueError, match="exactly one"):
        readme.splice("no markers here", "x")
    text = f"a\n{readme.START}\nold\n{readme.END}\nb\n"
    assert readme.splice(text, "new") == f"a\n{readme.START}\nnew\n{readme.END}\nb\n"


def test_v2_report_is_reproduced_from_its_records(tmp_path):
    import shutil

    from benchmarks.report import write_report

    for path in readme.V2.glob("*.jsonl"):
        shutil.copy(path, tmp_path / path.name)
    assert write_report(tmp_path).read_text() == (readme.V2 / "report.md").read_text()
