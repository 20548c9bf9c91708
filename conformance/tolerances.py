"""The conformance tolerances, one place for every dtype.

Deviation of parameters: for step ``s`` and tensor ``k``,
``max |θ_k(s) − θ_k^ref(s)| / scale_k`` with ``scale_k = max_s max |θ_k^ref(s)|``
(the tensor's parameter scale over the golden run). Deviation of diagnostics:
absolute for ``alignment``, ``kappa`` and ``mean_alignment`` (in ``[−1, 1]``),
relative for ``step_scale``; ``skipped_steps`` must be equal.

Rounding errors of independent steps add up like a random walk, so for a run of
``N`` steps a low-precision tolerance is ``c · √N · eps(dtype)``:

* **float64**: a fixed ``1e-12`` for parameters and diagnostics, about 4500 eps: room
  for another reduction order or FMA on an accelerator, far below any change to the
  math (dropping NGE moves the golden runs by 0.6–1.1; v1's float32 ``z`` moved them
  by 1e-8). SPEC v2 keeps ``z`` in the statistics dtype, float64 here, so the
  diagnostics follow the float64 reference as closely as the parameters.
* **float32**: ``c = 8``; the whole step (statistics, moments) runs in float32.
* **float16, bfloat16**: ``c = 2``; moments and statistics are float32 (SPEC
  "State"), only the stored parameters and gradients are rounded to the dtype.

Worst cases measured on the eight spec-v2 golden problems (50 steps) with
``python -m neat.conformance.tolerances --measure numpy`` (2-core CPU VM, generic
kernels): parameters 6.6e-16 / 1.6e-6 / 3.5e-3 and diagnostics 5e-16 / 5e-7 / 8e-4
for float64 / float32 / float16, so every tolerance keeps a margin of about 4× or more
over what a correct backend shows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Machine epsilon of every dtype the suite knows (bfloat16 has 8 significand bits).
EPS = {
    "float64": float(np.finfo(np.float64).eps),
    "float32": float(np.finfo(np.float32).eps),
    "float16": float(np.finfo(np.float16).eps),
    "bfloat16": 2.0**-7,
}

DTYPES = tuple(EPS)

_LOW_PRECISION_FACTOR = {"float32": 8.0, "float16": 2.0, "bfloat16": 2.0}
_FLOAT64_PARAMS = 1e-12
_FLOAT64_DIAGNOSTICS = 1e-12


@dataclass(frozen=True)
class Tolerance:
    """Allowed deviation of a ``dtype`` run from the float64 reference after ``num_steps`` steps."""

    dtype: str
    params: float
    diagnostics: float


def tolerance(dtype: str, num_steps: int) -> Tolerance:
    """The documented tolerance for ``dtype`` (see the module docstring for the derivation)."""
    if dtype not in EPS:
        raise ValueError(f"no conformance tolerance for dtype {dtype!r}; known: {', '.join(DTYPES)}")
    if dtype == "float64":
        return Tolerance(dtype, _FLOAT64_PARAMS, _FLOAT64_DIAGNOSTICS)
    value = _LOW_PRECISION_FACTOR[dtype] * math.sqrt(num_steps) * EPS[dtype]
    return Tolerance(dtype, value, value)


def measure(backend_names) -> None:
    """Print the worst deviation of each backend row (backend × kernel set) and dtype over the golden problems."""
    from neat.conformance import compare, discovery, runner

    for row in discovery.backend_rows(discovery.select(discovery.backends(), backend_names, "backend")):
        if row.kernel_set is None:
            continue
        for dtype in (d for d in DTYPES if d in row.dtypes):
            params = diagnostics = 0.0
            for name, problem in runner.problems().items():
                run = runner.backend_run(row.backend, name, dtype, row.kernel_set)
                params = max(params, compare.params_deviation(run.params, problem.expected_params).value)
                diagnostics = max(
                    diagnostics, compare.diagnostics_deviation(run.diagnostics, problem.expected_diagnostics).value
                )
            print(f"{row.name:<32} {dtype:<10} {params:>10.2g} {diagnostics:>12.2g}")


def main(argv=None) -> None:
    import argparse

    from neat.conformance.golden import NUM_STEPS

    parser = argparse.ArgumentParser(description="Print the conformance tolerances, or measure deviations.")
    parser.add_argument(
        "--measure",
        nargs="+",
        metavar="BACKEND",
        help="print the worst deviation of these backends on the golden problems instead",
    )
    args = parser.parse_args(argv)
    if args.measure:
        print(
            f"{'backend [kernel set]':<32} {'dtype':<10} {'params':>10} {'diagnostics':>12}"
            f"   (worst deviation, {NUM_STEPS} steps)"
        )
        measure(args.measure)
        return
    print(f"{'dtype':<10} {'params':>10} {'diagnostics':>12}   ({NUM_STEPS} steps)")
    for dtype in DTYPES:
        tol = tolerance(dtype, NUM_STEPS)
        print(f"{dtype:<10} {tol.params:>10.3g} {tol.diagnostics:>12.3g}")


if __name__ == "__main__":
    main()
