"""Every compiled entry point of NEAT, driven in ONE process from numba's cache as it finds it
(run by ``test_cold_cache.py`` with an empty ``NUMBA_CACHE_DIR``).

Dtype by dtype (float64, then float32, then the 16-bit floats a path takes), at a size below
the thread pools' thresholds and one above them, each path runs three steps and its parameters
are checked against the float64 generic reference (``neat.ng_adam(kernels="generic")`` on the
same dtype-rounded inputs) to the conformance tolerance of the dtype:

* ``numpy-passes``, ``torch-passes``: the numba statistics and update passes (functional step);
* ``numpy-fused``: the fused in-place step on numba's pool (torch's pool set to one thread);
* ``torch-fused``: the fused in-place step on torch's OpenMP pool (``neat.torch.NGAdam``);
* ``jax-ffi``: the XLA FFI handlers (``neat.optax.ng_adam`` under ``jax.jit``, x64 enabled).

A compiled function typed for the first dtype and reused for the next (the crash of issue 20)
fails here as a numba error. Prints one ``ok`` line per case.
"""

from __future__ import annotations

import jax

jax.config.update("jax_enable_x64", True)  # before any JAX array exists

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
import torch  # noqa: E402

import neat  # noqa: E402
import neat.optax  # noqa: E402
import neat.torch  # noqa: E402
from neat.conformance.tolerances import tolerance  # noqa: E402
from neat.kernel_selection import default_kernel_set  # noqa: E402

SIZES = {
    "serial": [(40, 30), (30,), (30, 10)],  # below both pools' thresholds
    "parallel": [(800, 700), (700,), (700, 10)],  # 567K elements: above PARALLEL_ELEMENTS (524K)
}
PLAYERS = [[0], [1], [2]]
HYPER = dict(lr=1e-2, weight_decay=0.01)
NUM_STEPS = 3
THREADS = 2


def inputs(shapes, seed=0):
    """Initial parameters and one gradient list per step, float64."""
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(shape) for shape in shapes]
    grads = [[rng.standard_normal(shape) for shape in shapes] for _ in range(NUM_STEPS)]
    return params, grads


def reference(params, grads):
    """The float64 generic run on the given (already dtype-rounded) inputs."""
    opt = neat.ng_adam(kernels="generic", **HYPER)
    state = opt.init(params, players=PLAYERS)
    for step_grads in grads:
        params, state = opt.step(params, step_grads, state)
    return params


def numpy_passes(params, grads, dtype):
    params = [p.astype(dtype) for p in params]
    opt = neat.ng_adam(kernels="numba", **HYPER)
    state = opt.init(params, players=PLAYERS)
    for step_grads in grads:
        params, state = opt.step(params, [g.astype(dtype) for g in step_grads], state)
    return params


def numpy_fused(params, grads, dtype):
    params = [p.astype(dtype) for p in params]
    opt = neat.NGAdam(params, kernels="numba", players=PLAYERS, **HYPER)
    torch.set_num_threads(1)  # the fused step takes numba's pool (or one thread), not torch's
    try:
        for step_grads in grads:
            opt.step([g.astype(dtype) for g in step_grads])
    finally:
        torch.set_num_threads(THREADS)
    return params


def _tensors(arrays, dtype):
    """Copies of ``arrays`` as torch tensors of ``dtype`` (never sharing the inputs' memory)."""
    return [torch.tensor(a, dtype=getattr(torch, dtype)) for a in arrays]


def _arrays(tensors):
    return [t.detach().to(torch.float64).numpy() for t in tensors]


def torch_passes(params, grads, dtype):
    params = _tensors(params, dtype)
    opt = neat.ng_adam(kernels="numba", **HYPER)
    state = opt.init(params, players=PLAYERS)
    for step_grads in grads:
        params, state = opt.step(params, _tensors(step_grads, dtype), state)
    return _arrays(params)


def torch_fused(params, grads, dtype):
    params = [torch.nn.Parameter(t) for t in _tensors(params, dtype)]
    opt = neat.torch.NGAdam(params, fused=True, players=PLAYERS, **HYPER)
    for step_grads in grads:
        for p, g in zip(params, _tensors(step_grads, dtype)):
            p.grad = g
        opt.step()
    return _arrays(params)


def jax_ffi(params, grads, dtype):
    params = [jnp.asarray(p, dtype) for p in params]
    chosen = default_kernel_set(jnp, params).name
    assert chosen == "jax_ffi", f"optax steps would run the {chosen!r} kernels, not the FFI handlers"
    opt = neat.optax.ng_adam(HYPER["lr"], weight_decay=HYPER["weight_decay"], players=PLAYERS)
    state = opt.init(params)

    @jax.jit
    def step(params, grads, state):
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    for step_grads in grads:
        params, state = step(params, [jnp.asarray(g, dtype) for g in step_grads], state)
    return [np.asarray(p, np.float64) for p in params]


#: ``{path: (its function, the dtypes it takes)}``, in the order they run within a dtype.
PATHS = {
    "numpy-passes": (numpy_passes, ("float64", "float32", "float16")),
    "numpy-fused": (numpy_fused, ("float64", "float32", "float16")),
    "torch-passes": (torch_passes, ("float64", "float32", "bfloat16", "float16")),
    "torch-fused": (torch_fused, ("float64", "float32", "bfloat16", "float16")),
    "jax-ffi": (jax_ffi, ("float64", "float32")),
}
DTYPES = ("float64", "float32", "bfloat16", "float16")


def rounded(arrays, dtype):
    """``arrays`` rounded to ``dtype`` and back to float64 (what the path under test starts from)."""
    return _arrays(_tensors(arrays, dtype))


def deviation(ours, expected) -> float:
    """The conformance measure: the largest ``max |θ − θ_ref| / max |θ_ref|`` over the tensors."""
    return max(float(np.max(np.abs(a - b)) / np.max(np.abs(b))) for a, b in zip(ours, expected))


def main() -> None:
    torch.set_num_threads(THREADS)
    allowed_by_dtype = {dtype: tolerance(dtype, NUM_STEPS).params for dtype in DTYPES}
    for dtype in DTYPES:
        for size, shapes in SIZES.items():
            params, grads = inputs(shapes)
            params, grads = rounded(params, dtype), [rounded(g, dtype) for g in grads]
            expected = reference(params, grads)
            for path, (run, dtypes) in PATHS.items():
                if dtype not in dtypes:
                    continue
                found = deviation(run(params, grads, dtype), expected)
                allowed = allowed_by_dtype[dtype]
                assert found <= allowed, f"{path} {dtype} {size}: deviation {found:.3g} > {allowed:.3g}"
                print(f"ok {path} {dtype} {size} {found:.2g}", flush=True)


if __name__ == "__main__":
    main()
