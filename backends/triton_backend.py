"""Triton kernels for torch CUDA tensors (checked on CPU through TRITON_INTERPRET=1)."""
