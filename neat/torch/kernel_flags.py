"""The kernel set: ``torch.optim``'s ``foreach`` / ``fused`` flags as a request for
:func:`neat.kernel_selection.select_kernels`, one for all param groups, and what the chosen
kernels take."""

from __future__ import annotations

#: The fused kernel set of each device type (``fused=True``).
FUSED_KERNELS = {"cpu": "numba", "cuda": "triton"}


def flags_request(foreach, fused) -> str | None:
    """What ``torch.optim``'s flags ask for, before the device is known: ``"fused"`` (``fused=True``),
    ``"foreach"`` (``foreach=True`` or ``fused=False``), ``"generic"`` (``foreach=False``: one tensor
    at a time) or ``None`` (both ``None``: the fastest registered set that runs the tensors)."""
    if foreach and fused:
        raise RuntimeError("`fused` and `foreach` cannot be `True` together.")
    if fused:
        return "fused"
    if foreach is False:
        return "generic"
    return "foreach" if foreach or fused is False else None


def kernel_request(foreach, fused, device) -> str | None:
    """``torch.optim``'s ``foreach`` / ``fused`` flags as a request for
    :func:`neat.kernel_selection.select_kernels` (:func:`flags_request`, with ``"fused"`` the
    device's fused set, :data:`FUSED_KERNELS`)."""
    return device_request(flags_request(foreach, fused), device)


def device_request(request: str | None, device) -> str | None:
    """A :func:`flags_request` on ``device``: ``"fused"`` becomes the device's fused set."""
    if request != "fused":
        return request
    if device.type not in FUSED_KERNELS:
        raise RuntimeError(
            "`fused=True` requires all the params to be floating point Tensors of supported devices: "
            f"{sorted(FUSED_KERNELS)} but they are on {device.type}"
        )
    return FUSED_KERNELS[device.type]


def groups_request(groups) -> str | None:
    """The one kernel request of all param groups (NG-Adam runs one kernel set per optimizer): the
    groups that set flags must ask for the same kernels (as ``torch.optim`` accepts a group that
    repeats the optimizer's flags); a group with both flags ``None`` takes them."""
    requests = {index: flags_request(group["foreach"], group["fused"]) for index, group in enumerate(groups)}
    asked = {request for request in requests.values() if request is not None}
    if len(asked) > 1:
        listing = ", ".join(
            f"group {index} foreach={groups[index]['foreach']!r}, fused={groups[index]['fused']!r} ({request})"
            for index, request in requests.items()
        )
        raise ValueError(
            f"param groups ask for different kernels: {listing}; NGAdam runs one kernel set for all "
            "groups: give every group the same foreach/fused flags (or none)"
        )
    return asked.pop() if asked else None


def check_kernel_flags(groups, request: str | None) -> None:
    """Before a step: every group's flags still ask for the kernels chosen at construction
    (``request``, :func:`groups_request`) or for none; an edit that asks for others is refused
    naming the flag (SPEC v2.1: never ignored)."""
    for group in groups:
        asked = flags_request(group["foreach"], group["fused"])
        if asked is not None and asked != request:
            key = "fused" if group["fused"] or group["foreach"] is None else "foreach"  # the flag that asks
            raise ValueError(
                f"{key} is fixed for a run (the kernels were chosen at construction: "
                f"{request or 'the default set'}; now {key}={group[key]!r} asks for {asked}): "
                "build a new optimizer to change it"
            )
