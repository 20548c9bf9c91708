"""PyTorch backend: ``torch.Tensor`` uses ``array_api_compat.torch``."""

from __future__ import annotations

import sys

from neat.hookspecs import hookimpl


@hookimpl
def neat_array_namespace(array):
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(array, torch.Tensor):
        import array_api_compat.torch

        return array_api_compat.torch
    return None
