"""From protocol v3 records to its numbers: the records a table may use (clean and verified), each
optimizer's selections, k per seed against AdamW's budget curve, per-workload summaries with
Holm-adjusted p-values, the final-metric difference at B, k in seconds, the size trend's slope and
the alignment statistic. Every result is read on the test split; validation only selects.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from benchmarks import analysis, inference, plan3, provenance
from benchmarks.effective import effective
from benchmarks.protocol3 import select_final

# The paper's size trend: 16 % fewer steps at 50M parameters, 31 % at 1.2B (k = 1 / (1 − fewer)).
PAPER_TREND = ((50e6, 1 / (1 - 0.16)), (1.2e9, 1 / (1 - 0.31)))
PAPER_SLOPE = math.log(PAPER_TREND[1][1] / PAPER_TREND[0][1]) / math.log(PAPER_TREND[1][0] / PAPER_TREND[0][0])
PAPER_ALIGNMENT = dict(adamw=-0.12, neat=0.08)


def usable(records: list[dict], root=provenance.ROOT, check: bool = True) -> tuple[list[dict], int]:
    """Protocol v3 records from a clean tree, each one's digests checked against its commit
    (:func:`benchmarks.provenance.verify` raises on a mismatch); returns them and how many dirty
    records were left out."""
    v3 = [r for r in records if r.get("protocol") == plan3.PROTOCOL]
    clean = [r for r in v3 if (r.get("source") or {}).get("dirty") is False]
    if check:
        provenance.verify(clean, root)
    return clean, len(v3) - len(clean)


def selections(recs: list[dict], optimizer: str) -> dict:
    """``{fraction: selected tuning record}`` of ``optimizer`` (best final validation metric)."""
    by_fraction = defaultdict(list)
    for r in recs:
        if r["optimizer"] == optimizer and r["phase"] == "tune":
            by_fraction[r["budget_fraction"]].append(r)
    out = {f: select_final(runs, runs[0]["higher_is_better"]) for f, runs in by_fraction.items()}
    return {f: best for f, best in out.items() if best is not None}


def finals(recs: list[dict], optimizer: str, fraction: float = 1.0) -> dict:
    """``{seed: record}`` of the selection's runs on the final seeds at ``fraction`` × B."""
    best = selections(recs, optimizer).get(fraction)
    if best is None:
        return {}
    return {
        r["seed"]: r
        for r in recs
        if r["optimizer"] == optimizer
        and r["phase"] == "seed"
        and r["budget_fraction"] == fraction
        and r["hp"] == best["hp"]
    }


def adamw_curves(recs: list[dict]) -> tuple[tuple[float, ...], dict]:
    """AdamW's budget fractions and, per seed present at every fraction, its final test metrics."""
    fractions = tuple(sorted(selections(recs, plan3.REFERENCE)))
    runs = {f: finals(recs, plan3.REFERENCE, f) for f in fractions}
    seeds = set.intersection(*(set(r) for r in runs.values())) if runs else set()
    return fractions, {s: [runs[f][s]["final_test"] for f in fractions] for s in sorted(seeds)}


def k_per_seed(recs: list[dict], optimizer: str) -> dict:
    """``{seed: Effective}``: where ``optimizer`` at B matches AdamW's curve, seed by seed."""
    fractions, curves = adamw_curves(recs)
    mine = finals(recs, optimizer)
    if len(fractions) < 2:
        return {}
    higher = recs[0]["higher_is_better"]
    return {s: effective(fractions, curves[s], mine[s]["final_test"], higher) for s in sorted(set(curves) & set(mine))}


def resolves(recs: list[dict]) -> bool:
    """Whether AdamW's curve can place k: at the largest budget better than at the smallest on
    more than half the seeds (W4 enters the headline only then)."""
    fractions, curves = adamw_curves(recs)
    if len(fractions) < 2 or not curves:
        return False
    sign = 1 if recs[0]["higher_is_better"] else -1
    better = sum(1 for v in curves.values() if None not in (v[0], v[-1]) and sign * v[-1] > sign * v[0])
    return better > len(curves) / 2


def summarize(recs: list[dict], optimizer: str, ms_ratios=()) -> dict | None:
    """k (interval, test, detectable), the final-metric difference at B and k in seconds, for one workload."""
    ks = k_per_seed(recs, optimizer)
    if not ks:
        return None
    missing = sorted(s for s, e in ks.items() if e.censored == "missing")
    logs = [e.log_k for s, e in ks.items() if s not in missing]
    if not logs:
        return None
    ref, mine = finals(recs, plan3.REFERENCE), finals(recs, optimizer)
    budget = next(iter(mine.values()))["steps"]
    out = dict(k=inference.log_ratio_summary(logs), seeds=len(logs), missing=missing, per_seed=ks, budget=budget)
    shared = [s for s in sorted(set(ref) & set(mine)) if None not in (ref[s]["final_test"], mine[s]["final_test"])]
    diffs = [mine[s]["final_test"] - ref[s]["final_test"] for s in shared]
    if len(diffs) >= 2:
        mean, lo, hi = inference.t_interval(diffs)
        out["difference"] = dict(mean=mean, low=lo, high=hi, n=len(diffs), p=inference.wilcoxon(diffs))
    if ms_ratios:
        r = float(np.median(ms_ratios))
        out["ms_ratio"] = dict(median=r, low=float(min(ms_ratios)), high=float(max(ms_ratios)), rounds=len(ms_ratios))
        out["k_seconds"] = inference.log_ratio_summary([x - math.log(r) for x in logs])
    return out


def headline(per_workload: dict, optimizer: str, workloads, steptime_records=()) -> dict:
    """``{workload: summary}`` for ``optimizer`` with Holm-adjusted p-values of k across the workloads
    that have one (``p_holm``; the family is this optimizer's headline workloads)."""
    rows = {}
    for w in workloads:
        recs = per_workload.get(w)
        if recs:
            ms = analysis.ms_ratios(list(steptime_records), w, optimizer)
            rows[w] = summarize(recs, optimizer, ms)
    family = {w: s["k"]["p"] for w, s in rows.items() if s}
    for w, p in inference.holm(family).items():
        rows[w]["k"]["p_holm"] = p
    return rows


def headline_workloads(per_workload: dict) -> list[str]:
    """The plan's headline workloads, plus the optional ones whose AdamW curve resolves k."""
    main = [c.workload for c in plan3.HEADLINE]
    extra = [c.workload for c in plan3.OPTIONAL if c.workload in per_workload and resolves(per_workload[c.workload])]
    return main + extra


def size_trend(per_workload: dict, cells=plan3.SIZE, optimizer: str = plan3.PRIMARY) -> dict:
    """k per width and the slope of log k against log parameters (over the central log k of the
    complete widths: those with k on every planned seed)."""
    from benchmarks.workloads import w3_parameters

    rows = {}
    for c in cells:
        recs = per_workload.get(c.workload)
        s = summarize(recs, optimizer) if recs else None
        width = int(c.workload.split("-")[1])
        complete = bool(s) and s["k"]["n"] >= c.seeds
        rows[c.workload] = dict(
            width=width, parameters=w3_parameters(width), steps=c.steps, summary=s, seeds=c.seeds, complete=complete
        )
    done = [r for r in rows.values() if r["complete"] and 0 < r["summary"]["k"]["value"] < math.inf]
    fit = None
    if len(done) >= 3:
        fit = inference.slope(
            [math.log(r["parameters"]) for r in done], [math.log(r["summary"]["k"]["value"]) for r in done]
        )
        fit["consistent_with_paper"] = fit["low"] <= PAPER_SLOPE <= fit["high"]
        fit["excludes_zero"] = fit["low"] > 0 or fit["high"] < 0
    return dict(rows=rows, fit=fit, paper_slope=PAPER_SLOPE)


def alignment(per_workload: dict, workloads, optimizers=(plan3.REFERENCE, plan3.PRIMARY)) -> dict:
    """``{workload: {optimizer: mean ± CI}}`` of the SPEC mean alignment over training (final seeds at B)."""
    return {
        w: {o: analysis.alignment(list(finals(per_workload[w], o).values())) for o in optimizers}
        for w in workloads
        if w in per_workload
    }
