"""The Markdown report and its PNG plots, generated only from the recorded JSON lines (protocol v2).

``python -m benchmarks report [--results DIR]`` rewrites ``DIR/report.md``, ``DIR/headline.md`` and
the plots from ``DIR/*.jsonl``; nothing else is read.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks import analysis, protocol, records, steptime  # noqa: E402
from benchmarks.optimizers import ALL, CORE, EXTRA, OPTIMIZERS, VARIANTS  # noqa: E402
from benchmarks.workloads import MAIN, SIZE_TREND, WORKLOADS  # noqa: E402

DPI = 60
COLORS = dict(
    adamw="k",
    nadamw="tab:gray",
    lamb="tab:olive",
    lion="tab:purple",
    sgdm="tab:brown",
    neat="tab:red",
    neat_search="tab:pink",
    neat_nge_only="tab:orange",
    neat_nsa_only="tab:blue",
    neat_mu0="tab:green",
    var_smooth_nsa="tab:cyan",
    var_elementwise="gold",
)


def _fmt(x, digits=4) -> str:
    if x is None:
        return "—"
    if isinstance(x, float) and math.isinf(x):
        return "∞"
    if isinstance(x, float) and math.isnan(x):
        return "—"
    return f"{x:.{digits}g}"


def _ratio(c: dict | None, key: str = "steps") -> str:
    if not c or c.get(f"{key}_ratio") is None:
        return "—"
    lo, hi = c[f"{key}_interval"]
    return f"{_fmt(c[f'{key}_ratio'], 3)} [{_fmt(lo, 3)}, {_fmt(hi, 3)}]"


def _hp(hp: dict, fixed: dict) -> str:
    return ", ".join(f"{k}={_fmt(v, 3) if isinstance(v, float) else v}" for k, v in {**hp, **fixed}.items())


def _median(values):
    values = [v for v in values if v is not None]
    return analysis.lower_median(values) if values else None


def headline_table(summaries: dict, workloads: list[str], candidate: str = "neat") -> str:
    rows = [
        f"| workload (metric, target on test) | {candidate} / AdamW steps to target, median [95 % CI] "
        "| ms/step ratio (side by side) | seconds to target ratio [95 % CI] | seeds reaching target "
        f"({candidate}, AdamW) | smallest detectable steps ratio | result |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for w in workloads:
        s = summaries.get(w)
        v = s and s["optimizers"].get(candidate)
        if not v or "vs_adamw" not in v:
            rows.append(f"| {w} | not recorded | | | | | |")
            continue
        c = v["vs_adamw"]
        d = c.get("detectable")
        detect = f"≤ {1 / d:.2f} or ≥ {d:.2f}" if d else "—"
        result = c.get("seconds_verdict") or c.get("steps_verdict") or "both missed the target"
        if c.get("seconds_verdict") and c.get("steps_verdict") != c.get("seconds_verdict"):
            result = f"steps: {c['steps_verdict']}; seconds: {c['seconds_verdict']}"
        rows.append(
            f"| {w} ({WORKLOADS[w].metric}, {_fmt(s['target'])}) | {_ratio(c)} | {_fmt(c.get('ms_ratio'), 3)} | "
            f"{_ratio(c, 'seconds')} | {c['reached']}/{c['seeds']}, {c['reference_reached']}/{c['seeds']} | "
            f"{detect} | {result} |"
        )
    return "\n".join(rows)


def optimizers_table(summaries: dict, workloads: list[str], names: list[str]) -> str:
    rows = [
        "| workload | optimizer | selected hyperparameters | lr at edge? (rounds) | best test metric, median "
        "| steps to target, median (reached) | steps ratio to AdamW [95 % CI] | seconds ratio [95 % CI] |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for w in workloads:
        s = summaries.get(w)
        if not s:
            continue
        for name in names:
            v = s["optimizers"].get(name)
            if not v:
                continue
            steps = f"{_fmt(v.get('median_steps'))} ({v.get('reached', 0)}/{v['seeds']})" if "steps" in v else "—"
            rows.append(
                f"| {w} | {name} | {_hp(v['hp'], v['fixed'])} | {v['edge'] or 'inside'} ({v['rounds']}) | "
                f"{_fmt(_median(v['best_test']))} | {steps} | {_ratio(v.get('vs_adamw'))} | "
                f"{_ratio(v.get('vs_adamw'), 'seconds')} |"
            )
    return "\n".join(rows)


def scale_table(per_workload: dict, summaries: dict, workloads: list[str]) -> str:
    rows = [
        "| workload | what | budget (steps) | batch | eval every | target (test) | AdamW: median fraction of "
        "the budget to reach it | trials × rounds, final seeds | scale |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for w in workloads:
        if w not in per_workload:
            continue
        wl, s = WORKLOADS[w], summaries[w]
        adamw = s["optimizers"].get("adamw", {})
        frac = (
            f"{adamw['median_steps'] / adamw['budget']:.2f}"
            if adamw.get("median_steps") is not None and math.isfinite(adamw["median_steps"])
            else "not reached"
        )
        recs = per_workload[w]
        steps = sorted({r["budget_steps"] for r in recs})
        every = sorted({r["eval_every"] for r in recs if r["phase"] != "target"})
        trials = max((v["trials"] for v in s["optimizers"].values()), default=0)
        rounds = max((v["rounds"] for v in s["optimizers"].values()), default=0)
        seeds = max((v["seeds"] for v in s["optimizers"].values()), default=0)
        rows.append(
            f"| {w} | {wl.title} | {steps} | {wl.batch_size} | {every} | {_fmt(s['target'])} {wl.metric} | {frac} | "
            f"{trials} × ≤{rounds}, {seeds} | {', '.join(f'{k}: {v}' for k, v in wl.scale.items())} |"
        )
    return "\n".join(rows)


def step_cost_table(cost_records: list) -> str:
    latest = {}
    for r in cost_records:
        if r["workload"] not in latest or r.get("recorded_at", "") > latest[r["workload"]].get("recorded_at", ""):
            latest[r["workload"]] = r
    names = [n for n in ALL if any(n in r["ms_per_step"] for r in latest.values())]
    rows = [
        "All optimizers of a workload timed in one process, interleaved round by round with "
        "`torch.optim.AdamW(fused=True)` (same load); schedule lr write + forward + backward + step; "
        "ms per step, median over rounds, and in brackets the median over rounds of the per-round ratio to AdamW.",
        "",
        "| workload | " + " | ".join(names) + " | rounds × steps | command |",
        "| --- " * (len(names) + 3) + "|",
    ]
    for w, r in latest.items():
        ratio = steptime.ratios(r["ms_per_step"])
        cells = [
            f"{steptime.median_ms(r['ms_per_step'][o]):.2f} ({ratio[o]:.2f}×)" if o in r["ms_per_step"] else "—"
            for o in names
        ]
        rows.append(f"| {w} | " + " | ".join(cells) + f" | {r['rounds']} × {r['steps']} | `{r['command']}` |")
    return "\n".join(rows)


def size_table(summaries: dict) -> str:
    rows = [
        "| width | workload | target (bits/byte, test) | NEAT / AdamW steps [95 % CI] | ms/step ratio "
        "| seconds ratio [95 % CI] | reached (NEAT, AdamW) | result |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for w, width in SIZE_TREND.items():
        s = summaries.get(w)
        c = s and s["optimizers"].get("neat", {}).get("vs_adamw")
        if not c:
            rows.append(f"| {width} | {w} | not recorded | | | | | |")
            continue
        rows.append(
            f"| {width} | {w} | {_fmt(s['target'])} | {_ratio(c)} | {_fmt(c.get('ms_ratio'), 3)} | "
            f"{_ratio(c, 'seconds')} | {c['reached']}/{c['seeds']}, {c['reference_reached']}/{c['seeds']} | "
            f"{c.get('seconds_verdict') or c.get('steps_verdict') or '—'} |"
        )
    return "\n".join(rows)


def size_trend_parameters() -> dict:
    """Parameters of the model of each size-trend workload whose data is present."""
    from benchmarks.workloads import available

    out = {}
    for w in SIZE_TREND:
        if available(WORKLOADS[w])[0]:
            out[w] = sum(p.numel() for p in WORKLOADS[w].build().model_factory().parameters())
    return out


TREND_CEILING = 3.0  # ratios and interval ends above this (∞ included) are drawn at it, as ▲


def plot_size_trend(path: Path, summaries: dict, parameters: dict) -> bool:
    """NEAT / AdamW steps- and seconds-to-target ratios (median, 95 % interval) against the W3
    model's parameter count; False when no width has a comparison."""
    fig, ax = plt.subplots(figsize=(5, 3.2))
    drawn = False
    for key, color, shift in (("steps", "tab:blue", 0.97), ("seconds", "tab:orange", 1.03)):
        xs, ys, lows, highs, capped = [], [], [], [], []
        for w in SIZE_TREND:
            c = summaries.get(w, {}).get("optimizers", {}).get("neat", {}).get("vs_adamw")
            if not c or c.get(f"{key}_ratio") is None or w not in parameters:
                continue
            ratio, (lo, hi) = c[f"{key}_ratio"], c[f"{key}_interval"]
            y = min(ratio, TREND_CEILING)
            xs.append(parameters[w] * shift)
            ys.append(y)
            lows.append(max(y - min(lo, TREND_CEILING), 0.0))
            highs.append(max(min(hi, TREND_CEILING) - y, 0.0))
            capped.append(hi > TREND_CEILING)
        if not xs:
            continue
        drawn = True
        ax.errorbar(xs, ys, yerr=[lows, highs], fmt="o-", color=color, capsize=3, lw=1.2, label=f"{key} to target")
        ax.plot([x for x, cap in zip(xs, capped) if cap], [TREND_CEILING] * sum(capped), "^", color=color, ms=6)
    if drawn:
        ax.axhline(1.0, color="k", lw=0.8, ls=":")
        ax.set_xscale("log")
        ax.set_xticks([parameters[w] for w in SIZE_TREND if w in parameters])
        ax.set_xticklabels([f"{parameters[w] / 1e3:.0f}K" for w in SIZE_TREND if w in parameters], fontsize=7)
        ax.minorticks_off()
        ax.set_ylim(0, TREND_CEILING * 1.05)
        ax.set_xlabel("parameters of the W3 transformer (widths 64, 128, 256)", fontsize=8)
        ax.set_ylabel("NEAT / AdamW (median, 95 % CI)", fontsize=8)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return drawn


def variants_section(per_workload: dict) -> list[str]:
    """The pre-registered decision, under the amended target rule (primary) and the registered one."""
    lines = [
        "Each variant against `neat` (library defaults), paired by seed: median ratio of steps to the "
        "workload's AdamW target (test split) with its 95 % bootstrap interval; W = win (interval below 1), "
        "L = loss (interval above 1, or ≥ 2 fewer seeds reaching the target). The rule is in "
        "`benchmarks/preregistration.md` and `benchmarks.analysis.decide`. The target rule was amended "
        "(v2.0 → v2.1, see the amendment in the preregistration) before any variant's final seed ran; "
        "the decision is shown under both.",
        "",
    ]
    for rule in (protocol.TARGET_RULE, *[r for r in protocol.TARGET_RULES.values() if r != protocol.TARGET_RULE]):
        lines += [
            f"### Target rule {rule.name}{' (primary)' if rule == protocol.TARGET_RULE else ' (as registered)'}",
            "",
        ]
        lines += _decision_table(analysis.decide(per_workload, VARIANTS, MAIN, rule))
    return lines


def _decision_table(decision: dict) -> list[str]:
    lines = [
        "| variant | " + " | ".join(MAIN) + " | wins | losses | geometric mean (misses as 2× budget) | eligible |",
        "| --- " * (len(MAIN) + 5) + "|",
    ]
    for v, d in decision["variants"].items():
        cells = []
        for w in MAIN:
            row = d["rows"][w]
            if row is None:
                cells.append("not recorded")
                continue
            c = row["compare"]
            mark = " W" if row["win"] else (" L" if row["loss"] else "")
            cells.append(f"{_ratio(c)} ({c['reached']}/{c['seeds']} vs {c['reference_reached']}){mark}")
        lines.append(
            f"| {v} | " + " | ".join(cells) + f" | {d['wins']} | {d['losses']} | {_fmt(d['geomean'], 3)} | "
            f"{'yes' if d['eligible'] else 'no'}{'' if d['complete'] else ' (incomplete)'} |"
        )
    if decision["proposal"]:
        outcome = f"`{decision['proposal']}` is the proposal for the next spec version."
    else:
        outcome = "no variant meets the rule; no change to the update rule is proposed."
    lines += ["", f"**Decision:** {outcome}", ""]
    return lines


def _median_curve(runs, metric):
    length = min(len(r["evals"]) for r in runs)
    xs = np.median(np.array([[e["step"] for e in r["evals"][:length]] for r in runs], dtype=float), axis=0)
    ys = np.array(
        [[(e.get("test") or {}).get(metric, np.nan) or np.nan for e in r["evals"][:length]] for r in runs], dtype=float
    )
    return xs, np.nanmedian(ys, axis=0)


def plot_curves(path: Path, workload: str, recs: list, goal, names) -> bool:
    fig, ax = plt.subplots(figsize=(5, 3.2))
    drawn = False
    for name in names:
        runs = analysis.final_runs(recs, name)
        if not runs:
            continue
        xs, ys = _median_curve(runs, runs[0]["metric"])
        ax.plot(xs, ys, color=COLORS.get(name, "k"), lw=1.2, label=name, ls="--" if name not in CORE[:4] else "-")
        drawn = True
    if not drawn:
        plt.close(fig)
        return False
    if goal is not None:
        ax.axhline(goal, color="k", lw=0.6, ls=":")
    ax.set_xlabel("step")
    ax.set_ylabel(f"test {WORKLOADS[workload].metric}")
    if not WORKLOADS[workload].higher_is_better:
        ax.set_yscale("log")
    ax.legend(fontsize=6, ncol=2)
    ax.set_title(f"{workload}: median over final seeds (dotted: target)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return True


def plot_profile(path: Path, profile: dict, taus) -> None:
    fig, ax = plt.subplots(figsize=(5, 3))
    for name, rho in profile.items():
        ax.step(taus, rho, where="post", color=COLORS.get(name, "k"), label=name, lw=1.2)
    ax.set_xscale("log")
    ax.set_xlabel("τ (steps to target / best optimizer's)", fontsize=8)
    ax.set_ylabel("fraction of workloads", fontsize=8)
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def _v2_records(results: Path) -> tuple[list[dict], list[dict]]:
    """The protocol v2 runs (tune, seed, target) and the step-time records of ``results``."""
    everything = records.load_all(results)
    main_records = [r for r in analysis.v2(everything) if r["phase"] in ("tune", "seed", "target")]
    return main_records, [r for r in everything if r["phase"] == "steptime"]


def v2_headline(results: Path, candidate: str = "neat") -> str:
    """The v2 headline table (what ``headline.md`` holds) computed from ``results`` alone."""
    main_records, cost_records = _v2_records(Path(results))
    per_workload = analysis.by_workload(main_records)
    summaries = {
        w: analysis.summary(per_workload[w], [protocol.REFERENCE, candidate], cost_records)
        for w in MAIN
        if w in per_workload
    }
    return headline_table(summaries, MAIN, candidate)


def write_report(results: Path) -> Path:
    """Write ``report.md``, ``headline.md`` and the plots into ``results``; returns the report path."""
    results = Path(results)
    main_records, cost_records = _v2_records(results)
    per_workload = analysis.by_workload(main_records)
    order = [w for w in WORKLOADS if w in per_workload]
    summaries = {w: analysis.summary(per_workload[w], ALL, cost_records) for w in order}
    provenances = Counter(
        (r["source"]["harness"], r["source"]["library"], r["source"]["git"], r["source"]["dirty"]) for r in main_records
    )
    machines = {tuple(sorted((k, str(v)) for k, v in r["machine"].items())) for r in main_records}
    sched = {str(r["schedule"]) for r in main_records}
    lines = [
        "# NEAT benchmark v2 results",
        "",
        "Generated by `python -m benchmarks report` from the JSON lines in this folder; every number "
        "below comes from a recorded run. Protocol v2 (`benchmarks/protocol.py`): every optimizer, NEAT "
        f"included, trains with the same schedule ({', '.join(sorted(sched)) or '—'}); "
        f"{protocol.DEFAULT_TRIALS} quasi-random tuning trials per optimizer on seed {protocol.TUNE_SEED}, "
        "selected on the **validation** split, with the learning-rate range widened and the round rerun "
        "when the choice is at its edge; the target of a workload is the median over seeds "
        f"{list(protocol.TARGET_SEEDS)} of the best **test** metric that AdamW, trained for "
        f"{protocol.TARGET_RULE.length}× the budget, reached within its first {protocol.TARGET_RULE.horizon:.0%} "
        f"of the budget's steps (target rule {protocol.TARGET_RULE.name}); the selected trial "
        "is rerun on fresh seeds 1…n, and every result is read on the held-out **test** split. Steps to "
        "target are read at evaluation points (every ≤ 2.5 % of a run); seconds to target = steps × ms per "
        "step measured side by side with `AdamW(fused=True)` (`python -m benchmarks steptime`). Ratios: "
        "median over seeds of the per-seed (paired) ratio; 95 % intervals: paired percentile bootstrap over "
        f"seeds ({analysis.BOOTSTRAP} resamples; seconds also resample the timing rounds); the smallest "
        "detectable ratio: 80 % power at the 5 % level from the spread of the per-seed log ratios, never "
        "finer than one evaluation interval.",
        "",
    ]
    for m in sorted(machines):
        lines.append("Machine: " + ", ".join(f"{k}={v}" for k, v in m if v not in ("None",)))
    lines.append(
        "Source of the runs (harness digest, library digest, git HEAD, dirty: runs): "
        + "; ".join(f"`{h}`, `{lib}`, {g}, dirty={d}: {n}" for (h, lib, g, d), n in sorted(provenances.items()))
        + "."
    )
    lines += [
        "",
        "## Headline: NEAT (library defaults) vs AdamW (fused)",
        "",
        headline_table(summaries, MAIN),
        "",
        "## Scale, targets and budgets",
        "",
        scale_table(per_workload, summaries, order),
        "",
        "## Every optimizer",
        "",
        optimizers_table(summaries, order, ALL),
        "",
    ]
    if cost_records:
        lines += ["## Cost of a step, measured side by side", "", step_cost_table(cost_records), ""]
    lines += ["## Size trend: W3 at three widths (AdamW vs NEAT, each tuned with the same budget)", ""]
    lines += [size_table(summaries), ""]
    parameters = size_trend_parameters()
    if plot_size_trend(results / "size_trend.png", summaries, parameters):
        counts = ", ".join(f"{w} {parameters[w] / 1e3:.0f}K" for w in parameters)
        lines += [
            f"Parameters: {counts}. Points above {TREND_CEILING:g} (∞ included) are drawn at it (▲).",
            "",
            "![size trend](size_trend.png)",
            "",
        ]
    lines += ["## Pre-registered variants of the update rule", ""] + variants_section(per_workload)
    taus = np.geomspace(1, 20, 200)
    if summaries:
        plot_profile(
            results / "profile.png", analysis.performance_profile({w: summaries[w] for w in order}, taus), taus
        )
        lines += [
            "## Performance profile (steps to target)",
            "",
            "ρ(τ) = fraction of workloads on which an optimizer's median steps to the target are within "
            "τ × the best optimizer's.",
            "",
            "![profile](profile.png)",
            "",
        ]
    conflict = []
    for w in order:
        cells = []
        for name in ("adamw", "neat"):
            a = analysis.alignment(analysis.final_runs(per_workload[w], name))
            cells.append(f"{a['mean']:+.3f} ± {a['ci']:.3f}" if a else "—")
        conflict.append(f"| {w} | {cells[0]} | {cells[1]} |")
    lines += [
        "## SPEC mean alignment over training (mean ± 95 % CI over final seeds)",
        "",
        "| workload | AdamW | NEAT |",
        "| --- | --- | --- |",
        *conflict,
        "",
        "## Curves",
        "",
    ]
    for w in order:
        if plot_curves(results / f"curves_{w}.png", w, per_workload[w], summaries[w]["target"], ALL):
            lines += [f"### {w}: {WORKLOADS[w].title}", "", f"![{w} curves](curves_{w}.png)", ""]
    missing = [
        (w, o)
        for w in MAIN
        for o in [*CORE, *EXTRA, *[v for v in VARIANTS if v not in CORE]]
        if w not in summaries or o not in summaries[w]["optimizers"] or not summaries[w]["optimizers"][o]["seeds"]
    ]
    missing += [
        (w, o)
        for w in SIZE_TREND
        if w not in MAIN
        for o in ("adamw", "neat")
        if w not in summaries or o not in summaries[w]["optimizers"] or not summaries[w]["optimizers"][o]["seeds"]
    ]
    lines += ["## Not recorded", ""]
    where = os.path.relpath(results)
    where = where if not where.startswith("..") else str(results.resolve())
    lines += [f"- {w} {o}: `python -m benchmarks run {w} --optimizers {o} --results {where}`" for w, o in missing] or [
        "- nothing"
    ]
    lines += ["- W6 (GAN, optional in the issue): not implemented.", ""]
    (results / "headline.md").write_text(
        "NEAT (library defaults) / AdamW (fused), protocol v2, test split:\n\n" + headline_table(summaries, MAIN) + "\n"
    )
    path = results / "report.md"
    path.write_text("\n".join(lines) + "\n")
    assert OPTIMIZERS  # every name above is a registered optimizer
    return path
