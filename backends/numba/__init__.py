"""The numba kernels: fused multi-tensor CPU passes for NumPy arrays and torch CPU tensors (the
``"numba"`` kernel set) and the XLA FFI handlers of the ``"jax_ffi"`` set.

* :mod:`~neat.backends.numba.kernels`: the ``"numba"`` kernel set and its registration;
* :mod:`~neat.backends.numba.first_use`: what happens at the first use (the threading layer,
  stale cached compilations), and the only way to the compiled modules;
* :mod:`~neat.backends.numba.layout`: the positional layout of a compiled step's numbers;
* :mod:`~neat.backends.numba.unsafe`: raw memory and foreign calls, with their invariants;
* the compiled modules :mod:`~neat.backends.numba.loops` (the two passes),
  :mod:`~neat.backends.numba.openmp` (the passes on torch's OpenMP pool),
  :mod:`~neat.backends.numba.game` (the game, and whole steps) and
  :mod:`~neat.backends.numba.jax_ffi_loops` (the FFI handlers).

Importing any of them changes nothing on disk or in numba's configuration; only ``kernels``,
``first_use`` and ``layout`` import without numba.
"""
