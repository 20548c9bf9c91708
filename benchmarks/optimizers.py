"""The optimizers under test, their fixed settings and their tuning search spaces.

A search space maps a hyperparameter to ``("log", low, high)`` or ``("linear", low, high)``;
``step_width`` w stands for ``step_bounds = (1/w, w)``. Every optimizer searches ``lr`` and
``weight_decay``; NEAT and its ablations also search their own hyperparameters within the same
number of trials (see :mod:`benchmarks.tuning`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from benchmarks.lamb import Lamb
from benchmarks.lion import Lion

ADAM_BETAS = (0.9, 0.999)


NEAT_IMPLEMENTATION = "neat.torch.NGAdam(model) (one player per module, chain graph, fastest kernels: numba on CPU)"


def _hyper(hp: dict) -> dict:
    """Search coordinates → constructor keywords (``step_width`` → ``step_bounds``)."""
    hp = dict(hp)
    if "step_width" in hp:
        width = hp.pop("step_width")
        hp["step_bounds"] = (1.0 / width, width)
    return hp


def _neat(model, hp):
    from neat.torch import NGAdam

    return NGAdam(model, betas=ADAM_BETAS, eps=1e-8, **_hyper(hp))


@dataclass(frozen=True)
class OptimizerSpec:
    name: str
    title: str
    build: Callable[[torch.nn.Module, dict], torch.optim.Optimizer]
    space: dict
    fixed: dict = field(default_factory=dict)
    is_neat: bool = False
    adam_probe: bool = False  # trace SPEC alignment from the optimizer's own Adam moments

    def make(self, model: torch.nn.Module, hp: dict) -> torch.optim.Optimizer:
        return self.build(model, {**self.fixed, **hp})


LR_ADAM = ("log", 1e-4, 1e-2)
WD_DECOUPLED = ("log", 1e-5, 1e-1)
NEAT_SPACE = dict(
    gamma=("linear", 0.0, 1.0),
    zeta=("log", 0.005, 0.2),
    mu=("log", 0.1, 10.0),
    step_width=("log", 1.25, 4.0),
    leak=("log", 0.001, 0.1),
)


def _drop(space: dict, *names) -> dict:
    return {k: v for k, v in space.items() if k not in names}


OPTIMIZERS = {
    o.name: o
    for o in [
        OptimizerSpec(
            "adamw",
            "AdamW (fused)",
            lambda m, hp: torch.optim.AdamW(m.parameters(), betas=ADAM_BETAS, fused=True, **hp),
            dict(lr=LR_ADAM, weight_decay=WD_DECOUPLED),
            adam_probe=True,
        ),
        OptimizerSpec(
            "nadamw",
            "NAdamW",
            lambda m, hp: torch.optim.NAdam(m.parameters(), betas=ADAM_BETAS, decoupled_weight_decay=True, **hp),
            dict(lr=LR_ADAM, weight_decay=WD_DECOUPLED),
        ),
        OptimizerSpec(
            "lamb",
            "LAMB",
            lambda m, hp: Lamb(m.parameters(), betas=ADAM_BETAS, **hp),
            dict(lr=("log", 3e-4, 3e-2), weight_decay=WD_DECOUPLED),
        ),
        OptimizerSpec(
            "lion",
            "Lion",
            lambda m, hp: Lion(m.parameters(), **hp),
            dict(lr=("log", 1e-5, 1e-3), weight_decay=("log", 1e-4, 1.0)),
        ),
        OptimizerSpec(
            "sgdm",
            "SGD+momentum 0.9 (Nesterov)",
            lambda m, hp: torch.optim.SGD(m.parameters(), momentum=0.9, nesterov=True, **hp),
            dict(lr=("log", 1e-3, 0.3), weight_decay=("log", 1e-6, 1e-3)),
        ),
        OptimizerSpec(
            "neat", "NEAT (NG-Adam)", _neat, dict(lr=LR_ADAM, weight_decay=WD_DECOUPLED, **NEAT_SPACE), is_neat=True
        ),
        OptimizerSpec(
            "neat_nge_only",
            "NEAT, NGE only (zeta=0)",
            _neat,
            dict(lr=LR_ADAM, weight_decay=WD_DECOUPLED, gamma=NEAT_SPACE["gamma"], mu=NEAT_SPACE["mu"]),
            fixed=dict(zeta=0.0),
            is_neat=True,
        ),
        OptimizerSpec(
            "neat_nsa_only",
            "NEAT, NSA only (gamma=0)",
            _neat,
            dict(lr=LR_ADAM, weight_decay=WD_DECOUPLED, **_drop(NEAT_SPACE, "gamma")),
            fixed=dict(gamma=0.0),
            is_neat=True,
        ),
        OptimizerSpec(
            "neat_mu0",
            "NEAT, uncoupled players (mu=0)",
            _neat,
            dict(lr=LR_ADAM, weight_decay=WD_DECOUPLED, **_drop(NEAT_SPACE, "mu")),
            fixed=dict(mu=0.0),
            is_neat=True,
        ),
    ]
}

BASELINES = ["adamw", "nadamw", "lamb", "lion", "sgdm"]
ABLATIONS = ["neat_nge_only", "neat_nsa_only", "neat_mu0"]
ALL = [*BASELINES, "neat", *ABLATIONS]
