"""The kernel set: ``torch.optim``'s ``foreach`` / ``fused`` flags as a request for
:func:`neat.kernel_selection.select_kernels`."""

from __future__ import annotations

#: The fused kernel set of each device type (``fused=True``).
FUSED_KERNELS = {"cpu": "numba", "cuda": "triton"}


def kernel_request(foreach, fused, device) -> str | None:
    """``torch.optim``'s ``foreach`` / ``fused`` flags as a request for
    :func:`neat.kernel_selection.select_kernels`: ``fused=True`` → the device's fused set
    (:data:`FUSED_KERNELS`), ``foreach=True`` or ``fused=False`` → ``"foreach"``,
    ``foreach=False`` → ``"generic"`` (one tensor at a time), both ``None`` → ``None``
    (the fastest registered set that runs these tensors)."""
    if foreach and fused:
        raise RuntimeError("`fused` and `foreach` cannot be `True` together.")
    if fused:
        if device.type not in FUSED_KERNELS:
            raise RuntimeError(
                f"`fused=True` needs a {' or '.join(sorted(FUSED_KERNELS))} device, the parameters are on {device.type}"
            )
        return FUSED_KERNELS[device.type]
    if foreach is False:
        return "generic"
    return "foreach" if foreach or fused is False else None
