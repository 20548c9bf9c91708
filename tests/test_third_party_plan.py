"""A third-party kernel set, registered through the plug-in hook, is the plan of every front end:
the in-place NumPy optimizer, torch's and optax's take the same plan object and run its passes."""

from __future__ import annotations

import importlib.util
import types

import numpy as np
import pytest

import neat
from neat import kernel_selection
from neat.hookspecs import hookimpl
from neat.kernels import GENERIC
from neat.plugins import plugin_manager


class RecordingKernels:
    """GENERIC's passes, recording the array type of every call."""

    name = "recording"

    def __init__(self):
        self.calls: list[tuple[str, str]] = []

    def statistics(self, xp, grads, *args, **kwargs):
        self.calls.append(("statistics", type(grads[0]).__module__.split(".")[0].removesuffix("lib")))
        return GENERIC.statistics(xp, grads, *args, **kwargs)

    def update(self, xp, params, *args, **kwargs):
        self.calls.append(("update", type(params[0]).__module__.split(".")[0].removesuffix("lib")))
        return GENERIC.update(xp, params, *args, **kwargs)


@pytest.fixture
def recording():
    """Register a plug-in whose kernel set outranks every built-in one for any arrays; unregister after."""
    kernels = RecordingKernels()
    plugin = types.SimpleNamespace(
        neat_step_kernels=hookimpl(
            lambda: kernel_selection.KernelSet("recording", kernels, lambda xp, params: None, priority=1000)
        )
    )
    manager = plugin_manager()
    manager.register(plugin, name="recording-test")
    kernel_selection.registered.cache_clear()
    kernel_selection._DEFAULTS.clear()
    yield kernels, kernel_selection.registered()["recording"].plan
    manager.unregister(name="recording-test")
    kernel_selection.registered.cache_clear()
    kernel_selection._DEFAULTS.clear()


def test_numpy_torch_and_optax_use_the_third_party_plan(recording):
    kernels, plan = recording
    assert plan.kernels is kernels and "recording" in repr(plan)

    params = [np.ones((3, 2)), np.ones(2)]
    opt = neat.NGAdam(params, players=[[0, 1]])
    assert opt.kernel_plan is plan and repr(plan) in repr(opt)
    opt.step([np.ones((3, 2)), np.ones(2)])
    assert kernels.calls == [("statistics", "numpy"), ("update", "numpy")]

    if importlib.util.find_spec("torch") is not None:
        import torch

        import neat.torch as neat_torch

        weights = [torch.nn.Parameter(torch.ones(3, 2)), torch.nn.Parameter(torch.ones(2))]
        torch_opt = neat_torch.NGAdam(weights, players=[[0, 1]])
        assert torch_opt.kernel_plan is plan and repr(plan) in repr(torch_opt)
        for w in weights:
            w.grad = torch.ones_like(w)
        torch_opt.step()
        assert kernels.calls[2:] == [("statistics", "torch"), ("update", "torch")]

    if importlib.util.find_spec("optax") is not None:
        import jax.numpy as jnp

        import neat.optax as neat_optax

        tree = {"w": jnp.ones((3, 2)), "b": jnp.ones(2)}
        transformation = neat_optax.ng_adam(1e-3)
        transformation.update(tree, transformation.init(tree), tree)
        assert transformation.kernel_plan(tree) is plan and repr(plan) in repr(transformation)
        assert kernels.calls[-2:] == [("statistics", "jax"), ("update", "jax")]
