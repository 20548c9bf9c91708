"""Run by ``.ci/run`` in a fresh virtual environment holding NEAT's wheel and its core
dependencies only, from a folder outside the checkout: the package a user installs imports
without any framework, ships its data (golden vectors, ``py.typed``) and steps."""

import sys
from pathlib import Path

import numpy as np

import neat
from neat.conformance import golden

checkout = Path(sys.argv[1]).resolve()
installed = Path(neat.__file__).resolve()
assert checkout not in installed.parents, f"neat was imported from the checkout ({installed}), not the wheel"
frameworks = sorted({"torch", "jax", "keras", "cupy", "numba"} & set(sys.modules))
assert not frameworks, f"import neat imported {frameworks}"
assert (installed.parent / "py.typed").is_file(), "py.typed is missing from the wheel"

problem = next(p for p in golden.load_all() if p.name == "chain3")  # shipped in the wheel: replay 5 steps
opt = neat.ng_adam(**problem.hyperparameters)
params = [p.copy() for p in problem.params]
state = opt.init(params, players=problem.players, graph=problem.weights)
for grads, expected in zip(problem.grads[:5], problem.expected_params[:5]):
    params, state = opt.step(params, grads, state)
    for ours, reference in zip(params, expected):
        np.testing.assert_allclose(ours, reference, rtol=1e-12, atol=1e-12)
print(f"installed wheel OK: {installed.parent} ({neat.__version__}), {problem.name} golden steps 1-5 reproduced")
