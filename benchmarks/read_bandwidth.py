"""Is NEAT's statistics pass bound by its arithmetic or by reading memory?

Times, on numba's thread pool, two loops over three float32 arrays of ``--elements`` elements
(``g, m, v``), each summing ``g·g, g·u, u·u`` in chunks of 1,024 elements as the statistics pass
does: with the pass's direction ``u = 0.9 m / (√v + 1e-8)`` (a square root and a divide per
element), and with ``u = 0.9 m v`` (multiplies only). Equal times mean the pass is read-bound.

Each loop runs on arrays from two allocators: torch's (4 KiB pages, as a model's parameters,
gradients and optimizer state have by default) and NumPy's (which asks the kernel for 2 MiB
transparent huge pages for large arrays). The difference is the cost of the page walks::

    python -m benchmarks.read_bandwidth --threads 2 --elements 124000000
"""

from __future__ import annotations

import argparse
import functools

import numpy as np

from benchmarks.timing import interleaved

CHUNK = 1 << 10


def _loops() -> dict:
    from numba import njit, prange

    @njit(inline="always")
    def with_root(m, v):
        return m * np.float32(0.9) / (np.sqrt(v) + np.float32(1e-8))

    @njit(inline="always")
    def multiplies(m, v):
        return m * np.float32(0.9) * v

    def chunked_sums(direction):
        @njit(parallel=True, fastmath={"reassoc", "contract"}, error_model="numpy")
        def sums(g, m, v, out):
            for c in prange(out.shape[0]):
                start = c * CHUNK
                x, y, z = g[start : start + CHUNK], m[start : start + CHUNK], v[start : start + CHUNK]
                gg = gu = uu = np.float32(0)
                for i in range(CHUNK):
                    u = direction(y[i], z[i])
                    gg += x[i] * x[i]
                    gu += x[i] * u
                    uu += u * u
                out[c, 0], out[c, 1], out[c, 2] = gg, gu, uu

        return sums

    return {"square root and divide": chunked_sums(with_root), "multiplies only": chunked_sums(multiplies)}


def _arrays(allocator: str, size: int) -> list[np.ndarray]:
    """``g, m, v``: random float32 arrays (``v`` positive) from ``allocator`` (``torch`` or ``numpy``)."""
    rng = np.random.default_rng(0)
    arrays = []
    for offset in (0.0, 0.0, 0.1):
        if allocator == "torch":
            import torch

            array = torch.empty(size, dtype=torch.float32).numpy()
        else:
            array = np.empty(size, np.float32)
        array[:] = rng.random(size, np.float32) + np.float32(offset)
        arrays.append(array)
    return arrays


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--elements", type=int, default=124_000_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    import numba

    numba.set_num_threads(args.threads)
    size = args.elements // CHUNK * CHUNK
    out = np.empty((size // CHUNK, 3), np.float32)
    loops = _loops()
    arrays = {"torch (4 KiB pages)": _arrays("torch", size), "NumPy (huge pages)": _arrays("numpy", size)}
    cases = {
        (memory, loop): functools.partial(loops[loop], *arrays[memory], out) for memory in arrays for loop in loops
    }
    medians = interleaved(cases, args.rounds, warmup=1)[0].medians
    gigabytes = 3 * size * 4 / 1e9
    print(f"numba {numba.__version__}, {numba.threading_layer()} pool, {args.threads} threads, {size} elements")
    for (memory, loop), seconds in medians.items():
        print(f"{memory:20s} {loop:24s} {seconds * 1e3:8.1f} ms  ({gigabytes / seconds:.1f} GB/s read)")


if __name__ == "__main__":
    main()
