"""The optimizers under test, their fixed settings and their tuning search spaces.

A search space maps a hyperparameter to ``("log", low, high)`` or ``("linear", low, high)``;
``step_width`` w stands for ``step_bounds = (1/w, w)``. Every optimizer searches ``lr`` and
``weight_decay`` over ranges wide enough that the selected learning rate should fall inside
(:mod:`benchmarks.protocol` widens the range and reruns when it lands on the edge). ``neat`` is
NEAT with the library's defaults for its own hyperparameters (it searches ``lr`` and
``weight_decay`` only, like AdamW); ``neat_search`` also searches its own hyperparameters inside the
same number of trials; the ablations and the pre-registered variants move one thing from ``neat``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from benchmarks.lamb import Lamb
from benchmarks.lion import Lion
from benchmarks.nadamw import NAdamW

ADAM_BETAS = (0.9, 0.999)


NEAT_IMPLEMENTATION = "neat.torch.NGAdam(model) (one player per module, chain graph, fastest kernels: numba on CPU)"
HARNESS_IMPLEMENTATION = (
    "benchmarks.variants.HarnessNEAT (per-tensor PyTorch transcription of SPEC v2 plus the variant)"
)


def _hyper(hp: dict) -> dict:
    """Search coordinates → constructor keywords (``step_width`` → ``step_bounds``, ``beta2`` →
    ``betas = (ADAM_BETAS[0], beta2)``; without ``beta2``, ``betas = ADAM_BETAS``)."""
    hp = dict(hp)
    hp["betas"] = (ADAM_BETAS[0], hp.pop("beta2")) if "beta2" in hp else ADAM_BETAS
    if "step_width" in hp:
        width = hp.pop("step_width")
        hp["step_bounds"] = (1.0 / width, width)
    if "step_bounds" in hp:
        hp["step_bounds"] = tuple(hp["step_bounds"])
    return hp


def _neat(model, hp):
    from neat.torch import NGAdam

    return NGAdam(model, eps=1e-8, **_hyper(hp))


def _harness_neat(model, hp):
    from benchmarks.variants import HarnessNEAT

    return HarnessNEAT(model, eps=1e-8, **_hyper(hp))


@dataclass(frozen=True)
class OptimizerSpec:
    name: str
    title: str
    build: Callable[[torch.nn.Module, dict], torch.optim.Optimizer]
    space: dict
    fixed: dict = field(default_factory=dict)
    is_neat: bool = False
    adam_probe: bool = False  # trace SPEC alignment from the optimizer's own Adam moments
    implementation: str = ""

    def make(self, model: torch.nn.Module, hp: dict) -> torch.optim.Optimizer:
        return self.build(model, {**self.fixed, **hp})


LR_ADAM = ("log", 1e-4, 3e-2)
WD_DECOUPLED = ("log", 1e-5, 1e-1)
ADAM_SPACE = dict(lr=LR_ADAM, weight_decay=WD_DECOUPLED)
NEAT_SPACE = dict(
    gamma=("linear", 0.0, 1.0),
    zeta=("log", 0.005, 0.2),
    mu=("log", 0.1, 10.0),
    step_width=("log", 1.25, 4.0),
    leak=("log", 0.001, 0.1),
)


def _neat_spec(name, title, fixed=None, space=None, build=_neat, implementation=NEAT_IMPLEMENTATION):
    return OptimizerSpec(
        name,
        title,
        build,
        space or dict(ADAM_SPACE),
        fixed=fixed or {},
        is_neat=True,
        implementation=implementation,
    )


OPTIMIZERS = {
    o.name: o
    for o in [
        OptimizerSpec(
            "adamw",
            "AdamW (fused)",
            lambda m, hp: torch.optim.AdamW(m.parameters(), fused=True, **_hyper(hp)),
            dict(ADAM_SPACE),
            adam_probe=True,
            implementation="torch.optim.AdamW(fused=True)",
        ),
        OptimizerSpec(
            "nadamw",
            "NAdamW (AlgoPerf's form)",
            lambda m, hp: NAdamW(m.parameters(), **_hyper(hp)),
            dict(ADAM_SPACE),
            implementation="benchmarks.nadamw.NAdamW",
        ),
        OptimizerSpec(
            "lamb",
            "LAMB",
            lambda m, hp: Lamb(m.parameters(), betas=ADAM_BETAS, **hp),
            dict(lr=("log", 1e-3, 3e-1), weight_decay=WD_DECOUPLED),
            implementation="benchmarks.lamb.Lamb",
        ),
        OptimizerSpec(
            "lion",
            "Lion",
            lambda m, hp: Lion(m.parameters(), **hp),
            dict(lr=("log", 1e-5, 3e-3), weight_decay=("log", 1e-4, 1.0)),
            implementation="benchmarks.lion.Lion",
        ),
        OptimizerSpec(
            "sgdm",
            "SGD+momentum 0.9 (Nesterov)",
            lambda m, hp: torch.optim.SGD(m.parameters(), momentum=0.9, nesterov=True, **hp),
            dict(lr=("log", 1e-3, 1.0), weight_decay=("log", 1e-6, 1e-3)),
            implementation="torch.optim.SGD(nesterov=True)",
        ),
        _neat_spec("neat", "NEAT (NG-Adam), library defaults"),
        _neat_spec("neat_search", "NEAT, own hyperparameters searched", space={**ADAM_SPACE, **NEAT_SPACE}),
        _neat_spec("neat_nge_only", "NEAT, NGE only (zeta=0)", fixed=dict(zeta=0.0)),
        _neat_spec("neat_nsa_only", "NEAT, NSA only (gamma=0)", fixed=dict(gamma=0.0)),
        _neat_spec("neat_mu0", "NEAT, uncoupled players (mu=0)", fixed=dict(mu=0.0)),
        _neat_spec(
            "var_smooth_nsa",
            "variant: NSA driven by a smoothed alignment (EMA 0.9)",
            fixed=dict(alignment_ema=0.9),
            build=_harness_neat,
            implementation=HARNESS_IMPLEMENTATION,
        ),
        _neat_spec(
            "var_elementwise",
            "variant: element-wise conflict correction",
            fixed=dict(elementwise=True),
            build=_harness_neat,
            implementation=HARNESS_IMPLEMENTATION,
        ),
        _neat_spec(
            "var_clipped_nge",
            "variant: NGE clipped to the gradient's support (proposed SPEC fix)",
            fixed=dict(clipped=True),
            build=_harness_neat,
            implementation=HARNESS_IMPLEMENTATION,
        ),
    ]
}

BASELINES = ["adamw", "nadamw", "lamb", "lion", "sgdm"]
ABLATIONS = ["neat_nge_only", "neat_nsa_only", "neat_mu0"]
VARIANTS = ["neat_mu0", "neat_nge_only", "var_smooth_nsa", "var_elementwise"]  # benchmarks/preregistration.md
CORE = ["adamw", "neat", "nadamw", "lamb", *ABLATIONS, "neat_search"]  # priority order of a workload's runs
EXTRA = ["lion", "sgdm"]  # where the budget allows
ALL = [*BASELINES, "neat", "neat_search", *ABLATIONS, "var_smooth_nsa", "var_elementwise"]
