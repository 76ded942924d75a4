"""Accuracy of the deterministic transforms against the exact functions (mpmath).

These numbers are the ones documented in docs/format.md.
"""

import math

import mpmath
import numpy as np

from chansim import prng
from chansim.prng import reference as ref

mpmath.mp.dps = 40


def _exact_ndtri(p: float) -> float:
    return float(mpmath.sqrt(2) * mpmath.erfinv(2 * mpmath.mpf(p) - 1))


def _sample_uniforms():
    k = prng.words(11, 12, 0, 3000).astype(np.uint64) << np.uint64(20)
    u = ref.uniform_f64(k)
    tails = np.array([2.0**-e for e in range(2, 54)] + [1 - 2.0**-e for e in range(2, 53)])
    return np.concatenate([u, tails, [0.075, 0.925, 0.0749999, 0.9250001]])


def test_ndtri_relative_error_below_1e_15():
    u = _sample_uniforms()
    got = ref.ndtri(u)
    worst = 0.0
    for p, g in zip(u, got):
        e = _exact_ndtri(p)
        if e != 0:
            worst = max(worst, abs(g - e) / abs(e))
    assert worst < 1e-15, worst


def test_log_within_one_ulp():
    x = np.concatenate([ref.uniform_f64(prng.words(1, 1, 0, 5000).astype(np.uint64) << np.uint64(32)),
                        [2.0**-e for e in range(1, 54)], [1 - 2.0**-e for e in range(1, 53)]])
    got = ref.det_log(x)
    for xi, g in zip(x, got):
        e = mpmath.log(mpmath.mpf(xi))
        ulp = math.ulp(float(e)) if float(e) != 0 else 5e-324
        assert abs(mpmath.mpf(g) - e) <= ulp, xi


def test_float32_normal_is_rounded_float64_value():
    w = prng.words(3, 3, 0, 20000)
    z32 = prng.normal(3, 3, 0, 20000)
    np.testing.assert_array_equal(z32, ref.ndtri(ref.uniform_f64_from32(w)).astype(np.float32))
