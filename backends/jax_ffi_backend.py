"""Kernel set ``"jax_ffi"``: the two passes of a step as XLA FFI custom calls into the numba loops.

XLA:CPU fuses no multi-output loops, so the XLA-op kernels (``"jax"``) read the tensors
more often than a step needs. Here the statistics pass and the moments' update are each ONE
custom call over all tensors of a dtype (:mod:`neat.backends.numba.jax_ffi_loops`, typed FFI API,
``api_version=1``) into numba loops: the statistics read ``g, m, v`` once (the ``"numba"``
set's compiled loop), the moments' update reads ``g, m, v`` once and writes ``m, v`` into the
same buffers (the results alias the inputs: with donation in place, without it XLA copies
first). The ``θ`` loop (reads ``θ`` and the new ``m, v``) stays an XLA loop, which XLA fuses
with a caller's use of the old ``θ`` (``optax``'s ``new − old`` and ``apply_updates``) instead
of keeping a parameter-sized copy of it. The game stays in ``jax.numpy``, traced; ``finite``
is read inside the moments' call.

It applies to JAX arrays on a single CPU device (a custom call has no partitioning rule:
sharded runs keep ``"jax"``), float32/float64, when numba imports.
"""

from __future__ import annotations

import functools
import sys

from neat.hookspecs import hookimpl
from neat.kernels import Statistics, adam_direction

_DTYPES = ("float32", "float64")
_TARGET = "neat_ffi_{pass_name}_{dtype}"


@hookimpl
def neat_step_kernels():
    from neat.kernel_selection import KernelSet

    return KernelSet("jax_ffi", JaxFfiKernels(), jax_ffi_unsupported, priority=20)


def jax_ffi_unsupported(xp, params) -> str | None:
    """Why the FFI kernels cannot run ``params`` (metadata only), or ``None``."""
    jax = sys.modules.get("jax")
    if jax is None or xp is not jax.numpy:
        return "the jax_ffi kernels run JAX arrays only"
    if jax.default_backend() != "cpu" or jax.device_count() != 1:
        return "the jax_ffi kernels run on a single CPU device only (custom calls cannot be partitioned)"
    bad = sorted({str(p.dtype) for p in params} - set(_DTYPES))
    if bad:
        return f"the jax_ffi kernels run float32/float64 arrays, not {', '.join(bad)}"
    from neat.backends.numba.kernels import numba_missing

    return numba_missing()


@functools.cache
def _registered(dtype: str) -> None:
    """Register the two FFI targets of ``dtype`` with XLA:CPU (once per process)."""
    import jax

    from neat.backends.numba.first_use import compiled_modules

    for pass_name, handler in zip(("statistics", "moments"), compiled_modules().jax_ffi_loops.handlers(dtype)):
        jax.ffi.register_ffi_target(
            _TARGET.format(pass_name=pass_name, dtype=dtype),
            jax.ffi.pycapsule(handler.address),
            platform="cpu",
            api_version=1,
        )


def _dtype_groups(tensors) -> dict:
    """``{dtype name: tensor indices}`` (usually one group)."""
    groups: dict = {}
    for k, m in enumerate(tensors):
        groups.setdefault(str(m.dtype), []).append(k)
    return groups


def _columns(xp, columns, members, dtype):
    """The listed tensors' entries of per-tensor ``(K,)`` columns as one ``(len(columns), n)`` array;
    a column given as one scalar for every tensor is filled in."""
    index = xp.asarray(members)

    def entries(column):
        if getattr(column, "ndim", 0) == 1:
            return xp.astype(column[index], dtype)
        return xp.full((len(members),), column, dtype=dtype)

    return xp.stack([entries(column) for column in columns])


def _after(values, previous):
    """``values`` made to depend on ``previous`` (so that two custom calls never run at once:
    numba's thread pool takes one call at a time)."""
    if previous is None:
        return values
    from jax import lax

    return lax.optimization_barrier((values, previous))[0]


class JaxFfiKernels:
    """:class:`neat.kernels.StepKernels` as FFI custom calls (same arithmetic as the ``"numba"`` set:
    element by element in the dtype of ``m``, sums accumulated in float64 in fixed blocks)."""

    name = "jax_ffi"

    def statistics(self, xp, grads, exp_avg, exp_avg_sq, scalars, stats_dtype):
        """SPEC steps 2, 3: ``(K, 3)`` sums ``⟨g,g⟩, ⟨g,u⟩, ⟨u,u⟩`` in ``stats_dtype``, one call per dtype."""
        import jax

        rows, previous = [None] * len(grads), None
        for dtype, members in _dtype_groups(exp_avg).items():
            _registered(dtype)
            call = jax.ffi.ffi_call(
                _TARGET.format(pass_name="statistics", dtype=dtype),
                jax.ShapeDtypeStruct((len(members), 3), stats_dtype),
            )
            inputs = (
                [xp.astype(grads[k], dtype) for k in members]
                + [exp_avg[k] for k in members]
                + [exp_avg_sq[k] for k in members]
                + [_columns(xp, scalars[:2], members, dtype)]
            )
            previous = sums = call(*_after(inputs, previous))
            for row, k in enumerate(members):
                rows[k] = sums[row]
        return Statistics(xp.stack(rows), None)

    def update(self, xp, params, grads, exp_avg, exp_avg_sq, statistics, scalars, finite, inplace=False):
        """SPEC steps 2, 6, 8, 9: ``m, v`` by one call per dtype, in place (the results alias the
        inputs), unchanged where ``finite`` is false; then ``θ ← θ · decay − m · step / (√v + shift)``
        (0 where the denominator is 0) from the new moments, or the old ``θ`` where ``finite`` is false.

        The ``θ`` loop is left to XLA: a caller that keeps the old ``θ`` (``optax``'s
        ``new − old``) has it fused into its own loop, where a custom call writing ``θ`` would
        need a parameter-sized copy of the old ``θ``."""
        import jax

        if inplace:
            raise TypeError("JAX arrays are immutable: inplace=True is not supported, use the returned arrays")
        coefficients = (scalars.prev_scale, scalars.prev_shift, scalars.nge, *scalars[6:])
        new_avg, new_avg_sq, previous = [None] * len(params), [None] * len(params), None
        for dtype, members in _dtype_groups(exp_avg).items():
            _registered(dtype)
            n = len(members)
            moments = [exp_avg[k] for k in members] + [exp_avg_sq[k] for k in members]
            call = jax.ffi.ffi_call(
                _TARGET.format(pass_name="moments", dtype=dtype),
                [jax.ShapeDtypeStruct(x.shape, x.dtype) for x in moments],
                input_output_aliases={n + i: i for i in range(2 * n)},
            )
            inputs = (
                [xp.astype(grads[k], dtype) for k in members]
                + moments
                + [_columns(xp, coefficients, members, dtype), xp.asarray(finite, dtype=bool)]
            )
            previous = outputs = call(*_after(inputs, previous))
            for position, k in enumerate(members):
                new_avg[k], new_avg_sq[k] = outputs[position], outputs[n + position]
        return (
            [
                _new_parameter(xp, p, m, v, scalars, k, finite)
                for k, (p, m, v) in enumerate(zip(params, new_avg, new_avg_sq))
            ],
            new_avg,
            new_avg_sq,
        )


def _new_parameter(xp, p, m, v, scalars, k: int, finite):
    """SPEC step 9: ``θ · decay − direction(m, v, step, shift)`` in the dtype of ``m``; ``θ`` where
    ``finite`` is false."""
    dtype = m.dtype
    direction = adam_direction(xp, m, v, xp.astype(scalars.step[k], dtype), xp.astype(scalars.shift[k], dtype))
    p_next = xp.astype(p, dtype) * xp.astype(scalars.decay[k], dtype) - direction
    return xp.where(finite, xp.astype(p_next, p.dtype), p)
