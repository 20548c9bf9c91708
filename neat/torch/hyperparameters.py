"""A step's hyperparameters, read from the param groups at every step (schedulers change them):
``lr``, ``weight_decay``, ``betas`` and ``eps``, each one per group (SPEC v2.1)."""

from __future__ import annotations

import numpy as np
import torch

from neat.torch.traceable import symbolic

#: The values a step reads from every group, in the order :meth:`GroupValues._step_values` reads them.
_STEP_KEYS = ("lr", "weight_decay", "beta1", "beta2", "eps")


class GroupValues(torch.optim.Optimizer):
    """The part of :class:`neat.torch.NGAdam` that reads a step's values from its groups."""

    _device: torch.device
    _stats_dtype: torch.dtype
    _group_of: torch.Tensor  # the group index of every tensor
    _hyperparameters: dict[str, tuple]  # per key: the groups' floats and their (K,) tensor

    def _step_values(self) -> dict:
        """This step's ``lr``, ``weight_decay``, ``betas`` (a pair) and ``eps``, each as
        :meth:`_hyperparameter` makes it from the groups' values (read in one pass)."""
        compiling = torch.compiler.is_compiling()
        rows = zip(*[(g["lr"], g["weight_decay"], *g["betas"], g["eps"]) for g in self.param_groups])
        lr, weight_decay, beta1, beta2, eps = (
            self._hyperparameter(key, values, compiling) for key, values in zip(_STEP_KEYS, rows)
        )
        return {"lr": lr, "weight_decay": weight_decay, "betas": (beta1, beta2), "eps": eps}

    def _hyperparameter(self, key: str, values: tuple, compiling: bool):
        """The groups' ``values`` of one hyperparameter (``key``: its name, for the cache) for the
        step: one value for all tensors when every group holds the same float (or there is one
        group), else a ``(K,)`` tensor on the device. Built again only when a group's float
        changed; tensor values (which schedulers may update in place) are read on the device at
        every step. Under ``torch.compile`` floats become symbolic 0-d tensors."""
        if len(values) == 1 and type(values[0]) is float and not compiling:  # one group's float: as it is
            return values[0]
        values = tuple([_step_scalar(value) for value in values])
        if compiling:
            values = tuple([symbolic(value, self._stats_dtype, self._device) for value in values])
        if any([isinstance(value, torch.Tensor) for value in values]):
            return self._tensor_hyperparameter(values)
        if len(values) == 1 or all([value == values[0] for value in values[1:]]):
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


def _step_scalar(value):
    """A group's value for the step: a tensor as 0-d (read on the device), a NumPy scalar as a
    Python number (a host value), a Python number as it is."""
    if isinstance(value, torch.Tensor):
        return value.reshape(())
    return float(value) if isinstance(value, np.generic) else value
