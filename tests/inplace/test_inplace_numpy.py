"""neat.NGAdam on NumPy: in place really is in place, and the numbers are the functional API's."""

import array_api_compat.numpy as np_xp
import numpy as np
import pytest

import neat
from neat import functional
from neat.conformance.golden import load_all
from neat.inplace import NGAdam
from neat.kernel_selection import registered
from neat.kernels import GENERIC
from neat.topology import Topology

GOLDEN = {problem.name: problem for problem in load_all()}
#: Every registered kernel set that runs NumPy float64 arrays ("generic", and "numba" where installed).
NUMPY_KERNELS = sorted(
    name for name, kernel_set in registered().items() if kernel_set.unsupported(np_xp, [np.zeros(2)]) is None
)
#: In-place vs pure on NumPy: equal up to float32 rounding. (Not bitwise: NumPy turns the pure
#: state's 0-d step count into a NumPy scalar, whose float32 ``β^t`` can differ by one ulp.)
TOLERANCE = {np.float32: dict(rtol=2e-6, atol=1e-7), np.float64: dict(rtol=1e-12, atol=1e-14)}


def pointer(array) -> int:
    return array.__array_interface__["data"][0]


def state_arrays(opt: NGAdam) -> list:
    state = opt.state
    return [*state.game, *state.exp_avg, *state.exp_avg_sq]


def snapshot(opt: NGAdam) -> list:
    return [a.copy() for a in (*opt.params, *state_arrays(opt))]


def make(problem, dtype=np.float64, kernels=None, **changes):
    params = [np.array(p, dtype=dtype) for p in problem.params]
    hp = {**problem.hyperparameters, **changes}
    return params, NGAdam(params, players=problem.players, graph=problem.weights, kernels=kernels, **hp)


def grads_at(problem, step, dtype=np.float64):
    with np.errstate(over="ignore"):  # golden "overflow": its huge entries are inf in float32
        return [None if g is None else np.asarray(g, dtype=dtype) for g in problem.grads[step]]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ids_and_data_pointers_unchanged_after_10_steps(dtype):
    problem = GOLDEN["chain3"]
    params, opt = make(problem, dtype)
    tracked = [*params, *state_arrays(opt)]
    before = [(id(a), pointer(a)) for a in tracked]
    for step in range(10):
        opt.step(grads_at(problem, step, dtype))
    assert [(id(a), pointer(a)) for a in tracked] == before
    assert all(a is b for a, b in zip(opt.params, params))
    assert int(opt.state.game.count) == 10
    # the arrays really changed: in place, not left alone
    assert not np.array_equal(params[0], np.asarray(problem.params[0], dtype=dtype))


@pytest.mark.parametrize("name", sorted(GOLDEN))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_same_numbers_as_functional_api(name, dtype):
    problem = GOLDEN[name]
    params, opt = make(problem, dtype)
    functional_opt = neat.ng_adam(**problem.hyperparameters)
    pure_params = [np.array(p, dtype=dtype) for p in problem.params]
    topology = Topology.build(len(pure_params), problem.players, problem.weights, mu=functional_opt.config.mu)
    pure_state = functional.init_state(pure_params, topology)
    for step in range(problem.num_steps):
        grads = grads_at(problem, step, dtype)
        with np.errstate(invalid="ignore", over="ignore"):
            opt.step(grads)
            pure_params, pure_state = functional.step(
                pure_params, grads, pure_state, functional_opt.config, topology=topology
            )
        for mine, theirs in zip(params, pure_params):
            np.testing.assert_allclose(mine, theirs, **TOLERANCE[dtype])
    for mine, theirs in zip(opt.state.exp_avg_sq, pure_state.exp_avg_sq):
        np.testing.assert_allclose(mine, theirs, **TOLERANCE[dtype])
    for key, value in functional_opt.diagnostics(pure_state).items():
        np.testing.assert_allclose(opt.diagnostics()[key], value, err_msg=key, **TOLERANCE[dtype])


@pytest.mark.parametrize("kernels", NUMPY_KERNELS)
@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_matches_float64_reference(name, kernels):
    """Every golden problem, inactive tensors (``None`` gradients) and skipped steps included."""
    problem = GOLDEN[name]
    params, opt = make(problem, kernels=kernels)
    for step in range(problem.num_steps):
        with np.errstate(invalid="ignore", over="ignore"):
            opt.step(grads_at(problem, step))
        for mine, expected in zip(params, problem.expected_params[step]):
            np.testing.assert_allclose(mine, expected, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(
            opt.diagnostics()["step_scale"], problem.expected_diagnostics["step_scale"][step], rtol=1e-6
        )


def test_non_finite_step_leaves_params_and_state_untouched_in_place():
    problem = GOLDEN["chain3"]
    params, opt = make(problem, np.float32)
    for step in range(3):
        opt.step(grads_at(problem, step, np.float32))
    tracked = [*params, *state_arrays(opt)]
    ids = [(id(a), pointer(a)) for a in tracked]
    before = snapshot(opt)
    bad = grads_at(problem, 3, np.float32)
    bad[2] = bad[2].copy()
    bad[2][0, 1] = np.nan
    opt.step(bad)
    after = snapshot(opt)
    changed = [k for k, (a, b) in enumerate(zip(before, after)) if not np.array_equal(a, b)]
    skipped_index = len(params) + 1  # state.game.skipped
    assert changed == [skipped_index]
    assert int(opt.state.game.skipped) == 1 and int(opt.state.game.count) == 3
    assert [(id(a), pointer(a)) for a in tracked] == ids


def test_inactive_tensors_are_left_alone_in_place():
    """A ``None`` gradient: that tensor and its moments keep their values; the others take the step,
    and the per-tensor counts ``t_k`` advance for the active tensors only (SPEC v2)."""
    problem = GOLDEN["chain3"]
    params, opt = make(problem)
    for step in range(3):
        opt.step(grads_at(problem, step))
    state = opt.state
    frozen = [params[1], state.exp_avg[1], state.exp_avg_sq[1], params[4], state.exp_avg[4], state.exp_avg_sq[4]]
    before, moving = [a.copy() for a in frozen], params[0].copy()
    grads = grads_at(problem, 3)
    grads[1] = grads[4] = None  # player 2 ([4]) sits this step out entirely
    log_step = state.game.log_step.copy()
    opt.step(grads)
    for old, new in zip(before, frozen):
        np.testing.assert_array_equal(old, new)
    assert not np.array_equal(moving, params[0])
    assert state.game.tensor_count.tolist() == [4, 3, 4, 4, 3] and int(state.game.count) == 4
    assert state.game.log_step[2] == log_step[2] and state.game.log_step[0] != log_step[0]


def test_diagnostics_are_snapshots():
    problem = GOLDEN["star5"]
    _, opt = make(problem)
    for step in range(3):
        opt.step(grads_at(problem, step))
    first = opt.diagnostics()
    kept = {key: np.copy(value) for key, value in first.items()}
    opt.step(grads_at(problem, 3))
    for key in kept:
        np.testing.assert_array_equal(first[key], kept[key], err_msg=key)
    assert not np.array_equal(opt.diagnostics()["alignment"], kept["alignment"])


def test_lr_override_matches_functional_step():
    problem = GOLDEN["chain3"]
    params, opt = make(problem)
    pure_params = [np.array(p) for p in problem.params]
    config = neat.NGAdamConfig(**problem.hyperparameters)
    pure_state = functional.init_state(pure_params, Topology.build(5, problem.players, problem.weights, mu=config.mu))
    schedule = [0.05, 0.02, [0.01, 0.02, 0.03, 0.04, 0.05]]
    for step, lr in enumerate(schedule):
        opt.step(grads_at(problem, step), lr=lr, weight_decay=0.2)
        pure_params, pure_state = functional.step(
            pure_params, grads_at(problem, step), pure_state, config, lr=lr, weight_decay=0.2
        )
    for mine, theirs in zip(params, pure_params):
        np.testing.assert_allclose(mine, theirs, **TOLERANCE[np.float64])


def test_given_kernels_are_used():
    calls = []

    class Recording:
        name = "recording"

        def statistics(self, *args):
            calls.append("statistics")
            return GENERIC.statistics(*args)

        def update(self, *args):
            calls.append("update")
            return GENERIC.update(*args)

    problem = GOLDEN["chain3"]
    params = [np.array(p) for p in problem.params]
    opt = NGAdam(params, players=problem.players, kernels=Recording())
    opt.step(grads_at(problem, 0))
    assert calls == ["statistics", "update"]


# --- bad input: a clear error, and nothing modified ---------------------------------------------


def _stepped_optimizer():
    problem = GOLDEN["chain3"]
    params, opt = make(problem, np.float32)
    opt.step(grads_at(problem, 0, np.float32))
    return problem, params, opt


def _bad_grads(problem):
    good = grads_at(problem, 1, np.float32)
    return {
        "too few": (good[:-1], ValueError, "4 gradients for 5 parameters"),
        "wrong shape": ([*good[:2], good[2].T, *good[3:]], ValueError, r"grads\[2\] has shape"),
        "wrong dtype": ([*good[:1], good[1].astype(np.float64), *good[2:]], TypeError, r"grads\[1\] has dtype"),
        "not a list": (good[0], TypeError, "grads must be a list or tuple"),
        "lr per tensor": (good, ValueError, "lr: got 2 per-tensor values for 5 tensors"),
    }


@pytest.mark.parametrize("case", ["too few", "wrong shape", "wrong dtype", "not a list", "lr per tensor"])
def test_bad_grads_raise_before_anything_changes(case):
    problem, params, opt = _stepped_optimizer()
    grads, error, message = _bad_grads(problem)[case]
    before = snapshot(opt)
    with pytest.raises(error, match=message):
        opt.step(grads, lr=[0.1, 0.2] if case == "lr per tensor" else None)
    for a, b in zip(before, snapshot(opt)):
        np.testing.assert_array_equal(a, b)


def test_read_only_param_is_refused_before_anything_changes():
    problem, params, opt = _stepped_optimizer()
    before = snapshot(opt)
    params[3].flags.writeable = False
    with pytest.raises(ValueError, match=r"params\[3\] is read-only"):
        opt.step(grads_at(problem, 1, np.float32))
    for a, b in zip(before, snapshot(opt)):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match=r"params\[3\] is read-only"):
        NGAdam(params)


@pytest.mark.parametrize(
    "params, error, message",
    [
        ([np.zeros(3), np.float64(1.0)], ValueError, r"params\[1\] is read-only"),
        ([np.zeros(3, dtype=np.int64)], TypeError, r"params\[0\] has dtype int64"),
        (np.zeros(3), TypeError, "params must be a list or tuple"),
        ([], ValueError, "expected at least one array"),
    ],
)
def test_bad_params_are_refused(params, error, message):
    with pytest.raises(error, match=message):
        NGAdam(params)


def test_same_array_twice_is_refused():
    shared = np.zeros(3)
    with pytest.raises(ValueError, match=r"params\[1\] is the same array as params\[0\]"):
        NGAdam([shared, shared])


def test_bad_hyperparameters_and_players_are_refused():
    with pytest.raises(ValueError, match="Invalid gamma"):
        NGAdam([np.zeros(3)], gamma=2.0)
    with pytest.raises(ValueError, match="tensors \\[1\\] belong to no player"):
        NGAdam([np.zeros(3), np.zeros(2)], players=[[0]])


def test_jax_arrays_point_to_the_functional_api():
    jnp = pytest.importorskip("jax.numpy", reason="JAX is an optional framework")
    with pytest.raises(TypeError, match="JAX arrays are immutable.*neat.ng_adam"):
        NGAdam([jnp.zeros(3)])


def test_mixed_namespaces_are_refused_before_anything_changes():
    torch = pytest.importorskip("torch", reason="PyTorch is an optional framework")
    problem, params, opt = _stepped_optimizer()
    before = snapshot(opt)
    grads = [torch.as_tensor(g) for g in grads_at(problem, 1, np.float32)]
    with pytest.raises(TypeError, match="mixed array namespaces"):
        opt.step(grads)
    for a, b in zip(before, snapshot(opt)):
        np.testing.assert_array_equal(a, b)


def test_exported_from_neat():
    assert neat.NGAdam is NGAdam
