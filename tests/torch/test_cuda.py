"""CUDA tensors: the foreach and default kernels on the GPU give the CPU generic numbers (skipped
without a GPU)."""

from __future__ import annotations

import pytest
import torch

from neat.torch import NGAdam
from tests.torch.models import HP, assert_close_lists, batch, mlp, train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.parametrize("flags", [{"foreach": True}, {}], ids=["foreach", "default"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cuda_kernels_match_cpu_generic(dtype, flags):
    x, y = batch()
    cpu_model, cuda_model = mlp(dtype=dtype), mlp(dtype=dtype).cuda()
    expected = train(cpu_model, NGAdam(cpu_model, foreach=False, **HP), 10, data=(x.to(dtype), y.to(dtype)))
    optimizer = NGAdam(cuda_model, **flags, **HP)
    actual = train(cuda_model, optimizer, 10, data=(x.to("cuda", dtype), y.to("cuda", dtype)))
    assert optimizer.state[next(cuda_model.parameters())]["exp_avg"].is_cuda
    tolerance = dict(rtol=1e-4, atol=1e-5) if dtype == torch.float32 else dict(rtol=2e-2, atol=2e-2)
    assert_close_lists([p.cpu() for p in actual], expected, **tolerance)
