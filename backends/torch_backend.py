"""PyTorch backend: ``torch.Tensor`` uses ``array_api_compat.torch``; the step's two passes
run as ``torch._foreach_*`` kernels over all tensors at once (:class:`ForeachKernels`)."""

from __future__ import annotations

import functools
import sys

from neat.hookspecs import hookimpl
from neat.kernels import Statistics
from neat.plugins import BackendInfo, namespace_if_instance


@hookimpl
def neat_array_namespace(array):
    return namespace_if_instance(array, "torch", "Tensor", "array_api_compat.torch")


@hookimpl
def neat_step_kernels():
    from neat.kernel_selection import KernelSet

    return KernelSet("foreach", ForeachKernels(), _foreach_unsupported, priority=10)


def _foreach_unsupported(xp, params):
    torch = sys.modules.get("torch")
    if torch is None or not isinstance(params[0], torch.Tensor):
        return "the foreach kernels run torch tensors only"
    return None


class ForeachKernels:
    """:class:`neat.kernels.StepKernels` built from ``torch._foreach_*`` ops (SPEC "Cost").

    Every op runs over all tensors at once; the per-tensor scalars of
    :class:`~neat.kernels.TensorScalars` stay on the device as 0-d tensors, so nothing
    is read on the host. ``⟨g,u⟩`` is one ``vdot`` per tensor (torch has no signed
    foreach sum). The direction ``u`` of the statistics pass travels to the update
    pass in :class:`~neat.kernels.Statistics` (the update pass then reuses its buffers:
    a ``Statistics`` serves one update); the kernels keep no state. Temporaries at the
    peak of a step: two tensor-sized buffers per tensor (``u`` and one more).
    """

    name = "foreach"

    def statistics(self, xp, grads, exp_avg, exp_avg_sq, scalars, stats_dtype):
        """SPEC steps 2, 3: ``u = m · scale / (√v + shift)`` (0 where the denominator is 0) of each
        tensor's previous step, and the rows ``⟨g,g⟩, ⟨g,u⟩, ⟨u,u⟩`` summed in ``stats_dtype``."""
        import torch

        grads = _in_dtypes_of(grads, exp_avg)
        direction = _scaled_reciprocal(exp_avg_sq, scalars.prev_shift, scalars.prev_scale)
        torch._foreach_mul_(direction, exp_avg)
        grad_sq = torch._foreach_powsum(grads, 2, dtype=stats_dtype)
        dir_sq = torch._foreach_powsum(direction, 2, dtype=stats_dtype)
        cross = [torch.vdot(_flat(g, stats_dtype), _flat(u, stats_dtype)) for g, u in zip(grads, direction)]
        sums = torch.stack([*grad_sq, *cross, *dir_sq]).reshape(3, len(grads)).T
        return Statistics(sums, direction)

    def update(self, xp, params, grads, exp_avg, exp_avg_sq, statistics, scalars, finite, inplace=False):
        """SPEC steps 6, 8, 9, written into ``θ, m, v`` (copies of them unless ``inplace``).

        A skipped step (``finite`` false) is an exact no-op without a host read: the gradients
        are replaced by 0 and the scalars by neutral ones (β2 → 1, 1 − β1 → 0, γκC/U → 0,
        1 − ηω → 1, step → 0). The moments' coefficients may be one for all tensors or one each
        (:class:`~neat.kernels.TensorScalars`); ``1 − β2`` as a float (the usual case) is the
        factor of one ``addcmul``, as an array it costs a temporary ``(1 − β2) g``."""
        import torch

        if not inplace:
            params, exp_avg, exp_avg_sq = ([t.clone() for t in ts] for ts in (params, exp_avg, exp_avg_sq))
        keep2 = _taken_or(finite, scalars.beta2, 1.0, scalars.step)
        weight1 = _taken_or(finite, scalars.weight1, 0.0, scalars.step)
        nge, decay, step = (
            list(torch.where(finite, value, neutral).unbind())
            for value, neutral in ((-scalars.nge, 0.0), (scalars.decay, 1.0), (scalars.step, 0.0))
        )
        direction = statistics.direction
        if direction is None:
            direction = _scaled_reciprocal(exp_avg_sq, scalars.prev_shift, scalars.prev_scale)
            torch._foreach_mul_(direction, exp_avg)
        grads = [torch.where(finite, g, 0.0) for g in _in_dtypes_of(grads, exp_avg)]

        # Step 8: v ← β2 v + (1 − β2) g²;  m ← m + (1 − β1)(ĝ − m), with ĝ = g − (γκC/U) u (step 6).
        torch._foreach_mul_(exp_avg_sq, _per_dtype(keep2, exp_avg_sq))
        if isinstance(scalars.weight2, float):
            torch._foreach_addcmul_(exp_avg_sq, grads, grads, value=scalars.weight2)
        else:
            torch._foreach_addcmul_(exp_avg_sq, grads, torch._foreach_mul(grads, _per_dtype(scalars.weight2, grads)))
        torch._foreach_addcmul_(grads, direction, nge)
        torch._foreach_lerp_(exp_avg, grads, _per_dtype(weight1, exp_avg))
        del grads

        # Step 9: θ ← θ (1 − ηω) − m · step / (√v + shift), with step = η λ scale; u's buffers,
        # free now, hold the denominator (one temporary less at the peak).
        work = _in_dtypes_of(params, exp_avg)
        torch._foreach_mul_(work, decay)
        ratio = _scaled_reciprocal(exp_avg_sq, scalars.shift, step, denominator=direction)
        torch._foreach_addcmul_(work, exp_avg, ratio, value=-1.0)
        _copy_back(params, work)
        return list(params), list(exp_avg), list(exp_avg_sq)


def _scaled_reciprocal(exp_avg_sq, shift, scale, denominator=None):
    """``scale / (√v + shift)`` per element, 0 where ``√v + shift = 0`` (see :mod:`neat.kernels`);
    ``shift`` and ``scale``: ``(K,)`` tensors or lists of 0-d tensors. ``denominator``: buffers
    (shaped like ``v``, values overwritten) for ``√v + shift``, or ``None`` to allocate them."""
    import torch

    if denominator is None:
        denominator = torch._foreach_sqrt(exp_avg_sq)
    else:
        torch._foreach_copy_(denominator, exp_avg_sq)
        torch._foreach_sqrt_(denominator)
    torch._foreach_add_(denominator, _entries(shift))
    ratio = torch._foreach_sign(denominator)  # 1 where the denominator is positive, 0 where it is 0
    torch._foreach_mul_(ratio, _entries(scale))
    torch._foreach_clamp_min_(denominator, [_SMALLEST[d.dtype] for d in denominator])  # exact where > 0
    torch._foreach_div_(ratio, denominator)
    return ratio


class _SmallestPositive(dict):
    """The smallest positive (subnormal) value of each floating dtype, as a Python float."""

    def __missing__(self, dtype):
        import torch

        info = torch.finfo(dtype)
        self[dtype] = info.tiny * info.eps
        return self[dtype]


_SMALLEST = _SmallestPositive()


def _entries(values):
    """A ``(K,)`` tensor as a list of 0-d tensors (a list stays as it is)."""
    return values if isinstance(values, list) else list(values.unbind())


def _taken_or(finite, value, neutral: float, like):
    """``value`` (a float, a 0-d or a ``(K,)`` tensor) where the step is taken, ``neutral`` where it
    is skipped, as a tensor on ``like``'s device (a float in ``like``'s dtype)."""
    import torch

    if not isinstance(value, torch.Tensor):
        value = torch.full((), value, dtype=like.dtype, device=like.device)
    return torch.where(finite, value, neutral)


def _per_dtype(value, tensors):
    """``value`` (0-d: one for all tensors, or ``(K,)``: one each) as a 0-d tensor per tensor, in
    that tensor's dtype (one cast per distinct dtype)."""
    cast = {dtype: value.to(dtype) for dtype in {t.dtype for t in tensors}}
    if value.ndim == 0:
        return [cast[t.dtype] for t in tensors]
    entries = {dtype: column.unbind() for dtype, column in cast.items()}
    return [entries[t.dtype][k] for k, t in enumerate(tensors)]


def _in_dtypes_of(tensors, like):
    """``tensors`` cast to the dtypes of ``like`` (no copy where they already match)."""
    return [t if t.dtype == other.dtype else t.to(other.dtype) for t, other in zip(tensors, like)]


def _flat(tensor, dtype):
    """``tensor`` as a 1-d view, cast to ``dtype`` where it has another."""
    flat = tensor.reshape(-1)
    return flat if flat.dtype == dtype else flat.to(dtype)


def _copy_back(params, work):
    """Write low-precision parameters' float32 results back (the others were updated in place)."""
    import torch

    pairs = [(p, w) for p, w in zip(params, work) if p is not w]
    if pairs:
        torch._foreach_copy_([p for p, _ in pairs], [w for _, w in pairs])


def _from_numpy(array, dtype_name, device="cpu"):
    import torch

    return torch.tensor(array, dtype=getattr(torch, dtype_name), device=device)


def _cuda_skip_reason():
    import torch

    return None if torch.cuda.is_available() else "no CUDA device (torch.cuda.is_available() is False)"


def _to_numpy(tensor):
    import torch

    return tensor.detach().to(device="cpu", dtype=torch.float64).numpy()


@hookimpl
def neat_backend_info():
    dtypes = ("float64", "float32", "bfloat16")
    return [
        BackendInfo(name="torch", requires=("torch",), dtypes=dtypes, from_numpy=_from_numpy, to_numpy=_to_numpy),
        BackendInfo(
            name="torch-cuda",
            requires=("torch",),
            dtypes=dtypes,
            from_numpy=functools.partial(_from_numpy, device="cuda"),
            to_numpy=_to_numpy,
            skip_reason=_cuda_skip_reason,
        ),
    ]
