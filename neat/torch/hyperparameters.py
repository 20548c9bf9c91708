"""A step's hyperparameters, read from the param groups at every step (schedulers change them):
``lr``, ``weight_decay``, ``betas`` and ``eps``, each one per group (SPEC v2.1)."""

from __future__ import annotations

import numpy as np
import torch

from neat.torch.traceable import symbolic


class GroupValues(torch.optim.Optimizer):
    """The part of :class:`neat.torch.NGAdam` that reads a step's values from its groups."""

    _device: torch.device
    _stats_dtype: torch.dtype
    _group_of: torch.Tensor  # the group index of every tensor
    _hyperparameters: dict[tuple, tuple]  # per (key, index): the groups' floats and their (K,) tensor

    def _step_values(self) -> dict:
        """This step's ``lr``, ``weight_decay``, ``betas`` (a pair) and ``eps``, each as
        :meth:`_hyperparameter` gives it."""
        return {
            "lr": self._hyperparameter("lr"),
            "weight_decay": self._hyperparameter("weight_decay"),
            "betas": (self._hyperparameter("betas", 0), self._hyperparameter("betas", 1)),
            "eps": self._hyperparameter("eps"),
        }

    def _hyperparameter(self, key: str, index: int | None = None):
        """A param-group value for the step (``group[key][index]`` when ``index`` is given): one
        float for all tensors when every group holds the same, else a ``(K,)`` tensor on the
        device. Built again only when a group's float changed; tensor values (which schedulers
        may update in place) are read on the device at every step."""
        values = tuple(_step_scalar(group[key] if index is None else group[key][index]) for group in self.param_groups)
        if torch.compiler.is_compiling():
            values = tuple(symbolic(value, self._stats_dtype, self._device) for value in values)
        if any(isinstance(value, torch.Tensor) for value in values):
            return self._tensor_hyperparameter(values)
        if all(value == values[0] for value in values[1:]):
            return values[0]
        cached = self._hyperparameters.get((key, index))
        if cached is None or cached[0] != values:
            per_tensor = torch.tensor(values, dtype=self._stats_dtype, device=self._device)[self._group_of]
            cached = self._hyperparameters[key, index] = (values, per_tensor)
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


def _step_scalar(value):
    """A group's value for the step: a tensor as 0-d (read on the device), a NumPy scalar as a
    Python number (a host value), a Python number as it is."""
    if isinstance(value, torch.Tensor):
        return value.reshape(())
    return float(value) if isinstance(value, np.generic) else value
