"""Statistical checks of the quantized models.

Decoding uniformly random words samples the coded model: every rANS decode step
picks symbol s for a slot uniform on [0, 2^p), i.e. with probability freq(s) /
2^p. So decoding random bytes under a family must reproduce the family's
continuous probabilities (up to the quantization, far below what these sample
sizes resolve). Each test states its statistic, sample size and false-alarm
level; seeds are fixed, so the outcome is deterministic."""

import numpy as np
import pytest
import scipy.stats as st

from chansim import rans

N = 200_000


def _random_stream(seed, nbytes=2_000_000):
    """A valid header (24-bit precision, 8 lanes, one segment of 2^20 symbols),
    random 63-bit final states (docs/format.md §2.3: mode bit 0, per lane the
    5-bit length 63 - 32 and 62 state bits) and random words. Decoding fewer
    symbols than the segment holds never reaches the end-of-segment checks."""
    rng = np.random.default_rng(seed)
    head = b"rA\x01\x18\x08\x14" + bytes([0x80, 0x80, 0x40])  # n = 2^20 as LEB128
    bits, nbits = 0, 1  # mode A
    for _ in range(8):
        state = int(rng.integers(0, 2**62, dtype=np.uint64))
        bits |= (31 | state << 5) << nbits
        nbits += 5 + 62
    states = bits.to_bytes((nbits + 7) // 8, "little")
    return head + states + rng.integers(0, 256, 4 * (nbytes // 4), dtype=np.uint8).tobytes()


def _chi2_pvalue(observed, expected):
    """Pearson chi-square over cells with expected >= 5 (the rest pooled)."""
    keep = expected >= 5
    obs = np.append(observed[keep], observed[~keep].sum())
    exp = np.append(expected[keep], expected[~keep].sum())
    if exp[-1] < 5:
        obs, exp = obs[:-1], exp[:-1]
    stat = ((obs - exp) ** 2 / exp).sum()
    return st.chi2.sf(stat, len(obs) - 1)


@pytest.mark.parametrize("family,dist,mean,scale", [
    ("gaussian", st.norm, 0.3, 2.0), ("gaussian", st.norm, -7.43, 0.35), ("logistic", st.logistic, 1.5, 1.2),
    ("laplace", st.laplace, -0.25, 3.0)])
def test_decoding_random_words_samples_the_model(family, dist, mean, scale):
    """Chi-square goodness of fit of 200,000 decoded symbols to the continuous
    model's bin masses; false-alarm level 1e-4 per case."""
    dec = rans.Decoder(_random_stream(len(family) * 1000 + int(10 * scale)))
    k = getattr(dec, f"decode_{family}")(mean, scale, shape=N)
    values, counts = np.unique(k, return_counts=True)
    support = np.arange(values.min() - 2, values.max() + 3)
    p = dist.cdf(support + 0.5, mean, scale) - dist.cdf(support - 0.5, mean, scale)
    observed = np.zeros(len(support))
    observed[np.searchsorted(support, values)] = counts
    assert _chi2_pvalue(observed, N * p) > 1e-4


def test_decoding_random_words_samples_a_dithered_grid():
    """The dithered Gaussian with a per-symbol offset: the probability integral
    transform of each decoded symbol (a uniform draw within its bin's CDF
    interval, made continuous) is U(0, 1); Kolmogorov-Smirnov on 200,000 values,
    false-alarm level 1e-4."""
    rng = np.random.default_rng(11)
    width, offset = 0.8, rng.uniform(-0.5, 0.5, N)
    dec = rans.Decoder(_random_stream(12))
    k = dec.decode_gaussian_dithered(0.2, 1.7, width, offset)
    lo = st.norm.cdf(width * (k - offset - 0.5), 0.2, 1.7)
    hi = st.norm.cdf(width * (k - offset + 0.5), 0.2, 1.7)
    pit = lo + rng.uniform(size=N) * (hi - lo)
    assert st.kstest(pit, "uniform").pvalue > 1e-4


def test_decoding_random_words_samples_categorical_and_zipf():
    """Chi-square on 200,000 decoded categorical symbols (K = 50) and Zipf
    indices (lam = 1.4, n_max = 2^20, exponent classes), level 1e-4 each."""
    rng = np.random.default_rng(13)
    p = rng.dirichlet(np.ones(50))
    dec = rans.Decoder(_random_stream(14))
    k = dec.decode_categorical(p, shape=N)
    assert _chi2_pvalue(np.bincount(k, minlength=50).astype(float), N * p) > 1e-4

    n_max, lam = 2**20, 1.4
    w = np.arange(1, n_max + 1, dtype=np.float64) ** -lam
    pz = w / w.sum()
    dec = rans.Decoder(_random_stream(15))
    z = dec.decode_zipf(lam, n_max, shape=N)
    assert z.min() >= 1 and z.max() <= n_max
    # Cells: the indices 1..64 one by one, then octaves.
    edges = np.concatenate([np.arange(1, 65), 2.0 ** np.arange(6, 21), [n_max + 1]]).astype(np.int64)
    observed = np.histogram(z, bins=edges)[0].astype(float)
    cdf = np.concatenate([[0.0], np.cumsum(pz)])
    expected = N * (cdf[edges[1:] - 1] - cdf[edges[:-1] - 1])
    assert _chi2_pvalue(observed, expected) > 1e-4
