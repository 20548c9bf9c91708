"""Where the Adam direction ``u`` of SPEC step 2 lives after training: AdamW against NEAT.

From zero moments and constant ``β``, Cauchy–Schwarz bounds every coordinate of Adam's direction:
``|m̂/(√v̂ + ε)| ≤ b(t) = (1−β1)/(1−β1^t) · √((1−ρ^t)/(1−ρ)) · √((1−β2^t)/(1−β2))`` with
``ρ = β1²/β2``, because ``m`` and ``v`` average the same gradients. NEAT breaks that premise: SPEC
step 6 subtracts ``γ·κ_i·(C_i/U_i)·u_k`` over every coordinate of ``u_k``, also where ``g_k`` is 0
(a dead ReLU unit; a byte absent from the batch), and step 8 feeds ``m`` with that ``ĝ`` but ``v``
with the raw ``g²``. Where a coordinate's gradient stops, ``m`` keeps receiving the correction
while ``v`` decays, and ``u`` grows towards ``m̂/ε``.

This measures it at the end of a run, on one fresh batch: the share of ``U = Σ u²`` held by
coordinates past the bound, the largest ``|u|`` and ``|θ|``, and the mean SPEC alignment (step 4)
over all coordinates and over those within the bound; beside them, v3's statistic (the mean
alignment over training) and the final test metric. Learning rate, weight decay and β2 are AdamW's
v3 selection for the workload, for every optimizer. Not a test::

    python -m benchmarks.adam_bound --workloads W1 W5 W3 --steps 4000 4000 1000 --seeds 2
    python -m benchmarks.adam_bound --optimizers adamw neat var_clipped_nge   # a proposed fix
"""

from __future__ import annotations

import argparse
import statistics

import torch

from benchmarks import plan3, provenance
from benchmarks.probe import adam_direction, player_alignment, tensor_statistics
from benchmarks.runner import machine, train
from benchmarks.workloads import WORKLOADS
from neat.adapters.torch_adapter import module_layout

#: AdamW's selection in protocol v3 (``benchmarks/results/v3``, validation split, 1.0 × B).
ADAMW_V3 = {
    "W1": dict(lr=0.004, weight_decay=0.1, beta2=0.95),
    "W5": dict(lr=0.008, weight_decay=0.1, beta2=0.999),
    "W3": dict(lr=0.016, weight_decay=0.1, beta2=0.999),
}
#: AdamW; NEAT with NSA only (γ = 0), NGE only (ζ = 0), and both (library defaults).
OPTIMIZERS = ("adamw", "neat_nsa_only", "neat_nge_only", "neat")
#: Candidates for a fix of the rule (``benchmarks.variants``), measured on request.
FIXES = ("var_clipped_nge",)
#: Relative slack on the bound for float32 rounding.
SLACK = 1.001


def adam_bound(beta1: float, beta2: float, t: float) -> float:
    """``b(t)``: the largest ``|m̂/√v̂|`` Adam's moments allow after ``t`` steps (module docstring)."""
    rho = beta1**2 / beta2
    ratio_sum = t if rho == 1 else (1 - rho**t) / (1 - rho)
    return (1 - beta1) / (1 - beta1**t) * (ratio_sum * (1 - beta2**t) / (1 - beta2)) ** 0.5


@torch.no_grad()
def direction_report(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    """The bound's statistics of the current gradients (``p.grad``) and the optimizer's moments."""
    layout = module_layout(model)
    params, players = list(layout.tensors), [list(group) for group in layout.players]
    group = optimizer.param_groups[0]
    beta1, beta2 = group["betas"]
    every, inside = torch.zeros(len(params), 3, dtype=torch.float64), torch.zeros(len(params), 3, dtype=torch.float64)
    past, total, largest = 0.0, 0.0, 0.0
    for k, p in enumerate(params):
        state = optimizer.state.get(p, {})
        u = adam_direction(state, group)
        if u is None or p.grad is None:
            continue
        g, u = p.grad.double(), u.double()
        outside = u.abs() > SLACK * adam_bound(beta1, beta2, float(state["step"]))
        kept = torch.where(outside, 0.0, u)
        every[k], inside[k] = tensor_statistics(g, u), tensor_statistics(g, kept)
        past += float((u[outside] ** 2).sum())
        total += float((u * u).sum())
        largest = max(largest, float(u.abs().max()))
    return dict(
        share_past_bound=past / total if total > 0 else 0.0,
        max_direction=largest,
        max_parameter=max(float(p.abs().max()) for p in params),
        alignment=float(player_alignment(every, players).mean()),
        alignment_within_bound=float(player_alignment(inside, players).mean()),
    )


def measure(workload_name: str, problem, optimizer_name: str, seed: int, steps: int) -> dict:
    """Train once on ``problem`` (v3's schedule) and report :func:`direction_report` on one fresh batch."""
    workload = WORKLOADS[workload_name]

    def at_end(model, optimizer):
        optimizer.zero_grad(set_to_none=True)
        problem.loss(model, problem.sample(torch.Generator().manual_seed(seed), workload.batch_size)).backward()
        return direction_report(model, optimizer)

    record = train(
        workload, problem, optimizer_name, ADAMW_V3[workload_name], seed, steps, splits=("test",), at_end=at_end
    )
    over_training = record["trace"]["mean_alignment"]
    return dict(
        **record["at_end"],
        alignment_over_training=statistics.mean(over_training) if over_training else 0.0,
        final_test=record["final_test"],
    )


HEADER = (
    "| workload | optimizer | seed | mean alignment over training | alignment at end | within the bound "
    "| share of U past the bound | max abs u | max abs θ | final test |\n"
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
)


def row(workload: str, optimizer: str, seed: int, r: dict) -> str:
    return (
        f"| {workload} | {optimizer} | {seed} | {r['alignment_over_training']:+.4f} | {r['alignment']:+.4f} "
        f"| {r['alignment_within_bound']:+.4f} | {r['share_past_bound']:.3f} | {r['max_direction']:.3g} "
        f"| {r['max_parameter']:.3g} | {r['final_test']:.4f} |"
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workloads", nargs="+", default=list(ADAMW_V3), choices=list(ADAMW_V3))
    parser.add_argument("--steps", nargs="+", type=int, default=None, help="one per workload (default: v3's B)")
    parser.add_argument("--optimizers", nargs="+", default=list(OPTIMIZERS), choices=[*OPTIMIZERS, *FIXES])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    budgets = {cell.workload: cell.steps for cell in plan3.HEADLINE}
    steps = args.steps or [budgets[w] for w in args.workloads]
    if len(steps) != len(args.workloads):
        parser.error(f"--steps takes one value per workload ({len(args.workloads)}), got {len(steps)}")
    source = provenance.current()
    print(f"commit {source['commit']} (dirty: {source['dirty']}); machine {machine()}\n\n{HEADER}", flush=True)
    for workload, budget in zip(args.workloads, steps):
        problem = WORKLOADS[workload].build("cpu")  # its data, loaded once for every run
        for optimizer in args.optimizers:
            for seed in range(1, args.seeds + 1):
                print(row(workload, optimizer, seed, measure(workload, problem, optimizer, seed, budget)), flush=True)


if __name__ == "__main__":
    main()
