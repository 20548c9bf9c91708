"""Golden problems: fixed inputs and the float64 reference's outputs, 50 steps each.

Stored as ``golden/spec-v<N>_<name>.npz`` (the spec version is part of the
name and of the metadata). Regenerate only on purpose, when the spec changes::

    python -m neat.conformance.golden --write

Every problem is portable across dtypes: a float16 run of it must skip exactly
the steps the float64 reference skips. So the huge gradients of ``overflow`` are
finite float64 values whose squares are finite too, but whose player sum ``G_i``
overflows float64 (SPEC step 0, v2); in any narrower dtype the values themselves
are infinite, and the step is skipped there as well. (A ``G_i`` that overflows
float32 but not float64 is skipped by a float32 run only: no golden problem can
hold it; ``tests/core/test_nonfinite.py`` checks it per dtype.)

* ``chain3``, ``star5``, ``independent``: the game on a chain, a weighted star, and μ = 0;
* ``adamw``: γ = ζ = 0 (AdamW); ``skips``: NaN / inf gradients on four steps;
* ``inactive``: tensors without a gradient on some steps (``grads[s][k] is None``):
  late starts, a whole player off the middle of the chain, a lone active player;
* ``eps0``: ε = 0 with gradient entries that are always 0 (zero denominators: they stay
  put) and a player whose gradient is 0 for its first steps (``G_i = 0``);
* ``overflow``: finite gradients whose ``G_i`` overflows float64 on three steps.
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
#: Each entry of the ``overflow`` problem's huge gradients: its square (1.44e306) is finite in
#: float64, one 100-entry tensor sums to 1.44e308 (finite), the player's two tensors overflow.
HUGE = 1.2e153


@dataclass
class GoldenProblem:
    """Inputs and float64 reference outputs of one problem.

    ``grads[s][k]`` is ``None`` where tensor ``k`` is inactive at step ``s + 1``.
    ``expected_params[s]`` are the parameters after step ``s + 1``;
    ``expected_diagnostics[key][s]`` the diagnostics after it; ``expected_counts[s]``
    the step count ``t`` and ``expected_tensor_counts[s][k]`` the counts ``t_k``.
    """

    name: str
    hyperparameters: dict
    players: list
    weights: np.ndarray
    params: list
    grads: list
    expected_params: list = field(default_factory=list)
    expected_diagnostics: dict = field(default_factory=dict)
    expected_counts: list = field(default_factory=list)
    expected_tensor_counts: list = field(default_factory=list)
    spec_version: int = SPEC_VERSION

    @property
    def num_steps(self) -> int:
        return len(self.grads)

    @property
    def active(self) -> np.ndarray:
        """``(steps, tensors)`` bool: which tensors have a gradient at each step."""
        return np.array([[g is not None for g in grads] for grads in self.grads], dtype=bool)

    @property
    def has_inactive(self) -> bool:
        return not bool(np.all(self.active))

    @property
    def skipped_steps(self) -> list[int]:
        """The 0-based steps the reference skipped (SPEC step 0)."""
        counts = np.asarray(self.expected_diagnostics["skipped_steps"])
        return [s for s in range(self.num_steps) if counts[s] > (counts[s - 1] if s else 0)]

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
            grads[step % len(shapes)] = (
                grads[step % len(shapes)] * np.nan if step % 2 else np.full(shapes[step % len(shapes)], np.inf)
            )
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
    return GoldenProblem(name=name, hyperparameters=hp, players=players, weights=weights, params=params, grads=grads)


def golden_hyperparameters(**changes) -> dict:
    """The golden problems' hyperparameters, with ``changes``; the tests that need a full set of
    hyperparameters take theirs from here."""
    hp = dict(
        lr=0.05,
        betas=(0.9, 0.99),
        eps=1e-8,
        weight_decay=0.01,
        gamma=1.0,
        zeta=0.2,
        mu=1.0,
        step_bounds=(0.5, 2.0),
        leak=0.05,
    )
    hp.update(changes)
    return hp


SHAPES_CHAIN = [(4, 3), (3,), (3, 2), (2,), (5,)]
PLAYERS_CHAIN = [[0, 1], [2, 3], [4]]
SCALES_CHAIN = [1.0, 0.1, 3.0, 0.01, 1.0]


def _inactive() -> GoldenProblem:
    """Some tensors have no gradient on some steps (a non-finite step among them)."""
    problem = _problem(
        "inactive",
        6,
        [*SHAPES_CHAIN, (2, 2)],
        [[0, 1], [2, 3], [4], [5]],
        _chain(4),
        golden_hyperparameters(),
        scales=[*SCALES_CHAIN, 0.5],
        non_finite_steps=(20,),
    )
    rng = np.random.default_rng(60)
    for s, grads in enumerate(problem.grads):
        off = set()
        if s < 3:
            off.add(1)  # starts late: t_k lags t, inside a partly active player
        if 10 <= s < 15:
            off |= {2, 3}  # the middle player of the chain is out: the sub-graph falls apart
        if s % 2:
            off.add(5)
        if rng.random() < 0.2:
            off.add(4)
        if s == 30:
            off = {1, 2, 3, 4, 5}  # a lone active player
        for k in off:
            grads[k] = None
    return problem


def _eps0() -> GoldenProblem:
    """ε = 0: entries whose gradient is always 0 have ``v = 0``, a zero denominator, and must not
    move (ω = 0: a float16 run would otherwise see 50 steps of decay rounded alike, a drift the
    random-walk tolerance does not model)."""
    problem = _problem(
        "eps0",
        7,
        SHAPES_CHAIN,
        PLAYERS_CHAIN,
        _chain(3),
        golden_hyperparameters(eps=0.0, weight_decay=0.0),
        scales=SCALES_CHAIN,
    )
    for s, grads in enumerate(problem.grads):
        grads[0][:, 0] = 0.0
        grads[3][...] = 0.0
        if s < 6:
            grads[4][...] = 0.0  # the player's G_i = 0, and its u = 0 until its gradient appears
    return problem


def _overflow() -> GoldenProblem:
    """Finite gradients whose player sum ``G_0`` overflows float64 on steps 4, 18 and 19."""
    shapes = [(10, 10), (10, 10), (3, 2), (2,), (5,)]
    problem = _problem("overflow", 8, shapes, PLAYERS_CHAIN, _chain(3), golden_hyperparameters(), scales=[1.0] * 5)
    signs = np.random.default_rng(80)
    for s in (3, 17, 18):
        for k in (0, 1):
            problem.grads[s][k] = HUGE * signs.choice([-1.0, 1.0], size=shapes[k])
    return problem


def problem_inputs() -> list[GoldenProblem]:
    """The golden problems' inputs (no expected outputs yet)."""
    star = np.zeros((5, 5))
    for j, w in zip(range(1, 5), (1.0, 0.5, 2.0, 1.5)):
        star[0, j] = star[j, 0] = w
    star[3, 4] = star[4, 3] = 0.25
    shapes_star = [(6,), (), (2, 2, 2), (3,), (4, 2), (), (7,)]
    players_star = [[0, 1], [2], [3, 4], [5], [6]]
    return [
        _problem("chain3", 1, SHAPES_CHAIN, PLAYERS_CHAIN, _chain(3), golden_hyperparameters(), scales=SCALES_CHAIN),
        _problem(
            "star5",
            2,
            shapes_star,
            players_star,
            star,
            golden_hyperparameters(gamma=0.7, zeta=0.3, mu=2.5, step_bounds=(0.25, 4.0), leak=0.0, weight_decay=0.0),
            scales=[1.0, 10.0, 0.5, 1e-3, 2.0, 1.0, 0.2],
        ),
        _problem(
            "independent",
            3,
            SHAPES_CHAIN,
            [[0], [1, 2], [3, 4]],
            _chain(3),
            golden_hyperparameters(mu=0.0, zeta=0.5, leak=0.2),
            scales=[1.0] * 5,
        ),
        _problem(
            "adamw",
            4,
            SHAPES_CHAIN,
            PLAYERS_CHAIN,
            _chain(3),
            golden_hyperparameters(gamma=0.0, zeta=0.0, weight_decay=0.1),
            scales=SCALES_CHAIN,
        ),
        _problem(
            "skips",
            5,
            SHAPES_CHAIN,
            PLAYERS_CHAIN,
            _chain(3),
            golden_hyperparameters(eps=0.0),
            scales=SCALES_CHAIN,
            non_finite_steps=(0, 7, 8, 31),
        ),
        _inactive(),
        _eps0(),
        _overflow(),
    ]


def solve(problem: GoldenProblem) -> GoldenProblem:
    """Run the float64 reference over the problem and fill in its expected outputs."""
    reference = ReferenceNGAdam(problem.params, problem.players, problem.weights, problem.hyperparameters)
    problem.expected_params, diags = [], []
    problem.expected_counts, problem.expected_tensor_counts = [], []
    for grads in problem.grads:
        reference.step(grads)
        problem.expected_params.append([p.copy() for p in reference.params])
        diags.append(reference.diagnostics())
        problem.expected_counts.append(reference.t)
        problem.expected_tensor_counts.append(list(reference.tensor_count))
    problem.expected_diagnostics = {key: np.array([d[key] for d in diags]) for key in diags[0]}
    return problem


def save(problem: GoldenProblem) -> Path:
    meta = dict(
        name=problem.name,
        spec_version=problem.spec_version,
        hyperparameters=problem.hyperparameters,
        players=problem.players,
        num_tensors=len(problem.params),
        num_steps=problem.num_steps,
    )
    arrays = {
        "meta": np.array(json.dumps(meta)),
        "weights": problem.weights,
        "active": problem.active,
        "count": np.asarray(problem.expected_counts, dtype=np.int64),
        "tensor_count": np.asarray(problem.expected_tensor_counts, dtype=np.int64),
    }
    for k, p in enumerate(problem.params):
        arrays[f"param_{k}"] = p
    for s, (grads, expected) in enumerate(zip(problem.grads, problem.expected_params)):
        for k, (g, p) in enumerate(zip(grads, expected)):
            if g is not None:
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
        active = data["active"]
        return GoldenProblem(
            name=meta["name"],
            spec_version=meta["spec_version"],
            hyperparameters=hp,
            players=meta["players"],
            weights=data["weights"],
            params=[data[f"param_{k}"] for k in k_range],
            grads=[[data[f"grad_{s}_{k}"] if active[s, k] else None for k in k_range] for s in s_range],
            expected_params=[[data[f"expected_{s}_{k}"] for k in k_range] for s in s_range],
            expected_diagnostics={key[len("diag_") :]: data[key] for key in data.files if key.startswith("diag_")},
            expected_counts=data["count"].tolist(),
            expected_tensor_counts=data["tensor_count"].tolist(),
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
    with np.errstate(invalid="ignore", over="ignore"):
        for problem in problem_inputs():
            print(save(solve(problem)))


if __name__ == "__main__":
    main()
