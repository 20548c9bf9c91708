"""Fused multi-tensor CPU kernels (numba) for NumPy arrays and torch CPU tensors."""
