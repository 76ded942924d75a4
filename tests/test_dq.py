"""Dithered quantization: the simulated channel is exactly x̂ = x + U(−Δ/2, Δ/2),
independent of x; identical results for identical addresses; bad input."""

import functools
import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import chansim
from chansim import dq, prng
from chansim.testing import Uniform, check_deterministic, check_exact


def _check_error_law(x, step, seed, stream, given=None, **dequantize_kw):
    """chansim.testing.check_exact on one vectorised DQ call of len(x) channels: x̂_i against
    q_i = U(x_i − Δ/2, x_i + Δ/2) (KS of the PIT, i.e. of (x̂ − x)/Δ + ½, a chi-squared of its
    normal scores, and with ``given`` a chi-squared of its law given each covariate; Bonferroni
    over them at α = 1e-3); the decoder (dequantize from the indices alone) reproduces x̂ bit
    for bit. Returns (x̂, result)."""
    x = np.asarray(x)
    out = {}

    def encode(s):
        k = dq.quantize(x, step, s, stream)
        out["x_hat"] = dq.dequantize(k, step, s, stream, **dequantize_kw)
        return out["x_hat"], k.tobytes()

    def decode(message, s):
        return dq.dequantize(np.frombuffer(message, np.int32), step, s, stream, **dequantize_kw)

    q = Uniform.around(x.astype(np.float64), step)
    result = check_exact(encode, decode, q, n=x.size, seed=seed, batched=True, given=given)
    return out["x_hat"], result


def test_error_is_uniform_and_independent_of_x():
    """check_exact on 10^6 elements: KS of (x̂ − x)/Δ against U(−½, ½), χ², and the error's law
    given x and given x mod Δ (χ² in 5 equal-count bins of each, 5 × 50 cells), Bonferroni over
    the four at α = 1e-3."""
    n = 1_000_000
    rng = np.random.default_rng(0)
    x = rng.normal(0, 3, n)
    step = 0.37
    xh, r = _check_error_law(x, step, 11, 12, given={"x": x, "x mod step": np.mod(x, step)}, dtype=np.float64)
    e = (xh - x) / step
    assert np.all(np.abs(e) <= 0.5 + 1e-12)
    assert set(r.given_pvalues) == {"x", "x mod step"}


def test_error_uniform_for_a_constant_input():
    """Even for one repeated value (worst case for plain rounding) the error is U(−Δ/2, Δ/2):
    check_exact (KS and χ², α = 1e-3), n = 200,000."""
    x = np.full(200_000, 0.123456, np.float64)
    _check_error_law(x, 1.0, 3, 4, dtype=np.float64)


@settings(derandomize=True, max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**64 - 1), stream=st.integers(0, 2**64 - 1), start=st.integers(0, 2**60),
       n=st.integers(0, 3000), log_step=st.floats(-6, 6), mu=st.floats(-1e4, 1e4))
def test_relative_form_and_random_access(seed, stream, start, n, log_step, mu):
    step = 10.0**log_step
    rng = np.random.default_rng(n)
    x = (mu + rng.normal(0, 5 * step, n)).astype(np.float32)
    k = dq.quantize(x, step, seed, stream, mu=mu, start=start)
    xh = dq.dequantize(k, step, seed, stream, mu=mu, start=start, dtype=np.float64)
    assert np.all(np.abs(xh - x.astype(np.float64)) <= step / 2 * (1 + 1e-9) + 1e-9 * abs(mu))
    # Definition, element by element, from the documented dither.
    u = dq.dither(seed, stream, start, n)
    expected = np.rint((x.astype(np.float64) - mu) / step + u).astype(np.int32)
    np.testing.assert_array_equal(k, expected)
    np.testing.assert_array_equal(xh, mu + step * (k - u))
    if n > 10:  # any element alone, by its address
        j = n // 3
        assert dq.quantize(x[j:j + 1], step, seed, stream, mu=mu, start=start + j)[0] == k[j]


def test_dither_is_the_documented_uniform():
    u = dq.dither(9, 8, 100, 1000)
    np.testing.assert_array_equal(u, prng.uniform(9, 8, 100, 1000, np.float32).astype(np.float64) - 0.5)
    assert np.all(np.abs(u) < 0.5)


def _per_element_workload(x, step, mu):
    # astype: a float32 array unpickled in the child has an equal but not identical dtype object,
    # which chansim._core refuses (bindings compare dtypes with `is`; reported with issue 19).
    x = x.astype(np.float32)
    k = dq.quantize(x, step, 1, 2, mu=mu)
    return k, dq.dequantize(k, step, 1, 2, mu=mu), dq.encode(x, step, 1, 2, mu=mu)[1]


def test_per_element_steps_and_means_and_threads():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(64, 64)).astype(np.float32)
    step = rng.uniform(0.1, 2.0, size=(64, 64))
    mu = rng.normal(size=(64, 1))
    try:
        chansim.set_num_threads(1)
        k1 = dq.quantize(x, step, 1, 2, mu=mu)
        chansim.set_num_threads(2)
        k2 = dq.quantize(x, step, 1, 2, mu=mu)
    finally:
        chansim.set_num_threads(0)
    np.testing.assert_array_equal(k1, k2)
    # Indices, reconstructions and the entropy-coded bytes: the same at 1 and 2 threads and in a fresh process.
    check_deterministic(functools.partial(_per_element_workload, x, step, mu), threads=(1, 2), processes=1)
    assert k1.shape == x.shape and k1.dtype == np.int32
    xh = dq.dequantize(k1, step, 1, 2, mu=mu)
    assert xh.dtype == np.float32 and xh.shape == x.shape
    assert np.all(np.abs(xh - x) <= step / 2 + 1e-5)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: dq.quantize([1.0, np.nan], 1.0, 0, 0), "NaN"),
        (lambda: dq.quantize([1.0, 2.0], 0.0, 0, 0), "step"),
        (lambda: dq.quantize([1.0, 2.0], [1.0, -1.0], 0, 0), "step"),
        (lambda: dq.quantize([1.0, 2.0], [1.0, 1.0, 1.0], 0, 0), "broadcast"),
        (lambda: dq.quantize([1.0, 2.0], 1.0, 0, 0, mu=np.inf), "NaN or Inf"),
        (lambda: dq.quantize([1e30], 1e-3, 0, 0), "int32"),
        (lambda: dq.quantize(["a"], 1.0, 0, 0), "numeric"),
        (lambda: dq.quantize([1.0], 1.0, -1, 0), "seed"),
        (lambda: dq.dequantize([1.5], 1.0, 0, 0), "integer"),
        (lambda: dq.dequantize([2**40], 1.0, 0, 0), "int32"),
        (lambda: dq.dequantize([1], 1.0, 0, 0, dtype=np.int8), "dtype"),
        (lambda: dq.quantize([1.0, 2.0], 1.0, 0, 0, start=2**64 - 1), "2\\*\\*64"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("prior", ["logistic", "gaussian", "laplace"])
def test_encode_decode_round_trip_and_rate(prior):
    """Entropy-coded DQ: the decoder's x̂ equals the encoder's bit for bit, and the code
    length is within 0.5 % + 64 bytes of the ideal −Σ log₂ P(k | u) under g ⋆ U."""
    from scipy import stats as st_

    n = 200_000
    rng = np.random.default_rng(7)
    dist = {"logistic": st_.logistic, "gaussian": st_.norm, "laplace": st_.laplace}[prior]
    mu = rng.normal(0, 2, n)
    scale = rng.uniform(0.3, 3.0, n)
    x = (mu + scale * dist.rvs(size=n, random_state=rng)).astype(np.float32)
    step = 0.8
    x_hat, data = dq.encode(x, step, 5, 6, mu=mu, scale=scale, prior=prior)
    got = dq.decode(data, x.shape, step, 5, 6, mu=mu, scale=scale, prior=prior)
    np.testing.assert_array_equal(got.view(np.uint32), x_hat.view(np.uint32))
    k = dq.quantize(x, step, 5, 6, mu=mu)
    u = dq.dither(5, 6, 0, n)
    p = dist.cdf(step * (k - u + 0.5) / scale) - dist.cdf(step * (k - u - 0.5) / scale)
    ideal = -np.sum(np.log2(p))
    assert 8 * len(data) <= ideal * 1.005 + 512


def test_decode_rejects_damaged_or_mismatched_streams():
    x = np.linspace(-3, 3, 1000).astype(np.float32)
    _, data = dq.encode(x, 0.5, 1, 2)
    with pytest.raises(chansim.FormatError):
        dq.decode(data[: len(data) // 2], x.shape, 0.5, 1, 2)
    with pytest.raises(chansim.FormatError):
        dq.decode(b"garbage" * 10, x.shape, 0.5, 1, 2)
    with pytest.raises(ValueError):
        dq.decode(data, (999,), 0.5, 1, 2)
    with pytest.raises(ValueError, match="prior"):
        dq.encode(x, 0.5, 1, 2, prior="cauchy")
    with pytest.raises(ValueError, match="scale"):
        dq.encode(x, 0.5, 1, 2, scale=0.0)


def _isa_workload() -> bytes:
    """Quantize / dequantize over every tile-loop variant (float32 / float64 input, scalar or per-element mu and
    step, lengths and starts off the 4-lane grid, exact half-integer ties) as one byte string."""
    rng = np.random.default_rng(17)
    parts = []
    for n, start in [(1, 0), (7, 3), (1023, 1), (5000, 12345), (70_001, 2**40 + 1)]:
        x64 = rng.normal(0, 4, n)
        for x in (x64.astype(np.float32), x64):
            for mu in (0.25, rng.normal(size=n)):
                for step in (0.3, rng.uniform(0.05, 2, n)):
                    k = dq.quantize(x, step, 5, 6, mu=mu, start=start)
                    parts += [k.tobytes(), dq.dequantize(k, step, 5, 6, mu=mu, start=start).tobytes(),
                              dq.dequantize(k, step, 5, 6, mu=mu, start=start, dtype=np.float64).tobytes()]
    # Ties: x = j + 1/2 - u makes (x - 0) / 1 + u exactly j + 1/2, rounded half to even.
    u = dq.dither(8, 9, 0, 4099)
    x = (np.arange(4099) - 2000) + 0.5 - u
    parts.append(dq.quantize(x, 1.0, 8, 9).tobytes())
    return b"".join(parts)


def test_ties_round_half_to_even():
    u = dq.dither(8, 9, 0, 4099)
    j = np.arange(4099) - 2000
    k = dq.quantize(j + 0.5 - u, 1.0, 8, 9)
    np.testing.assert_array_equal(k, np.where(j % 2 == 0, j, j + 1))


def test_baseline_and_simd_kernels_agree_bit_for_bit():
    """The AVX2 tile loops (chosen at run time) against the portable loop, forced by CHANSIM_ISA=baseline
    in a fresh process (the choice is made once per process)."""
    here = hashlib.sha256(_isa_workload()).hexdigest()
    code = ("import hashlib, sys; sys.path.insert(0, sys.argv[1]); import test_dq as t; "
            "print(hashlib.sha256(t._isa_workload()).hexdigest())")
    env = dict(os.environ, CHANSIM_ISA="baseline")
    out = subprocess.run([sys.executable, "-c", code, os.path.dirname(__file__)], env=env, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == here


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bad_element_reported_at_its_position_in_the_simd_body(dtype):
    for pos in [0, 3, 4, 1021, 1024, 4097]:
        x = np.zeros(5000, dtype)
        x[pos] = np.nan
        with pytest.raises(ValueError, match=f"NaN or Inf \\(element {pos}\\)"):
            dq.quantize(x, 1.0, 1, 2)
        x[pos] = 1e30 if dtype == np.float32 else 1e300
        with pytest.raises(ValueError, match=f"element {pos} does not fit in int32"):
            dq.quantize(x, 1e-3, 1, 2)


# ---- the error law in float32 (issue 13 item 12) ---------------------------------------------

def _error_ks(x, step, seed=21, stream=22, **kw):
    xh, result = _check_error_law(x, step, seed, stream, **kw)
    e = (xh.astype(np.float64) - np.asarray(x, np.float64)) / step
    return xh, e, result.p_value


def test_error_law_survives_large_values_with_small_steps():
    """x = 1e7 (float32), Δ = 0.01: float32 spacing there is 1.0 = 100 Δ, so a float32 x̂ would
    equal x (error 0, not U(−Δ/2, Δ/2)). The default return is float64 and the error law holds:
    KS against U(−½, ½) on n = 10,000, α = 1e-3. Asking for float32 there is refused."""
    x = np.full(10_000, 1e7, np.float32)
    xh, e, pvalue = _error_ks(x, 0.01)
    assert xh.dtype == np.float64
    assert np.all(np.abs(e) <= 0.5 + 1e-6)
    assert pvalue > 1e-3
    with pytest.raises(ValueError, match="float32"):
        dq.dequantize(dq.quantize(x, 0.01, 21, 22), 0.01, 21, 22, dtype=np.float32)


def test_error_law_in_float32_where_float32_suffices():
    """x ~ N(0, 3²) (float32), Δ = 0.37: float32 spacing ≤ 2^-20 ≪ 2^-12 Δ, so the default return
    stays float32 and its error is U(−Δ/2, Δ/2): KS, n = 200,000, α = 1e-3."""
    x = np.random.default_rng(5).normal(0, 3, 200_000).astype(np.float32)
    xh, e, pvalue = _error_ks(x, 0.37)
    assert xh.dtype == np.float32
    assert pvalue > 1e-3
    # The float32 result is the float64 one rounded once.
    k = dq.quantize(x, 0.37, 21, 22)
    np.testing.assert_array_equal(xh, dq.dequantize(k, 0.37, 21, 22, dtype=np.float64).astype(np.float32))


def test_float32_rule_is_the_documented_spacing_bound():
    """float32 iff every |x̂| has float32 spacing ≤ FLOAT32_MAX_SPACING·Δ (2^-12): around 1024
    the spacing is 2^-13, so Δ = 0.5 keeps float32 and Δ = 0.49 switches to float64."""
    assert dq.FLOAT32_MAX_SPACING == 2.0**-12
    x = np.full(1000, 1024.0 + 100.0, np.float32)
    for step, dtype in ((0.5, np.float32), (0.49, np.float64)):
        k = dq.quantize(x, step, 1, 2)
        assert dq.dequantize(k, step, 1, 2).dtype == dtype
        assert dq.decode(dq.encode(x, step, 1, 2)[1], x.shape, step, 1, 2).dtype == dtype
    # Per-element steps: one element too fine for float32 makes the whole result float64.
    step = np.full(1000, 0.5)
    step[7] = 0.01
    assert dq.dequantize(dq.quantize(x, step, 1, 2), step, 1, 2).dtype == np.float64
