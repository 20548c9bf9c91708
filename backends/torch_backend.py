"""PyTorch backend: ``torch.Tensor`` uses ``array_api_compat.torch``; the step's two passes
run as ``torch._foreach_*`` kernels over all tensors at once (:class:`ForeachKernels`)."""

from __future__ import annotations

import functools
import sys

from neat.hookspecs import hookimpl
from neat.plugins import BackendInfo


@hookimpl
def neat_array_namespace(array):
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(array, torch.Tensor):
        import array_api_compat.torch

        return array_api_compat.torch
    return None


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

    Every op runs over all tensors at once; per-tensor scalars (``γκC/U``, ``ηλ``,
    ``1 − ηω``) stay on the device as 0-d tensors, so nothing is synced to the host.
    ``⟨g,u⟩`` uses one ``vdot`` per tensor (torch has no signed foreach sum).
    The direction ``u`` of the statistics pass is kept for the update pass of the
    same step, so use one instance per step. Temporaries during a step: ``u`` (its
    buffer later holds the denominator) and the zeroed-if-skipped gradients;
    nothing beyond ``m``, ``v`` stays at rest.
    """

    def __init__(self):
        self._direction = None  # (exp_avg list, u) from statistics(), consumed by update()

    def statistics(self, xp, grads, exp_avg, exp_avg_sq, previous, stats_dtype):
        """SPEC steps 0, 2, 3: rows ``⟨g,g⟩, ⟨g,u⟩, ⟨u,u⟩``; finite when every ``⟨g,g⟩`` is.

        (A gradient whose ``⟨g,g⟩`` overflows the statistics dtype counts as non-finite.)"""
        import torch

        grads = _in_dtypes_of(grads, exp_avg)
        direction = _adam_direction(exp_avg, exp_avg_sq, previous)
        self._direction = (exp_avg, direction)
        grad_sq = _stack(torch._foreach_powsum(grads, 2), stats_dtype)
        dir_sq = _stack(torch._foreach_powsum(direction, 2), stats_dtype)
        cross = _stack([torch.vdot(g.reshape(-1), u.reshape(-1)) for g, u in zip(grads, direction)], stats_dtype)
        return torch.stack([grad_sq, cross, dir_sq], dim=1), torch.isfinite(grad_sq).all()

    def update(self, xp, params, grads, exp_avg, exp_avg_sq, scalars, previous, current, betas, finite,
               inplace=False):
        """SPEC steps 6, 8, 9, written into ``θ, m, v``; a skipped step (``finite`` false) is an
        exact no-op: the gradients are zeroed and the per-tensor scalars made neutral."""
        import torch

        direction = self._take_direction(exp_avg, exp_avg_sq, previous)
        if not inplace:
            params, exp_avg, exp_avg_sq = (torch._foreach_clone(x) for x in (params, exp_avg, exp_avg_sq))
        beta1, beta2 = betas
        zero = torch.zeros_like(scalars.step)
        nge = torch.where(finite, scalars.nge, zero)
        decay = torch.where(finite, scalars.decay, torch.ones_like(scalars.step))
        step = torch.where(finite, scalars.step, zero)
        keep2 = torch.where(finite, torch.tensor(beta2, dtype=step.dtype, device=step.device), 1.0)
        weight1 = torch.where(finite, torch.tensor(1.0 - beta1, dtype=step.dtype, device=step.device), 0.0)
        grads = [torch.where(finite, g.to(m.dtype), 0.0) for g, m in zip(grads, exp_avg)]

        # Step 8: v <- b2 v + (1-b2) g^2;  m <- m + (1-b1) (g_hat - m) with g_hat = g - nge u (step 6).
        torch._foreach_mul_(exp_avg_sq, keep2)
        torch._foreach_addcmul_(exp_avg_sq, grads, grads, value=1.0 - beta2)
        torch._foreach_addcmul_(grads, direction, list((-nge).unbind()))
        torch._foreach_lerp_(exp_avg, grads, [weight1.to(m.dtype) for m in exp_avg])
        del grads

        # Step 9: theta <- theta (1 - lr wd) - (lr lambda / (1-b1^t)) m / (sqrt(v) / sqrt(1-b2^t) + eps),
        # the step size folded into the denominator: (sqrt(v) + eps sqrt(1-b2^t)) (1-b1^t) / (lr lambda sqrt(1-b2^t)).
        work = _in_dtypes_of(params, exp_avg)
        torch._foreach_mul_(work, list(decay.unbind()))
        root_second = torch.sqrt(current.second)
        denominator = direction  # u's buffer is free now: reused rather than allocating another
        torch._foreach_copy_(denominator, exp_avg_sq)
        torch._foreach_sqrt_(denominator)
        torch._foreach_add_(denominator, current.eps * root_second)
        torch._foreach_mul_(denominator, list((current.first / (step * root_second)).unbind()))
        torch._foreach_addcdiv_(work, exp_avg, denominator, value=-1.0)
        _copy_back(params, work)
        return list(params), list(exp_avg), list(exp_avg_sq)

    def _take_direction(self, exp_avg, exp_avg_sq, previous):
        cached, self._direction = self._direction, None
        if cached is not None and cached[0] is exp_avg:
            return cached[1]
        return _adam_direction(exp_avg, exp_avg_sq, previous)


def _adam_direction(exp_avg, exp_avg_sq, correction):
    """``u = (m / (1 − β1^t)) / (√(v / (1 − β2^t)) + ε)`` over all tensors (SPEC step 2), computed as
    ``(√(1 − β2^t) / (1 − β1^t)) · m / (√v + ε √(1 − β2^t))`` (AdamW's placement, fewer passes)."""
    import torch

    root_second = torch.sqrt(correction.second)
    direction = torch._foreach_sqrt(exp_avg_sq)  # the only buffer: m / (...) is formed in place
    torch._foreach_add_(direction, correction.eps * root_second)
    torch._foreach_reciprocal_(direction)
    torch._foreach_mul_(direction, exp_avg)
    torch._foreach_mul_(direction, root_second / correction.first)
    return direction


def _in_dtypes_of(tensors, like):
    """``tensors`` cast to the dtypes of ``like`` (no copy where they already match)."""
    return [t.to(other.dtype) for t, other in zip(tensors, like)]


def _copy_back(params, work):
    """Write low-precision parameters' float32 results back (the others were updated in place)."""
    import torch

    pairs = [(p, w) for p, w in zip(params, work) if p is not w]
    if pairs:
        torch._foreach_copy_([p for p, _ in pairs], [w for _, w in pairs])


def _stack(values, dtype):
    import torch

    return torch.stack([v.to(dtype) for v in values])


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
        BackendInfo(name="torch-cuda", requires=("torch",), dtypes=dtypes,
                    from_numpy=functools.partial(_from_numpy, device="cuda"), to_numpy=_to_numpy,
                    skip_reason=_cuda_skip_reason),
    ]
