"""docs/spec.md "Required reductions": AdamW at γ = ζ = 0, independence at μ = 0, and
splitting/merging tensors inside a player changes nothing."""

import numpy as np
import pytest

import neat
from neat.config import NGAdamConfig
from neat.topology import Topology

from .problems import max_relative_error, max_scaled_error, random_problem, run_core, run_functional, with_inactive


def adamw_by_hand(params, grads_sequence, lr, betas, eps, weight_decay):
    """AdamW as torch.optim.AdamW / optax.adamw define it, written out independently."""
    params = [p.copy() for p in params]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    for t, grads in enumerate(grads_sequence, start=1):
        for k, g in enumerate(grads):
            params[k] *= 1 - lr * weight_decay
            m[k] = betas[0] * m[k] + (1 - betas[0]) * g
            v[k] = betas[1] * v[k] + (1 - betas[1]) * g * g
            m_hat, v_hat = m[k] / (1 - betas[0] ** t), v[k] / (1 - betas[1] ** t)
            params[k] -= lr * m_hat / (np.sqrt(v_hat) + eps)
    return params


def _adamw_problem(seed=0, steps=100):
    params, players, weights, hp, _ = random_problem(seed)
    rng = np.random.default_rng(seed + 100)
    grads = [[rng.normal(size=p.shape) for p in params] for _ in range(steps)]
    hp.update(gamma=0.0, zeta=0.0)
    return params, players, weights, hp, grads


@pytest.mark.parametrize("seed", range(3))
def test_gamma_zeta_zero_is_adamw(seed):
    params, players, weights, hp, grads = _adamw_problem(seed)
    ours, _ = run_core(neat.ng_adam(**hp), params, grads, players, weights)
    expected = adamw_by_hand(params, grads, hp["lr"], hp["betas"], hp["eps"], hp["weight_decay"])
    assert max_relative_error(ours, expected) <= 1e-12


def test_gamma_zeta_zero_is_torch_adamw():
    torch = pytest.importorskip("torch", reason="torch not installed (optional framework)")
    params, players, weights, hp, grads = _adamw_problem(7)
    ours, _ = run_core(neat.ng_adam(**hp), params, grads, players, weights)
    tensors = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in params]
    adamw = torch.optim.AdamW(
        tensors, lr=hp["lr"], betas=hp["betas"], eps=hp["eps"], weight_decay=hp["weight_decay"], foreach=False
    )
    for step_grads in grads:
        for t, g in zip(tensors, step_grads):
            t.grad = torch.tensor(g, dtype=torch.float64)
        adamw.step()
    assert max_relative_error(ours, [t.detach().numpy() for t in tensors]) <= 1e-12


def test_gamma_zeta_zero_is_torch_adamw_with_missing_gradients():
    """SPEC v2: tensors without a gradient on some steps are skipped by both, and the bias
    corrections use each tensor's own count ``t_k``, as ``torch.optim.AdamW`` counts ``step``."""
    torch = pytest.importorskip("torch", reason="torch not installed (optional framework)")
    params, players, weights, hp, grads = _adamw_problem(8, steps=50)
    grads = with_inactive(grads, 8)
    config = NGAdamConfig(**hp)
    ours = list(run_functional(config, Topology.build(len(params), players, weights, mu=config.mu), params, grads))
    tensors = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in params]
    adamw = torch.optim.AdamW(
        tensors, lr=hp["lr"], betas=hp["betas"], eps=hp["eps"], weight_decay=hp["weight_decay"], foreach=False
    )
    for (mine, _), step_grads in zip(ours, grads):
        for t, g in zip(tensors, step_grads):
            t.grad = None if g is None else torch.tensor(g, dtype=torch.float64)
        adamw.step()
        assert max_scaled_error(mine, [t.detach().numpy() for t in tensors]) <= 1e-12
    counts = [int(adamw.state[t]["step"]) if t in adamw.state else 0 for t in tensors]
    assert ours[-1][1].game.tensor_count.tolist() == counts and min(counts) < len(grads)


def _redraw_player_gradients(grads, player):
    rng = np.random.default_rng(99)
    return [[rng.normal(size=g.shape) if k in player else g for k, g in enumerate(step)] for step in grads]


def test_mu_zero_makes_players_independent():
    params, players, weights, hp, grads = random_problem(3, chain=False)
    hp["mu"] = 0.0
    opt = neat.ng_adam(**hp)
    baseline, _ = run_core(opt, params, grads, players, weights)
    # Change every gradient of player 0 only: other players must not notice.
    changed = _redraw_player_gradients(grads, players[0])
    perturbed, _ = run_core(opt, params, changed, players, weights)
    others = [k for group in players[1:] for k in group]
    for k in others:
        np.testing.assert_array_equal(perturbed[k], baseline[k])
    assert any(not np.array_equal(perturbed[k], baseline[k]) for k in players[0])


def test_coupling_does_reach_other_players():
    """The converse of the test above, so that it can fail: with μ > 0 players interact."""
    params, players, weights, hp, grads = random_problem(3, chain=False)
    hp["mu"] = 2.0
    opt = neat.ng_adam(**hp)
    baseline, _ = run_core(opt, params, grads, players, weights)
    perturbed, _ = run_core(opt, params, _redraw_player_gradients(grads, players[0]), players, weights)
    assert any(not np.array_equal(perturbed[k], baseline[k]) for group in players[1:] for k in group)


def test_splitting_and_merging_tensors_inside_a_player_changes_nothing():
    rng = np.random.default_rng(11)
    shapes = [(3, 4), (5,), (2, 2)]
    split = [rng.normal(size=s) for s in shapes] + [rng.normal(size=(6,))]
    grads_split = [[rng.normal(size=p.shape) * (1 if t % 3 else -1) for p in split] for t in range(40)]
    hp = dict(lr=0.05, gamma=1.0, zeta=0.3, mu=1.5, weight_decay=0.02, step_bounds=(0.5, 2.0), leak=0.05)
    opt = neat.ng_adam(**hp)
    # Player 0 holds tensors 0-2 as three tensors, or as one flat tensor.
    ours_split, _ = run_core(opt, split, grads_split, players=[[0, 1, 2], [3]])

    def merge(arrays):
        return [np.concatenate([a.ravel() for a in arrays[:3]]), arrays[3]]

    ours_merged, _ = run_core(opt, merge(split), [merge(g) for g in grads_split], players=[[0], [1]])
    np.testing.assert_allclose(merge(ours_split)[0], ours_merged[0], rtol=1e-12, atol=0)
    np.testing.assert_allclose(ours_split[3], ours_merged[1], rtol=1e-12, atol=0)
