"""neat.NGAdam on PyTorch tensors (leaf tensors that require grad included): in place, same numbers."""

import numpy as np
import pytest

from neat.conformance.golden import load_all
from neat.inplace import NGAdam

torch = pytest.importorskip("torch", reason="PyTorch is an optional framework")
torch.set_num_threads(1)
PROBLEM = {problem.name: problem for problem in load_all()}["chain3"]


def test_torch_leaf_tensors_updated_in_place_like_numpy():
    params = [torch.tensor(p, dtype=torch.float32, requires_grad=True) for p in PROBLEM.params]
    opt = NGAdam(params, players=PROBLEM.players, graph=PROBLEM.weights, **PROBLEM.hyperparameters)
    state = opt.state
    tracked = [*params, *state.game, *state.exp_avg, *state.exp_avg_sq]
    before = [(id(t), t.data_ptr()) for t in tracked]

    reference = [np.array(p, dtype=np.float32) for p in PROBLEM.params]
    numpy_opt = NGAdam(reference, players=PROBLEM.players, graph=PROBLEM.weights, **PROBLEM.hyperparameters)
    for step in range(10):
        grads = [np.asarray(g, dtype=np.float32) for g in PROBLEM.grads[step]]
        opt.step([torch.from_numpy(g) for g in grads])
        numpy_opt.step(grads)

    assert [(id(t), t.data_ptr()) for t in tracked] == before
    assert all(p.requires_grad and p.is_leaf for p in params)
    for mine, theirs in zip(params, reference):
        np.testing.assert_allclose(mine.detach().numpy(), theirs, rtol=2e-6, atol=1e-7)
    assert isinstance(opt.diagnostics()["alignment"], torch.Tensor)
    state_dict = opt.state_dict()
    assert isinstance(state_dict["exp_avg.0"], np.ndarray) and state_dict["count"] == 10
    numpy_opt.load_state_dict(state_dict)  # a torch run's state loads into a NumPy optimizer
    np.testing.assert_array_equal(numpy_opt.state.exp_avg[0], state_dict["exp_avg.0"])
