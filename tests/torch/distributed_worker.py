"""One process of the 2-process gloo runs in test_distributed.py (DDP, FSDP2)."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

from neat.torch import NGAdam
from tests.torch.models import HP, batch, mlp

STEPS = 5


def single_process_run():
    """The reference: the whole global batch in one process."""
    model = mlp(dtype=torch.float64)
    optimizer = NGAdam(model, **HP)
    x, y = batch(n=16, dtype=torch.float64)
    for _ in range(STEPS):
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        optimizer.step()
    return [p.detach().clone() for p in model.parameters()]


def worker(rank: int, world: int, port: int, mode: str, result_path: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        model = mlp(dtype=torch.float64)
        if mode == "ddp":
            wrapped = torch.nn.parallel.DistributedDataParallel(model)
        else:
            from torch.distributed.device_mesh import init_device_mesh
            from torch.distributed.fsdp import fully_shard

            mesh = init_device_mesh("cpu", (world,))
            for layer in model:
                if isinstance(layer, torch.nn.Linear):
                    fully_shard(layer, mesh=mesh)
            wrapped = fully_shard(model, mesh=mesh)
        optimizer = NGAdam(model, **HP)
        x, y = batch(n=16, dtype=torch.float64)
        local = slice(rank * 16 // world, (rank + 1) * 16 // world)
        for _ in range(STEPS):
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(wrapped(x[local]), y[local]).backward()
            optimizer.step()
        params = [p.full_tensor() if hasattr(p, "full_tensor") else p for p in model.parameters()]
        sharded = any(hasattr(p, "placements") for p in model.parameters())
        if rank == 0:
            torch.save({"params": [p.detach().clone() for p in params], "sharded": sharded,
                        "log_step": optimizer.diagnostics()["step_scale"].clone()}, result_path)
    finally:
        dist.destroy_process_group()
