"""The CuPy kernels' per-element formulas (``ELEMENT_SOURCE``), compiled for the CPU, against GENERIC.

The GPU kernels call exactly these ``__host__ __device__`` functions; here g++ builds them
(no FMA contraction, as the GPU build) so the math is checked in CI without a GPU.
"""

import ctypes
import shutil
import subprocess

import array_api_compat.numpy as xp
import numpy as np
import pytest

from neat.backends.cupy_backend import ELEMENT_SOURCE
from neat.kernels import GENERIC, BiasCorrection, UpdateScalars

CXX = shutil.which("g++") or shutil.which("c++")
pytestmark = pytest.mark.skipif(CXX is None, reason="compiling the kernel formulas for the CPU needs a C++ compiler")

HARNESS = r"""
#include <cmath>
#define __host__
#define __device__
using std::sqrt;
using std::isfinite;
%s
template <typename T>
static void update_all(T* p, const T* g, T* m, T* v, long long n, const T* s, double b1, double b2, int take) {
    for (long long i = 0; i < n; ++i)
        neat_update_element<T, T>(p[i], g[i], m[i], v[i], s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[8],
                                  (T)b1, (T)(1.0 - b1), (T)b2, (T)(1.0 - b2), take != 0);
}
template <typename T>
static void statistics_all(const T* g, const T* m, const T* v, long long n, const T* s, double* out) {
    double acc[4] = {0.0, 0.0, 0.0, 0.0};
    for (long long i = 0; i < n; ++i) neat_statistics_element<T>(g[i], m[i], v[i], s[0], s[1], s[2], acc);
    for (int c = 0; c < 4; ++c) out[c] = acc[c];
}
extern "C" {
void update_float(float* p, const float* g, float* m, float* v, long long n, const float* s, double b1, double b2,
                  int take) { update_all<float>(p, g, m, v, n, s, b1, b2, take); }
void update_double(double* p, const double* g, double* m, double* v, long long n, const double* s, double b1,
                   double b2, int take) { update_all<double>(p, g, m, v, n, s, b1, b2, take); }
void statistics_float(const float* g, const float* m, const float* v, long long n, const float* s, double* out)
    { statistics_all<float>(g, m, v, n, s, out); }
void statistics_double(const double* g, const double* m, const double* v, long long n, const double* s,
                       double* out) { statistics_all<double>(g, m, v, n, s, out); }
}
""" % ELEMENT_SOURCE

C_NAMES = {np.float32: "float", np.float64: "double"}
BETAS = (0.9, 0.99)


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    path = tmp_path_factory.mktemp("neat_formulas") / "formulas.so"
    subprocess.run([CXX, "-O2", "-ffp-contract=off", "-shared", "-fPIC", "-x", "c++", "-", "-o", str(path)],
                   input=HARNESS.encode(), check=True)
    return ctypes.CDLL(str(path))


def pointer(array):
    return array.ctypes.data_as(ctypes.c_void_p)


def case(dtype, count, seed=0, size=1000):
    rng = np.random.default_rng(seed)
    p, g, m = (rng.normal(size=size).astype(dtype) for _ in range(3))
    v = (0.01 * rng.random(size=size)).astype(dtype)
    if count == 0:  # no step taken yet: the moments are still zero
        m, v = np.zeros_like(m), np.zeros_like(v)
    previous = BiasCorrection.at(xp, np.asarray(count, np.int32), BETAS, 1e-8, dtype).astype(xp, dtype)
    current = BiasCorrection.at(xp, np.asarray(count + 1, np.int32), BETAS, 1e-8, dtype).astype(xp, dtype)
    scalars = UpdateScalars(nge=np.asarray([-0.37], dtype), step=np.asarray([0.003], dtype),
                            decay=np.asarray([0.9995], dtype))
    return p, g, m, v, previous, current, scalars


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("count", [0, 1, 7])
@pytest.mark.parametrize("take", [True, False])
def test_update_formula_is_generic_bit_for_bit(library, dtype, count, take):
    p, g, m, v, previous, current, scalars = case(dtype, count)
    want_p, want_m, want_v = GENERIC.update(xp, [p], [g], [m], [v], scalars, previous, current, BETAS,
                                            np.asarray(take))
    scalar_list = [previous.first, previous.second, previous.eps, current.first, current.second, current.eps,
                   scalars.nge[0], scalars.step[0], scalars.decay[0]]
    packed = np.array(scalar_list, dtype=dtype)
    got = [a.copy() for a in (p, m, v)]
    getattr(library, f"update_{C_NAMES[dtype]}")(*(pointer(a) for a in (got[0], g, got[1], got[2])),
                                                 ctypes.c_longlong(p.size), pointer(packed),
                                                 ctypes.c_double(BETAS[0]), ctypes.c_double(BETAS[1]), int(take))
    for mine, generic in zip(got, (want_p[0], want_m[0], want_v[0])):
        np.testing.assert_array_equal(mine, generic)
    assert take != np.array_equal(got[0], p)  # a taken step moves θ, a skipped one does not


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("count", [0, 3])
@pytest.mark.parametrize("bad", [None, np.nan, np.inf])
def test_statistics_formula_matches_generic(library, dtype, count, bad):
    _, g, m, v, previous, _, _ = case(dtype, count, seed=1)
    if bad is not None:
        g[17] = bad
    want_stats, want_finite = GENERIC.statistics(xp, [g], [m], [v], previous, dtype)
    packed = np.array([previous.first, previous.second, previous.eps], dtype=dtype)
    out = np.zeros(4)
    getattr(library, f"statistics_{C_NAMES[dtype]}")(pointer(g), pointer(m), pointer(v), ctypes.c_longlong(g.size),
                                                     pointer(packed), pointer(out))
    assert (out[3] == 0) == bool(want_finite) == (bad is None)
    if bad is None:
        rtol = 1e-5 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(out[:3].astype(dtype), want_stats[0], rtol=rtol)
        assert (out[2] == 0) == (count == 0)  # ⟨u,u⟩ = 0 before the first step (u = 0)
