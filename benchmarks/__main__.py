"""Command line: ``python -m benchmarks {list,run,steptime,estimate,sweep,all,v3,gpu,report}`` (from the
repository root).

``v3`` runs protocol v3 (:mod:`benchmarks.plan3`) from committed code into ``benchmarks/results/v3``
(resumable; ``--estimate`` prints its cost); ``gpu`` is the prepared one-GPU run (:mod:`benchmarks.gpu`).

``run``, ``steptime``, ``estimate`` and ``sweep`` write JSON lines to ``--results`` (default
``./neat-benchmarks``, outside the tracked ``benchmarks/results/``); ``report`` reads
``--results`` (default: the recorded runs in ``benchmarks/results/v2``) and writes the Markdown
report and plots next to them.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

RECORDED = Path(__file__).resolve().parent / "results" / "v2"
RECORDED_V3 = Path(__file__).resolve().parent / "results" / "v3"
USER_RESULTS = Path("neat-benchmarks")
PRIORITY = ["W1", "W5", "W4", "W2", "W3"]  # cheapest first


def _common(p, results=USER_RESULTS):
    p.add_argument("--results", type=Path, default=results, help=f"folder of the JSON lines (default: {results})")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--device", default="cpu", help="torch device: cpu (default), cuda, cuda:1, ...")


def _parser() -> argparse.ArgumentParser:
    from benchmarks.protocol import DEFAULT_SEEDS, DEFAULT_TRIALS

    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="workloads and optimizers")

    run = sub.add_parser("run", help="tune every optimizer on a workload, set the target, rerun on fresh seeds")
    run.add_argument("workload")
    run.add_argument("--optimizers", nargs="+", default=None, help="default: the core set (see `list`)")
    run.add_argument("--trials", type=int, default=DEFAULT_TRIALS, help="quasi-random tuning trials per optimizer")
    run.add_argument("--seeds", type=int, default=DEFAULT_SEEDS, help="final seeds (1..n; the tuning seed is 0)")
    run.add_argument("--steps", type=int, default=None, help="override the workload's step budget")
    _common(run)

    sweep = sub.add_parser("sweep", help="NEAT's own hyperparameters one at a time, at AdamW's tuned lr/decay")
    sweep.add_argument("workload")
    sweep.add_argument("--seeds", type=int, default=3)
    sweep.add_argument("--only", nargs="+", default=None, help="hyperparameters to sweep (default: all)")
    sweep.add_argument("--steps", type=int, default=None)
    _common(sweep)

    cost = sub.add_parser("steptime", help="ms per step of each optimizer vs AdamW(fused=True), interleaved")
    cost.add_argument("--workloads", nargs="+", default=None)
    cost.add_argument("--optimizers", nargs="+", default=None, help="default: all")
    cost.add_argument("--steps", type=int, default=30)
    cost.add_argument("--rounds", type=int, default=7)
    _common(cost)

    est = sub.add_parser("estimate", help="time one run per workload and size the whole protocol")
    est.add_argument("--workloads", nargs="+", default=None)
    est.add_argument("--trials", type=int, default=DEFAULT_TRIALS)
    est.add_argument("--seeds", type=int, default=DEFAULT_SEEDS)
    _common(est)

    plan = sub.add_parser(
        "all",
        help="the whole protocol in priority order, in one process: per workload the core optimizers and "
        "their step times, then the pre-registered variants, the size trend, Lion and SGD, the report",
    )
    plan.add_argument("--workloads", nargs="+", default=PRIORITY, help=f"order (default: {' '.join(PRIORITY)})")
    plan.add_argument("--trials", type=int, default=DEFAULT_TRIALS)
    plan.add_argument("--seeds", type=int, default=DEFAULT_SEEDS)
    plan.add_argument("--steps", type=int, default=None, help="override every workload's budget (smoke runs)")
    _common(plan)

    v3 = sub.add_parser("v3", help="protocol v3 (benchmarks/plan3.py) from committed code; resumes")
    v3.add_argument("--parts", nargs="+", default=["headline", "size"], help="headline, optional, size")
    v3.add_argument("--workloads", nargs="+", default=None, help="only these cells (e.g. W1 W3-96)")
    v3.add_argument("--optimizers", nargs="+", default=None, help="only these optimizers (AdamW always runs)")
    v3.add_argument("--steps", type=int, default=None, help="override every cell's budget B (smoke runs)")
    v3.add_argument("--seeds", type=int, default=None, help="override every cell's number of seeds (smoke runs)")
    v3.add_argument("--hours", type=float, default=None, help="start no run after this many hours")
    v3.add_argument("--estimate", action="store_true", help="print the plan's runs and CPU cost; run nothing")
    v3.add_argument("--allow-dirty", action="store_true", help="record from a tree with uncommitted changes")
    _common(v3, results=RECORDED_V3)

    gpu = sub.add_parser("gpu", help="the prepared one-GPU run (conformance rows, step time, byte GPT); < 8 min")
    gpu.add_argument("--dry-run", action="store_true", help="toy sizes on CPU (what the test suite runs)")
    gpu.add_argument("--out", type=Path, default=Path("neat-gpu"), help="folder of gpu.jsonl (default: ./neat-gpu)")
    gpu.add_argument("--limit", type=float, default=480.0, help="seconds the whole run may take (default 480)")

    report = sub.add_parser("report", help="Markdown report with plots from the recorded results")
    report.add_argument("--results", type=Path, default=RECORDED, help=f"default: {RECORDED}")
    report.add_argument("--v3-results", type=Path, default=RECORDED_V3, help=f"default: {RECORDED_V3}")
    report.add_argument(
        "--readme",
        type=Path,
        default=None,
        help="README to write the section into (default: the repository's README.md when --results is the default)",
    )
    return parser


def _check_data(name: str):
    from benchmarks.workloads import WORKLOADS, available

    if name not in WORKLOADS:
        sys.exit(f"unknown workload {name!r}; choose from {', '.join(WORKLOADS)}")
    ok, why = available(WORKLOADS[name])
    if not ok:
        sys.exit(f"{name}: {why}")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = _parser().parse_args(argv)
    if args.command == "list":
        from benchmarks.optimizers import CORE, EXTRA, OPTIMIZERS, VARIANTS
        from benchmarks.workloads import WORKLOADS, available

        for w in WORKLOADS.values():
            ok, why = available(w)
            print(f"{w.name}: {w.title}; metric {w.metric}; {w.steps} steps{'' if ok else '  [' + why + ']'}")
        for o in OPTIMIZERS.values():
            print(f"{o.name}: {o.title}; searches {', '.join(o.space)}")
        print(f"core set (run's default): {' '.join(CORE)}; extra: {' '.join(EXTRA)}; variants: {' '.join(VARIANTS)}")
        return 0
    if args.command == "report":
        return _report(args)
    if args.command == "gpu":
        from benchmarks import gpu

        return gpu.main(args.out, args.limit, args.dry_run)

    import torch

    torch.set_num_threads(args.threads)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit(f"--device {args.device}: torch sees no CUDA device here")
    from benchmarks import protocol

    if args.command == "steptime":
        return _steptime(args, argv)
    if args.command == "estimate":
        return _estimate(args)
    if args.command == "all":
        return _all(args)
    if args.command == "v3":
        return _v3(args, argv)

    _check_data(args.workload)
    if args.command == "run":
        from benchmarks.optimizers import CORE, OPTIMIZERS

        names = args.optimizers or CORE
        unknown = [n for n in names if n not in OPTIMIZERS]
        if unknown:
            sys.exit(f"unknown optimizer(s) {unknown}; choose from {', '.join(OPTIMIZERS)}")
        if protocol.REFERENCE not in names:
            names = [protocol.REFERENCE, *names]  # the target and every ratio need AdamW
            print("adding adamw: the target and the ratios are AdamW's", file=sys.stderr)
        session = protocol.Session(
            args.workload, args.results, args.steps, command=protocol.command_line(argv), device=args.device
        )
        for name in names:
            protocol.tune_and_seed(session, name, args.trials, args.seeds)
        print(f"recorded in {session.path}")
        _print_summary(session.path, args.results, names)
        return 0

    from benchmarks import analysis, records

    recs = analysis.v2(records.load(records.path_for(args.results, args.workload)))
    best = analysis.selection([r for r in recs if (args.steps or 0) in (0, r["steps"])], protocol.REFERENCE)
    if best is None:
        sys.exit(
            f"sweep needs AdamW's tuned lr/decay: run `python -m benchmarks run {args.workload} "
            f"--optimizers adamw --results {args.results}` first"
        )
    session = protocol.Session(
        args.workload,
        args.results,
        args.steps,
        kind="sweep",
        command=protocol.command_line(argv),
        device=args.device,
    )
    protocol.sweep(session, best["hp"], args.seeds, args.only)
    print(f"recorded in {session.path}")
    return 0


def _report(args) -> int:
    """The v2 report of ``--results``; with the recorded default also the v3 report and README's section."""
    from benchmarks import provenance, readme, report3
    from benchmarks.report import write_report

    if not Path(args.results).is_dir():
        sys.exit(f"no results folder {args.results}")
    path = write_report(args.results)
    print(f"wrote {path} (and its tables and plots in {path.parent})")
    target = args.readme or (readme.README if Path(args.results).resolve() == RECORDED else None)
    if target is None:
        return 0
    try:
        tables = report3.tables(args.v3_results)
        if tables:
            v3_path = Path(args.v3_results) / "report.md"
            v3_path.write_text("# NEAT benchmark v3 results\n\n" + "\n".join(report3.markdown(tables)) + "\n")
            print(f"wrote {v3_path}")
        print(f"wrote the benchmark section of {readme.write(target, args.results, args.v3_results)}")
    except provenance.ProvenanceError as error:
        sys.exit(f"report: provenance check failed: {error}")
    return 0


def _v3(args, argv) -> int:
    """Protocol v3's cells in order (or their cost with ``--estimate``); refuses a dirty tree."""
    import dataclasses

    from benchmarks import cost3, plan3, protocol, protocol3, provenance, records
    from benchmarks.workloads import WORKLOADS, available

    try:
        cells = list(plan3.cells(args.parts))
    except ValueError as error:
        sys.exit(str(error))
    if args.workloads:
        cells = [c for c in cells if c.workload in args.workloads]
    changes = {}
    if args.steps:
        changes["steps"] = args.steps
    if args.seeds:
        changes["seeds"] = args.seeds
    if args.optimizers:
        unknown = [o for o in args.optimizers if o not in plan3.OPTIMIZERS]
        if unknown:
            sys.exit(f"unknown optimizer(s) {unknown}; protocol v3 runs {', '.join(plan3.OPTIMIZERS)}")
        changes["optimizers"] = (plan3.REFERENCE, *[o for o in args.optimizers if o != plan3.REFERENCE])
    cells = [
        dataclasses.replace(c, **{k: v for k, v in changes.items() if k != "optimizers" or c.part != "size"})
        for c in cells
    ]
    if not cells:
        sys.exit("no cell of the plan matches --parts/--workloads")
    if args.estimate:
        cost3.estimate(cells, args.device)
        return 0
    try:
        provenance.require_clean(provenance.current(), args.allow_dirty)
    except provenance.ProvenanceError as error:
        sys.exit(f"v3: {error}")
    deadline = time.time() + 3600 * args.hours if args.hours else None
    for cell in cells:
        ok, why = available(WORKLOADS[cell.workload])
        if not ok:
            print(f"=== {cell.workload}: skipped — {why}", flush=True)
            continue
        print(f"=== {time.strftime('%H:%M:%S')} {cell.workload} ({cell.part}): B = {cell.steps} steps", flush=True)
        try:
            protocol3.CellRun(cell, args.results, protocol.command_line(argv), args.device, deadline).run()
        except protocol3.OutOfTime as stop:
            print(f"stopped: {stop}; rerun the same command to resume", flush=True)
            return 0
        except LookupError as error:
            print(f"=== {cell.workload}: not run — {error}", flush=True)
            continue
        timed = [r for r in records.load(records.path_for(args.results, "steptime")) if r["workload"] == cell.workload]
        if cell.part != "size" and not any(r["source"].get("dirty") is False for r in timed):
            budget = ["--steps", "2", "--rounds", "2"] if args.steps else []
            common = ["--results", str(args.results), "--threads", str(args.threads), "--device", args.device]
            _steptime_argv = ["steptime", "--workloads", cell.workload, "--optimizers", *cell.optimizers, *budget]
            main(_steptime_argv + common)
    return 0


def _fmt_interval(value, interval) -> str:
    def f(x):
        return "∞" if math.isinf(x) else f"{x:.2f}"

    return f"{f(value)} [{f(interval[0])}, {f(interval[1])}]"


def _print_summary(path, results, names) -> None:
    """What was measured, with units and the ratios to AdamW."""
    from benchmarks import analysis, records

    recs = analysis.v2(records.load(path))
    cost = [r for r in records.load(records.path_for(results, "steptime")) if r.get("phase") == "steptime"]
    s = analysis.summary(recs, names, cost)
    workload = recs[0]["workload"]
    metric = recs[0]["metric"]
    print(f"{workload}: target {s['target']} {metric} (test split) — see the protocol in benchmarks/protocol.py")
    for name, v in s["optimizers"].items():
        line = (
            f"  {name:16s} lr {v['hp']['lr']:.3g}{' (at ' + v['edge'] + ' edge)' if v['edge'] else ''}; "
            f"best test {metric} median {analysis.lower_median(v['best_test']) if v['best_test'] else float('nan'):.4g}"
        )
        if "steps" in v:
            line += (
                f"; steps to target median {v['median_steps']:.0f} of {v['budget']} ({v['reached']}/{v['seeds']} seeds)"
            )
        c = v.get("vs_adamw")
        if c and c.get("steps_ratio") is None:
            line += "; steps ratio to AdamW: — (neither reached the target on any seed)"
        if c and c.get("steps_ratio") is not None:
            line += (
                f"; steps ratio to AdamW {_fmt_interval(c['steps_ratio'], c['steps_interval'])} ({c['steps_verdict']})"
            )
            if "seconds_ratio" in c:
                line += f"; seconds ratio {_fmt_interval(c['seconds_ratio'], c['seconds_interval'])}"
            else:
                line += "; seconds ratio: run `python -m benchmarks steptime` for the ms/step ratio"
        print(line)


def _steptime(args, argv) -> int:
    from benchmarks import protocol, records, steptime
    from benchmarks.optimizers import ALL, OPTIMIZERS
    from benchmarks.runner import machine
    from benchmarks.workloads import MAIN, WORKLOADS, available

    names = args.optimizers or ALL
    unknown = [n for n in names if n not in OPTIMIZERS]
    if unknown:
        sys.exit(f"unknown optimizer(s) {unknown}; choose from {', '.join(OPTIMIZERS)}")
    for name in args.workloads or MAIN:
        if name not in WORKLOADS:
            sys.exit(f"unknown workload {name!r}; choose from {', '.join(WORKLOADS)}")
        workload = WORKLOADS[name]
        ok, why = available(workload)
        if not ok:
            print(f"{name}: not measured — {why}")
            continue
        times = steptime.measure(workload, workload.build(args.device), names, args.steps, args.rounds)
        records.append(
            records.path_for(args.results, "steptime"),
            dict(
                workload=name,
                phase="steptime",
                steps=args.steps,
                rounds=args.rounds,
                reference="torch.optim.AdamW(fused=True)",
                ms_per_step=times,
                machine=machine(args.device),
                source=__import__("benchmarks.provenance", fromlist=["current"]).current(),
                command=protocol.command_line(argv),
                recorded_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            ),
        )
        ratio = steptime.ratios(times)
        print(f"{name}: ms per step, median over {args.rounds} interleaved rounds (ratio to AdamW fused)")
        for opt, v in times.items():
            print(f"  {opt:16s} {steptime.median_ms(v):8.3f} ms  ({ratio[opt]:.2f}×)")
    print(f"recorded in {records.path_for(args.results, 'steptime')}")
    return 0


def _all(args) -> int:
    """Every command of the protocol, one after another in this process (one PID to pause)."""
    import traceback

    from benchmarks.optimizers import EXTRA, VARIANTS
    from benchmarks.workloads import SIZE_TREND, WORKLOADS, available

    common = ["--results", str(args.results), "--threads", str(args.threads), "--device", args.device]
    budget = ["--trials", str(args.trials), "--seeds", str(args.seeds)]
    if args.steps:
        budget += ["--steps", str(args.steps)]
    steptime_budget = ["--steps", "2", "--rounds", "2"] if args.steps else []
    plan = []
    for w in args.workloads:
        plan += [["run", w, *budget], ["steptime", "--workloads", w, *steptime_budget]]
    new_variants = [v for v in VARIANTS if v.startswith("var_")]
    plan += [["run", w, "--optimizers", *new_variants, *budget] for w in args.workloads]
    for w in SIZE_TREND:
        if w not in args.workloads:
            plan += [
                ["run", w, "--optimizers", "adamw", "neat", *budget],
                ["steptime", "--workloads", w, "--optimizers", "adamw", "neat", *steptime_budget],
            ]
    plan += [["run", w, "--optimizers", *EXTRA, *budget] for w in args.workloads]
    plan += [["steptime", "--workloads", *args.workloads, *steptime_budget]]
    failed = 0
    for argv in plan:
        name = argv[1] if argv[0] == "run" else None
        if name is not None and not available(WORKLOADS[name])[0]:
            print(f"=== skipped {' '.join(argv)}: {available(WORKLOADS[name])[1]}", flush=True)
            continue
        print(
            f"=== {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} python -m benchmarks {' '.join(argv + common)}",
            flush=True,
        )
        try:
            main(argv + common)
        except (Exception, SystemExit):  # one failing command must not stop the chain
            failed += 1
            traceback.print_exc()
        sys.stdout.flush()
    from benchmarks.report import write_report

    print(f"wrote {write_report(args.results)}; {failed} command(s) failed", flush=True)
    return 1 if failed else 0


def _estimate(args) -> int:
    """One tuning run (validation only) and one final run (validation + test) of AdamW, NEAT and a
    harness variant per workload, then the protocol's run counts × those times."""
    import json

    from benchmarks import protocol
    from benchmarks.optimizers import CORE, EXTRA
    from benchmarks.runner import train
    from benchmarks.workloads import MAIN, SIZE_TREND, WORKLOADS, available

    trials, seeds = args.trials, args.seeds
    target_runs = protocol.TARGET_RULE.length * len(protocol.TARGET_SEEDS)
    table, totals = {}, {}
    for name in args.workloads or [*MAIN, *[w for w in SIZE_TREND if w not in MAIN]]:
        workload = WORKLOADS[name]
        ok, why = available(workload)
        if not ok:
            print(f"{name}: not estimated — {why}")
            continue
        problem = workload.build(args.device)
        t = {}
        for opt in ("adamw", "neat", "var_smooth_nsa"):
            for splits in (("val",), ("val", "test")):
                start = time.perf_counter()
                train(workload, problem, opt, {"lr": 1e-3, "weight_decay": 1e-4}, 0, splits=splits)
                t[(opt, len(splits))] = time.perf_counter() - start
        tune_s = (t[("adamw", 1)] + t[("neat", 1)]) / 2
        final_s = (t[("adamw", 2)] + t[("neat", 2)]) / 2
        var_tune, var_final = t[("var_smooth_nsa", 1)], t[("var_smooth_nsa", 2)]
        per_opt = trials * tune_s + seeds * final_s
        target = target_runs * t[("adamw", 2)]
        if name in MAIN:
            rows = dict(
                core=len(CORE) * per_opt + target,
                extra=len(EXTRA) * per_opt,
                variants=2 * (trials * var_tune + seeds * var_final),
            )
        else:
            rows = dict(size_trend=2 * per_opt + target)
        table[name] = dict(
            run_s={f"{k[0]}/{'val' if k[1] == 1 else 'val+test'}": round(v, 2) for k, v in t.items()}, **rows
        )
        for k, v in rows.items():
            totals[k] = totals.get(k, 0.0) + v
        print(name, json.dumps(table[name]))
    print(f"per {trials} trials + {seeds} seeds per optimizer; target runs {target_runs} budget-lengths:")
    for k, v in totals.items():
        print(f"  {k:11s} {v / 3600:6.2f} h")
    print(f"  {'total':11s} {sum(totals.values()) / 3600:6.2f} h (one thread, this machine's load)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
