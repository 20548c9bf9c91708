"""From recorded runs (protocol v2) to the reported numbers: targets, steps- and seconds-to-target,
paired bootstrap intervals, the smallest detectable difference, alignment CIs, the defaults rule.

Every result is read on the held-out **test** split; the validation split only selects trials.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
from scipy import stats

from benchmarks.protocol import PROTOCOL, REFERENCE, TARGET_RULE, TargetRule, selected

BOOTSTRAP = 10_000
Z_ALPHA, Z_POWER = 1.959964, 0.841621  # two-sided 5 % test, 80 % power


def by_workload(records: list[dict]) -> dict:
    out = defaultdict(list)
    for r in records:
        out[r["workload"]].append(r)
    return dict(out)


def v2(records: list[dict]) -> list[dict]:
    return [r for r in records if r.get("protocol") == PROTOCOL]


def selection(records: list[dict], optimizer: str) -> dict | None:
    """The selected tuning run of ``optimizer`` (last widening round), or None."""
    tuned = [r for r in records if r["optimizer"] == optimizer and r["phase"] == "tune"]
    if not tuned:
        return None
    last = max(r.get("round", 0) for r in tuned)
    return selected([r for r in tuned if r.get("round", 0) == last], tuned[0]["higher_is_better"])


def final_runs(records: list[dict], optimizer: str) -> list[dict]:
    """The selected trial's runs on the final seeds (sorted by seed); the tuning run is not one."""
    best = selection(records, optimizer)
    if best is None:
        return []
    runs = [
        r
        for r in records
        if r["optimizer"] == optimizer
        and r["phase"] == "seed"
        and r["hp"] == best["hp"]
        and r["steps"] == best["steps"]
        and r.get("round", 0) == best.get("round", 0)
    ]
    return sorted(runs, key=lambda r: r["seed"])


def _value(evaluation: dict, split: str, metric: str):
    row = evaluation.get(split) or {}
    value = row.get(metric)
    return value if value is not None and math.isfinite(value) else None


def target(records: list[dict], rule: TargetRule = TARGET_RULE) -> float | None:
    """The target under ``rule`` (see :mod:`benchmarks.protocol`): median over the target seeds of
    the best test metric each of AdamW's ``rule.length``-budget runs reached within its first
    ``rule.horizon`` × budget steps."""
    runs = [
        r
        for r in records
        if r["optimizer"] == REFERENCE and r["phase"] == "target" and r["steps"] == rule.steps(r["budget_steps"])
    ]
    best = selection(records, REFERENCE)
    if best is not None:
        runs = [r for r in runs if r["hp"] == best["hp"]]
    per_seed = []
    for r in runs:
        horizon = rule.horizon * r["budget_steps"]
        values = [v for e in r["evals"] if e["step"] <= horizon and (v := _value(e, "test", r["metric"])) is not None]
        if values:
            per_seed.append((max if r["higher_is_better"] else min)(values))
    return float(np.median(per_seed)) if per_seed else None


def reached(run: dict, goal: float, split: str = "test") -> float:
    """Steps to the first evaluation at or past ``goal`` on ``split``; ``inf`` if never."""
    for e in run["evals"]:
        value = _value(e, split, run["metric"])
        if value is not None and (value >= goal if run["higher_is_better"] else value <= goal):
            return float(e["step"])
    return math.inf


def lower_median(values) -> float:
    """The median, taking the lower middle value for an even count (never averages ∞ with a number)."""
    ordered = np.sort(np.asarray(values, dtype=float))
    return float(ordered[(len(ordered) - 1) // 2])


def paired_ratios(runs: list[dict], reference: list[dict], goal: float) -> dict:
    """Per shared seed, steps-to-target of ``runs`` over ``reference``'s (same seed: same initial
    weights and batches). A seed where only the reference misses gives 0, where only the candidate
    misses ∞; a seed where both miss is left out (counted in ``both_missed``)."""
    ref = {r["seed"]: reached(r, goal) for r in reference}
    mine = {r["seed"]: reached(r, goal) for r in runs}
    seeds = sorted(set(ref) & set(mine))
    ratios, used, both = [], [], 0
    for s in seeds:
        a, b = mine[s], ref[s]
        if math.isinf(a) and math.isinf(b):
            both += 1
            continue
        ratios.append(0.0 if math.isinf(b) else (math.inf if math.isinf(a) else a / b))
        used.append(s)
    return dict(
        seeds=used, ratios=ratios, both_missed=both, steps=[mine[s] for s in seeds], ref=[ref[s] for s in seeds]
    )


def bootstrap_median(values, rng: np.random.Generator, resamples: int = BOOTSTRAP) -> np.ndarray:
    """Lower medians of ``resamples`` resamples (with replacement) of ``values``."""
    values = np.asarray(values, dtype=float)
    index = rng.integers(0, len(values), size=(resamples, len(values)))
    ordered = np.sort(values[index], axis=1)
    return ordered[:, (len(values) - 1) // 2]


def percentile_interval(samples: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval by order statistics (no interpolation, so ∞ stays ∞)."""
    ordered = np.sort(samples)
    lo = ordered[int(math.floor((1 - level) / 2 * (len(ordered) - 1)))]
    hi = ordered[int(math.ceil((1 + level) / 2 * (len(ordered) - 1)))]
    return float(lo), float(hi)


def detectable_ratio(log_ratios, resolution: float) -> float | None:
    """The smallest ratio r > 1 (or 1/r) this design detects with 80 % power at the 5 % level:
    exp((z_0.975 + z_0.8) · sd(log ratio) / √n), and never finer than the evaluation resolution
    ``1 + resolution`` (one evaluation interval over the reference's steps to target). None when
    fewer than 2 finite paired ratios exist."""
    finite = [x for x in log_ratios if math.isfinite(x)]
    if len(finite) < 2:
        return None
    spread = float(np.std(finite, ddof=1))
    return max(math.exp((Z_ALPHA + Z_POWER) * spread / math.sqrt(len(finite))), 1.0 + resolution)


def verdict(interval: tuple[float, float], what: str = "steps") -> str:
    lo, hi = interval
    if lo > 1:
        return f"more {what} (interval above 1)"
    if hi < 1:
        return f"fewer {what} (interval below 1)"
    return "no detectable difference"


def compare(runs: list[dict], reference: list[dict], goal: float, ms_ratios=None, seed: int = 0) -> dict:
    """The headline comparison of one optimizer with the reference on one workload.

    Steps: median over seeds of the paired ratio, its 95 % bootstrap interval (seeds resampled in
    pairs), reach fractions, and the smallest detectable ratio. Seconds: steps ratio × the ms-per-step
    ratio measured side by side (``ms_ratios``: one per interleaved round); its interval resamples the
    seeds and the rounds together."""
    rng = np.random.default_rng(seed)
    paired = paired_ratios(runs, reference, goal)
    out = dict(
        seeds=len(runs),
        reached=sum(math.isfinite(reached(r, goal)) for r in runs),
        reference_reached=sum(math.isfinite(reached(r, goal)) for r in reference),
        both_missed=paired["both_missed"],
        steps=paired["steps"],
        reference_steps=paired["ref"],
    )
    if not paired["ratios"]:
        return {**out, "steps_ratio": None}
    samples = bootstrap_median(paired["ratios"], rng)
    out["steps_ratio"] = lower_median(paired["ratios"])
    out["steps_interval"] = percentile_interval(samples)
    out["steps_verdict"] = verdict(out["steps_interval"], "steps")
    eval_every = reference[0]["eval_every"]
    ref_finite = [s for s in paired["ref"] if math.isfinite(s)]
    resolution = eval_every / lower_median(ref_finite) if ref_finite else 1.0
    with np.errstate(divide="ignore"):
        out["detectable"] = detectable_ratio([math.log(x) for x in paired["ratios"] if x > 0], resolution)
    if ms_ratios:
        ms = np.asarray(ms_ratios, dtype=float)
        ms_samples = bootstrap_median(ms, rng)
        out["ms_ratio"] = lower_median(ms)
        out["seconds_ratio"] = out["steps_ratio"] * out["ms_ratio"]
        with np.errstate(invalid="ignore"):
            out["seconds_interval"] = percentile_interval(samples * ms_samples)
        out["seconds_verdict"] = verdict(out["seconds_interval"], "seconds")
    return out


def ms_ratios(steptime_records: list[dict], workload: str, optimizer: str, reference: str = REFERENCE) -> list[float]:
    """Per interleaved round, ms per step of ``optimizer`` over the reference's (the newest record
    of the workload that measured both)."""
    usable = [
        r
        for r in steptime_records
        if r["workload"] == workload and optimizer in r["ms_per_step"] and reference in r["ms_per_step"]
    ]
    if not usable:
        return []
    latest = max(usable, key=lambda r: r.get("recorded_at", ""))
    return [a / b for a, b in zip(latest["ms_per_step"][optimizer], latest["ms_per_step"][reference])]


def summary(records: list[dict], optimizers: list[str], steptime_records=()) -> dict:
    """Per optimizer: the selection (hp, edge), final-seed metrics on test, steps to target, and the
    comparison with AdamW."""
    goal = target(records)
    reference = final_runs(records, REFERENCE)
    out = {}
    for name in optimizers:
        runs = final_runs(records, name)
        best = selection(records, name)
        if best is None:
            continue
        last_round = [
            r
            for r in records
            if r["optimizer"] == name and r["phase"] == "tune" and r.get("round", 0) == best.get("round", 0)
        ]
        from benchmarks import tuning

        entry = dict(
            hp=best["hp"],
            fixed=best["fixed"],
            rounds=best.get("round", 0) + 1,
            trials=len(last_round),
            edge=tuning.edge(best["hp"], [r["hp"] for r in last_round]),
            seeds=len(runs),
            best_test=[r["best_test"] for r in runs],
            final_test=[r["final_test"] for r in runs],
        )
        if goal is not None and runs:
            steps = [reached(r, goal) for r in runs]
            entry.update(
                steps=steps,
                reached=sum(math.isfinite(s) for s in steps),
                budget=runs[0]["steps"],
                median_steps=lower_median(steps),
            )
            if reference and name != REFERENCE:
                entry["vs_adamw"] = compare(
                    runs, reference, goal, ms_ratios(list(steptime_records), records[0]["workload"], name)
                )
        out[name] = entry
    return dict(target=goal, optimizers=out)


VARIANT_BASE = "neat"
WIN_WORKLOADS = 2
GEOMEAN_BAR = 0.9
CENSOR = 2.0  # a seed that misses the target counts as CENSOR × budget steps in the geometric mean


def censored_ratio(runs: list[dict], base: list[dict], goal: float) -> float | None:
    """Median over shared seeds of steps(runs)/steps(base), a miss counted as ``CENSOR`` × budget."""
    mine = {r["seed"]: reached(r, goal) for r in runs}
    ref = {r["seed"]: reached(r, goal) for r in base}
    seeds = sorted(set(mine) & set(ref))
    if not seeds:
        return None

    def steps(x, run):
        return CENSOR * run["steps"] if math.isinf(x) else x

    values = [steps(mine[s], runs[0]) / steps(ref[s], base[0]) for s in seeds]
    return float(np.median(values))


def decide(per_workload: dict, variants: list[str], workloads: list[str], rule: TargetRule = TARGET_RULE) -> dict:
    """The pre-registered decision rule (benchmarks/preregistration.md) over recorded runs.

    Per variant and workload, the paired steps-to-target ratio against ``neat`` (AdamW's target,
    test split) with its 95 % bootstrap interval: a **win** when the interval lies below 1, a
    **loss** when it lies above 1 or the variant reaches the target on at least 2 fewer seeds. A
    variant is eligible when it has ≥ ``WIN_WORKLOADS`` wins, no loss, results on every workload and a
    geometric mean of the censored ratios ≤ ``GEOMEAN_BAR``; the eligible variant with the smallest
    geometric mean is the proposal, else none."""
    out = {}
    for v in variants:
        rows, wins, losses, ratios, complete = {}, 0, 0, [], True
        for w in workloads:
            recs = per_workload.get(w, [])
            goal = target(recs, rule) if recs else None
            runs, base = final_runs(recs, v), final_runs(recs, VARIANT_BASE)
            if goal is None or not runs or not base:
                rows[w] = None
                complete = False
                continue
            c = compare(runs, base, goal)
            win = c.get("steps_ratio") is not None and c["steps_interval"][1] < 1
            loss = (c.get("steps_ratio") is not None and c["steps_interval"][0] > 1) or (
                c["reached"] <= c["reference_reached"] - 2
            )
            wins, losses = wins + win, losses + loss
            ratio = censored_ratio(runs, base, goal)
            ratios.append(ratio)
            rows[w] = dict(compare=c, win=win, loss=loss, censored_ratio=ratio)
        geomean = float(np.exp(np.mean(np.log(ratios)))) if ratios and all(r and r > 0 for r in ratios) else None
        eligible = complete and wins >= WIN_WORKLOADS and losses == 0 and geomean is not None and geomean <= GEOMEAN_BAR
        out[v] = dict(rows=rows, wins=wins, losses=losses, geomean=geomean, complete=complete, eligible=eligible)
    eligible = [v for v in variants if out[v]["eligible"]]
    proposal = min(eligible, key=lambda v: out[v]["geomean"]) if eligible else None
    return dict(variants=out, proposal=proposal)


def performance_profile(summaries: dict, taus: np.ndarray) -> dict:
    """ρ_o(τ): fraction of workloads where o's median steps to target is within τ × the best's."""
    names = sorted({o for s in summaries.values() for o in s["optimizers"]})
    ratios = defaultdict(list)
    for s in summaries.values():
        times = {o: v.get("median_steps", math.inf) for o, v in s["optimizers"].items()}
        finite = [t for t in times.values() if math.isfinite(t)]
        best = min(finite) if finite else math.inf
        for o in names:
            t = times.get(o, math.inf)
            ratios[o].append(t / best if math.isfinite(t) and best > 0 else math.inf)
    return {o: [float(np.mean([r <= tau for r in ratios[o]])) for tau in taus] for o in names}


def mean_ci(values, level: float = 0.95) -> tuple[float, float]:
    """Mean and half-width of the Student-t confidence interval over independent seeds."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return float(values.mean()), math.nan
    half = stats.t.ppf(0.5 + level / 2, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    return float(values.mean()), float(half)


def alignment(runs: list[dict]) -> dict | None:
    """SPEC mean alignment over training, per seed averaged over the trace; mean ± 95 % CI over seeds."""
    traces = [r["trace"] for r in runs if r["trace"]["mean_alignment"]]
    if not traces:
        return None
    length = min(len(t["mean_alignment"]) for t in traces)
    curves = np.array([t["mean_alignment"][:length] for t in traces])
    mean, half = mean_ci(curves.mean(axis=1))
    band = [mean_ci(curves[:, j]) for j in range(length)]
    return dict(
        mean=mean,
        ci=half,
        seeds=len(traces),
        steps=traces[0]["step"][:length],
        curve=[b[0] for b in band],
        curve_ci=[b[1] for b in band],
    )


def choose_defaults(sweep_records: list[dict], current: dict, min_workloads: int = 2) -> dict:
    """The rule that picks NEAT's defaults from the one-at-a-time sweep (all configs share seeds).

    A swept value replaces the current default only if, paired seed by seed, its best validation
    metric beats the default's on **every** seed of **every** workload where both were run, and
    that is at least ``min_workloads`` workloads (with 3 seeds × 2 workloads, a value no better
    than the default passes with probability about 1/64). Among passing values the one with the
    best mean rank of its per-workload median wins. Returns ``{name: {"chosen", "default", "why",
    "evidence": {value: {workload: median best metric}}}}``.
    """
    runs_of = defaultdict(lambda: defaultdict(dict))  # name -> value -> workload -> {seed: best}
    higher = {}
    for r in sweep_records:
        hp = {k: json_key(v) for k, v in r["hp"].items()}
        moved = [k for k in current if hp.get(k) != json_key(current[k])]
        if len(moved) > 1:
            continue
        higher[r["workload"]] = r["higher_is_better"]
        for name in moved or list(current):
            runs_of[name][hp[name]].setdefault(r["workload"], {})[r["seed"]] = r["best_val"]
    out = {}
    for name, by_value in runs_of.items():
        default = json_key(current[name])
        base = by_value.get(default, {})

        def beats(a, b, workload):
            return a > b if higher[workload] else a < b

        def passes(value, by_value=by_value, base=base):
            shared = [w for w in by_value[value] if w in base]
            pairs = [(by_value[value][w][s], base[w][s], w) for w in shared for s in by_value[value][w] if s in base[w]]
            return len(shared) >= min_workloads and all(beats(a, b, w) for a, b, w in pairs)

        medians = {
            v: {w: float(np.median(list(seeds.values()))) for w, seeds in pw.items()} for v, pw in by_value.items()
        }
        winners = [v for v in by_value if v != default and passes(v)]

        def mean_rank(value, medians=medians):
            return np.mean(
                [
                    sorted((m[w] for m in medians.values() if w in m), reverse=higher[w]).index(medians[value][w])
                    for w in medians[value]
                ]
            )

        chosen = min(winners, key=mean_rank) if winners else default
        why = (
            "beats the default on every seed of every swept workload"
            if winners
            else f"no value beats the default on every seed of >= {min_workloads} workloads"
        )
        out[name] = dict(chosen=chosen, default=default, why=why, evidence=medians)
    return out


def json_key(value):
    """Hyperparameter values as recorded in JSON (tuples become lists, hashed as tuples)."""
    return tuple(value) if isinstance(value, (list, tuple)) else value
