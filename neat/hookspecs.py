"""Hook specifications of NEAT's plug-ins (pluggy project name ``"neat"``).

Backends tell NEAT which array namespace an array belongs to and may offer fused
kernels for the two array passes of a step; adapters map a framework object to
tensors, players and a player graph. The built-in plug-ins are registered by
NEAT itself (a source checkout needs no installed metadata); third-party ones
are found through the entry-point group ``neat``.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("neat")
hookimpl = pluggy.HookimplMarker("neat")


@hookspec(firstresult=True)
def neat_array_namespace(array):
    """Return the array-API namespace of ``array`` if this backend owns its type, else ``None``.

    Must not import a framework that is not already imported (check ``sys.modules``).
    """


@hookspec
def neat_step_kernels():
    """Return a :class:`neat.kernel_selection.KernelSet` (or a list of them): named kernels for the
    two array passes of a step, with the arrays they can run. Must not import a framework."""


@hookspec
def neat_backend_info():
    """Return a :class:`neat.plugins.BackendInfo` (or a list of them, e.g. one per device) for the conformance suite."""


@hookspec(firstresult=True)
def neat_param_layout(obj, graph):
    """Map a framework object (module, model, pytree…) to a :class:`neat.plugins.ParamLayout`, or ``None``.

    ``graph``: how the front end asks for the player graph: ``None`` (the adapter's default) or a
    name the adapter knows (torch: ``"fx"``, the traced data flow); an adapter that does not know
    a requested name raises ``ValueError`` naming it. Front ends reach adapters only through this hook."""


@hookspec
def neat_adapter_info():
    """Return a :class:`neat.plugins.AdapterInfo` (or a list of them) for the conformance suite."""
