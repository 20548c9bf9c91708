"""From recorded runs to the protocol's numbers: targets, steps/time-to-target, profiles, alignment CIs."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
from scipy import stats

from benchmarks.protocol import selected

REFERENCE = "adamw"


def by_workload(records: list[dict]) -> dict:
    out = defaultdict(list)
    for r in records:
        out[r["workload"]].append(r)
    return dict(out)


def final_runs(records: list[dict], optimizer: str) -> list[dict]:
    """The selected tuning run (seed 0) and its reruns on other seeds, for one workload's records."""
    tuned = [r for r in records if r["optimizer"] == optimizer and r["phase"] == "tune"]
    if not tuned:
        return []
    best = selected(tuned, tuned[0]["higher_is_better"])
    if best is None:
        return []
    reruns = [
        r
        for r in records
        if r["optimizer"] == optimizer
        and r["phase"] == "seed"
        and r["trial"] == best["trial"]
        and r["hp"] == best["hp"]
        and r["steps"] == best["steps"]
    ]
    return [best, *sorted(reruns, key=lambda r: r["seed"])]


def target(records: list[dict]) -> float | None:
    """The workload's target: median over seeds of tuned AdamW's best validation metric."""
    runs = final_runs(records, REFERENCE)
    return float(np.median([r["best_metric"] for r in runs])) if runs else None


def reached(run: dict, goal: float) -> tuple[float, float]:
    """``(steps, seconds)`` of the first evaluation at or past ``goal``; ``(inf, inf)`` if never."""
    for e in run["evals"]:
        value = e[run["metric"]]
        if value is not None and math.isfinite(value) and (value >= goal if run["higher_is_better"] else value <= goal):
            return float(e["step"]), float(e["time_s"])
    return math.inf, math.inf


def _spread(values) -> dict:
    values = np.asarray(values, dtype=float)
    return dict(median=float(np.median(values)), low=float(values.min()), high=float(values.max()))


def summary(records: list[dict], optimizers: list[str]) -> dict:
    """Per optimizer: selected hp, seeds, best metric, steps and seconds to the target (median, min, max)."""
    goal = target(records)
    out = {}
    for name in optimizers:
        runs = final_runs(records, name)
        if not runs:
            continue
        hits = [reached(r, goal) for r in runs] if goal is not None else []
        out[name] = dict(
            hp=runs[0]["hp"],
            fixed=runs[0]["fixed"],
            seeds=len(runs),
            trials=len({r["trial"] for r in records if r["optimizer"] == name and r["phase"] == "tune"}),
            best=_spread([r["best_metric"] for r in runs]),
            steps=_spread([h[0] for h in hits]) if hits else None,
            seconds=_spread([h[1] for h in hits]) if hits else None,
            reached=sum(math.isfinite(h[0]) for h in hits),
            step_time_ms=float(np.median([1000 * r["train_time_s"] / r["steps"] for r in runs])),
        )
    return dict(target=goal, optimizers=out)


def performance_profile(summaries: dict, taus: np.ndarray, key: str = "seconds") -> dict:
    """ρ_o(τ): fraction of workloads where o's median ``key`` ("seconds" or "steps") to target is
    within τ × the best optimizer's."""
    names = sorted({o for s in summaries.values() for o in s["optimizers"]})
    ratios = defaultdict(list)
    for s in summaries.values():
        times = {o: v[key]["median"] for o, v in s["optimizers"].items() if v[key]}
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
    """SPEC mean alignment over training, per seed averaged over the trace; mean ± 95 % CI over seeds,
    and the curve (mean ± CI at each traced step)."""
    traces = [r["trace"] for r in runs if r["trace"]["mean_alignment"]]
    if not traces:
        return None
    length = min(len(t["mean_alignment"]) for t in traces)
    curves = np.array([t["mean_alignment"][:length] for t in traces])
    per_seed = curves.mean(axis=1)
    mean, half = mean_ci(per_seed)
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
            runs_of[name][hp[name]].setdefault(r["workload"], {})[r["seed"]] = r["best_metric"]
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
