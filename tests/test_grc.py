"""GPRS and GRC for 1-D Gaussian channels: exactness, bit-identical decoding, code length, bad input.

Statistical tests, through chansim.testing.check_exact: one-sample Kolmogorov-Smirnov of the
probability-integral transform u_i = Phi((x_i - mu_q_i) / sigma_q_i) against U(0, 1) and a
chi-squared of Phi^-1(u) on equiprobable bins, with n = 2,000 channels per case drawn in one
vectorised call (the decoder's output compared bit for bit). Family-wise false-alarm level 1e-3,
Bonferroni-corrected over every check in this file (ALPHA_EACH per check). Code length through
chansim.testing.check_code_length (one-sided, alpha = 1e-3).
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

import chansim
from chansim import grc
from chansim.testing import Gaussian, check_code_length, check_decoder_robust, check_exact

N = 2000
METHODS = ["gprs-sample", "gprs-dyadic", "grc-sample", "grc-dyadic"]

# (mu_q, sigma_q, mu_p, sigma_p): easy, narrow posterior, large shift, both,
# near-equal scales, a non-standard prior.
CASES = [
    (0.3, 0.8, 0.0, 1.0),
    (0.5, 0.3, 0.0, 1.0),
    (1.0, 1e-3, 0.0, 1.0),  # sigma_q << sigma_p
    (4.0, 0.5, 0.0, 1.0),  # large mean shift, D ~ 12 bits
    (-3.0, 0.01, 0.0, 1.0),  # both, D ~ 12 bits
    (2.0, 0.2, -1.0, 3.0),
    (0.01, 0.99, 0.0, 1.0),  # D ~ 0.01 bits
    (0.0, 1e-5, 0.0, 1.0),  # D ~ 16 bits
]
HYPOTHESIS_EXAMPLES = 12
N_KS_TESTS = len(METHODS) * (len(CASES) + 2 * HYPOTHESIS_EXAMPLES + 1)
ALPHA_EACH = 1e-3 / N_KS_TESTS


def _kl_bits(mq, sq, mp, sp):
    return float(grc.kl_bits(mq, sq, mp, sp))


def _check_channels(mq, sq, mp, sp, seed, stream, method):
    """One vectorised message of n channels (channel i: q = N(mq_i, sq_i²), p = N(mp_i, sp_i²)):
    check_exact (KS of the PIT and chi-squared, at ALPHA_EACH; decoder bit-identical) and
    check_code_length of info["bits"] against KL + log2(KL + 1) + 4 (mean KL over the
    channels; alpha = 1e-3). Returns (samples, data, info)."""
    runs = {}

    def encode(s):
        x, data, info = grc.encode_gaussian(mq, sq, mp, sp, s, stream, method, return_info=True)
        runs[s] = (x, data, info)
        return x, data, info["bits"]

    def decode(data, s):
        return grc.decode_gaussian(data, mp, sp, s, stream, method)

    n = np.size(mq)
    check_exact(encode, decode, Gaussian(mq, sq), Gaussian(mp, sp), n=n, alpha=ALPHA_EACH, seed=seed, batched=True)
    kl = float(np.mean(grc.kl_bits(mq, sq, mp, sp)))
    check_code_length(lambda s: (runs[s][0], runs[s][1], runs[s][2]["bits"]), None, None, kl_bits=kl, n=n,
                      seed=seed, batched=True)
    return runs[seed]


def _encode_case(case, method, seed=7, stream=None, n=N):
    mq, sq, mp, sp = case
    stream = chansim.prng.stream_id("grc", 0, 3) if stream is None else stream
    args = [np.full(n, v) for v in (mq, sq, mp, sp)]
    x, data, info = grc.encode_gaussian(*args, seed, stream, method, return_info=True)
    return x, data, info, args, stream


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", CASES, ids=[f"q{c[0]}_{c[1]}_p{c[2]}_{c[3]}" for c in CASES])
def test_exact_and_bit_identical(case, method):
    stream = chansim.prng.stream_id("grc", 0, 3)
    mq, sq, mp, sp = (np.full(N, v) for v in case)
    x, data, info = _check_channels(mq, sq, mp, sp, 7, stream, method)
    y = grc.decode_gaussian(data, mp, sp, 7, stream, method)
    assert x.dtype == np.float64 and y.shape == x.shape
    assert np.array_equal(x.view(np.uint64), y.view(np.uint64))
    # Code length: D + 2 log2(D + 1) + 4 bits per channel (the 160-bit header
    # and checksum are shared by the message and reported separately).
    d = _kl_bits(*case)
    assert info["bits"].mean() <= d + 2 * np.log2(d + 1) + 4
    total = info["bits"].sum()
    if method == "gprs-dyadic":  # Elias delta: whole bits, byte padding
        assert len(data) * 8 == 160 + 8 * ((int(total) + 7) // 8)
    else:  # one arithmetic code: within 2 bits of the ideal length, byte padding
        assert len(data) * 8 <= 160 + np.ceil(total) + 2 + 7
    # Steps grow like D (branch and bound), not like 2^D. (GPRS-dyadic with the
    # mode of r on a split point, as for mu_q = mu_p, explores both sides: ~1.9 D;
    # GRC on samples is bounded by 4.82 D + O(1) in the GRC paper, ~1.35 D here.)
    assert info["steps"].mean() <= 2 * d + 6, (d, info["steps"].mean())
    if method.startswith("grc"):  # one node per level
        assert np.array_equal(info["steps"], np.array([int(h).bit_length() for h in info["indices"]]))


finite = st.floats(-3.0, 3.0, allow_nan=False)


MAX_BITS, MAX_X_STAR = 24.0, 30.0  # a short run's D; the supported |x*| (tested below)


@st.composite
def gaussian_pairs(draw):
    """Pairs inside the supported range by construction (no example is discarded): with
    s = σq/σp and m = (μq − μp)/σp, D = log₂e·(−ln s + (s² + m² − 1)/2) ≤ 24 bits and the mode
    of r, |x*| = |m|/(1 − s²) prior deviations, ≤ 30. The standardised shift is drawn as a
    fraction of the largest |m| both allow (and ≤ 4)."""
    mp = draw(finite)
    sp = draw(st.floats(0.1, 10.0))
    log_ratio = draw(st.floats(-12.0, -0.01))  # log(sigma_q / sigma_p)
    s = float(np.exp(log_ratio))
    m_kl = np.sqrt(2 * MAX_BITS * np.log(2) + 2 * log_ratio + 1 - s * s)  # D(m_kl) = 24 bits
    m_max = min(4.0, MAX_X_STAR * (1 - s * s), float(m_kl)) * (1 - 1e-9)
    m = m_max * draw(st.floats(-1.0, 1.0))
    return mp + sp * m, sp * s, mp, sp


@pytest.mark.parametrize("method", METHODS)
@settings(derandomize=True, max_examples=HYPOTHESIS_EXAMPLES, deadline=None)
@given(case=gaussian_pairs(), seed=st.integers(0, 2**64 - 1))
def test_random_pairs(case, seed, method):
    d = _kl_bits(*case)
    s = case[1] / case[3]
    # The strategy generates only supported pairs, so every example runs the full checks.
    assert d <= MAX_BITS + 1e-6 and abs((case[0] - case[2]) / case[3]) / (1 - s * s) <= MAX_X_STAR
    stream = chansim.prng.stream_id("grc", 0, 3)
    mq, sq, mp, sp = (np.full(N, v) for v in case)
    x, data, info = _check_channels(mq, sq, mp, sp, seed, stream, method)
    y = grc.decode_gaussian(data, mp, sp, seed, stream, method)
    assert np.array_equal(x.view(np.uint64), y.view(np.uint64))
    assert info["bits"].mean() <= d + 2 * np.log2(d + 1) + 4


@pytest.mark.parametrize("method", METHODS)
@settings(derandomize=True, max_examples=HYPOTHESIS_EXAMPLES, deadline=None)
@given(seed=st.integers(0, 2**64 - 1))
def test_heterogeneous_channels(seed, method):
    """Every channel its own (q, p): the PIT values are i.i.d. U(0, 1) only if each is exact."""
    rng = np.random.default_rng(seed % 2**32)
    mp = rng.normal(0, 5, N)
    sp = np.exp(rng.uniform(-2, 2, N))
    sq = sp * np.exp(rng.uniform(-9, -0.3, N))
    mq = mp + sp * rng.normal(0, 1.0, N)
    x, data, info = _check_channels(mq, sq, mp, sp, seed, 5, method)
    y = grc.decode_gaussian(data, mp, sp, seed, 5, method)
    assert np.array_equal(x.view(np.uint64), y.view(np.uint64))
    d = grc.kl_bits(mq, sq, mp, sp)
    assert info["bits"].mean() <= d.mean() + 2 * np.log2(d.mean() + 1) + 4


@pytest.mark.parametrize("method", METHODS)
def test_q_equals_p(method):
    n = N
    x, data, info = _check_channels(np.full(n, 1.5), np.full(n, 2.0), np.full(n, 1.5), np.full(n, 2.0), 3, 4, method)
    assert np.all(info["bits"] == 1) and np.all(info["steps"] == 1)
    y = grc.decode_gaussian(data, np.full(n, 1.5), np.full(n, 2.0), 3, 4, method)
    assert np.array_equal(x, y)


def test_channels_are_independent_and_deterministic():
    case = (0.7, 0.05, 0.0, 1.0)
    x1, d1, info1, *_ = _encode_case(case, "gprs-dyadic", n=64)
    x2, d2, *_ = _encode_case(case, "gprs-dyadic", n=64)
    assert d1 == d2 and np.array_equal(x1, x2)
    # Channel i depends only on (seed, stream, i) and its own parameters.
    mq = np.full(64, 0.7)
    mq[10] = -2.0
    x3, _ = grc.encode_gaussian(mq, np.full(64, 0.05), np.zeros(64), np.ones(64), 7,
                                chansim.prng.stream_id("grc", 0, 3), "gprs-dyadic")
    keep = np.arange(64) != 10
    assert np.array_equal(x1[keep], x3[keep])
    # Indices decode alone, without the message.
    z = grc.decode_indices(info1["indices"], np.zeros(64), np.ones(64), 7, chansim.prng.stream_id("grc", 0, 3),
                           "gprs-dyadic")
    assert np.array_equal(z, x1)


def test_shapes_broadcast():
    x, data = grc.encode_gaussian(np.linspace(-1, 1, 12).reshape(3, 4), 0.1, 0.0, 1.0, 1, 2)
    assert x.shape == (3, 4)
    y = grc.decode_gaussian(data, np.zeros((3, 4)), 1.0, 1, 2)
    assert np.array_equal(x, y)


def test_stretch_matches_direct_integration():
    """S = sigma(h) against scipy quad of 1 / (w_Q(h) - h w_P(h)) in h."""
    for mq, sq in [(0.7, 0.3), (2.0, 0.05), (-1.0, 0.8)]:
        s, m = sq, mq
        xs = m / (1 - s * s)
        c = 1 / s**2 - 1
        log_rstar = -np.log(s) + m * xs / 2

        def denom(h):
            d = np.sqrt(2 * (log_rstar - np.log(h)) / c)
            wp = stats.norm.cdf(xs + d) - stats.norm.cdf(xs - d)
            wq = stats.norm.cdf((xs + d - m) / s) - stats.norm.cdf((xs - d - m) / s)
            return wq - h * wp

        deltas = np.array([0.05, 0.2, 0.5]) * s
        S, g, h, info = grc.stretch(mq, sq, 0.0, 1.0, deltas)
        for d_, s_, h_ in zip(deltas, S, h):
            direct, err = integrate.quad(lambda t: 1 / denom(t), 0, h_, limit=400, epsrel=1e-11)
            assert abs(s_ - direct) <= 1e-8 * direct + 2 * err, (mq, sq, d_, s_, direct)
        assert np.all(np.diff(S) < 0)


# ---- bad input ---------------------------------------------------------------

def _args(**over):
    a = dict(mu_q=np.zeros(4), sigma_q=np.full(4, 0.5), mu_p=np.zeros(4), sigma_p=np.ones(4), seed=1, stream=2)
    a.update(over)
    return a


@pytest.mark.parametrize("over, match", [
    (dict(mu_q=np.array([0, np.nan, 0, 0.0])), "mu_q contains NaN"),
    (dict(sigma_p=np.array([1, 1, np.inf, 1.0])), "sigma_p contains NaN or Inf"),
    (dict(sigma_q=np.array([0.5, 0.0, 0.5, 0.5])), "sigma_q must be > 0"),
    (dict(sigma_p=np.array([1, 1, -1, 1.0])), "sigma_p must be > 0"),
    (dict(mu_p=np.zeros(3)), "do not broadcast"),
    (dict(sigma_q=np.full(4, 1.5)), "sigma_q > sigma_p.*D_inf"),
    (dict(sigma_q=np.ones(4), mu_q=np.full(4, 0.1)), "sigma_q == sigma_p with mu_q != mu_p"),
    (dict(mu_q=np.full(4, 40.0)), "30 prior standard deviations"),
    (dict(mu_q=np.full(4, 2.0), sigma_q=np.full(4, 1e-12)), "narrower than float64"),
    (dict(seed=-1), "seed"),
    (dict(stream=2**64), "stream"),
    (dict(mu_q=np.array(["a"] * 4)), "real numeric"),
])
def test_bad_parameters(over, match):
    with pytest.raises(ValueError, match=match):
        grc.encode_gaussian(**_args(**over))


def test_bad_methods():
    for bad in ["pfr", "grc", 3, None]:
        with pytest.raises(ValueError, match="unknown method"):
            grc.encode_gaussian(**_args(), method=bad)
        with pytest.raises(ValueError, match="unknown method"):
            grc.decode_gaussian(b"", np.zeros(4), np.ones(4), 1, 2, method=bad)


def test_method_is_in_the_message():
    """GPRS and GRC with one split rule share the tree, so only the header tells them apart; it must."""
    a = _args()
    for enc, dec in [("grc-sample", "gprs-sample"), ("grc-dyadic", "gprs-dyadic"), ("gprs-dyadic", "grc-dyadic")]:
        _, data = grc.encode_gaussian(**a, method=enc)
        assert data[5] == grc.METHODS[enc]
        with pytest.raises(chansim.FormatError, match=f"'{enc}', not the requested '{dec}'"):
            grc.decode_gaussian(data, a["mu_p"], a["sigma_p"], 1, 2, dec)


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")
@pytest.mark.parametrize("mq, sq", [(0.7, 0.3), (2.0, 0.05), (-1.0, 0.95)])
def test_grc_excess_mass_matches_scipy(mq, sq):
    """int_(a, b) (r - h)_+ dP against scipy quad, for levels up to 1 - 1e-6 of sup r (cancellation)."""
    s, m = sq, mq
    xs, c = m / (1 - s * s), 1 / s**2 - 1
    log_rstar = -np.log(s) + m * xs / 2

    def r(x):
        return np.exp(log_rstar - 0.5 * c * (x - xs) ** 2)

    for frac in [0.0, 0.3, 0.9, 1 - 1e-6]:
        h = frac * np.exp(log_rstar)
        w = np.sqrt(2 * (log_rstar - np.log(h)) / c) if h > 0 else 40.0
        for a, b in [(xs - 2 * w, xs + 2 * w), (xs - 0.2 * w, xs + 0.7 * w), (-np.inf, xs - 0.5 * w)]:
            got = grc.excess_mass(mq, sq, 0.0, 1.0, a, b, h)[0]
            lo, hi = max(a, xs - w), min(b, xs + w)
            ref, err = integrate.quad(lambda x: max(r(x) - h, 0.0) * stats.norm.pdf(x), lo, hi, epsabs=0,
                                      epsrel=1e-12, limit=200)
            # r - h inherits the rounding of log r* (a few ulp) amplified by 1 / (1 - h / r*).
            tol = 1e-9 + 1e-14 / (1 - frac)
            assert abs(got - ref) <= tol * ref + 2 * err, (frac, a, b, got, ref)


@pytest.mark.parametrize("method", METHODS)
def test_step_cap_raises(method):
    with pytest.raises(RuntimeError, match=f"{method} examined max_steps"):
        grc.encode_gaussian(np.full(8, 3.0), np.full(8, 1e-4), np.zeros(8), np.ones(8), 1, 2, method,
                            max_steps=3)
    with pytest.raises(ValueError, match="max_steps"):
        grc.encode_gaussian(**_args(), max_steps=0)


def test_corrupted_messages_raise_format_error():
    n = 50
    mq, sq, mp, sp = np.linspace(-1, 1, n), np.full(n, 0.05), np.zeros(n), np.ones(n)
    x, data = grc.encode_gaussian(mq, sq, mp, sp, 9, 9, "gprs-sample")
    rng = np.random.default_rng(0)
    bad = [b"", b"CSGP", data[:-1], data[:10], data + b"\0", b"X" + data[1:], bytes(len(data))]
    for pos in rng.integers(0, len(data), 40):
        b = bytearray(data)
        b[pos] ^= 1 << int(rng.integers(0, 8))
        bad.append(bytes(b))
    for b in bad:
        with pytest.raises(chansim.FormatError):
            grc.decode_gaussian(b, mp, sp, 9, 9, "gprs-sample")
    with pytest.raises(chansim.FormatError, match="channels"):
        grc.decode_gaussian(data, mp[:-1], sp[:-1], 9, 9, "gprs-sample")
    with pytest.raises(chansim.FormatError, match="split rule"):
        grc.decode_gaussian(data, mp, sp, 9, 9, "gprs-dyadic")
    with pytest.raises(ValueError, match="bytes"):
        grc.decode_gaussian("text", mp, sp, 9, 9, "gprs-sample")
    # Every truncation and every single-bit flip, in a child process: FormatError or a value, never a crash.
    check_decoder_robust(functools.partial(grc.decode_gaussian, mu_p=mp, sigma_p=sp, seed=9, stream=9,
                                           method="gprs-sample"), data, random_inputs=8, flips=None,
                         exceptions=(chansim.FormatError,))
    # A forged header claiming 2^60 channels is rejected without allocating.
    forged = bytearray(data[:16]) + bytes(4)
    forged[8:16] = (1 << 60).to_bytes(8, "little")
    with pytest.raises(chansim.FormatError):
        grc.decode_gaussian(bytes(forged), mp, sp, 9, 9, "gprs-sample")
