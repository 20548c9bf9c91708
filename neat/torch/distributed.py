"""DTensor-sharded parameters (FSDP2): their local shards, their one device mesh, and kernels
whose per-tensor sums are reduced over the shards (so every rank sees the same finiteness and
skips alike)."""

from __future__ import annotations

import torch

from neat.kernels import Statistics


class ShardReducedKernels:
    """Kernels for DTensor-sharded parameters (FSDP2): the inner kernels run on the local
    shards and the per-tensor sums are summed over the shards (SPEC step 3 sums the whole
    tensor); a tensor replicated along a mesh dimension counts once (its coordinate-0 copy).
    A non-finite local sum stays non-finite after the reduction, so every rank skips alike."""

    def __init__(self, inner, mesh, placements, stats_dtype):
        self.inner, self.mesh = inner, mesh
        self.name = f"{inner.name} over shards"
        self.game_xp = getattr(inner, "game_xp", None)
        device = torch.device(mesh.device_type)
        self._counted = [
            torch.tensor(
                [
                    1.0 if placement[dim].is_shard() or mesh.get_local_rank(dim) == 0 else 0.0
                    for placement in placements
                ],
                dtype=stats_dtype,
                device=device,
            )[:, None]
            for dim in range(mesh.ndim)
        ]

    def statistics(self, xp, grads, exp_avg, exp_avg_sq, scalars, stats_dtype):
        import torch.distributed as dist

        statistics = self.inner.statistics(xp, grads, exp_avg, exp_avg_sq, scalars, stats_dtype)
        sums = torch.as_tensor(statistics.sums)
        for dim, counted in enumerate(self._counted):
            sums = (sums * counted).contiguous()
            dist.all_reduce(sums, group=self.mesh.get_group(dim))
        if not isinstance(statistics.sums, torch.Tensor):
            return Statistics(sums.numpy(), statistics.direction)
        return Statistics(sums, statistics.direction)

    def update(self, *args, **kwargs):
        return self.inner.update(*args, **kwargs)


def shard_kernels(cache: dict, inner, mesh, params, grads, stats_dtype) -> ShardReducedKernels:
    """The kernels of the active tensors' sub-game (those with a gradient), reducing statistics
    over the shards; one per pattern of active tensors, kept in ``cache``."""
    active = tuple(k for k, g in enumerate(grads) if g is not None)
    kernels = cache.get(active)
    if kernels is None:
        kernels = cache[active] = ShardReducedKernels(
            inner, mesh, [_placements(params[k], mesh) for k in active], stats_dtype
        )
    return kernels


def local_shard(tensor):
    """The local shard of a DTensor (sharing its storage), or the tensor itself."""
    return tensor.to_local() if hasattr(tensor, "device_mesh") and hasattr(tensor, "to_local") else tensor


def device_mesh(params):
    """The one device mesh of the DTensor parameters, or ``None`` when there are none."""
    meshes = {id(p.device_mesh): p.device_mesh for p in params if hasattr(p, "device_mesh")}
    if len(meshes) > 1:
        raise ValueError("NGAdam needs all DTensor parameters on one device mesh")
    return next(iter(meshes.values()), None)


def _placements(param, mesh):
    """A placement per mesh dimension; a plain tensor is replicated."""
    if hasattr(param, "placements"):
        return tuple(param.placements)
    from torch.distributed.tensor import Replicate

    return (Replicate(),) * mesh.ndim
