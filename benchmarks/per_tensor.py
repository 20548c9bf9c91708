"""What the benchmark's own reference optimizers (:mod:`benchmarks.lamb`, :mod:`benchmarks.lion`,
:mod:`benchmarks.nadamw`) share: a ``torch.optim.Optimizer`` written per tensor, for clarity
rather than speed, and Adam's moments."""

from __future__ import annotations

import torch


class PerTensorOptimizer(torch.optim.Optimizer):
    """Checks its hyperparameters (``betas`` in ``[0, 1)``, every other value ``≥ 0``) and steps each
    parameter that has a gradient through :meth:`update`."""

    def __init__(self, params, **defaults):
        valid = all(
            all(0 <= beta < 1 for beta in value) if name == "betas" else value >= 0 for name, value in defaults.items()
        )
        if not valid:
            settings = ", ".join(f"{name}={value}" for name, value in defaults.items())
            raise ValueError(f"Invalid {type(self).__name__} hyperparameters: {settings}")
        super().__init__(params, defaults)

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: dict, group: dict) -> None:
        """One step of ``param`` (in place) given its gradient, its state and its group's settings."""
        raise NotImplementedError

    @torch.no_grad()
    def step(self, closure=None):
        loss = None if closure is None else torch.enable_grad()(closure)()
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is not None:
                    self.update(param, param.grad, self.state[param], group)
        return loss


def adam_moments(param: torch.Tensor, grad: torch.Tensor, state: dict, betas) -> tuple:
    """``t ← t + 1``, ``m ← β1 m + (1−β1) g``, ``v ← β2 v + (1−β2) g²`` in ``state`` (zeros at first):
    returns ``t, m, v``."""
    beta1, beta2 = betas
    if not state:
        state.update(step=0, exp_avg=torch.zeros_like(param), exp_avg_sq=torch.zeros_like(param))
    state["step"] += 1
    m, v = state["exp_avg"], state["exp_avg_sq"]
    m.lerp_(grad, 1 - beta1)
    v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    return state["step"], m, v
