"""The numba kernel set (``neat.backends.numba.kernels``) against :data:`neat.kernels.GENERIC`:
both passes on random multi-tensor problems (scalars, empty tensors, sizes across block
boundaries), every dtype, in place or not; skipped steps; selection; whole runs."""

import itertools
import subprocess
import sys
from pathlib import Path

import array_api_compat.numpy
import numpy as np
import pytest

import neat
from neat.config import StepHyperparameters
from neat.kernel_selection import select_kernels
from neat.kernels import GENERIC, TensorScalars

from .problems import random_problem

numba = pytest.importorskip("numba", reason="the numba kernels need numba (optional: pip install 'neat-nash[cpu]')")

from neat.backends.numba import kernels as numba_kernels  # noqa: E402
from neat.backends.numba.loops import BLOCK  # noqa: E402
from neat.backends.numba.openmp import _share  # noqa: E402

NUMBA = numba_kernels.NumbaKernels()
SHAPES = [(), (0,), (1,), (7,), (BLOCK - 1,), (BLOCK,), (BLOCK + 1,), (3, BLOCK // 2 + 5), (2, 3, 4), (0, 4)]
CASES = [("numpy", d) for d in ("float64", "float32", "float16")] + [
    ("torch", d) for d in ("float64", "float32", "float16", "bfloat16")
]
#: Relative tolerance of the update's results: one rounding of the stored dtype.
ROUNDING = {"float64": 1e-12, "float32": 1e-6, "float16": 2.0**-10, "bfloat16": 2.0**-7}
BETAS = (0.9, 0.999)


class Backend:
    """One array library at one parameter dtype: conversions and the GENERIC inputs."""

    def __init__(self, library: str, dtype: str):
        self.library, self.dtype = library, dtype
        self.state_dtype = "float32" if dtype in ("float16", "bfloat16") else dtype
        self.stats_dtype = np.dtype(self.state_dtype)
        if library == "torch":
            self.torch = pytest.importorskip("torch", reason="torch is an optional framework")
            import array_api_compat.torch as torch_xp

            self.xp = torch_xp
        else:
            self.xp = array_api_compat.numpy

    def array(self, values, dtype=None):
        dtype = dtype or self.dtype
        if self.library == "numpy":
            return np.array(values, dtype=dtype)
        return self.torch.tensor(np.asarray(values), dtype=getattr(self.torch, dtype))

    def generic_column(self, column):
        """A per-tensor column as GENERIC on this library takes it (NUMBA takes NumPy)."""
        return column if self.library == "numpy" else self.torch.from_numpy(column)


def to_numpy(array) -> np.ndarray:
    if hasattr(array, "detach"):
        import torch

        return array.detach().to(torch.float64).numpy()
    return np.asarray(array, dtype=np.float64)


def make_problem(backend: Backend, seed: int, shapes=SHAPES):
    """``(θ, g, m, v)`` lists and per-tensor scalars covering every branch: a tensor that has
    not stepped (scale 0, shift 1), zero denominators (``m = v = g = 0`` with zero shift),
    tensors without NGE (``nge = 0``)."""
    rng = np.random.default_rng(seed)
    count = len(shapes)
    zero = [rng.random(s) < 0.2 for s in shapes]
    params = [backend.array(rng.normal(size=s)) for s in shapes]
    grads = [backend.array(np.where(z, 0.0, rng.normal(size=s))) for s, z in zip(shapes, zero)]
    exp_avg = [
        backend.array(np.where(z, 0.0, 0.1 * rng.normal(size=s)), backend.state_dtype) for s, z in zip(shapes, zero)
    ]
    exp_avg_sq = [
        backend.array(np.where(z, 0.0, 0.01 * (0.1 + rng.random(s))), backend.state_dtype) for s, z in zip(shapes, zero)
    ]
    columns = {
        name: rng.uniform(low, high, count)
        for name, low, high in (
            ("prev_scale", 0.5, 2.0),
            ("prev_shift", 0.0, 1e-4),
            ("nge", -1.0, 1.0),
            ("decay", 0.99, 1.0),
            ("step", 1e-3, 1e-2),
            ("shift", 0.0, 1e-4),
            ("beta1", 0.8, 0.95),
            ("beta2", 0.9, 0.999),
        )
    }
    columns["weight1"], columns["weight2"] = 1.0 - columns["beta1"], 1.0 - columns["beta2"]
    columns["prev_scale"][0], columns["prev_shift"][0] = 0.0, 1.0
    columns["prev_shift"][1::3] = columns["shift"][2::3] = 0.0
    columns["nge"][::4] = 0.0  # tensors without NGE this step (the update skips forming u)
    scalars = TensorScalars(**{k: c.astype(backend.stats_dtype) for k, c in columns.items()})
    return [params, grads, exp_avg, exp_avg_sq], scalars


def generic_scalars(backend: Backend, scalars: TensorScalars) -> TensorScalars:
    return TensorScalars(*(backend.generic_column(c) if np.ndim(c) else c for c in scalars))


def with_scalar_betas(scalars: TensorScalars) -> TensorScalars:
    """One ``β1, β2`` for every tensor, as Python floats (the usual case)."""
    return scalars._replace(beta1=BETAS[0], weight1=1.0 - BETAS[0], beta2=BETAS[1], weight2=1.0 - BETAS[1])


def assert_sums_close(ours, generic, stats_dtype, rtol=None):
    """Within the rounding of the statistics dtype (or ``rtol``), relative to each row's magnitude
    (``√(⟨g,g⟩⟨u,u⟩)`` for the cross term, which may cancel)."""
    assert isinstance(ours, np.ndarray) and ours.dtype == stats_dtype and ours.shape == generic.shape
    ours, generic = ours.astype(np.float64), np.asarray(generic, dtype=np.float64)
    magnitude = np.stack([generic[:, 0], np.sqrt(generic[:, 0] * generic[:, 2]), generic[:, 2]], axis=1)
    rtol = rtol or (1e-12 if stats_dtype == np.float64 else 4e-6)
    np.testing.assert_array_less(np.abs(ours - generic), rtol * magnitude + 1e-300)


def assert_arrays_close(ours, generic, dtype):
    """Elementwise within one rounding of ``dtype``, relative to the element or to the array's
    largest (``θ·decay − step`` may cancel, and libraries may round intermediates differently)."""
    for a, b in zip(ours, generic):
        assert tuple(a.shape) == tuple(b.shape) and a.dtype == b.dtype
        expected = to_numpy(b)
        largest = np.max(np.abs(expected[np.isfinite(expected)]), initial=0.0)
        np.testing.assert_allclose(to_numpy(a), expected, rtol=ROUNDING[dtype], atol=ROUNDING[dtype] * largest)


def run_update(kernels, backend, arrays, scalars, finite, inplace):
    params, grads, exp_avg, exp_avg_sq = arrays
    stats_dtype = backend.stats_dtype if kernels is NUMBA else getattr(backend.xp, backend.state_dtype)
    statistics = kernels.statistics(backend.xp, grads, exp_avg, exp_avg_sq, scalars, stats_dtype)
    return kernels.update(backend.xp, params, grads, exp_avg, exp_avg_sq, statistics, scalars, finite, inplace=inplace)


def copies(arrays):
    return [[a.clone() if hasattr(a, "clone") else a.copy() for a in role] for role in arrays]


@pytest.fixture(params=["serial", "parallel"])
def pool(request, monkeypatch):
    """Run the passes on one thread or on numba's pool, whatever their size."""
    from neat.backends.numba import loops

    monkeypatch.setattr(loops, "PARALLEL_ELEMENTS", 0 if request.param == "parallel" else 2**62)
    return request.param


@pytest.mark.parametrize("library,dtype", CASES)
@pytest.mark.parametrize("seed", [0, 1])
def test_statistics_match_generic(library, dtype, seed, pool):
    backend = Backend(library, dtype)
    (_, grads, exp_avg, exp_avg_sq), scalars = make_problem(backend, seed)
    ours = NUMBA.statistics(backend.xp, grads, exp_avg, exp_avg_sq, scalars, backend.stats_dtype)
    generic = GENERIC.statistics(
        backend.xp,
        grads,
        exp_avg,
        exp_avg_sq,
        generic_scalars(backend, scalars),
        getattr(backend.xp, backend.state_dtype),
    )
    assert ours.direction is None
    assert_sums_close(ours.sums, to_numpy(generic.sums), backend.stats_dtype)
    assert np.all(ours.sums[[1, 9]] == 0)  # empty tensors


@pytest.mark.parametrize("library,dtype", CASES)
@pytest.mark.parametrize("inplace", [False, True])
@pytest.mark.parametrize("betas", ["per-tensor", "scalar"])
def test_update_matches_generic(library, dtype, inplace, betas, pool):
    """Also with each tensor's own ``β1, β2`` (SPEC v2.1) and with one Python float for all."""
    backend = Backend(library, dtype)
    arrays, scalars = make_problem(backend, 2)
    if betas == "scalar":
        scalars = with_scalar_betas(scalars)
    generic = run_update(
        GENERIC, backend, copies(arrays), generic_scalars(backend, scalars), backend.array(True, "bool"), inplace=False
    )
    ours = run_update(NUMBA, backend, arrays, scalars, np.asarray(True), inplace)
    for role in range(3):
        assert_arrays_close(ours[role], generic[role], dtype if role == 0 else backend.state_dtype)


@pytest.mark.parametrize("library,dtype", CASES)
@pytest.mark.parametrize("inplace", [False, True])
def test_skipped_step_writes_nothing(library, dtype, inplace, pool):
    """``finite`` false: an exact no-op, even with non-finite per-tensor scalars (as a skipped step has)."""
    backend = Backend(library, dtype)
    arrays, scalars = make_problem(backend, 3)
    before = copies(arrays)
    scalars = TensorScalars(*(np.full_like(c, np.nan) for c in scalars))
    results = NUMBA.update(backend.xp, *arrays, None, scalars, np.asarray(False), inplace=inplace)
    for result, old in zip(results, (before[0], before[2], before[3])):
        for a, b in zip(result, old):
            assert np.array_equal(to_numpy(a), to_numpy(b), equal_nan=True)
    for role, old in zip(arrays, before):
        for a, b in zip(role, old):
            assert np.array_equal(to_numpy(a), to_numpy(b))


@pytest.mark.parametrize("library", ["numpy", "torch"])
def test_inplace_keeps_identities_and_not_inplace_leaves_inputs(library):
    backend = Backend(library, "float32")
    arrays, scalars = make_problem(backend, 4)
    before = copies(arrays)
    fresh = run_update(NUMBA, backend, arrays, scalars, np.asarray(True), inplace=False)
    for role, old in zip(arrays, before):  # inputs untouched
        assert all(np.array_equal(to_numpy(a), to_numpy(b)) for a, b in zip(role, old))
    for result, role in zip(fresh, (arrays[0], arrays[2], arrays[3])):
        assert all(a is not b for a, b in zip(result, role))
    written = run_update(NUMBA, backend, arrays, scalars, np.asarray(True), inplace=True)
    for result, role in zip(written, (arrays[0], arrays[2], arrays[3])):
        assert all(a is b for a, b in zip(result, role))
    assert_arrays_close(written[0], fresh[0], "float32")


@pytest.mark.parametrize("library", ["numpy", "torch"])
def test_non_contiguous_arrays_are_updated_in_place(library):
    """Strided and transposed views go through contiguous copies that are written back."""
    backend = Backend(library, "float64")
    base, scalars = make_problem(backend, 5, shapes=[(6, 10), (9, 4), (5,)])
    views = [[role[0][:, ::2], role[1].T, role[2]] for role in base]
    expected = run_update(
        GENERIC, backend, copies(views), generic_scalars(backend, scalars), backend.array(True, "bool"), inplace=False
    )
    results = run_update(NUMBA, backend, views, scalars, np.asarray(True), inplace=True)
    for result, role, wanted in zip(results, (views[0], views[2], views[3]), expected):
        assert all(a is b for a, b in zip(result, role))
        assert_arrays_close(role, wanted, "float64")


def test_mixed_dtypes_in_one_step():
    """float32 and float64 tensors together (one compiled call per dtype combination)."""
    backend = Backend("numpy", "float64")
    arrays, scalars = make_problem(backend, 6, shapes=[(5,), (BLOCK + 3,), (4, 4)])
    arrays = [[a.astype(np.float32) if k == 1 else a for k, a in enumerate(role)] for role in arrays]
    statistics = NUMBA.statistics(backend.xp, *arrays[1:], scalars, np.float64)
    generic = GENERIC.statistics(backend.xp, *arrays[1:], scalars, np.float64)
    assert_sums_close(statistics.sums, generic.sums, np.float64, rtol=1e-6)
    ours = run_update(NUMBA, backend, copies(arrays), scalars, np.asarray(True), False)
    wanted = run_update(GENERIC, backend, arrays, scalars, np.asarray(True), False)
    for result, reference in zip(ours, wanted):
        assert [a.dtype for a in result] == [a.dtype for a in reference]
        assert_arrays_close(result, reference, "float32")


def test_non_finite_gradient_makes_its_grad_sq_non_finite():
    backend = Backend("numpy", "float32")
    (_, grads, exp_avg, exp_avg_sq), scalars = make_problem(backend, 7)
    grads[3][2], grads[5][BLOCK - 1] = np.nan, np.inf
    sums = NUMBA.statistics(backend.xp, grads, exp_avg, exp_avg_sq, scalars, np.float32).sums
    assert np.isnan(sums[3, 0]) and np.isposinf(sums[5, 0])
    assert np.all(np.isfinite(np.delete(sums, [3, 5], axis=0)))


def test_sums_do_not_depend_on_the_thread_count():
    backend = Backend("numpy", "float64")
    (_, grads, exp_avg, exp_avg_sq), scalars = make_problem(backend, 8, shapes=[(5 * BLOCK + 11,), (3,)])
    threads = numba.get_num_threads()
    results = []
    try:
        for count in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(count)
            results.append(NUMBA.statistics(backend.xp, grads, exp_avg, exp_avg_sq, scalars, np.float64).sums)
    finally:
        numba.set_num_threads(threads)
    assert all(np.array_equal(results[0], r) for r in results)


def test_block_table_covers_each_tensor_in_order_without_straddling():
    sizes = (0, 1, BLOCK, 2 * BLOCK + 1, 5)
    table = numba_kernels._block_table(sizes, None)
    assert table.dtype == np.int64 and not table.flags.writeable
    assert table[:, 0].tolist() == [1, 2, 3, 3, 3, 4]
    for k, size in enumerate(sizes):
        rows = table[table[:, 0] == k]
        covered = [i for _, start, stop in rows for i in range(start, stop)]
        assert covered == list(range(size)) and np.all(rows[:, 2] - rows[:, 1] <= BLOCK)
    members = np.array([3, 1], dtype=np.int64).tobytes()
    assert numba_kernels._block_table(sizes, members)[:, 0].tolist() == [3, 3, 3, 1]


@numba.njit
def _thread_runs(blocks, elements, threads):
    """``(first, stop)`` of each thread's run of blocks (:func:`neat.backends.numba.openmp._share`)."""
    return [(r.start, r.stop) for r in [_share(blocks, elements, t, threads) for t in range(threads)]]


@pytest.mark.parametrize(
    "sizes", [(100_352, 128, 8192, 64, 640, 10), (64,) * 1600, (5,), (0, 3 * BLOCK), (9 * BLOCK, 1)]
)
@pytest.mark.parametrize("threads", [1, 2, 3, 8])
def test_openmp_threads_share_the_blocks_in_contiguous_runs_of_about_equal_elements(sizes, threads):
    table = numba_kernels._block_table(sizes, None)
    elements = int(np.sum(table[:, 2] - table[:, 1]))
    shares = _thread_runs(table, elements, threads)
    assert [start for start, _ in shares[1:]] == [stop for _, stop in shares[:-1]]  # contiguous, in order
    assert shares[0][0] == 0 and shares[-1][1] == len(table)  # every block, once
    largest = int(np.max(table[:, 2] - table[:, 1]))
    for start, stop in shares:  # each within a block of an equal share
        assert abs(int(np.sum(table[start:stop, 2] - table[start:stop, 1])) - elements / threads) <= largest


def test_selection_picks_numba_for_numpy_and_torch_cpu():
    numpy_xp = array_api_compat.numpy
    assert select_kernels(numpy_xp, [np.zeros(3, np.float32), np.zeros((2, 2), np.float32)], None).name == "numba"
    assert select_kernels(numpy_xp, [np.zeros(3, np.float64)], "numba").name == "numba"
    assert "float16/float32/float64" in numba_kernels.numba_unsupported(numpy_xp, [np.zeros(3, np.longdouble)])
    torch = pytest.importorskip("torch", reason="torch is an optional framework")
    import array_api_compat.torch as torch_xp

    for dtype in (torch.float32, torch.bfloat16):
        assert select_kernels(torch_xp, [torch.zeros(3, dtype=dtype)], None).name == "numba"
    reason = numba_kernels.numba_unsupported(torch_xp, [torch.zeros(3, device="meta")])
    assert "CPU" in reason


def test_unsupported_when_numba_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "numba", None)
    numba_kernels.numba_missing.cache_clear()
    try:
        reason = numba_kernels.numba_unsupported(array_api_compat.numpy, [np.zeros(3, np.float32)])
    finally:
        numba_kernels.numba_missing.cache_clear()
    assert "numba" in reason and "pip install" in reason


def test_unsupported_does_not_import_torch():
    code = (
        "import sys, numpy as np\nfrom neat.backends.numba.kernels import numba_unsupported\n"
        "assert numba_unsupported(None, [np.zeros(3, np.float32)]) is None\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("library,dtype", [("numpy", "float64"), ("numpy", "float32"), ("torch", "float32")])
def test_ng_adam_numba_equals_generic_over_20_steps(library, dtype):
    backend = Backend(library, dtype)
    params, players, weights, hp, grads = random_problem(9, num_steps=20)
    runs = {}
    for name in ("generic", "numba"):
        opt = neat.ng_adam(**hp, kernels=name)
        ours = [backend.array(p) for p in params]
        state = opt.init(ours, players=players, graph=weights)
        for step_grads in grads:
            ours, state = opt.step(ours, [backend.array(g) for g in step_grads], state)
        runs[name] = ours, state
    rtol = 1e-10 if dtype == "float64" else 1e-4
    for a, b in zip(runs["numba"][0], runs["generic"][0]):
        np.testing.assert_allclose(to_numpy(a), to_numpy(b), rtol=rtol, atol=rtol)
    for name in ("log_step", "alignment", "conflict"):
        np.testing.assert_allclose(
            to_numpy(getattr(runs["numba"][1].game, name)),
            to_numpy(getattr(runs["generic"][1].game, name)),
            rtol=rtol,
            atol=rtol,
        )


def test_inputs_the_loops_would_read_out_of_bounds_are_refused():
    """Raw addresses carry no shapes: mismatched sizes or short per-tensor columns raise, never read."""
    backend = Backend("numpy", "float32")
    (_, grads, exp_avg, exp_avg_sq), scalars = make_problem(backend, 10, shapes=[(4,), (3,)])
    with pytest.raises(ValueError, match="equal sizes"):
        NUMBA.statistics(backend.xp, grads, [exp_avg[0], exp_avg[0]], exp_avg_sq, scalars, np.float32)
    with pytest.raises(ValueError, match="per-tensor scalars"):
        NUMBA.statistics(
            backend.xp, grads, exp_avg, exp_avg_sq, scalars._replace(prev_scale=scalars.step[:1]), np.float32
        )
    with pytest.raises(TypeError, match="moments"):
        NUMBA.statistics(backend.xp, grads, [m.astype(np.float16) for m in exp_avg], exp_avg_sq, scalars, np.float32)


def test_numpy_data_addresses_are_those_of_ctypes():
    base = np.arange(40.0)
    arrays = [base, base[3:], base[5:9].reshape(2, 2), np.zeros(()), np.zeros(0, np.float32), np.ones(7, np.float16)]
    expected = [a.ctypes.data for a in arrays]
    assert numba_kernels._numpy_addresses(arrays).tolist() == expected


def test_inplace_into_a_read_only_array_raises():
    backend = Backend("numpy", "float32")
    arrays, scalars = make_problem(backend, 11, shapes=[(4,), (3,)])
    arrays[0][1].flags.writeable = False
    with pytest.raises(ValueError, match="writable"):
        run_update(NUMBA, backend, arrays, scalars, np.asarray(True), inplace=True)


def _run(library, dtype, kernels, inplace, *, seed=12, num_steps=12):
    """``num_steps`` steps of a random problem through :func:`neat.functional.step`, with a
    non-finite gradient at step 3 (skipped) and tensor 0 inactive at steps 5 and 6."""
    from neat import functional
    from neat.topology import Topology

    backend = Backend(library, dtype)
    params, players, weights, hp, grads = random_problem(seed, num_steps=num_steps)
    opt = neat.ng_adam(**hp, kernels=kernels)
    topology = Topology.build(len(params), players, weights, mu=opt.config.mu)
    ours = [backend.array(p) for p in params]
    state = functional.init_state(ours, topology)
    for step, step_grads in enumerate(grads):
        step_grads = [backend.array(g) for g in step_grads]
        if step == 3:
            step_grads[-1] = step_grads[-1] * float("inf")
        if step in (5, 6):
            step_grads[0] = None
        ours, state = functional.step(
            ours, step_grads, state, opt.config, kernels=kernels, inplace=inplace, topology=topology
        )
    return [to_numpy(p) for p in ours], {name: to_numpy(value) for name, value in state.game._asdict().items()}


@pytest.mark.parametrize(
    "library,dtype", [("numpy", "float64"), ("numpy", "float32"), ("torch", "float32"), ("torch", "bfloat16")]
)
def test_fused_in_place_step_equals_the_two_passes_and_generic(library, dtype):
    """The one-call in-place step (``fused_play``) against the two passes with the compiled game
    (not in place) and against GENERIC: parameters and every game-state field, over skipped steps
    and a sub-game."""
    fused, two_passes, generic = (
        _run(library, dtype, "numba", True),
        _run(library, dtype, "numba", False),
        _run(library, dtype, "generic", True),
    )
    rtol = 1e-12 if dtype == "float64" else 1e-5 if dtype == "float32" else 1e-2
    for other in (two_passes, generic):
        for a, b in zip(fused[0], other[0]):
            np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol)
        for name, value in fused[1].items():
            np.testing.assert_allclose(value, other[1][name], rtol=rtol, atol=rtol, err_msg=name)
    assert fused[1]["skipped"] == 1 and fused[1]["count"] == 11
    assert fused[1]["tensor_count"][0] == 9 and fused[1]["tensor_count"][1] == 11


def test_compiled_game_equals_the_array_game():
    """``CompiledGame`` against :mod:`neat.game` on random sums: first step, later steps, a skip."""
    from neat import game
    from neat.state import GameState
    from neat.topology import Topology

    rng = np.random.default_rng(3)
    params, players, weights, hp, _ = random_problem(4)
    shared = StepHyperparameters.of(neat.ng_adam(**hp).config.__dict__)
    tables = Topology.build(len(params), players, weights, mu=hp["mu"]).tables(
        array_api_compat.numpy, "cpu", np.float64
    )
    num_tensors, num_players = len(params), len(players)
    compiled = numba_kernels.CompiledGame()
    own = shared._replace(  # each tensor's own β1, β2, ε (SPEC v2.1)
        betas=(rng.uniform(0.8, 0.95, num_tensors), rng.uniform(0.9, 0.999, num_tensors)),
        eps=rng.uniform(0.0, 1e-3, num_tensors),
    )
    for (count, non_finite), config in itertools.product(((0, False), (7, False), (7, True)), (shared, own)):
        state = GameState(
            np.asarray(count, np.int32),
            np.asarray(2, np.int32),
            rng.integers(0, count + 1, num_tensors).astype(np.int32),
            rng.normal(size=num_players) * 0.1,
            rng.uniform(-1, 1, num_players),
            rng.uniform(0, 1, num_players),
        )
        sums = np.abs(rng.normal(size=(num_tensors, 3))) * [1, 0, 1]
        sums[:, 1] = rng.normal(size=num_tensors) * 0.5
        if non_finite:
            sums[1, 0] = np.inf
        lr = rng.uniform(1e-3, 1e-1, num_tensors)
        results = []
        for rules in (game, compiled):
            direction = rules.direction_scalars(
                array_api_compat.numpy, state.tensor_count, np.float64, config.betas, config.eps
            )
            with np.errstate(invalid="ignore"):
                results.append(
                    (direction, *rules.settle(array_api_compat.numpy, tables, sums, state, config, lr, 0.02, direction))
                )
        (dir_a, scalars_a, finite_a, state_a), (dir_b, scalars_b, finite_b, state_b) = results
        np.testing.assert_allclose(np.stack(dir_a), np.stack(dir_b), rtol=1e-14)
        assert bool(finite_a) == bool(finite_b) == (not non_finite)
        columns_a = [np.broadcast_to(column, (num_tensors,)) for column in scalars_a]  # a scalar β: one float
        np.testing.assert_allclose(np.stack(columns_a), np.stack(scalars_b), rtol=1e-13, atol=1e-15)
        for name in GameState._fields:
            np.testing.assert_allclose(getattr(state_a, name), getattr(state_b, name), rtol=1e-13, atol=1e-15)


def test_fused_step_declines_several_dtype_groups_and_changes_nothing():
    """Tensors of two dtype combinations need one pass per group: ``fused_play`` returns False
    without writing, and the step still runs (through the two passes)."""
    from neat import functional
    from neat.topology import Topology

    params = [np.ones(5, np.float32), np.ones(3, np.float64)]
    grads = [np.full(5, 0.5, np.float32), np.full(3, 0.5, np.float64)]
    topology = Topology.build(2, None, None, mu=1.0)
    state = functional.init_state(params, topology)
    config = neat.ng_adam().config
    tables = state.tables
    before = [p.copy() for p in params]
    assert not NUMBA.fused_play(params, grads, state.exp_avg, state.exp_avg_sq, state.game, tables, config, 1e-3, 0.0)
    assert all(np.array_equal(a, b) for a, b in zip(params, before)) and int(state.game.count) == 0
    functional.step(params, grads, state, config, kernels=NUMBA, inplace=True, topology=topology)
    assert int(state.game.count) == 1 and not np.array_equal(params[0], before[0])


POOLS = ["serial", "numba", "openmp"]


@pytest.fixture
def pools(monkeypatch):
    """A function that makes fused steps run their passes on one thread, numba's pool, or torch's
    OpenMP pool (two threads), whatever their size."""
    torch = pytest.importorskip("torch", reason="torch's OpenMP pool needs torch (an optional framework)")
    from neat.backends.numba import loops, openmp

    threads = torch.get_num_threads()
    torch.set_num_threads(2)

    def use(name):
        monkeypatch.setattr(loops, "PARALLEL_ELEMENTS", 0 if name == "numba" else 2**62)
        monkeypatch.setattr(openmp, "OPENMP_ELEMENTS", 0 if name == "openmp" else 2**62)

    yield use
    torch.set_num_threads(threads)


LARGE_SHAPES = [(3 * BLOCK + 5,), (7, BLOCK // 3), (5,), (0,), (BLOCK,)]


#: Each tensor's own ``betas`` and ``eps`` (SPEC v2.1), for :func:`_large_steps`.
OWN_BETAS_AND_EPS = dict(
    betas=([0.8, 0.85, 0.9, 0.95, 0.7], [0.99, 0.9, 0.999, 0.95, 0.98]), eps=[1e-8, 1e-3, 0, 1e-6, 1e-5]
)


def _large_steps(backend, kernels, inplace, num_steps=6, betas="scalar"):
    """``num_steps`` steps (the third with a non-finite gradient) of tensors across block
    boundaries; returns the parameters and the game state as NumPy arrays. ``betas``: the
    config's (``"scalar"``) or :data:`OWN_BETAS_AND_EPS` (``"per-tensor"``)."""
    from neat import functional
    from neat.topology import Topology

    rng = np.random.default_rng(5)
    params = [backend.array(rng.normal(size=s)) for s in LARGE_SHAPES]
    topology = Topology.build(len(params), [[0, 1], [2, 3], [4]], None, mu=1.0)
    state = functional.init_state(params, topology)
    config = neat.ng_adam(lr=0.05, weight_decay=0.01, gamma=0.8, zeta=0.2).config
    for step in range(num_steps):
        grads = [backend.array(rng.normal(size=s) * (1 + (-1) ** step * 0.5)) for s in LARGE_SHAPES]
        if step == 2:
            grads[1] = grads[1] * float("inf")
        own = OWN_BETAS_AND_EPS if betas == "per-tensor" else {}
        params, state = functional.step(
            params, grads, state, config, kernels=kernels, inplace=inplace, topology=topology, **own
        )
    return [to_numpy(p) for p in params], {k: to_numpy(v) for k, v in state.game._asdict().items()}


def _steps_on_pool(use, pool, library, dtype, betas="scalar"):
    """:func:`_large_steps` in place with the numba kernels on ``pool``, after checking that the
    step chooses that pool."""
    from neat.backends.numba import openmp

    use(pool)
    backend = Backend(library, dtype)
    storage = {"float64": "d", "float32": "f", "bfloat16": "H", "float16": "h"}
    formats = tuple(storage[name] for name in (dtype, dtype, backend.state_dtype, backend.state_dtype))
    elements = sum(int(np.prod(s)) for s in LARGE_SHAPES)
    modes = {"serial": openmp.SERIAL, "numba": openmp.NUMBA_POOL, "openmp": openmp.OPENMP}
    assert openmp.pool(formats, backend.stats_dtype.char, elements, pool == "numba")[0] == modes[pool]
    return _large_steps(backend, NUMBA, inplace=True, betas=betas)


@pytest.mark.parametrize(
    "library,dtype",
    [("torch", "float32"), ("torch", "float64"), ("torch", "bfloat16"), ("torch", "float16"), ("numpy", "float32")],
)
def test_fused_step_is_the_same_on_every_pool(pools, library, dtype):
    """The passes on torch's OpenMP pool and on numba's pool give the serial step bit for bit
    (each block's sums kept apart, added in block order), skipped step included."""
    serial, numba_pool, openmp = (_steps_on_pool(pools, name, library, dtype) for name in POOLS)
    for other in (numba_pool, openmp):
        assert all(np.array_equal(a, b) for a, b in zip(serial[0], other[0]))
        assert all(np.array_equal(serial[1][k], other[1][k]) for k in serial[1])
    assert serial[1]["skipped"] == 1 and serial[1]["count"] == 5


@pytest.mark.parametrize("betas", ["scalar", "per-tensor"])
@pytest.mark.parametrize("pool", POOLS)
def test_fused_step_matches_generic_on_every_pool(pools, pool, betas):
    """Each pool's step against GENERIC (float64: to rounding), also with each tensor's own
    ``betas`` and ``eps``."""
    ours = _steps_on_pool(pools, pool, "torch", "float64", betas)
    generic = _large_steps(Backend("torch", "float64"), "generic", inplace=False, betas=betas)
    for a, b in zip(ours[0], generic[0]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    for name, value in ours[1].items():
        np.testing.assert_allclose(value, generic[1][name], rtol=1e-12, atol=1e-14, err_msg=name)


def test_a_fused_step_loaded_from_the_disk_cache_runs(tmp_path):
    """Two fresh processes sharing a numba cache: the first compiles the fused step (on torch's
    OpenMP pool at this size), the second loads it from the cache and runs it."""
    pytest.importorskip("torch", reason="the torch front end is an optional framework")
    code = (
        "import torch, neat.torch\n"
        "model = torch.nn.Sequential(torch.nn.Linear(300, 200), torch.nn.Linear(200, 10))\n"
        "opt = neat.torch.NGAdam(model)\n"
        "model(torch.ones(2, 300)).sum().backward()\n"
        "opt.step(); opt.step()\n"
        "assert torch.isfinite(model[0].weight).all()\n"
    )
    env = {**__import__("os").environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    for _ in range(2):
        subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=600)
    assert any(tmp_path.rglob("*play*.nbc")), "the fused step was not cached"


def test_cached_compilations_are_dropped_when_a_compiled_module_changes(tmp_path, monkeypatch):
    """numba checks a cached function against its own file only; the compiled modules inline one
    another, so their cached compilations go when any of their sources differs from the recorded one."""
    from numba.core.caching import FunctionCache

    from neat.backends.numba import first_use, loops

    monkeypatch.setattr(numba.config, "CACHE_DIR", str(tmp_path))
    cache = Path(FunctionCache(loops.block_table.py_func)._cache_path)
    assert cache.is_relative_to(tmp_path)

    def cached_files():
        ours = [
            cache / "game.play-95.py311.nbi",
            cache / "openmp._update_worker.locals.worker-9.py311.1.nbc",
        ]
        other = cache / "someone_else.f-1.py311.nbi"
        for path in (*ours, other):
            path.write_bytes(b"compiled")
        return ours, other

    ours, other = cached_files()
    first_use.drop_stale_compilations()  # no record of the sources they came from
    assert not any(path.exists() for path in ours) and other.exists()
    ours, other = cached_files()
    first_use.drop_stale_compilations()  # compiled from these sources
    assert all(path.exists() for path in ours)
    (cache / first_use.SOURCES_MARKER).write_text("the digest of other sources")
    first_use.drop_stale_compilations()
    assert not any(path.exists() for path in ours) and other.exists()
