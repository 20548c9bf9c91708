"""PyTorch front end: :class:`NGAdam`, a ``torch.optim.Optimizer`` running docs/spec.md through the core.

``NGAdam(model)`` is the one-line form: one player per module that owns
parameters, chained in registration order (``graph="fx"``: the model's traced
data flow); ``NGAdam(model.named_parameters())`` builds the same players from the
names. Each step is one call of :func:`neat.functional.step` in place, with the
namespace and kernel set resolved once at construction, as ``torch.optim`` chooses
its implementation: ``foreach`` / ``fused`` flags (see :func:`kernel_request`).

It follows ``torch.optim.AdamW``'s contract: the same defaults, validation and
``maximize``; every hyperparameter lives in ``defaults`` and ``param_groups``
(schedulers may change ``lr``, ``weight_decay``, ``betas`` and ``eps`` per group and between steps, as
floats or as tensors updated in place); complex parameters are optimized as their
real and imaginary parts (SPEC "Objects"). ``torch.compile(opt.step, fullgraph=True)``
traces the whole step: no plug-in is asked inside it, and it runs the generic
kernels on a traceable namespace (:data:`TRACEABLE_NAMESPACE`).

Parameters whose ``grad`` is ``None`` sit the step out (SPEC v2): the core plays
the sub-game of the players owning the other tensors, and each tensor counts its
own steps ``t_k`` for its bias corrections, as ``torch.optim.AdamW`` does.

One module per job: :mod:`~neat.torch.optimizer` (the class and its constructor),
:mod:`~neat.torch.validation` (``torch.optim``'s rules for the values),
:mod:`~neat.torch.groups` (building and checking param groups),
:mod:`~neat.torch.hyperparameters` (a step's values from the groups),
:mod:`~neat.torch.kernel_flags` (``foreach`` / ``fused``), :mod:`~neat.torch.step`,
:mod:`~neat.torch.state_dict`, :mod:`~neat.torch.traceable` (the compiled path),
:mod:`~neat.torch.distributed` (DTensor / FSDP2) and :mod:`~neat.torch.tensors`.
"""

# `X as X`: names importable from neat.torch, as before the split, though not in __all__.
from neat.torch.distributed import ShardReducedKernels as ShardReducedKernels
from neat.torch.groups import GAME_KEYS as GAME_KEYS
from neat.torch.kernel_flags import FUSED_KERNELS as FUSED_KERNELS
from neat.torch.kernel_flags import kernel_request
from neat.torch.optimizer import TORCH_DEFAULTS, NGAdam
from neat.torch.traceable import TRACEABLE_NAMESPACE

__all__ = ["NGAdam", "kernel_request", "TORCH_DEFAULTS", "TRACEABLE_NAMESPACE"]
