"""The Adam-bound diagnostic (benchmarks/adam_bound.py): the bound holds for AdamW, and a coordinate
whose gradient stops is driven past it by NEAT's NGE (SPEC steps 6 and 8), which the report sees."""

import pytest
import torch

from benchmarks.adam_bound import adam_bound, direction_report, main
from benchmarks.probe import adam_direction
from benchmarks.variants import HarnessNEAT
from neat.torch import NGAdam


@pytest.mark.parametrize("betas", [(0.9, 0.999), (0.9, 0.95), (0.99, 0.9), (0.0, 0.5)])
def test_adamw_directions_stay_within_the_bound(betas):
    torch.manual_seed(0)
    p = torch.nn.Parameter(torch.zeros(200, dtype=torch.float64))
    opt = torch.optim.AdamW([p], lr=1e-3, betas=betas, eps=0.0)
    worst = 0.0
    for t in range(1, 121):
        p.grad = torch.randn(200, dtype=torch.float64) * (torch.rand(200) < 0.3) * 10 ** torch.randn(200)
        opt.step()
        u = adam_direction(opt.state[p], opt.param_groups[0])  # ε = 0: 0/0 where v is 0
        worst = max(worst, float(u.nan_to_num().abs().max()) / adam_bound(*betas, t))
    assert worst <= 1 + 1e-12
    assert worst > 0.5  # the bound is not loose by orders of magnitude
    assert adam_bound(*betas, 1) == pytest.approx(1.0)


def _train_stopping_gradient(make, steps=400):
    """One weight row of two coordinates; gradients alternate in sign (conflict), and the second
    coordinate's gradient stops after 5 steps."""
    model = torch.nn.Sequential(torch.nn.Linear(2, 1, bias=False)).double()
    opt = make(model)
    weight = model[0].weight
    start = weight.detach().clone()
    for step in range(steps):
        sign = (-1.0) ** step
        weight.grad = torch.tensor([[sign, sign if step < 5 else 0.0]], dtype=torch.float64)
        opt.step()
    weight.grad = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    return direction_report(model, opt), (weight - start).detach()[0, 1]


def test_nge_drives_a_coordinate_without_gradient_past_the_bound():
    betas = (0.9, 0.95)  # v of the silent coordinate decays within the run
    adamw, adamw_moved = _train_stopping_gradient(lambda m: torch.optim.AdamW(m.parameters(), lr=0.01, betas=betas))
    neat, neat_moved = _train_stopping_gradient(lambda m: NGAdam(m, lr=0.01, betas=betas, gamma=1.0, zeta=0.0))
    assert adamw["share_past_bound"] == 0.0
    assert adamw["alignment"] == adamw["alignment_within_bound"] == pytest.approx(-1.0)
    assert abs(float(adamw_moved)) < 0.1  # it moved in its 5 steps with a gradient (and decayed)
    assert neat["share_past_bound"] > 0.9
    assert neat["max_direction"] > 3 * adam_bound(*betas, 401)
    assert abs(neat["alignment"]) < 0.1  # the runaway coordinate hides the conflict in a_i …
    assert neat["alignment_within_bound"] == pytest.approx(-1.0)  # … that the others still show
    assert abs(float(neat_moved)) > 1.0


def test_clipped_nge_keeps_a_coordinate_without_gradient_within_the_bound():
    betas = (0.9, 0.95)
    fixed, moved = _train_stopping_gradient(
        lambda m: HarnessNEAT(m, lr=0.01, betas=betas, gamma=1.0, zeta=0.0, clipped=True)
    )
    assert fixed["share_past_bound"] == 0.0
    assert fixed["alignment"] == fixed["alignment_within_bound"]
    assert abs(float(moved)) < 0.1


def test_command_refuses_steps_that_do_not_match_the_workloads(capsys):
    with pytest.raises(SystemExit):
        main(["--workloads", "W1", "W5", "--steps", "10"])
    assert "one value per workload" in capsys.readouterr().err


def test_command_prints_one_row_per_optimizer_and_seed(capsys):
    main(["--workloads", "W3", "--steps", "4", "--seeds", "1"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| W3 |")]
    assert [row.split(" | ")[1] for row in rows] == ["adamw", "neat_nsa_only", "neat_nge_only", "neat"]
    assert rows[0].split(" | ")[6] == "0.000"  # AdamW: nothing past the bound
