"""The Triton kernel set (``neat.backends.triton_backend``) against :data:`neat.kernels.GENERIC`.

On CPU the kernels run under Triton's interpreter: the backend builds an interpreted copy of
its programs for CPU tensors whatever ``TRITON_INTERPRET`` was when triton was imported, and
these tests set ``TRITON_INTERPRET=1`` only so that ``kernels="triton"`` accepts CPU tensors.
Problems are multi-tensor with sizes across blocks of 32 elements (scalars, empty tensors).
Without a GPU the programs are still compiled for CUDA (PTX and cubin, no launch); the
CUDA-graph capture test needs a CUDA device.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import array_api_compat.torch as xp
import pytest
import torch

import neat
from neat import functional
from neat.config import NGAdamConfig
from neat.kernel_selection import select_kernels
from neat.kernels import GENERIC, TensorScalars
from neat.topology import Topology
from tests.torch.models import HP

triton = pytest.importorskip("triton", reason="the triton kernels need triton (pip install 'neat-nash[triton]')")

from neat.backends import triton_backend  # noqa: E402
from neat.backends.triton_backend import TritonKernels, kernel_module  # noqa: E402

BLOCK = 32
KERNELS = TritonKernels(block=BLOCK, reduce_block=4)
SHAPES = [(70,), (), (3, 11), (BLOCK,), (1,), (0,), (BLOCK + 1,)]
BETAS = (0.9, 0.99)
#: Relative tolerance per parameter dtype: statistics (another summation order) and update results.
STATISTICS_RTOL = {torch.float64: 1e-12, torch.float32: 1e-5, torch.bfloat16: 1e-5, torch.float16: 1e-5}
UPDATE_RTOL = {torch.float64: 1e-12, torch.float32: 1e-6, torch.bfloat16: 2.0**-7, torch.float16: 2.0**-10}
DTYPES = list(UPDATE_RTOL)
MIXED = [torch.float32, torch.bfloat16, torch.float32, torch.float16, torch.bfloat16, torch.float32, torch.float32]


@pytest.fixture(autouse=True)
def interpreter(monkeypatch):
    """``kernels="triton"`` accepts torch CPU tensors only under ``TRITON_INTERPRET=1``."""
    monkeypatch.setenv("TRITON_INTERPRET", "1")


def state_dtype(dtype):
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def make_problem(dtypes, seed=0, device="cpu", betas="scalar"):
    """``params, grads, exp_avg, exp_avg_sq, scalars, stats_dtype`` over :data:`SHAPES`, with the
    corner cases of the direction: a tensor that never stepped (``scale = 0``) and, with ``ε = 0``
    (``shift = 0``), elements whose ``v = 0`` (zero denominator). ``betas``: the moments'
    coefficients as Python floats (``"scalar"``), 0-d tensors (``"0-d"``) or one per tensor."""
    generator = torch.Generator().manual_seed(seed)

    def normal(shape, dtype, scale=1.0):
        return (scale * torch.randn(shape, generator=generator, dtype=torch.float64)).to(device, dtype)

    params = [normal(s, d) for s, d in zip(SHAPES, dtypes)]
    grads = [normal(s, d) for s, d in zip(SHAPES, dtypes)]
    exp_avg = [normal(s, state_dtype(d), 0.1) for s, d in zip(SHAPES, dtypes)]
    exp_avg_sq = [normal(s, state_dtype(d), 0.1).square() for s, d in zip(SHAPES, dtypes)]
    exp_avg_sq[0][:9] = 0.0
    exp_avg_sq[2].view(-1)[4:20] = 0.0
    stats_dtype = torch.float64 if torch.float64 in dtypes else torch.float32
    count = len(SHAPES)

    def column(low, high, zero_at=()):
        values = low + (high - low) * torch.rand(count, generator=generator, dtype=torch.float64)
        values[list(zero_at)] = 0.0
        return values.to(device, stats_dtype)

    scalars = TensorScalars(
        prev_scale=column(0.5, 2.0, zero_at=[6]),
        prev_shift=column(1e-8, 1e-7, zero_at=[0, 2]),
        nge=column(-0.5, 0.5),
        decay=column(0.99, 1.0),
        step=column(1e-3, 1e-2),
        shift=column(1e-8, 1e-7, zero_at=[2]),
        **moment_coefficients(betas, column, device),
    )
    return params, grads, exp_avg, exp_avg_sq, scalars, stats_dtype


def moment_coefficients(betas: str, column, device) -> dict:
    """``β1, 1 − β1, β2, 1 − β2`` of :class:`TensorScalars`: :data:`BETAS` as Python floats or as 0-d
    float64 tensors, or each tensor's own (``column(low, high)``)."""
    if betas == "scalar":
        beta1, beta2 = BETAS
    elif betas == "0-d":
        beta1, beta2 = (torch.tensor(b, dtype=torch.float64, device=device) for b in BETAS)
    else:
        beta1, beta2 = column(0.8, 0.95), column(0.9, 0.999)
    return dict(beta1=beta1, weight1=1.0 - beta1, beta2=beta2, weight2=1.0 - beta2)


def assert_close(actual, expected, rtol, what):
    """Equal to ``rtol`` relative to each tensor's largest expected magnitude (0-d and empty included)."""
    for k, (a, e) in enumerate(zip(actual, expected)):
        assert a.dtype == e.dtype and a.shape == e.shape, f"{what}[{k}]: {a.dtype} {a.shape} vs {e.dtype} {e.shape}"
        scale = float(e.abs().max()) if e.numel() else 1.0
        torch.testing.assert_close(a, e, rtol=rtol, atol=rtol * scale, msg=lambda m, k=k: f"{what}[{k}]: {m}")


@pytest.mark.parametrize(
    "dtypes",
    [[d] * len(SHAPES) for d in DTYPES] + [MIXED],
    ids=[str(d).removeprefix("torch.") for d in DTYPES] + ["mixed"],
)
def test_statistics_match_generic(dtypes):
    _, grads, exp_avg, exp_avg_sq, scalars, stats_dtype = make_problem(dtypes)
    fast = KERNELS.statistics(xp, grads, exp_avg, exp_avg_sq, scalars, stats_dtype)
    slow = GENERIC.statistics(xp, grads, exp_avg, exp_avg_sq, scalars, stats_dtype)
    assert fast.direction is None and fast.sums.dtype == stats_dtype and fast.sums.shape == (len(SHAPES), 3)
    rtol = max(STATISTICS_RTOL[d] for d in dtypes)
    assert_close(list(fast.sums.T), list(slow.sums.T), rtol, "sums column")
    assert torch.all(fast.sums[5] == 0), "the empty tensor's sums must be 0"


@pytest.mark.parametrize("betas", ["scalar", "per-tensor"])
@pytest.mark.parametrize("inplace", [False, True], ids=["copy", "inplace"])
@pytest.mark.parametrize(
    "dtypes",
    [[d] * len(SHAPES) for d in DTYPES] + [MIXED],
    ids=[str(d).removeprefix("torch.") for d in DTYPES] + ["mixed"],
)
def test_update_matches_generic(dtypes, inplace, betas):
    """Also with each tensor's own ``β1, β2`` (SPEC v2.1: param groups)."""
    params, grads, exp_avg, exp_avg_sq, scalars, stats_dtype = make_problem(dtypes, betas=betas)
    statistics = GENERIC.statistics(xp, grads, exp_avg, exp_avg_sq, scalars, stats_dtype)
    finite = torch.tensor(True)
    expected = GENERIC.update(xp, params, grads, exp_avg, exp_avg_sq, statistics, scalars, finite)
    inputs = [[t.clone() for t in values] for values in (params, grads, exp_avg, exp_avg_sq)]
    before = [[t.clone() for t in values] for values in inputs]
    result = KERNELS.update(xp, *inputs, statistics._replace(direction=None), scalars, finite, inplace=inplace)
    rtol = max(UPDATE_RTOL[d] for d in dtypes)
    for what, actual, wanted in zip(("params", "exp_avg", "exp_avg_sq"), result, expected):
        assert_close(actual, wanted, rtol, what)
    written = (inputs[0], inputs[2], inputs[3])
    for values, given in zip(result, written):
        assert all((a is b) == inplace for a, b in zip(values, given)), "inplace=True returns the given tensors"
    if not inplace:
        for values, saved in zip(inputs, before):
            assert all(torch.equal(a, b) for a, b in zip(values, saved)), "inplace=False changed an input"


def test_betas_as_tensors_match_floats():
    """Traced or scheduled betas arrive as 0-d tensors: formed on the device, same numbers."""
    dtypes = [torch.float64] * len(SHAPES)
    *arrays, scalars, stats_dtype = make_problem(dtypes)
    tensor_scalars = make_problem(dtypes, betas="0-d")[4]
    assert torch.equal(torch.stack(scalars[:6]), torch.stack(tensor_scalars[:6]))
    statistics = KERNELS.statistics(xp, *arrays[1:], scalars, stats_dtype)
    finite = torch.tensor(True)
    as_floats = KERNELS.update(xp, *arrays, statistics, scalars, finite)
    as_tensors = KERNELS.update(xp, *arrays, statistics, tensor_scalars, finite)
    for a, b in zip(as_floats, as_tensors):
        assert_close(a, b, 1e-15, "result")


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("inplace", [False, True], ids=["copy", "inplace"])
def test_skipped_step_is_an_exact_no_op(inplace):
    """``finite`` false (SPEC step 0): nothing is written, even where the new values would be NaN."""
    params, grads, exp_avg, exp_avg_sq, scalars, stats_dtype = make_problem(MIXED)
    grads[0][3] = float("nan")
    grads[2][1, 1] = float("inf")
    statistics = KERNELS.statistics(xp, grads, exp_avg, exp_avg_sq, scalars, stats_dtype)
    before = [[t.clone() for t in values] for values in (params, exp_avg, exp_avg_sq)]
    result = KERNELS.update(
        xp, params, grads, exp_avg, exp_avg_sq, statistics, scalars, torch.tensor(False), inplace=inplace
    )
    for values, saved, given in zip(result, before, (params, exp_avg, exp_avg_sq)):
        for k, (a, b, c) in enumerate(zip(values, saved, given)):
            assert torch.equal(a, b) and torch.equal(c, b), f"tensor {k} changed on a skipped step"
            assert (a is c) == inplace


def test_steady_state_builds_no_tables(monkeypatch):
    """The second step over the same tensors reuses the cached block and pointer tables:
    no ``torch.tensor`` (no host-to-device copy) and no new table."""
    kernels = TritonKernels(block=BLOCK)
    params, grads, exp_avg, exp_avg_sq, scalars, stats_dtype = make_problem(MIXED)
    finite = torch.tensor(True)

    def one_step():
        statistics = kernels.statistics(xp, grads, exp_avg, exp_avg_sq, scalars, stats_dtype)
        kernels.update(xp, params, grads, exp_avg, exp_avg_sq, statistics, scalars, finite, inplace=True)

    one_step()
    tables = {key: (layout, dict(layout._pointers.entries)) for key, layout in kernels._layouts.entries.items()}
    made = []
    real_tensor = torch.tensor
    monkeypatch.setattr(torch, "tensor", lambda *args, **kwargs: made.append(args) or real_tensor(*args, **kwargs))
    one_step()
    assert not made, f"a steady-state step built {len(made)} tables on the host"
    now = {key: (layout, dict(layout._pointers.entries)) for key, layout in kernels._layouts.entries.items()}
    assert now.keys() == tables.keys()
    for key, (layout, pointers) in now.items():
        assert layout is tables[key][0] and pointers.keys() == tables[key][1].keys()
        assert all(pointers[p] is tables[key][1][p] for p in pointers)
    assert len(tables) == 2 and {len(layout.groups) for layout, _ in tables.values()} == {3}, (
        "one launch per pass and dtype group: float32, bfloat16, float16"
    )


def test_selection_and_unsupported_reasons(monkeypatch):
    params = [torch.zeros(3), torch.zeros(2, dtype=torch.bfloat16)]
    assert isinstance(select_kernels(xp, params, "triton"), TritonKernels)
    reasons = {
        "integer": [torch.zeros(3, dtype=torch.int32)],
        "complex": [torch.zeros(3, dtype=torch.complex64)],
        "not contiguous": [torch.zeros(4, 3).T],
        "not torch": [[0.0, 1.0]],
    }
    for what, arrays in reasons.items():
        assert triton_backend.unsupported(xp, arrays), what
    monkeypatch.delenv("TRITON_INTERPRET")
    assert "TRITON_INTERPRET" in triton_backend.unsupported(xp, params)
    with pytest.raises(ValueError, match="TRITON_INTERPRET"):
        select_kernels(xp, params, "triton")


def test_registration_imports_neither_torch_nor_triton():
    """The plug-in and ``unsupported`` read metadata only: ``import neat`` stays light."""
    code = (
        "import sys, numpy as np, array_api_compat.numpy as xp\n"
        "from neat.backends import triton_backend\n"
        "reason = triton_backend.neat_step_kernels().unsupported(xp, [np.zeros(3)])\n"
        "assert reason and 'torch' in reason, reason\n"
        "assert 'torch' not in sys.modules and 'triton' not in sys.modules, 'imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])


def run_steps(dtype, kernels, inplace, steps=4):
    """A few :func:`neat.functional.step` calls with players, a skipped step and an inactive tensor."""
    generator = torch.Generator().manual_seed(5)
    shapes = [(40,), (), (3, 11), (7,)]
    params = [torch.randn(s, generator=generator, dtype=torch.float64).to(dtype) for s in shapes]
    config = NGAdamConfig(**HP)
    topology = Topology.build(len(shapes), [[0, 1], [2], [3]], None, mu=config.mu)
    state = functional.init_state(params, topology)
    history = []
    for step in range(steps):
        sign = 1.0 if step % 2 else -1.0
        grads = [(sign + 0.5 * torch.randn(s, generator=generator, dtype=torch.float64)).to(dtype) for s in shapes]
        if step == 2:
            grads[2][0, 0] = float("nan")
        if step == 3:
            grads[1] = None
        params, state = functional.step(
            params, grads, state, config, kernels=kernels, inplace=inplace, topology=topology
        )
        diagnostics = {key: value.clone() for key, value in neat.diagnostics(state).items()}  # in place: live
        history.append(([p.clone() for p in params], diagnostics))
    return history, state


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16], ids=str)
def test_functional_steps_match_generic(dtype):
    fast, fast_state = run_steps(dtype, "triton", inplace=True)
    slow, slow_state = run_steps(dtype, "generic", inplace=False)
    # Triton's interpreter rounds float32 -> bfloat16 toward zero (GPUs round to nearest, see
    # test_programs_compile_for_cuda): up to one bfloat16 ulp per step.
    rtol = 1e-12 if dtype == torch.float64 else 1e-5 if dtype == torch.float32 else len(fast) * 2.0**-7
    for (fast_params, fast_diagnostics), (slow_params, slow_diagnostics) in zip(fast, slow):
        assert_close(fast_params, slow_params, rtol, "params")
        for key, value in slow_diagnostics.items():
            torch.testing.assert_close(fast_diagnostics[key], value, rtol=max(rtol, 1e-5), atol=1e-6)
    assert int(fast_state.game.skipped) == 1 and fast_state.game.tensor_count.tolist() == [3, 2, 3, 3]
    assert_close(fast_state.exp_avg, slow_state.exp_avg, max(rtol, 1e-5), "exp_avg")


CUDA_SIGNATURES = {
    "statistics_kernel": dict(
        blocks="*i64",
        num_blocks="i32",
        block_base="i32",
        numels="*i64",
        table="*i64",
        num_tensors="i32",
        prev_scale="*fp32",
        prev_shift="*fp32",
        partials="*fp32",
    ),
    "reduce_kernel": dict(partials="*fp32", first_block="*i64", block_count="*i64", sums="*fp32"),
    "update_kernel": dict(
        blocks="*i64",
        num_blocks="i32",
        numels="*i64",
        table="*i64",
        num_tensors="i32",
        prev_scale="*fp32",
        prev_shift="*fp32",
        nge="*fp32",
        decay="*fp32",
        step="*fp32",
        shift="*fp32",
        betas="*fp64",
        betas_row_stride="i32",
        betas_tensor_stride="i32",
        finite="*i1",
    ),
}


def compile_for_cuda(name, constants):
    """PTX of a program compiled for an sm_90 GPU (Triton's compiler and ``ptxas``; no device needed)."""
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    function = getattr(kernel_module(interpret=False), name)
    types = CUDA_SIGNATURES[name]
    signature = {arg: "constexpr" if arg in constants else types[arg] for arg in function.arg_names}
    aligned = {
        (i,): [["tt.divisibility", 16]]
        for i, arg in enumerate(function.arg_names)
        if types.get(arg, "").startswith("*")
    }
    source = ASTSource(function, signature, constexprs=constants, attrs=aligned)
    options = {"num_warps": 4, "enable_fp_fusion": True}
    return triton.compile(source, target=GPUTarget("cuda", 90, 32), options=options).asm["ptx"]


def test_programs_compile_for_cuda():
    """Compiled (not interpreted) programs: full blocks use 16-byte vector accesses, no atomics."""
    import triton.language as tl

    if shutil.which("ptxas") is None and not list(Path(triton.__file__).parent.glob("backends/nvidia/bin/ptxas")):
        pytest.skip("triton has no ptxas (CUDA toolchain) here")
    statistics = compile_for_cuda(
        "statistics_kernel", dict(G=tl.bfloat16, S=tl.float32, STATS=tl.float32, ALIGNED=True, BLOCK=1024)
    )
    reduce = compile_for_cuda("reduce_kernel", dict(STATS=tl.float32, RBLOCK=256))
    update = compile_for_cuda(
        "update_kernel", dict(P=tl.float32, G=tl.float32, S=tl.float32, ALIGNED=True, INPLACE=True, BLOCK=1024)
    )
    update_bf16 = compile_for_cuda(
        "update_kernel", dict(P=tl.bfloat16, G=tl.bfloat16, S=tl.float32, ALIGNED=True, INPLACE=True, BLOCK=1024)
    )
    compile_for_cuda(
        "update_kernel", dict(P=tl.float64, G=tl.float64, S=tl.float64, ALIGNED=False, INPLACE=False, BLOCK=1024)
    )
    assert "ld.global.v4" in statistics and "ld.global.v4" in update and "st.global.v4" in update
    assert "atom" not in statistics + reduce, "the statistics must be reduced without atomics"
    assert "div.rn.f32" in update and "sqrt.rn.f32" in update, "float32 division and sqrt round as IEEE"
    assert "cvt.rn.bf16" in update_bf16, "bfloat16 parameters are rounded to nearest"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_graph_capture_replays_both_passes():
    """Both passes captured in a CUDA graph (warm-up first: compilation, tables) replay the eager
    GENERIC step on new gradients, and a skipped step replays as a no-op."""
    kernels = TritonKernels()
    params, grads, exp_avg, exp_avg_sq, scalars, stats_dtype = make_problem(MIXED, device="cuda")
    params[0] = torch.randn(5000, device="cuda")  # several full blocks
    grads[0], exp_avg[0], exp_avg_sq[0] = (
        torch.randn(5000, device="cuda"),
        torch.zeros(5000, device="cuda"),
        torch.zeros(5000, device="cuda"),
    )
    finite = torch.ones((), dtype=torch.bool, device="cuda")

    def passes():
        statistics = kernels.statistics(xp, grads, exp_avg, exp_avg_sq, scalars, stats_dtype)
        kernels.update(xp, params, grads, exp_avg, exp_avg_sq, statistics, scalars, finite, inplace=True)
        return statistics.sums

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        passes()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        sums = passes()
    for seed in range(2):
        generator = torch.Generator(device="cuda").manual_seed(seed)
        for g in grads:
            g.copy_(torch.randn(g.shape, generator=generator, device="cuda"))
        copies = [[t.clone() for t in values] for values in (params, grads, exp_avg, exp_avg_sq)]
        statistics = GENERIC.statistics(xp, *copies[1:], scalars, stats_dtype)
        expected = GENERIC.update(xp, *copies, statistics, scalars, finite)
        graph.replay()
        torch.cuda.synchronize()
        assert_close(list(sums.T), list(statistics.sums.T), 1e-5, "sums column")
        for what, actual, wanted in zip(("params", "exp_avg", "exp_avg_sq"), (params, exp_avg, exp_avg_sq), expected):
            assert_close(actual, wanted, 2.0**-7, what)
    finite.fill_(False)
    saved = [[t.clone() for t in values] for values in (params, exp_avg, exp_avg_sq)]
    graph.replay()
    torch.cuda.synchronize()
    for values, before in zip((params, exp_avg, exp_avg_sq), saved):
        assert all(torch.equal(a, b) for a, b in zip(values, before)), "a skipped step changed a tensor"
