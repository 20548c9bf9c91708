"""Command line: ``python -m benchmarks {list,run,sweep,report}`` (run from the repository root)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="workloads and optimizers")

    run = sub.add_parser("run", help="tune every optimizer on a workload, then rerun the selected trial on seeds")
    run.add_argument("workload")
    run.add_argument("--optimizers", nargs="+", default=None, help="default: all baselines, NEAT and ablations")
    run.add_argument("--trials", type=int, default=4, help="quasi-random tuning trials per optimizer")
    run.add_argument("--seeds", type=int, default=3)
    run.add_argument("--steps", type=int, default=None, help="override the workload's step count")
    run.add_argument("--results", type=Path, default=RESULTS)
    run.add_argument("--threads", type=int, default=1, help="torch CPU threads")

    sweep = sub.add_parser("sweep", help="NEAT's own hyperparameters one at a time, at AdamW's tuned lr/decay")
    sweep.add_argument("workload")
    sweep.add_argument("--seeds", type=int, default=3)
    sweep.add_argument("--only", nargs="+", default=None, help="hyperparameters to sweep (default: all)")
    sweep.add_argument("--steps", type=int, default=None)
    sweep.add_argument("--results", type=Path, default=RESULTS)
    sweep.add_argument("--threads", type=int, default=1)

    cost = sub.add_parser("steptime", help="ms per step of every optimizer, interleaved in one process")
    cost.add_argument("--workloads", nargs="+", default=None)
    cost.add_argument("--steps", type=int, default=30)
    cost.add_argument("--rounds", type=int, default=3)
    cost.add_argument("--results", type=Path, default=RESULTS)
    cost.add_argument("--threads", type=int, default=1)

    report = sub.add_parser("report", help="Markdown report with plots from the recorded results")
    report.add_argument("--results", type=Path, default=RESULTS)
    return parser


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = _parser().parse_args(argv)
    if args.command == "list":
        from benchmarks.optimizers import OPTIMIZERS
        from benchmarks.workloads import WORKLOADS, available

        for w in WORKLOADS.values():
            ok, why = available(w)
            print(f"{w.name}: {w.title}; metric {w.metric}; {w.steps} steps{'' if ok else '  [' + why + ']'}")
        for o in OPTIMIZERS.values():
            print(f"{o.name}: {o.title}; searches {', '.join(o.space)}")
        return 0
    if args.command == "report":
        from benchmarks.report import write_report

        print(write_report(args.results))
        return 0

    import torch

    torch.set_num_threads(args.threads)
    from benchmarks import protocol
    from benchmarks.optimizers import ALL, OPTIMIZERS
    from benchmarks.workloads import WORKLOADS, available

    if args.command == "steptime":
        return _steptime(args, argv)

    if args.workload not in WORKLOADS:
        sys.exit(f"unknown workload {args.workload!r}; choose from {', '.join(WORKLOADS)}")
    ok, why = available(WORKLOADS[args.workload])
    if not ok:
        sys.exit(f"{args.workload}: {why}")
    if args.command == "run":
        names = args.optimizers or ALL
        unknown = [n for n in names if n not in OPTIMIZERS]
        if unknown:
            sys.exit(f"unknown optimizer(s) {unknown}; choose from {', '.join(OPTIMIZERS)}")
        session = protocol.Session(args.workload, args.results, args.steps, command=protocol.command_line(argv))
        for name in names:
            protocol.tune_and_seed(session, name, args.trials, args.seeds)
        print(f"recorded in {session.path}")
        return 0

    from benchmarks import records

    tuned = [
        r
        for r in records.load(records.path_for(args.results, args.workload))
        if r["optimizer"] == "adamw"
        and r["phase"] == "tune"
        and (args.steps or WORKLOADS[args.workload].steps) == r["steps"]
    ]
    best = protocol.selected(tuned, WORKLOADS[args.workload].higher_is_better)
    if best is None:
        sys.exit(
            f"sweep needs AdamW's tuned lr/decay: run `python -m benchmarks run {args.workload} "
            f"--optimizers adamw` first"
        )
    session = protocol.Session(
        args.workload, args.results, args.steps, kind="sweep", command=protocol.command_line(argv)
    )
    protocol.sweep(session, best["hp"], args.seeds, args.only)
    print(f"recorded in {session.path}")
    return 0


def _steptime(args, argv) -> int:
    from benchmarks import protocol, records, steptime
    from benchmarks.optimizers import ALL
    from benchmarks.runner import machine
    from benchmarks.workloads import WORKLOADS, available

    names = [w for w in (args.workloads or WORKLOADS) if available(WORKLOADS[w])[0]]
    for name in names:
        workload = WORKLOADS[name]
        times = steptime.measure(workload, workload.build(), ALL, args.steps, args.rounds)
        records.append(
            records.path_for(args.results, "steptime"),
            dict(
                workload=name,
                phase="steptime",
                steps=args.steps,
                rounds=args.rounds,
                ms_per_step=times,
                machine=machine(),
                command=protocol.command_line(argv),
            ),
        )
        print(name, {k: steptime.median_ms(v) for k, v in times.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
