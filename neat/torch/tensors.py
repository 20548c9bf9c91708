"""A torch tensor as the core sees it: complex values as real and imaginary parts (SPEC
"Objects"), and the dtype of its moments (SPEC "State")."""

from __future__ import annotations

import torch


def moments_dtype(param):
    """The parameter's dtype, or for 16-bit parameters float32 (complex64 for complex32) (SPEC "State")."""
    if torch.finfo(param.dtype).bits >= 32:
        return param.dtype
    return torch.complex64 if param.is_complex() else torch.float32


def real(tensor):
    """A complex tensor as the real tensor of its real and imaginary parts (``view_as_real``,
    sharing its storage; SPEC "Objects"), a real one as it is."""
    return torch.view_as_real(tensor) if tensor.is_complex() else tensor
