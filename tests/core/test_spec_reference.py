"""The functional API follows docs/spec.md v2: against the independent float64 reference on random
problems (tensors without gradients included), and against the stored golden vectors."""

import numpy as np
import pytest

import neat
from neat.config import NGAdamConfig
from neat.conformance import compare, golden
from neat.conformance.reference import ReferenceNGAdam
from neat.topology import Topology

from .problems import max_relative_error, random_problem, run_functional, with_inactive


@pytest.mark.parametrize("inactive", [False, True], ids=["all-active", "inactive-tensors"])
@pytest.mark.parametrize("chain", [True, False], ids=["chain", "general-graph"])
@pytest.mark.parametrize("seed", range(4))
def test_float64_follows_reference_for_50_steps(seed, chain, inactive):
    """Parameters to 1e-10 relative at every step; ``a``, ``κ``, ``λ`` and every ``t_k`` at the end."""
    params, players, weights, hp, grads = random_problem(seed, chain=chain)
    if inactive:
        grads = with_inactive(grads, seed)
    config = NGAdamConfig(**hp)
    reference = ReferenceNGAdam(params, players, weights, hp)
    saw_conflict = saw_nsa = False
    steps = list(run_functional(config, Topology.build(len(params), players, weights, mu=config.mu), params, grads))
    for step_grads, (ours, _) in zip(grads, steps):
        reference.step(step_grads)
        assert max_relative_error(ours, reference.params) <= 1e-10
        saw_conflict |= bool(np.any(reference.kappa > 0))
        saw_nsa |= bool(np.any(reference.z != 0))
    state = steps[-1][1]
    info = neat.diagnostics(state)
    np.testing.assert_allclose(info["step_scale"], np.exp(reference.z), rtol=1e-10)
    np.testing.assert_allclose(info["alignment"], reference.a, rtol=0, atol=1e-10)
    np.testing.assert_allclose(info["kappa"], reference.kappa, rtol=0, atol=1e-10)
    assert state.game.tensor_count.tolist() == reference.tensor_count and int(state.game.count) == reference.t
    assert saw_conflict and saw_nsa, "the problem must exercise NGE and NSA"
    assert (min(reference.tensor_count) < reference.t) == inactive


def test_alignment_is_defined_where_g_times_u_underflows():
    """SPEC v2 step 4: ``a_i = 0`` is decided on ``√G_i √U_i`` (here about 1e-192), not on
    ``G_i U_i`` (about 1e-384, which underflows to 0 in float64)."""
    hp = dict(lr=1e-3, eps=1e-8, gamma=1.0, zeta=0.1)
    params = [np.ones(4), np.ones(3)]
    grads = [[np.full(4, 1e-100), np.full(3, 2e-100)], [np.full(4, -1e-100), np.full(3, -2e-100)]]
    reference = ReferenceNGAdam(params, [[0], [1]], np.array([[0.0, 1.0], [1.0, 0.0]]), dict(neat.DEFAULTS, **hp))
    opt = neat.ng_adam(**hp)
    state = opt.init(params)
    for step_grads in grads:
        params, state = opt.step(params, step_grads, state)
        reference.step(step_grads)
    np.testing.assert_allclose(neat.diagnostics(state)["alignment"], [-1.0, -1.0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(reference.a, [-1.0, -1.0], rtol=0, atol=1e-12)
    assert max_relative_error(params, reference.params) <= 1e-12


GOLDEN = golden.load_all()


def test_golden_files_exist_for_this_spec_version():
    assert neat.SPEC_VERSION == 2
    assert {p.name for p in GOLDEN} == {p.name for p in golden.problem_inputs()}
    assert all(p.spec_version == neat.SPEC_VERSION for p in GOLDEN)
    assert not list(golden.GOLDEN_DIR.glob("spec-v1_*")), "no test reads spec-v1 vectors any more"


@pytest.mark.parametrize("problem", GOLDEN, ids=lambda p: p.name)
def test_core_matches_golden_vectors(problem):
    """Through the functional API with the game's topology (``None`` gradients where inactive)."""
    config = NGAdamConfig(**problem.hyperparameters)
    topology = Topology.build(len(problem.params), problem.players, problem.weights, mu=config.mu)
    with np.errstate(invalid="ignore", over="ignore"):
        for step, (params, state) in enumerate(run_functional(config, topology, list(problem.params), problem.grads)):
            assert max_relative_error(params, problem.expected_params[step]) <= 1e-10, f"step {step + 1}"
            assert state.game.tensor_count.tolist() == problem.expected_tensor_counts[step]
    info = neat.diagnostics(state)
    assert int(info["skipped_steps"]) == problem.expected_diagnostics["skipped_steps"][-1]
    np.testing.assert_allclose(info["step_scale"], problem.expected_diagnostics["step_scale"][-1], rtol=1e-10)


@pytest.mark.parametrize("problem", GOLDEN, ids=lambda p: p.name)
def test_golden_files_are_what_the_reference_produces(problem):
    """A stored file differs from a fresh reference run only if someone changed the math: to 1e-12
    of each tensor's scale (another machine's libm or BLAS may round differently; a change of the
    math moves the runs by 1e-8 at least: v1's float32 ``z``), and counts equal."""
    fresh = golden.solve(
        golden.GoldenProblem(
            problem.name, problem.hyperparameters, problem.players, problem.weights, problem.params, problem.grads
        )
    )
    assert compare.params_deviation(fresh.expected_params, problem.expected_params).value <= 1e-12
    fresh_diagnostics = [
        {key: values[s] for key, values in fresh.expected_diagnostics.items()} for s in range(fresh.num_steps)
    ]
    assert compare.diagnostics_deviation(fresh_diagnostics, problem.expected_diagnostics).value <= 1e-12
    assert fresh.expected_counts == problem.expected_counts
    assert fresh.expected_tensor_counts == problem.expected_tensor_counts


def test_golden_problems_exercise_every_feature():
    by_name = {p.name: p for p in GOLDEN}
    assert np.any(by_name["chain3"].expected_diagnostics["kappa"] > 0)
    assert np.any(by_name["star5"].expected_diagnostics["step_scale"] != 1.0)
    assert by_name["skips"].skipped_steps == [0, 7, 8, 31]
    star = by_name["star5"].weights
    assert star[0, 2] and not star[1, 2], "star5 uses a non-chain graph"

    inactive = by_name["inactive"]
    active = inactive.active
    owner = {k: i for i, group in enumerate(inactive.players) for k in group}
    player_active = np.array(
        [[any(active[s, k] for k in group) for group in inactive.players] for s in range(inactive.num_steps)]
    )
    assert not np.all(player_active[:, 1]) and np.all(player_active[:, 0]), "the chain's middle player sits out"
    assert any(0 < sum(active[s, k] for k in inactive.players[owner[1]]) < 2 for s in range(3)), (
        "a player plays with part of its tensors"
    )
    assert inactive.skipped_steps == [20] and min(inactive.expected_tensor_counts[-1]) < inactive.expected_counts[-1]

    eps0 = by_name["eps0"]
    assert eps0.hyperparameters["eps"] == 0.0
    assert all(np.all(g[0][:, 0] == 0) for g in eps0.grads), "entries with v = 0: zero denominators"
    assert np.all(eps0.expected_params[-1][3] == eps0.params[3]), "a tensor without gradient stays put"

    overflow = by_name["overflow"]
    assert overflow.skipped_steps == [3, 17, 18]
    for s in overflow.skipped_steps:
        grads = overflow.grads[s]
        assert all(np.all(np.isfinite(g)) and np.isfinite(np.sum(g * g)) for g in grads), (
            "finite gradients, each tensor's <g,g> finite in float64"
        )
        with np.errstate(over="ignore"):
            assert not np.isfinite(sum(np.sum(grads[k] * grads[k]) for k in overflow.players[0])), (
                "the player's G overflows float64"
            )
            assert np.all(np.isinf(grads[0].astype(np.float32))), "portable: infinite in narrower dtypes"


def test_reference_plays_complex_parameters_as_real_and_imaginary_parts():
    """SPEC v2 "Objects": with γ = ζ = 0 the reference on complex tensors is ``torch.optim.AdamW``
    on them (which steps ``view_as_real``); with the game on, it is the reference on those real views."""
    torch = pytest.importorskip("torch", reason="torch not installed (optional framework)")
    rng = np.random.default_rng(3)
    shapes = [(3,), (2, 2)]
    params = [rng.normal(size=s) + 1j * rng.normal(size=s) for s in shapes]
    grads = [[rng.normal(size=s) + 1j * rng.normal(size=s) for s in shapes] for _ in range(20)]
    hp = dict(neat.DEFAULTS, lr=0.05, weight_decay=0.01, gamma=0.0, zeta=0.0)
    reference = ReferenceNGAdam(params, [[0], [1]], np.array([[0.0, 1.0], [1.0, 0.0]]), hp)
    tensors = [torch.tensor(p, requires_grad=True) for p in params]
    adamw = torch.optim.AdamW(
        tensors, lr=hp["lr"], betas=hp["betas"], eps=hp["eps"], weight_decay=hp["weight_decay"], foreach=False
    )
    for step_grads in grads:
        reference.step(step_grads)
        for t, g in zip(tensors, step_grads):
            t.grad = torch.tensor(g)
        adamw.step()
    assert all(np.iscomplexobj(p) for p in reference.params)
    assert max_relative_error([torch.view_as_real(t.detach()).numpy() for t in tensors], reference.theta) <= 1e-12

    game_on = dict(hp, gamma=1.0, zeta=0.3)
    as_complex = ReferenceNGAdam(params, [[0], [1]], np.array([[0.0, 1.0], [1.0, 0.0]]), game_on)
    as_real = ReferenceNGAdam(
        [np.stack([p.real, p.imag], -1) for p in params], [[0], [1]], np.array([[0.0, 1.0], [1.0, 0.0]]), game_on
    )
    for step_grads in grads:
        as_complex.step(step_grads)
        as_real.step([np.stack([g.real, g.imag], -1) for g in step_grads])
    np.testing.assert_array_equal(as_complex.theta[1], as_real.params[1])
    np.testing.assert_array_equal(as_complex.a, as_real.a)
    assert np.any(as_complex.kappa > 0) or np.any(as_complex.z != 0)
