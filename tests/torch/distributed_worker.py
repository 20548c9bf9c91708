"""One process of the 2-process gloo runs in test_distributed.py (DDP, FSDP2)."""

from __future__ import annotations

import gc
import os

import torch
import torch.distributed as dist

from neat.torch import NGAdam
from tests.torch.models import HP, batch, mlp

STEPS = 5


def drop_some_grads(model, step: int) -> None:
    """Some tensors sit some steps out (SPEC v2 sub-game): a whole player, then one tensor."""
    if step == 2:
        model[4].weight.grad = model[4].bias.grad = None
    if step == 3:
        model[2].weight.grad = None


def single_process_run():
    """The reference: the whole global batch in one process (generic kernels)."""
    model = mlp(dtype=torch.float64)
    optimizer = NGAdam(model, foreach=False, **HP)
    x, y = batch(n=16, dtype=torch.float64)
    for step in range(STEPS):
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        drop_some_grads(model, step)
        optimizer.step()
    return [p.detach().clone() for p in model.parameters()]


def worker(rank: int, world: int, port: int, mode: str, result_path: str, flags: dict) -> None:
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
        optimizer = NGAdam(model, **flags, **HP)
        x, y = batch(n=16, dtype=torch.float64)
        local = slice(rank * 16 // world, (rank + 1) * 16 // world)
        for step in range(STEPS):
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(wrapped(x[local]), y[local]).backward()
            drop_some_grads(model, step)
            optimizer.step()
        params = [p.full_tensor() if hasattr(p, "full_tensor") else p for p in model.parameters()]
        sharded = any(hasattr(p, "placements") for p in model.parameters())
        if rank == 0:
            torch.save(
                {
                    "params": [p.detach().clone() for p in params],
                    "sharded": sharded,
                    "log_step": optimizer.diagnostics()["step_scale"].clone(),
                },
                result_path,
            )
        # DDP's Reducer holds the process group: collected at interpreter exit it destroys the group
        # with the GIL held while gloo's run loop waits for the GIL (a hang seen in CI). Drop it
        # here, so that destroy_process_group() shuts the group down.
        del wrapped, optimizer, model, params
        gc.collect()
    finally:
        dist.destroy_process_group()
