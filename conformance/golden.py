"""Golden problems: fixed inputs and the float64 reference's outputs, 50 steps each.

Stored as ``golden/spec-v<N>_<name>.npz`` (the spec version is part of the
name and of the metadata). Regenerate only on purpose, when the spec changes::

    python -m neat.conformance.golden --write
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from neat._version import SPEC_VERSION
from neat.conformance.reference import ReferenceNGAdam

GOLDEN_DIR = Path(__file__).parent / "golden"
NUM_STEPS = 50


@dataclass
class GoldenProblem:
    """Inputs and float64 reference outputs of one problem.

    ``expected_params[s]`` are the parameters after step ``s + 1``;
    ``expected_diagnostics[key][s]`` the diagnostics after it.
    """

    name: str
    hyperparameters: dict
    players: list
    weights: np.ndarray
    params: list
    grads: list
    expected_params: list = field(default_factory=list)
    expected_diagnostics: dict = field(default_factory=dict)
    spec_version: int = SPEC_VERSION

    @property
    def num_steps(self) -> int:
        return len(self.grads)

    @property
    def edges(self) -> list:
        """The graph as ``(i, j, weight)`` edges (upper triangle)."""
        n = len(self.weights)
        return [(i, j, float(self.weights[i, j])) for i in range(n) for j in range(i + 1, n) if self.weights[i, j]]

    def path(self) -> Path:
        return GOLDEN_DIR / f"spec-v{self.spec_version}_{self.name}.npz"


def _gradients(rng, shapes, players, num_steps, scales, non_finite_steps=()):
    """Structured gradients: a fixed direction whose sign flips with a per-player period,
    plus noise, at very different scales per tensor, so alignment takes both signs."""
    owner = {k: i for i, group in enumerate(players) for k in group}
    base = [rng.normal(size=s) for s in shapes]
    steps = []
    for step in range(num_steps):
        grads = []
        for k, shape in enumerate(shapes):
            period = 2 + owner[k]
            sign = 1.0 if (step // period) % 2 == 0 else -1.0
            grads.append(scales[k] * (sign * base[k] + 0.6 * rng.normal(size=shape)))
        if step in non_finite_steps:
            grads[step % len(shapes)] = grads[step % len(shapes)] * np.nan if step % 2 else \
                np.full(shapes[step % len(shapes)], np.inf)
        steps.append(grads)
    return steps


def _chain(n):
    weights = np.zeros((n, n))
    for i in range(n - 1):
        weights[i, i + 1] = weights[i + 1, i] = 1.0
    return weights


def _problem(name, seed, shapes, players, weights, hp, scales, non_finite_steps=()):
    rng = np.random.default_rng(seed)
    params = [rng.normal(size=s) for s in shapes]
    grads = _gradients(rng, shapes, players, NUM_STEPS, scales, non_finite_steps)
    return GoldenProblem(name=name, hyperparameters=hp, players=players, weights=weights,
                         params=params, grads=grads)


def _base_hp(**changes):
    hp = dict(lr=0.05, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.01, gamma=1.0, zeta=0.2,
              mu=1.0, step_bounds=(0.5, 2.0), leak=0.05)
    hp.update(changes)
    return hp


def problem_inputs() -> list[GoldenProblem]:
    """The golden problems' inputs (no expected outputs yet)."""
    star = np.zeros((5, 5))
    for j, w in zip(range(1, 5), (1.0, 0.5, 2.0, 1.5)):
        star[0, j] = star[j, 0] = w
    star[3, 4] = star[4, 3] = 0.25
    shapes_chain = [(4, 3), (3,), (3, 2), (2,), (5,)]
    shapes_star = [(6,), (), (2, 2, 2), (3,), (4, 2), (), (7,)]
    players_star = [[0, 1], [2], [3, 4], [5], [6]]
    return [
        _problem("chain3", 1, shapes_chain, [[0, 1], [2, 3], [4]], _chain(3), _base_hp(),
                 scales=[1.0, 0.1, 3.0, 0.01, 1.0]),
        _problem("star5", 2, shapes_star, players_star, star,
                 _base_hp(gamma=0.7, zeta=0.3, mu=2.5, step_bounds=(0.25, 4.0), leak=0.0, weight_decay=0.0),
                 scales=[1.0, 10.0, 0.5, 1e-3, 2.0, 1.0, 0.2]),
        _problem("independent", 3, shapes_chain, [[0], [1, 2], [3, 4]], _chain(3),
                 _base_hp(mu=0.0, zeta=0.5, leak=0.2), scales=[1.0, 1.0, 1.0, 1.0, 1.0]),
        _problem("adamw", 4, shapes_chain, [[0, 1], [2, 3], [4]], _chain(3),
                 _base_hp(gamma=0.0, zeta=0.0, weight_decay=0.1), scales=[1.0, 0.1, 3.0, 0.01, 1.0]),
        _problem("skips", 5, shapes_chain, [[0, 1], [2, 3], [4]], _chain(3), _base_hp(eps=0.0),
                 scales=[1.0, 0.1, 3.0, 0.01, 1.0], non_finite_steps=(0, 7, 8, 31)),
    ]


def solve(problem: GoldenProblem) -> GoldenProblem:
    """Run the float64 reference over the problem and fill in its expected outputs."""
    reference = ReferenceNGAdam(problem.params, problem.players, problem.weights, problem.hyperparameters)
    problem.expected_params, diags = [], []
    for grads in problem.grads:
        reference.step(grads)
        problem.expected_params.append([p.copy() for p in reference.params])
        diags.append(reference.diagnostics())
    problem.expected_diagnostics = {key: np.array([d[key] for d in diags]) for key in diags[0]}
    return problem


def save(problem: GoldenProblem) -> Path:
    meta = dict(name=problem.name, spec_version=problem.spec_version, hyperparameters=problem.hyperparameters,
                players=problem.players, num_tensors=len(problem.params), num_steps=problem.num_steps)
    arrays = {"meta": np.array(json.dumps(meta)), "weights": problem.weights}
    for k, p in enumerate(problem.params):
        arrays[f"param_{k}"] = p
    for s, (grads, expected) in enumerate(zip(problem.grads, problem.expected_params)):
        for k, (g, p) in enumerate(zip(grads, expected)):
            arrays[f"grad_{s}_{k}"] = g
            arrays[f"expected_{s}_{k}"] = p
    for key, values in problem.expected_diagnostics.items():
        arrays[f"diag_{key}"] = values
    path = problem.path()
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    return path


def load(path: Path) -> GoldenProblem:
    with np.load(path) as data:
        meta = json.loads(str(data["meta"]))
        hp = meta["hyperparameters"]
        hp["betas"], hp["step_bounds"] = tuple(hp["betas"]), tuple(hp["step_bounds"])
        k_range, s_range = range(meta["num_tensors"]), range(meta["num_steps"])
        return GoldenProblem(
            name=meta["name"], spec_version=meta["spec_version"], hyperparameters=hp,
            players=meta["players"], weights=data["weights"],
            params=[data[f"param_{k}"] for k in k_range],
            grads=[[data[f"grad_{s}_{k}"] for k in k_range] for s in s_range],
            expected_params=[[data[f"expected_{s}_{k}"] for k in k_range] for s in s_range],
            expected_diagnostics={key[len("diag_"):]: data[key] for key in data.files if key.startswith("diag_")},
        )


def load_all(spec_version: int = SPEC_VERSION) -> list[GoldenProblem]:
    """Every stored golden problem of ``spec_version``, sorted by name."""
    return [load(path) for path in sorted(GOLDEN_DIR.glob(f"spec-v{spec_version}_*.npz"))]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="regenerate the golden files of this spec version")
    args = parser.parse_args(argv)
    if not args.write:
        parser.error("refusing to touch golden files without --write")
    for problem in problem_inputs():
        print(save(solve(problem)))


if __name__ == "__main__":
    main()
