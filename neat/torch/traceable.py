"""The compiled path: what a step traced by ``torch.compile`` runs on.

Inside the trace no plug-in is asked: the step runs the generic kernels on
:data:`TRACEABLE_NAMESPACE`, and takes its Python-number hyperparameters as
:func:`symbolic` tensors.
"""

from __future__ import annotations

import types

import torch

#: A module's own attributes, not copied into :data:`TRACEABLE_NAMESPACE`.
_MODULE_METADATA = frozenset(
    (
        "__name__",
        "__doc__",
        "__spec__",
        "__loader__",
        "__package__",
        "__file__",
        "__path__",
        "__cached__",
        "__builtins__",
    )
)


def _traceable_namespace():
    """``array_api_compat.torch`` with ``maximum`` / ``minimum`` that take a Python scalar in the
    tensor's dtype (the array-API rule) without ``torch.result_type``, which dynamo cannot
    trace; everything else is ``array_api_compat.torch``'s own."""
    import array_api_compat.torch as base

    namespace = types.ModuleType("neat.torch.traceable_namespace", _traceable_namespace.__doc__)
    namespace.__dict__.update({name: value for name, value in vars(base).items() if name not in _MODULE_METADATA})

    def scalar_free(function):
        def binary(x1, x2, /):
            if not isinstance(x1, torch.Tensor):
                x1 = torch.full((), x1, dtype=x2.dtype, device=x2.device)
            if not isinstance(x2, torch.Tensor):
                x2 = torch.full((), x2, dtype=x1.dtype, device=x1.device)
            return function(x1, x2)

        return binary

    namespace.__dict__.update(maximum=scalar_free(torch.maximum), minimum=scalar_free(torch.minimum))
    return namespace


#: The array namespace of a step traced by ``torch.compile`` (see :func:`_traceable_namespace`).
TRACEABLE_NAMESPACE = _traceable_namespace()


def symbolic(value, dtype, device):
    """Under ``torch.compile``: a Python number as a 0-d tensor in the statistics dtype, formed
    by a multiplication, the one use of a float that dynamo keeps symbolic: a scheduler's new
    value is then an input of the compiled step, not a recompilation (after dynamo's first,
    which makes a float that changed dynamic). A tensor stays as it is."""
    if isinstance(value, torch.Tensor):
        return value
    return torch.ones((), dtype=dtype, device=device) * value
