"""Is NEAT's statistics pass bound by its arithmetic or by reading memory?

Times, on numba's thread pool, two loops over three float32 arrays of ``--elements`` elements
(``g, m, v``) in blocks of 16K elements, each summing ``g·g, g·u, u·u`` per block: with the
statistics pass's direction ``u = 0.9 m / (√v + 1e-8)`` (a square root and a divide per element),
and with ``u = 0.9 m v`` (multiplies only). Equal times mean the pass is read-bound::

    python -m benchmarks.read_bandwidth --threads 2 --elements 124000000
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

BLOCK = 1 << 14


def _loops():
    from numba import njit, prange

    options = dict(parallel=True, fastmath={"reassoc", "contract"}, error_model="numpy", cache=True)

    @njit(**options)
    def with_direction(g, m, v, out):
        for b in prange(out.shape[0]):
            gg = gu = uu = np.float32(0)
            for i in range(b * BLOCK, (b + 1) * BLOCK):
                u = m[i] * np.float32(0.9) / (np.sqrt(v[i]) + np.float32(1e-8))
                gg += g[i] * g[i]
                gu += g[i] * u
                uu += u * u
            out[b, 0], out[b, 1], out[b, 2] = gg, gu, uu

    @njit(**options)
    def multiplies_only(g, m, v, out):
        for b in prange(out.shape[0]):
            gg = gu = uu = np.float32(0)
            for i in range(b * BLOCK, (b + 1) * BLOCK):
                u = m[i] * np.float32(0.9) * v[i]
                gg += g[i] * g[i]
                gu += g[i] * u
                uu += u * u
            out[b, 0], out[b, 1], out[b, 2] = gg, gu, uu

    return {"square root and divide": with_direction, "multiplies only": multiplies_only}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--elements", type=int, default=124_000_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    import numba

    numba.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    size = args.elements // BLOCK * BLOCK
    g, m = rng.random(size, np.float32), rng.random(size, np.float32)
    v = rng.random(size, np.float32) + np.float32(0.1)
    out = np.empty((size // BLOCK, 3), np.float32)
    loops = _loops()
    times: dict[str, list[float]] = {name: [] for name in loops}
    for loop in loops.values():
        loop(g, m, v, out)
    for _ in range(args.rounds):
        for name, loop in loops.items():
            start = time.perf_counter()
            loop(g, m, v, out)
            times[name].append(time.perf_counter() - start)
    gigabytes = 3 * size * 4 / 1e9
    print(f"numba {numba.__version__}, {numba.threading_layer()} pool, {args.threads} threads, {size} elements")
    for name, values in times.items():
        seconds = statistics.median(values)
        print(f"{name:24s} {seconds * 1e3:8.1f} ms  ({gigabytes / seconds:.1f} GB/s read)")


if __name__ == "__main__":
    main()
