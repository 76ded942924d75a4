"""Statistical tests of the variates, with fixed seeds so CI is never flaky.

Each test states its statistic, sample size and false-alarm level α under the
null hypothesis that the generator is exact; with fixed seeds the outcome is
deterministic, and α says how unlucky a correct generator would have to be.
"""

import numpy as np
import pytest
from scipy import stats

from chansim import prng
from chansim.prng import reference as ref

N = 1_000_000
ALPHA = 1e-3


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "variate, cdf",
    [("uniform", stats.uniform.cdf), ("normal", stats.norm.cdf), ("exponential", stats.expon.cdf)],
)
def test_kolmogorov_smirnov_one_million(variate, cdf, dtype):
    """KS statistic on 10^6 draws; α = 1e-3 per test."""
    x = getattr(prng, variate)(20261121, prng.stream_id("user", 1, 7), 0, N, dtype).astype(np.float64)
    assert stats.kstest(x, cdf).pvalue > ALPHA


def test_moments_of_normal():
    """Mean, variance, skewness and excess kurtosis of 4·10^6 float64 normals within 5 standard errors."""
    n = 4_000_000
    z = prng.normal(1, 2, 0, n, np.float64)
    se = 1 / np.sqrt(n)
    assert abs(z.mean()) < 5 * se
    assert abs(z.var() - 1) < 5 * np.sqrt(2) * se
    assert abs(stats.skew(z)) < 5 * np.sqrt(6) * se
    assert abs(stats.kurtosis(z)) < 5 * np.sqrt(24) * se


@pytest.mark.parametrize("p", [1e-12, 1e-9, 1e-6, 1e-4, 1e-2, 0.1])
def test_normal_tail_probabilities_are_exact_on_the_grid(p):
    """The transform is monotone in the uniform, so P(Z <= z_p) is a count of grid points.

    For float64 normals (2^52 grid points) the exact probability of the event
    Z <= Φ⁻¹(p) must equal p to within 1e-6 relative (plus one grid step); for
    float32 normals (2^32 points) to within one grid step 2^-32 + 1e-6 relative.
    """
    zp = stats.norm.ppf(p)
    for bits, to_u in ((52, lambda k: ref.uniform_f64(np.asarray(k, np.uint64) << np.uint64(12))),
                       (32, lambda k: ref.uniform_f64_from32(np.asarray(k, np.uint32)))):
        lo, hi = 0, (1 << bits) - 1  # largest k with ndtri(u_k) <= zp, by bisection
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if ref.ndtri(to_u([mid]))[0] <= zp:
                lo = mid
            else:
                hi = mid - 1
        prob = (lo + 1) / 2.0**bits
        assert abs(prob - p) <= 1e-6 * p + 2.0**-bits, (bits, prob, p)


def test_normal_tail_frequencies():
    """Frequencies beyond |z| > 4 (p = 6.3e-5) in 10^7 draws: binomial z-score < 5."""
    n = 10_000_000
    z = prng.normal(77, 0, 0, n)
    p = 2 * stats.norm.sf(4.0)
    k = np.count_nonzero(np.abs(z) > 4.0)
    assert abs(k - n * p) < 5 * np.sqrt(n * p * (1 - p))


def test_neighbouring_streams_are_uncorrelated():
    """Pearson correlation of 10^6 normals between streams s and s+1 (and stream packing
    neighbours): |r| < 4.9/√n, i.e. α ≈ 1e-6 per pair, 6 pairs."""
    n = N
    bound = 4.9 / np.sqrt(n)
    base = prng.stream_id("dither", 3, 10)
    pairs = [(base, base + 1), (0, 1), (2**64 - 2, 2**64 - 1),
             (prng.stream_id(2, 3, 0), prng.stream_id(2, 4, 0)),
             (prng.stream_id(2, 3, 0), prng.stream_id(3, 3, 0)),
             (base, base + (1 << 32))]
    for s1, s2 in pairs:
        a = prng.normal(5, s1, 0, n, np.float64)
        b = prng.normal(5, s2, 0, n, np.float64)
        assert abs(np.corrcoef(a, b)[0, 1]) < bound, (s1, s2)
    # Shifted by one element within a stream (neighbouring counters).
    a = prng.normal(5, base, 0, n + 1, np.float64)
    assert abs(np.corrcoef(a[:-1], a[1:])[0, 1]) < bound


def test_seeds_differing_in_one_bit():
    """For each of the 64 one-bit seed changes: correlation of 2·10^5 uniforms |r| < 5.3/√n
    (α ≈ 1e-7 each, Bonferroni over 64), and the fraction of differing output bits within
    5.3 standard errors of 1/2 (avalanche)."""
    n = 200_000
    seed = 0x0123456789ABCDEF
    a = prng.uniform(seed, 9, 0, n, np.float64)
    wa = prng.words(seed, 9, 0, n)
    for bit in range(64):
        s2 = seed ^ (1 << bit)
        b = prng.uniform(s2, 9, 0, n, np.float64)
        assert abs(np.corrcoef(a, b)[0, 1]) < 5.3 / np.sqrt(n), bit
        wb = prng.words(s2, 9, 0, n)
        diff = np.unpackbits((wa ^ wb).view(np.uint8)).mean()
        assert abs(diff - 0.5) < 5.3 * 0.5 / np.sqrt(32 * n), bit


def test_uniform_bits_chi_square():
    """Chi-square over the 256 values of each byte of 10^6 words; α = 1e-3 per byte position."""
    w = prng.words(3, 4, 0, N)
    for shift in (0, 8, 16, 24):
        counts = np.bincount(((w >> np.uint32(shift)) & np.uint32(255)).astype(np.int64), minlength=256)
        assert stats.chisquare(counts).pvalue > ALPHA
