"""The CuPy kernels' per-element formulas (``ELEMENT_SOURCE``), compiled for the CPU, against GENERIC.

The GPU kernels call exactly these ``__host__ __device__`` functions; here g++ builds them
(no FMA contraction, as the GPU build) and NumPy stands in for CuPy on GENERIC's side, so the
math is checked in CI without a GPU.
"""

import ctypes
import shutil
import subprocess

import array_api_compat.numpy as xp
import numpy as np
import pytest

from neat.backends.cupy_backend import ELEMENT_SOURCE
from neat.kernels import GENERIC, Statistics, TensorScalars

CXX = shutil.which("g++") or shutil.which("c++")
pytestmark = pytest.mark.skipif(CXX is None, reason="compiling the kernel formulas for the CPU needs a C++ compiler")

HARNESS = (
    r"""
#include <cmath>
#define __host__
#define __device__
using std::sqrt;
"""
    + ELEMENT_SOURCE
    + r"""
template <typename T>
static void update_all(T* p, const T* g, T* m, T* v, long long n, const T* s, int take) {
    // s: prev_scale, prev_shift, nge, decay, step, shift, beta1, weight1, beta2, weight2 (neat.kernels.TensorScalars)
    for (long long i = 0; i < n; ++i)
        neat_update_element<T, T>(p[i], g[i], m[i], v[i], s[0], s[1], s[2], s[3], s[4], s[5],
                                  s[6], s[7], s[8], s[9], take != 0);
}
template <typename T>
static void statistics_all(const T* g, const T* m, const T* v, long long n, const T* s, double* out) {
    double acc[3] = {0.0, 0.0, 0.0};
    for (long long i = 0; i < n; ++i) neat_statistics_element<T>(g[i], m[i], v[i], s[0], s[1], acc);
    for (int c = 0; c < 3; ++c) out[c] = acc[c];
}
extern "C" {
void update_float(float* p, const float* g, float* m, float* v, long long n, const float* s, int take)
    { update_all<float>(p, g, m, v, n, s, take); }
void update_double(double* p, const double* g, double* m, double* v, long long n, const double* s, int take)
    { update_all<double>(p, g, m, v, n, s, take); }
void statistics_float(const float* g, const float* m, const float* v, long long n, const float* s, double* out)
    { statistics_all<float>(g, m, v, n, s, out); }
void statistics_double(const double* g, const double* m, const double* v, long long n, const double* s,
                       double* out) { statistics_all<double>(g, m, v, n, s, out); }
}
"""
)

C_NAMES = {np.float32: "float", np.float64: "double"}
BETAS = (0.9, 0.99)


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    path = tmp_path_factory.mktemp("neat_formulas") / "formulas.so"
    subprocess.run(
        [CXX, "-O2", "-ffp-contract=off", "-shared", "-fPIC", "-x", "c++", "-", "-o", str(path)],
        input=HARNESS.encode(),
        check=True,
    )
    return ctypes.CDLL(str(path))


def pointer(array):
    return array.ctypes.data_as(ctypes.c_void_p)


def direction_scalars(count: int, eps: float):
    """``scale = √(1 − β2^t) / (1 − β1^t)``, ``shift = ε √(1 − β2^t)`` (neat.kernels); both 0 at ``t = 0``."""
    if count == 0:
        return 0.0, 0.0
    root = np.sqrt(1 - BETAS[1] ** count)
    return root / (1 - BETAS[0] ** count), eps * root


def case(dtype, count, eps, seed=0, size=1000):
    """One tensor's ``θ, g, m, v`` and its :class:`TensorScalars`; with ``ε = 0`` some entries have
    ``g = m = v = 0``, so both directions meet zero denominators."""
    rng = np.random.default_rng(seed)
    p, g, m = (rng.normal(size=size).astype(dtype) for _ in range(3))
    v = (0.01 * rng.random(size=size)).astype(dtype)
    if count == 0:  # no step taken yet: the moments are still zero
        m, v = np.zeros_like(m), np.zeros_like(v)
    if eps == 0.0:
        g[::7], m[::7], v[::7] = 0, 0, 0
    (prev_scale, prev_shift), (scale, shift) = direction_scalars(count, eps), direction_scalars(count + 1, eps)
    scalars = TensorScalars(
        *(np.asarray([value], dtype) for value in (prev_scale, prev_shift, -0.37, 0.9995, 0.003 * scale, shift)),
        *(np.asarray([value], dtype) for value in (BETAS[0], 1.0 - BETAS[0], BETAS[1], 1.0 - BETAS[1])),
    )
    return p, g, m, v, scalars


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("count", [0, 1, 7])
@pytest.mark.parametrize("eps", [1e-8, 0.0])
@pytest.mark.parametrize("take", [True, False])
def test_update_formula_is_generic_bit_for_bit(library, dtype, count, eps, take):
    p, g, m, v, scalars = case(dtype, count, eps)
    statistics = Statistics(np.zeros((1, 3), dtype), None)  # no direction: the update forms u itself
    want_p, want_m, want_v = GENERIC.update(xp, [p], [g], [m], [v], statistics, scalars, np.asarray(take))
    packed = np.array([column[0] for column in scalars], dtype=dtype)
    got = [a.copy() for a in (p, m, v)]
    getattr(library, f"update_{C_NAMES[dtype]}")(
        *(pointer(a) for a in (got[0], g, got[1], got[2])),
        ctypes.c_longlong(p.size),
        pointer(packed),
        int(take),
    )
    for mine, generic in zip(got, (want_p[0], want_m[0], want_v[0])):
        assert np.all(np.isfinite(mine))
        np.testing.assert_array_equal(mine, generic)
    assert take != np.array_equal(got[0], p)  # a taken step moves θ, a skipped one does not


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("count", [0, 3])
@pytest.mark.parametrize("eps", [1e-8, 0.0])
@pytest.mark.parametrize("bad", [None, np.nan, np.inf])
def test_statistics_formula_matches_generic(library, dtype, count, eps, bad):
    _, g, m, v, scalars = case(dtype, count, eps, seed=1)
    if bad is not None:
        g[17] = bad
    with np.errstate(invalid="ignore", over="ignore"):
        want = np.asarray(GENERIC.statistics(xp, [g], [m], [v], scalars, dtype).sums[0])
    packed = np.array([scalars.prev_scale[0], scalars.prev_shift[0]], dtype=dtype)
    out = np.zeros(3)
    getattr(library, f"statistics_{C_NAMES[dtype]}")(
        pointer(g), pointer(m), pointer(v), ctypes.c_longlong(g.size), pointer(packed), pointer(out)
    )
    assert np.isfinite(out[0]) == np.isfinite(want[0]) == (bad is None)  # the core's non-finite test reads G
    if bad is None:
        rtol = 1e-5 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(out.astype(dtype), want, rtol=rtol)
        assert (out[2] == 0) == (count == 0)  # ⟨u,u⟩ = 0 before the first step (u = 0)
