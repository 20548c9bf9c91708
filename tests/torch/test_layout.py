"""Module → players and graph (registration order, chain, torch.fx data flow); plug-in hooks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neat.adapters.torch_adapter import module_layout
from neat.plugins import param_layout, plugin_manager
from neat.torch import NGAdam


class Residual(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.inp = torch.nn.Linear(4, 8)
        self.a = torch.nn.Linear(8, 8)
        self.b = torch.nn.Linear(8, 8)
        self.scale = torch.nn.Parameter(torch.ones(8))
        self.out = torch.nn.Linear(8, 2)

    def forward(self, x):
        h = self.inp(x) * self.scale
        return self.out(h + self.b(torch.relu(self.a(h))))  # residual: h skips a and b


class DataDependent(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(3, 3)

    def forward(self, x):
        return self.lin(x) if x.sum() > 0 else -self.lin(x)


class Tied(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(10, 4)
        self.mid = torch.nn.Linear(4, 4)
        self.head = torch.nn.Linear(4, 10, bias=False)
        self.head.weight = self.embed.weight

    def forward(self, tokens):
        return self.head(self.mid(self.embed(tokens)))


def test_one_player_per_module_in_registration_order():
    layout = module_layout(Residual())
    assert layout.player_names == ["", "inp", "a", "b", "out"]
    assert layout.names[:2] == ["scale", "inp.weight"]
    assert layout.players == [[0], [1, 2], [3, 4], [5, 6], [7, 8]]
    assert layout.graph is None


def test_shared_parameter_belongs_to_its_first_module():
    layout = module_layout(Tied())
    assert layout.player_names == ["embed", "mid"]
    assert len(layout.tensors) == 3


def test_fx_graph_follows_the_data_flow_with_residual_edges():
    layout = module_layout(Residual(), graph="fx")
    names = layout.player_names
    edges = {(names[i], names[j]) for i, j, _ in layout.graph}
    assert edges == {("", "inp"), ("", "a"), ("a", "b"), ("b", "out"), ("", "out")}
    optimizer = NGAdam(Residual(), graph="fx")
    assert optimizer.graph.weights[0, 4] == 1.0  # the residual edge, absent from the chain
    assert optimizer.graph.weights[1, 2] == 0.0  # inp reaches a only through the scale


def test_untraceable_model_gets_a_clear_error():
    with pytest.raises(TypeError, match="torch.fx cannot trace DataDependent"):
        NGAdam(DataDependent(), graph="fx")


def test_plugin_hooks():
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))
    assert param_layout(model).players == [[0, 1], [2, 3]]
    from neat.backends import torch_backend

    torch_info, cuda_info = torch_backend.neat_backend_info()
    assert torch_info.name == "torch" and plugin_manager().is_registered(torch_backend)
    assert cuda_info.name == "torch-cuda"
    assert (cuda_info.skip_reason() is None) == torch.cuda.is_available()
    array = np.arange(6.0).reshape(2, 3)
    for dtype in torch_info.dtypes:
        tensor = torch_info.from_numpy(array, dtype)
        assert tensor.dtype == getattr(torch, dtype)
        np.testing.assert_array_equal(torch_info.to_numpy(tensor), array)


@pytest.mark.parametrize("flags", [{}, {"foreach": True}, {"foreach": False}], ids=["default", "foreach", "generic"])
def test_adapter_run_matches_golden_vectors(flags):
    from neat.adapters import torch_adapter
    from neat.conformance.golden import load_all

    info = torch_adapter.neat_adapter_info()
    assert info.name == "torch.NGAdam" and info.run is torch_adapter.run_golden
    assert plugin_manager().is_registered(torch_adapter)
    for problem in load_all():
        history = torch_adapter.run_golden(problem, "float64", **flags)
        assert len(history) == problem.num_steps
        for got, expected in zip(history, problem.expected_params):
            for a, e in zip(got, expected):
                np.testing.assert_allclose(a, e, rtol=1e-10, atol=1e-12, err_msg=problem.name)
        last = torch_adapter.run_golden(problem, "float32", **flags)[-1]
        for a, e in zip(last, problem.expected_params[-1]):
            np.testing.assert_allclose(a, e, rtol=1e-3, atol=1e-4, err_msg=problem.name)
