"""chansim.testing itself: the docstring examples run, the strategies generate what they promise
and shrink to simple cases, results carry their numbers, messages are readable, nothing needs
torch. (The checks' power against wrong simulators: test_testing_power.py.)"""

from __future__ import annotations

import doctest
import functools
import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, find, given, settings

import chansim.testing
from chansim.testing import CheckFailed, Gaussian, Uniform, check_code_length, check_exact, dinf_bits, kl_bits
from chansim.testing import strategies as cst

SETTINGS = dict(derandomize=True, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("module", ["chansim.testing", "chansim.testing._laws", "chansim.testing.checks",
                                    "chansim.testing.strategies"])
def test_docstring_examples_run(module):
    mod = sys.modules[module] if module in sys.modules else __import__(module, fromlist=["_"])
    res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert res.attempted > 0 and res.failed == 0


def test_imports_without_torch_or_hypothesis_until_strategies():
    """The checks need neither PyTorch nor Hypothesis; importing chansim.testing pulls neither."""
    code = ("import sys, chansim.testing; "
            "assert 'torch' not in sys.modules and 'hypothesis' not in sys.modules, "
            "[m for m in ('torch', 'hypothesis') if m in sys.modules]")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_closed_forms():
    # KL(N(1, 0.5²) ‖ N(0, 1)) = ½(0.25 + 1 − 1 − ln 0.25) nats.
    assert kl_bits((1.0, 0.5), (0.0, 1.0)) == pytest.approx(0.5 * (0.25 - np.log(0.25)) / np.log(2))
    assert dinf_bits((1.0, 0.5), (0.0, 1.0)) == pytest.approx((np.log(2) + 1 / (2 * 0.75)) / np.log(2))
    assert dinf_bits((1.0, 1.0), (0.0, 1.0)) == np.inf and dinf_bits((0.0, 1.0), (0.0, 1.0)) == 0
    assert kl_bits(Gaussian([0, 0], [1, 1]), Gaussian(0, 1)) == 0
    with pytest.raises(ValueError):
        Gaussian(0.0, 0.0)
    with pytest.raises(TypeError, match="cdf"):
        check_exact(lambda s: (0.0, b""), None, q="normal", n=10)


def test_failure_message_states_expectation_statistic_p_n_alpha():
    """A simulator that ignores q (always samples p) fails with every number in the message."""
    def encode(seed):
        return np.random.default_rng(seed).normal(size=200), b"\0" * 8

    with pytest.raises(CheckFailed) as e:
        check_exact(encode, None, Gaussian(0.5, 1.0), Gaussian(0.0, 1.0), batched=True, n=1000)
    msg, r = str(e.value), e.value.result
    assert isinstance(e.value, AssertionError)
    for part in ("do not follow q", "statistic =", "p =", "n = 1000", "alpha = 0.001"):
        assert part in msg, msg
    assert r.n == 1000 and r.alpha == 1e-3 and r.p_value < 1e-3 and r.samples.shape == (1000,)
    assert len(r.ks_pvalues) == 1 and len(r.chi2_pvalues) == 1
    # The same, without raising.
    r2 = check_exact(encode, None, Gaussian(0.5, 1.0), batched=True, n=1000, raise_on_failure=False)
    assert not r2.passed and r2.p_value == r.p_value  # derandomized: the same verdict every run
    # And the code-length check's message.
    r3 = check_code_length(encode, Gaussian(0.5, 1.0), Gaussian(0.0, 1.0), batched=True, n=400,
                           raise_on_failure=False)
    assert r3.passed and r3.mean_bits == pytest.approx(64 / 200) and "bound =" in r3.message


def test_joint_law_catches_what_the_marginals_miss():
    """Two coordinates with exact N(0, 1) marginals but perfectly correlated: every KS passes,
    the χ² on random projections rejects."""
    def encode(seed):
        z = np.random.default_rng(seed).normal(size=(500, 1))
        return np.hstack([z, z]), b""

    r = check_exact(encode, None, Gaussian(0.0, 1.0), batched=True, n=2000, raise_on_failure=False)
    assert min(r.ks_pvalues) * 5 > 1e-3
    assert not r.passed and r.worst.startswith("chi-squared")


def test_uniform_law():
    """Uniform(low, high): the CDF is the closed form (x − low)/(high − low), clipped to [0, 1];
    around(c, w) is U(c − w/2, c + w/2); bad bounds are refused; no closed-form KL."""
    q = Uniform([0.0, -2.0], [1.0, 2.0])
    np.testing.assert_array_equal(q.cdf([[0.25, 1.0], [-1.0, 3.0]]), [[0.25, 0.75], [0.0, 1.0]])
    assert q.shape == (2,)
    r = Uniform.around(np.array([[1.0], [3.0]]), [2.0, 4.0])
    assert r.shape == (2, 2) and r.low.tolist() == [[0.0, -1.0], [2.0, 1.0]] and r.high.tolist() == [[2.0, 3.0],
                                                                                                  [4.0, 5.0]]
    for lo, hi in ((0.0, 0.0), (1.0, 0.0), (0.0, np.inf), (np.nan, 1.0)):
        with pytest.raises(ValueError, match="high > low"):
            Uniform(lo, hi)
    with pytest.raises(TypeError, match="Gaussian laws only"):
        kl_bits(Uniform(0, 1), Gaussian(0, 1))


def _uniform_draws(seed, xs, shift=0.0):
    """len(xs) exact draws of U(x − ½, x + ½) (``shift`` moves them), from NumPy, no message."""
    return xs + np.random.default_rng(seed).uniform(-0.5, 0.5, xs.size) + shift, b""


def test_given_is_calibrated_under_the_null():
    """The conditional χ² of check_exact(given=...) on exact draws: its p-value is U(0, 1) — over
    300 derandomized checks (n = 2,000, 5 × 21 cells, 100 degrees of freedom) the count below 0.05
    lies within ±3.5 sd of 15 and the mean statistic within 3.5 standard errors of 100."""
    xs = np.random.default_rng(7).uniform(-4, 4, 2000)
    given = {"x": xs}
    stats_, small = [], 0
    for t in range(300):
        r = check_exact(functools.partial(_uniform_draws, xs=xs), None, Uniform.around(xs, 1.0), n=2000,
                        batched=True, seed=1000 * t, given=given, raise_on_failure=False)
        stat, df = r.given_statistics["x"]
        assert df == 5 * 20
        stats_.append(stat)
        small += r.given_pvalues["x"] < 0.05
    assert abs(small - 15) <= 3.5 * math.sqrt(300 * 0.05 * 0.95), small
    assert abs(np.mean(stats_) - 100) <= 3.5 * math.sqrt(2 * 100 / 300), np.mean(stats_)


def test_given_checks_its_arguments_and_broadcasts_like_q():
    xs = np.linspace(-3, 3, 400)
    q = Uniform.around(xs, 1.0)
    enc = functools.partial(_uniform_draws, xs=xs)
    # one covariate value per coordinate of a call, tiled over calls like q's parameters
    r = check_exact(enc, None, q, n=1200, batched=True, given=xs)
    assert r.passed and list(r.given_pvalues) == ["the covariate"] and r.worst and len(r.chi2_pvalues) == 1
    with pytest.raises(ValueError, match="does not broadcast"):
        check_exact(enc, None, q, n=400, batched=True, given=xs[:10])
    with pytest.raises(ValueError, match="non-finite"):
        check_exact(enc, None, q, n=400, batched=True, given=np.full(400, np.nan))
    with pytest.raises(ValueError, match="at least 10 values per covariate bin"):
        check_exact(enc, None, q, n=40, batched=True, given=xs, given_bins=5)
    with pytest.raises(ValueError, match="given_bins"):
        check_exact(enc, None, q, n=400, batched=True, given=xs, given_bins=1)
    # a shifted sampler fails, and the message names the test, its numbers, n and α
    with pytest.raises(CheckFailed, match="do not follow q") as e:
        check_exact(functools.partial(_uniform_draws, xs=xs, shift=0.2), None, q, n=1200, batched=True, given=xs)
    assert "n = 1200" in str(e.value) and "alpha = 0.001" in str(e.value)


# ---- strategies ------------------------------------------------------------------------------

@settings(max_examples=40, **SETTINGS)
@given(pair=cst.gaussian_pairs(dim=(1, 6), kl_bits=(0.5, 12.0)))
def test_gaussian_pairs_have_the_requested_kl(pair):
    assert 0.5 * (1 - 1e-9) <= pair.kl_bits() <= 12.0 * (1 + 1e-9)
    mq, sq, mp, sp = pair
    assert mq.shape == sq.shape == mp.shape == sp.shape and 1 <= mq.size <= 6
    assert np.all(sq <= sp)


@settings(max_examples=40, **SETTINGS)
@given(pair=cst.gaussian_pairs(dim=(1, 6), dinf_bits=(1.0, 10.0)))
def test_gaussian_pairs_have_the_requested_dinf(pair):
    assert 1.0 * (1 - 1e-9) <= pair.dinf_bits() <= 10.0 * (1 + 1e-9)
    assert np.all(pair.sigma_q < pair.sigma_p)


@settings(max_examples=20, **SETTINGS)
@given(pair=cst.gaussian_pairs(dim=3, kl_bits=4.0, equal_variances=True, standard_prior=True))
def test_gaussian_pairs_equal_variances(pair):
    assert np.array_equal(pair.sigma_q, pair.sigma_p) and np.all(pair.mu_p == 0)
    assert pair.kl_bits() == pytest.approx(4.0, rel=1e-9) and pair.dinf_bits() == np.inf


def test_strategies_shrink_to_simple_cases():
    pair = find(cst.gaussian_pairs(kl_bits=(1.0, 8.0)), lambda p: True)
    assert pair.mu_q.size == 1 and pair.kl_bits() == pytest.approx(1.0)
    assert pair.sigma_q[0] == pair.sigma_p[0] == 1.0 and pair.mu_p[0] == 0.0  # equal variances, N(0, 1)
    # A failing property shrinks to the smallest counterexample: here dimension 3.
    pair = find(cst.gaussian_pairs(dim=(1, 8)), lambda p: p.mu_q.size >= 3)
    assert pair.mu_q.size == 3
    target = find(cst.unimodal_targets(), lambda t: True)
    assert target.name == "gaussian(loc=0, scale=1)" and target.cdf(0.0) == pytest.approx(0.5)
    img = find(cst.images(), lambda a: True)
    assert img.shape == (16, 16, 3) and not img.any()
    assert find(cst.seeds(), lambda s: True) == 0 and find(cst.streams(), lambda s: True) == 0


@settings(max_examples=30, **SETTINGS)
@given(target=cst.unimodal_targets(), image=cst.images(max_side=24, channels=1),
       stream=cst.streams(["dither", "grc"]))
def test_targets_images_streams(target, image, stream):
    x = np.linspace(target.mode - 50, target.mode + 50, 2001)
    logp = target.logpdf(x)
    assert np.argmax(logp) in (999, 1000, 1001)  # the mode (grid step 0.05)
    assert np.all(np.diff(target.cdf(x)) >= 0) and abs(target.cdf(target.mode + 1e6) - 1) < 1e-5
    # The log-density integrates to the CDF's mass over the grid.
    mass = np.trapz(np.exp(logp), x) if hasattr(np, "trapz") else np.trapezoid(np.exp(logp), x)
    assert mass == pytest.approx(float(target.cdf(x[-1]) - target.cdf(x[0])), abs=2e-3)
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 1
    assert 16 <= min(image.shape[:2]) and max(image.shape[:2]) <= 24
    assert stream >> 56 in (chansim.prng.PURPOSES["dither"], chansim.prng.PURPOSES["grc"])


@settings(max_examples=6, **SETTINGS)
@given(target=cst.unimodal_targets(families=("gaussian", "logistic", "laplace")), seed=cst.seeds())
def test_pfr_callback_is_exact_for_unimodal_targets(target, seed):
    """The strategies and the checks together: chansim.pfr.encode_callback on a drawn target
    against p = N(0, 3²)·… in standard units, through check_exact (n = 300, α = 1e-3)."""
    from chansim import pfr

    sp = 3.0

    def log_ratio(eps):  # candidates are ε ~ N(0, 1); x = sp·ε
        e = eps[:, 0]
        return target.logpdf(sp * e) + np.log(sp) + 0.5 * e * e + 0.5 * np.log(2 * np.pi)

    grid = np.linspace(-pfr.EPS_MAX, pfr.EPS_MAX, 20001)
    bound = float(np.max(log_ratio(grid[:, None]))) + 1e-6
    tail = float(target.cdf(-sp * pfr.EPS_MAX) + 1 - target.cdf(sp * pfr.EPS_MAX))
    if bound > 12 or tail > 1e-4:
        return  # beyond the range or budget PFR is exact over; not this test's subject

    def encode(s):
        eps, n = pfr.encode_callback(log_ratio, 1, seed=(seed + s) % 2**64, stream=3, log_r_bound=bound)
        return sp * eps[0], n.to_bytes(8, "little")

    def decode(msg, s):
        return sp * pfr.decode_callback(int.from_bytes(msg, "little"), 1, (seed + s) % 2**64, 3)[0]

    check_exact(encode, decode, target, n=300)
