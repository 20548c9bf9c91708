"""A step's hyperparameters, read from the param groups at every step (schedulers change them):
``betas`` and ``eps`` one for all groups, ``lr`` and ``weight_decay`` one per group."""

from __future__ import annotations

import numpy as np
import torch

from neat.torch.traceable import symbolic

#: Hyperparameters the core's step takes once for all tensors: every group must hold the same
#: value at a step (schedulers change them alike in every group).
PER_STEP_KEYS = ("betas", "eps")


class GroupValues(torch.optim.Optimizer):
    """The part of :class:`neat.torch.NGAdam` that reads a step's values from its groups."""

    _device: torch.device
    _stats_dtype: torch.dtype
    _group_of: torch.Tensor  # the group index of every tensor
    _hyperparameters: dict[str, tuple]  # per key: the groups' floats and their (K,) tensor

    def _shared_values(self) -> tuple:
        """``betas`` and ``eps`` of this step, the same in every group (:data:`PER_STEP_KEYS`):
        floats, or 0-d tensors read on the device."""
        first = self.param_groups[0]
        for index, group in enumerate(self.param_groups[1:], start=1):
            for key in PER_STEP_KEYS:
                if not _same_value(group[key], first[key]):
                    raise ValueError(
                        f"param group {index} has {key}={group[key]!r} but group 0 has {first[key]!r}: "
                        f"NGAdam takes one {key} for all groups (each may change between steps)"
                    )
        beta1, beta2 = first["betas"]
        return (_step_scalar(beta1), _step_scalar(beta2)), _step_scalar(first["eps"])

    def _hyperparameter(self, key: str):
        """A param-group value for the step: one float for all tensors, or a ``(K,)`` tensor on
        the device. Built again only when a group's float changed; tensor values (which
        schedulers may update in place) are read on the device at every step."""
        values = tuple(_step_scalar(group[key]) for group in self.param_groups)
        if torch.compiler.is_compiling():
            values = tuple(symbolic(value, self._stats_dtype, self._device) for value in values)
        if any(isinstance(value, torch.Tensor) for value in values):
            return self._tensor_hyperparameter(values)
        if all(value == values[0] for value in values[1:]):
            return values[0]
        cached = self._hyperparameters.get(key)
        if cached is None or cached[0] != values:
            per_tensor = torch.tensor(values, dtype=self._stats_dtype, device=self._device)[self._group_of]
            cached = self._hyperparameters[key] = (values, per_tensor)
        return cached[1]

    def _tensor_hyperparameter(self, values):
        """One group: its tensor as a 0-d value (a CPU one stays a host scalar, no copy to the
        device). Several: a ``(K,)`` tensor on the device."""
        if len(values) == 1:
            return values[0].to(dtype=self._stats_dtype)

        def on_device(value):
            if isinstance(value, torch.Tensor):
                return value.to(device=self._device, dtype=self._stats_dtype)
            return torch.full((), value, dtype=self._stats_dtype, device=self._device)

        return torch.stack([on_device(value) for value in values])[self._group_of]


def _same_value(value, other) -> bool:
    """Whether two groups hold the same step value: equal numbers, or the same tensor (tensors
    are compared by identity, never read)."""
    if isinstance(value, tuple) and isinstance(other, tuple):
        return len(value) == len(other) and all(_same_value(a, b) for a, b in zip(value, other))
    if value is other:
        return True
    return not isinstance(value, torch.Tensor) and not isinstance(other, torch.Tensor) and value == other


def _step_scalar(value):
    """A group's value for the step: a tensor as 0-d (read on the device), a NumPy scalar as a
    Python number (a host value), a Python number as it is."""
    if isinstance(value, torch.Tensor):
        return value.reshape(())
    return float(value) if isinstance(value, np.generic) else value
