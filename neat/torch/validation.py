"""``torch.optim``'s rules for ``lr``, ``eps``, ``weight_decay`` and ``betas``, in its words: a
Python or NumPy real or a one-element tensor, read on the host (construction and checks only)."""

from __future__ import annotations

import math
import numbers

import torch

#: torch.optim's words for the invalid values it names.
_TORCH_NAMES = {"lr": "learning rate", "eps": "epsilon value", "weight_decay": "weight_decay value"}


def host(value):
    """A one-element tensor's value as a Python number (construction only), anything else as it is."""
    return value.detach().reshape(()).item() if isinstance(value, torch.Tensor) and value.numel() == 1 else value


def _real_number(value, name: str, invalid: str, where: str) -> float:
    """``value`` (a Python or NumPy real, or a one-element tensor, read on the host) as a float."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"Tensor {name} must be 1-element{where}")
        return float(host(value))
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{invalid}: {value!r}{where} (expected a real number or a one-element tensor)")
    return float(value)


def checked_scalar(value, key: str, where: str = ""):
    """``lr``, ``eps`` or ``weight_decay`` as ``torch.optim`` takes it (a number or a one-element
    tensor); ``ValueError`` in ``torch.optim``'s words when negative or not finite."""
    invalid = f"Invalid {_TORCH_NAMES[key]}"
    number = _real_number(value, key, invalid, where)
    if not (math.isfinite(number) and number >= 0):
        raise ValueError(
            f"{invalid}: {number if isinstance(value, torch.Tensor) else value}{where} (must be finite and >= 0)"
        )
    return value


def checked_betas(betas, where: str = "") -> tuple:
    """``betas`` as ``torch.optim`` takes them: two numbers or one-element tensors in ``[0, 1)``,
    a one-element tensor made 0-d (``torch.optim``'s ``_to_scalar``)."""
    if isinstance(betas, torch.Tensor) or not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f"Invalid betas: {betas!r}{where} (expected a pair (beta1, beta2))")
    for index, beta in enumerate(betas):
        invalid = f"Invalid beta parameter at index {index}"
        number = _real_number(beta, f"betas[{index}]", invalid, where)
        if not 0.0 <= number < 1.0:
            raise ValueError(f"{invalid}: {number if isinstance(beta, torch.Tensor) else beta}{where}")
    return tuple(beta.reshape(()) if isinstance(beta, torch.Tensor) and beta.dim() else beta for beta in betas)
