"""Protocol v3's tables and verdict in Markdown, from verified records only.

:func:`tables` builds every table from the records of a results folder (those from a dirty tree
are left out and counted; every digest is checked against its commit, a mismatch stops the report);
:func:`verdict` is the sentence rule of ``benchmarks/preregistration.md`` (Protocol v3, "Decision
rule"), applied to the headline table whichever way it falls.
"""

from __future__ import annotations

import math
from pathlib import Path

from benchmarks import analysis, analysis3, grid, plan3, provenance, records
from benchmarks.workloads import W3_SIZE, WORKLOADS

ALPHA = 0.05
PAPER_K = 1 / (1 - 0.28)  # "28 % fewer steps"
TITLES = dict(adamw="AdamW", nadamw="NAdamW", neat="NEAT (defaults)", neat_search="NEAT tuned")


def _f(x, digits=3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if isinstance(x, float) and math.isinf(x):
        return "∞" if x > 0 else "−∞"
    return f"{x:.{digits}g}"


def _interval(s: dict, low_bound: float, high_bound: float) -> str:
    """``value [low, high]``; an end set by a censored seed is shown as ``< min`` / ``> max`` budget."""
    lo = f"< {_f(low_bound)}" if s["low"] <= 0 else _f(s["low"])
    hi = f"> {_f(high_bound)}" if math.isinf(s["high"]) else _f(s["high"])
    value = _f(s["value"])
    if math.isinf(s["value"]) or s["value"] <= 0:
        value = f"> {_f(high_bound)}" if s["value"] > 0 else f"< {_f(low_bound)}"
    return f"{value} [{lo}, {hi}]"


def result(k: dict, alpha: float = ALPHA, what: str = "steps") -> str:
    """A workload's result under the rule: Holm-adjusted p below ``alpha`` decides the side."""
    if k.get("p_holm", k["p"]) >= alpha:
        return "no detectable difference"
    return f"fewer {what} (k > 1)" if k["value"] > 1 else f"more {what} (k < 1)"


def headline_table(rows: dict, workloads) -> str:
    low, high = min(plan3.HEADLINE[0].fractions), max(plan3.HEADLINE[0].fractions)
    out = [
        "| workload (metric, B steps) | k: matches AdamW at k·B [95 % interval] | interval, test | seeds "
        "(censored above / below) | p (Holm) | smallest detectable k | final-metric difference at B [95 % t] "
        "| ms/step ratio | k in seconds [95 %] | result |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for w in workloads:
        s = rows.get(w)
        if not s:
            out.append(f"| {w} | not recorded | | | | | | | | |")
            continue
        k, d = s["k"], s.get("difference")
        diff = f"{d['mean']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}]" if d else "—"
        ks = s.get("k_seconds")
        out.append(
            f"| {w} ({WORKLOADS[w].metric}, {s['budget']}) | {_interval(k, low, high)} | {k['method']}; {k['test']} | "
            f"{k['n']} ({k['above']} / {k['below']}) | {_f(k['p'])} ({_f(k.get('p_holm'))}) | "
            f"{_f(k['detectable'])} | {diff} | {_f(s.get('ms_ratio', {}).get('median'))} | "
            f"{_interval(ks, low, high) if ks else '—'} | {result(k)} |"
        )
    return "\n".join(out)


def verdict(rows: dict, workloads, optimizer: str = plan3.PRIMARY, seeds: int = plan3.SEEDS) -> str:
    """The verdict sentence (preregistration, Protocol v3): incomplete, fewer, more, mixed or none."""
    name = TITLES[optimizer]
    missing = [w for w in workloads if not rows.get(w) or rows[w]["k"]["n"] < seeds]
    if missing:
        return (
            f"v3 verdict: not yet reached — {', '.join(missing)} lack(s) {seeds} paired seeds of {name} and AdamW "
            "at every budget; no claim is made."
        )
    fewer = [w for w in workloads if result(rows[w]["k"]).startswith("fewer")]
    more = [w for w in workloads if result(rows[w]["k"]).startswith("more")]
    n = len(workloads)
    paper = [w for w in workloads if rows[w]["k"]["low"] <= PAPER_K <= rows[w]["k"]["high"]]
    detect = [rows[w]["k"]["detectable"] for w in workloads if rows[w]["k"]["detectable"]]
    if fewer and not more:
        head = (
            f"{name} needs fewer steps than AdamW on {len(fewer)} of {n} workloads ({', '.join(fewer)}), more on none"
        )
    elif more and not fewer:
        head = f"{name} needs more steps than AdamW on {len(more)} of {n} workloads ({', '.join(more)}), fewer on none"
    elif fewer and more:
        head = f"mixed: {name} needs fewer steps than AdamW on {', '.join(fewer)} and more on {', '.join(more)}"
    else:
        span = f" (the design detects k beyond {min(detect):.2f}–{max(detect):.2f})" if detect else ""
        head = f"no detectable difference in steps between {name} and AdamW on any of the {n} workloads{span}"
    return (
        f"v3 verdict: {head} (Holm-adjusted p < {ALPHA} decides); the paper's k ≈ {PAPER_K:.2f} "
        f"(28 % fewer steps) lies inside the interval on {len(paper)} of {n}."
    )


def size_table(trend: dict) -> list[str]:
    out = [
        "| width | parameters | steps (tokens per parameter) | k [95 % interval] | interval, test | seeds |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for w, r in trend["rows"].items():
        s = r["summary"]
        tokens = r["steps"] * WORKLOADS[w].batch_size * W3_SIZE["context"] / r["parameters"]
        if not s:
            out.append(f"| {r['width']} | {r['parameters']:,} | {r['steps']} ({tokens:.1f}) | not recorded | | |")
            continue
        seeds = str(s["k"]["n"]) if r["complete"] else f"{s['k']['n']} of {r['seeds']} (incomplete)"
        out.append(
            f"| {r['width']} | {r['parameters']:,} | {r['steps']} ({tokens:.1f}) | {_interval(s['k'], 0.5, 1.4)} | "
            f"{s['k']['method']} | {seeds} |"
        )
    fit = trend["fit"]
    if fit is None:
        out += ["", "Slope of log k against log parameters: not yet (needs k at ≥ 3 widths with every seed)."]
    else:
        side = "consistent with" if fit["consistent_with_paper"] else "not consistent with"
        out += [
            "",
            f"Slope of log k against log parameters: {fit['slope']:+.3f} [{fit['low']:+.3f}, {fit['high']:+.3f}] "
            f"(least squares over {fit['n']} widths, Student-t on n − 2 df); the paper's trend (16 % fewer steps "
            f"at 50M → 31 % at 1.2B parameters) is a slope of {trend['paper_slope']:+.3f}: {side} it"
            f"{', and the interval excludes 0' if fit['excludes_zero'] else ', and the interval includes 0'}.",
        ]
    return out


def tuning_table(per_workload: dict, workloads) -> list[str]:
    """Per workload and optimizer: the selection at B, the grid runs behind it and whether its
    learning rate is still at the grid's edge."""
    out = [
        "| workload | optimizer | selected at B (lr, weight decay, β2) | tuning runs at B (rounds) "
        "| lr at the grid's edge? |",
        "| --- | --- | --- | --- | --- |",
    ]
    for w in workloads:
        recs = per_workload.get(w, [])
        for o in plan3.OPTIMIZERS:
            tuned = [r for r in recs if r["optimizer"] == o and r["phase"] == "tune" and r["budget_fraction"] == 1.0]
            best = analysis3.selections(recs, o).get(1.0)
            if best is None:
                continue
            hp = best["hp"]
            edge = grid.edge(hp["lr"], sorted({r["hp"]["lr"] for r in tuned}))
            out.append(
                f"| {w} | {TITLES[o]} | {hp['lr']:.3g}, {hp['weight_decay']:g}, {hp['beta2']:g} | {len(tuned)} "
                f"({1 + max(r['round'] for r in tuned)}) | {edge or 'inside'} |"
            )
    return out


#: Why NEAT's column cannot be read as the paper's statistic (``python -m benchmarks.adam_bound``).
ALIGNMENT_CAVEAT = (
    "NEAT's column is not comparable with AdamW's: NGE (SPEC step 6) feeds the momentum of coordinates that have "
    "no gradient while their second moment decays, so their direction grows past the bound Adam's moments obey "
    "and comes to dominate `U_i`, which pulls `a_i` towards 0 (`benchmarks/results/adam_bound.md`; "
    '`docs/spec.md`, "A known weakness").'
)


def alignment_table(rows: dict) -> list[str]:
    out = [
        f"| workload | AdamW (paper {analysis3.PAPER_ALIGNMENT['adamw']:+.2f}) | NEAT (paper "
        f"{analysis3.PAPER_ALIGNMENT['neat']:+.2f}) |",
        "| --- | --- | --- |",
    ]
    for w, cells in rows.items():
        shown = [f"{a['mean']:+.3f} ± {a['ci']:.3f} (n={a['seeds']})" if a else "—" for a in cells.values()]
        out.append(f"| {w} | {' | '.join(shown)} |")
    return out


def tables(results: Path, root=provenance.ROOT) -> dict:
    """Everything the v3 report shows, from ``results`` (empty dict when it holds no v3 record)."""
    everything = records.load_all(results) if Path(results).is_dir() else []
    recs, dirty = analysis3.usable(everything, root)
    costs = [r for r in everything if r["phase"] == "steptime" and (r.get("source") or {}).get("dirty") is False]
    provenance.verify(costs, root)
    if not recs:
        return {}
    per_workload = analysis.by_workload([r for r in recs if r["phase"] in ("tune", "seed")])
    workloads = analysis3.headline_workloads(per_workload)
    order = [plan3.PRIMARY, *[o for o in plan3.OPTIMIZERS if o not in (plan3.PRIMARY, plan3.REFERENCE)]]
    rows = {o: analysis3.headline(per_workload, o, workloads, costs) for o in order}
    return dict(
        workloads=workloads,
        rows=rows,
        dirty=dirty,
        verdict=verdict(rows[plan3.PRIMARY], workloads),
        trend=analysis3.size_trend(per_workload),
        alignment=analysis3.alignment(per_workload, workloads),
        tuning=tuning_table(per_workload, workloads),
        commits=sorted({r["source"]["commit"] for r in recs}),
        hours=sum(r.get("wall_time_s", 0.0) for r in recs) / 3600,
    )


def markdown(t: dict) -> list[str]:
    """The v3 section's lines from :func:`tables`."""
    out = [f"**{t['verdict']}**", ""]
    out += [
        f"Records from commit(s) {', '.join(c[:10] for c in t['commits'])}, every digest checked against its commit; "
        f"{t['dirty']} record(s) from a dirty tree left out. Results on the test split; selection on validation.",
        "",
        f"Machine time of these records: {t['hours']:.1f} CPU-hours (the runs' wall times; each run on one "
        "thread, two runs at a time on a 2-core machine).",
        "",
    ]
    for o, rows in t["rows"].items():
        out += [f"#### {TITLES[o]} against AdamW", "", headline_table(rows, t["workloads"]), ""]
    out += ["#### Size trend (W3, same tokens per parameter at every width)", "", *size_table(t["trend"]), ""]
    out += [
        "#### Tuning (equal effort: the same grid for every optimizer, selected on validation)",
        "",
        *t["tuning"],
        "",
    ]
    out += ["#### SPEC mean alignment over training (mean ± 95 % t-interval over seeds)", ""]
    out += [*alignment_table(t["alignment"]), ""]
    out += [ALIGNMENT_CAVEAT, ""]
    return out
