"""The toolkit's own power test: every check of chansim.testing applied to a deliberately wrong
simulator must reject it (and the right one beside it must pass).

Statistical checks run at their documented defaults (check_exact: n = 2,000, α = 1e-3;
check_code_length: n = 500; check_bias: n = 2,000) with the default seed; the detection rates
quoted in the docstrings (5/5) were measured with seeds 0–4 by ``python tests/test_testing_power.py``
(the ``__main__`` block below). The process checks are deterministic.

The wrong simulators live at module level so the process checks can send them to spawned
children (they import this module).
"""

from __future__ import annotations

import functools
import math
import os
import signal
import time

import numpy as np
import pytest

import chansim
from chansim import dq, pfr
from chansim.testing import (CheckFailed, Gaussian, Uniform, check_bias, check_code_length, check_decoder_robust,
                             check_deterministic, check_exact)

STREAM = 11
M = 500  # one-dimensional channels per message (each its own chunk)

# ---- simulators ------------------------------------------------------------------------------

# Equal variances, D = 2.9 bits: q = N(2, 1), p = N(0, 1).
SHIFT = 2.0
D_SHIFT = SHIFT**2 / 2 / math.log(2)


def pfr_budgeted(seed, candidates=8, shift=SHIFT, d_bits=D_SHIFT):
    """Truncated PFR (budget ``candidates``) — biased, whatever it claims."""
    return pfr.encode_gaussian([shift] * M, 1.0, 0.0, 1.0, seed, STREAM, mode="budgeted", chunk_bits=d_bits + 0.01,
                               candidates=candidates)


def pfr_decode(data, seed):
    return pfr.decode_gaussian(data, 0.0, 1.0, seed, STREAM, shape=(M,))


# Unequal variances (exact mode possible): q = N(1.2, 0.6²), p = N(0, 1).
EXACT_Q = (1.2, 0.6)


def pfr_exact(seed):
    return pfr.encode_gaussian([EXACT_Q[0]] * M, EXACT_Q[1], 0.0, 1.0, seed, STREAM, chunk_bits=8.0)


def pfr_decode_last_bit_wrong(data, seed):
    """Right except for one message in four: the last bit of its first coordinate flipped."""
    y = pfr_decode(data, seed)
    if seed % 4 == 3:
        y = y.copy()
        y.view(np.uint64)[0] ^= 1
    return y


X_DQ, STEP = 0.123456, 1.0


def dq_encode(seed, bias=0.0):
    """DQ of a constant input; ``bias`` shifts the encoder's dither (the decoder's is right)."""
    x = np.full(M, X_DQ)
    u = dq.dither(seed, STREAM, 0, M)
    k = np.rint(x / STEP + u + bias).astype(np.int32)
    return STEP * (k - u), k.tobytes()


def dq_decode(data, seed):
    k = np.frombuffer(data, np.int32)
    return STEP * (k - dq.dither(seed, STREAM, 0, k.size))


# Inputs spread over many quantization cells, one call of 2,000 channels (n = 2,000 = one call):
# each input's position in its cell is the covariate of check_exact(given=...).
XS = np.random.default_rng(100).uniform(-4, 4, 2000)
XS_POSITION = {"position in the cell": XS / STEP % 1.0}


def dq_spread_encode(seed, slope=0.0):
    """DQ of the inputs XS; ``slope`` biases the encoder's dither by slope·(position − ½), so the
    error is U(−½, ½) shifted by that much: marginally a little wider than U, conditionally off."""
    u = dq.dither(seed, STREAM, 0, XS.size)
    k = np.rint(XS / STEP + u + slope * (XS_POSITION["position in the cell"] - 0.5)).astype(np.int32)
    return STEP * (k - u), k.tobytes()


def plain_rounding(seed):
    """Rounding without a dither presented as DQ: the error rint(x) − x is a function of the input's
    position in its cell, yet U(−½, ½) over inputs spread uniformly across cells."""
    k = np.rint(XS / STEP).astype(np.int32)
    return STEP * k, k.tobytes()


def plain_rounding_decode(data, seed):
    return STEP * np.frombuffer(data, np.int32)


def pfr_fixed_width(seed, mq=1.2):
    """PFR whose indices are sent as 32-bit integers (papers.md §3: fixed width wastes bits)."""
    p, idx, _ = pfr.search(np.full(M, mq), 1.0, 0.0, 1.0, seed, STREAM, mode="budgeted", chunk_bits=2.0,
                           candidates=2**12)
    x = pfr.sample_of(pfr.candidates_of(p, idx, seed, STREAM), p.order, np.zeros(M), np.ones(M))
    return x, idx.astype("<u4").tobytes()


def pfr_zipf(seed, mq=1.2):
    x, data = pfr.encode_gaussian(np.full(M, mq), 1.0, 0.0, 1.0, seed, STREAM, mode="budgeted", chunk_bits=2.0,
                                  candidates=2**12)
    return x, data, 8 * len(data) - 8 * 25  # less the envelope (≤ 25 bytes)


def thread_dependent_sum():
    """A float32 reduction in as many partial sums as there are threads: the rounding follows
    the thread count."""
    x = chansim.prng.normal(1, 2, 0, 100_000)
    parts = np.array_split(x, chansim.num_threads())
    return np.float32(sum(np.cumsum(p, dtype=np.float32)[-1] for p in parts))  # sequential order


def hash_seeded():
    """Seed from Python's hash() of a name (papers.md §8 pitfall 4): differs between processes."""
    seed = hash("kodim01.png") % 2**64
    return pfr.encode_gaussian([0.5, 0.2], 0.6, 0.0, 1.0, seed, 3)  # the sample too: a small index's bytes may agree


def good_deterministic():
    return pfr.encode_gaussian(np.linspace(-1, 1, 64), 0.5, 0.0, 1.0, 9, 3, chunk_bits=6.0)


def decode_crashes(data):
    """Dies (like a segfault) when the first magic byte arrives with its lowest bit flipped."""
    if data[:1] == bytes([ord("P") ^ 1]):
        os._exit(3)
    return pfr.decode_gaussian(data, 0.0, 1.0, 1, 2)


def decode_killed(data):
    """Killed by a signal (like the OOM killer) on one particular flip."""
    if len(data) > 5 and data[5] == GOOD[5] ^ 0x80:
        os.kill(os.getpid(), signal.SIGKILL)
    return pfr.decode_gaussian(data, 0.0, 1.0, 1, 2)


def decode_undeclared(data):
    """A naive parser: reads the checksum at a fixed offset from the end, so short input raises IndexError."""
    if data[len(data) - 5] is None:  # IndexError for len(data) < 5
        pass
    return pfr.decode_gaussian(data, 0.0, 1.0, 1, 2)


def decode_hangs(data):
    """Never returns when byte 4 is damaged in its top bit (sleeps, so the hang costs no CPU)."""
    if len(data) > 4 and data[4] == GOOD[4] ^ 0x80:
        while True:
            time.sleep(0.05)
    return pfr.decode_gaussian(data, 0.0, 1.0, 1, 2)


def decode_good(data):
    return pfr.decode_gaussian(data, 0.0, 1.0, 1, 2)


GOOD = pfr.encode_gaussian([0.5, 0.2], 0.6, 0.0, 1.0, 1, 2)[1]

P = Gaussian(0.0, 1.0)


# ---- the statistical checks ------------------------------------------------------------------

def test_check_exact_rejects_truncated_pfr_presented_as_exact():
    with pytest.raises(CheckFailed, match="do not follow q") as e:
        check_exact(pfr_budgeted, pfr_decode, Gaussian(SHIFT, 1.0), P, batched=True)
    r = e.value.result
    assert r.n == 2000 and r.alpha == 1e-3 and r.p_value < 1e-3 and not r.mismatches


def test_check_exact_accepts_the_exact_pfr_beside_it():
    r = check_exact(pfr_exact, pfr_decode, Gaussian(*EXACT_Q), P, batched=True)
    assert r.passed and r.p_value > 1e-3


def test_check_exact_rejects_a_biased_dither():
    q = Uniform.around(X_DQ, STEP)
    check_exact(dq_encode, dq_decode, q, batched=True)  # the right DQ passes
    with pytest.raises(CheckFailed, match="do not follow q"):
        check_exact(functools.partial(dq_encode, bias=0.1), dq_decode, q, batched=True)


def test_check_exact_given_rejects_an_input_dependent_error():
    """Plain rounding and a dither biased by 0.15·(position − ½) have (nearly) uniform marginal
    errors over the spread inputs XS: check_exact without ``given`` passes them at n = 2,000; with
    the input's position in its cell as covariate it rejects both, and passes the right DQ."""
    q = Uniform.around(XS, STEP)
    n = XS.size
    assert check_exact(dq_spread_encode, dq_decode, q, batched=True, n=n, given=XS_POSITION).passed
    wrong = [(plain_rounding, plain_rounding_decode), (functools.partial(dq_spread_encode, slope=0.15), dq_decode)]
    for encode, decode in wrong:
        assert check_exact(encode, decode, q, batched=True, n=n).passed  # the marginal law alone: passed
        with pytest.raises(CheckFailed, match="chi-squared given 'position in the cell'") as e:
            check_exact(encode, decode, q, batched=True, n=n, given=XS_POSITION)
        r = e.value.result
        assert r.n == 2000 and r.alpha == 1e-3 and r.p_value < 1e-3 and not r.mismatches


def test_check_exact_rejects_a_decoder_off_in_the_last_bit():
    with pytest.raises(CheckFailed, match="differs from the encoder's") as e:
        check_exact(pfr_exact, pfr_decode_last_bit_wrong, Gaussian(*EXACT_Q), P, batched=True)
    assert e.value.result.mismatches == [3] and "bit for bit" in str(e.value)


def test_check_code_length_rejects_fixed_width_indices():
    q = Gaussian(1.2, 1.0)  # D = 1.04 bits per chunk: bound 1.04 + 1.03 + 4 = 6.1 bits
    assert check_code_length(pfr_zipf, q, P, batched=True).passed
    with pytest.raises(CheckFailed, match="exceeds the bound") as e:
        check_code_length(pfr_fixed_width, q, P, batched=True)
    r = e.value.result
    assert r.mean_bits == 32 and r.bound == pytest.approx(6.07, abs=0.01) and r.n == 500


def test_check_bias_rejects_truncated_pfr_checked_as_exact():
    m = math.sqrt(2 * 8 * math.log(2))  # D = 8 bits
    enc = functools.partial(pfr_budgeted, candidates=2**12, shift=m, d_bits=8.0)
    with pytest.raises(CheckFailed, match="check_bias: the variance along the shift differs") as e:
        check_bias(enc, Gaussian(m, 1.0), P, batched=True)
    r = e.value.result
    assert 0.85 < r.shift_fraction < 0.95 and r.n == 2000 and r.expected_shift == 1.0
    assert r.shift_fraction + 4 * r.shift_se < 1 and r.variance + 4 * r.variance_se < 1  # both moments caught


# ---- the process checks ----------------------------------------------------------------------

def test_check_deterministic_rejects_thread_and_process_dependence(monkeypatch):
    monkeypatch.delenv("PYTHONHASHSEED", raising=False)
    assert check_deterministic(good_deterministic).passed
    with pytest.raises(CheckFailed, match="2 distinct outputs"):
        check_deterministic(thread_dependent_sum, processes=0)
    with pytest.raises(CheckFailed, match="distinct outputs") as e:
        check_deterministic(hash_seeded, threads=(1,), processes=2)
    digests = e.value.result.digests
    assert digests["threads=1"] != digests["process 0 threads=1"]


def test_check_decoder_robust_catches_crashes_undeclared_exceptions_and_hangs():
    assert check_decoder_robust(decode_good, GOOD, random_inputs=8).passed
    cases = [(decode_crashes, "crash", "bit 0 of byte 0 flipped"),
             (decode_killed, "crash", "bit 7 of byte 5 flipped"),
             (decode_undeclared, "undeclared exception", "truncated to 0 of"),
             (decode_hangs, "hang", "bit 7 of byte 4 flipped")]
    for decode, kind, where in cases:
        with pytest.raises(CheckFailed, match="expected a value or a declared exception") as e:
            check_decoder_robust(decode, GOOD, random_inputs=8, timeout=3.0)
        failures = e.value.result.failures
        assert any(k == kind and d.startswith(where) for d, k, _ in failures), (decode.__name__, failures[:3])


# ---- detection rates (run by hand: python tests/test_testing_power.py) -----------------------

if __name__ == "__main__":
    q_dq = Uniform.around(X_DQ, STEP)
    q_xs = Uniform.around(XS, STEP)
    m8 = math.sqrt(2 * 8 * math.log(2))
    runs = {
        "check_exact / truncated PFR (D = 2.9 bits, K = 8)":
            lambda s: check_exact(pfr_budgeted, pfr_decode, Gaussian(SHIFT, 1.0), P, batched=True, seed=s,
                                  raise_on_failure=False),
        "check_exact / dither off by 0.1 step":
            lambda s: check_exact(functools.partial(dq_encode, bias=0.1), dq_decode, q_dq, batched=True, seed=s,
                                  raise_on_failure=False),
        "check_exact / decoder off by one ulp in 1 of 4 messages":
            lambda s: check_exact(pfr_exact, pfr_decode_last_bit_wrong, Gaussian(*EXACT_Q), P, batched=True,
                                  seed=s, raise_on_failure=False),
        "check_code_length / 32-bit indices (D = 1.04 bits)":
            lambda s: check_code_length(pfr_fixed_width, Gaussian(1.2, 1.0), P, batched=True, seed=s,
                                        raise_on_failure=False),
        "check_bias / truncated PFR (D = 8 bits, K = 2^12) as exact":
            lambda s: check_bias(functools.partial(pfr_budgeted, candidates=2**12, shift=m8, d_bits=8.0),
                                 Gaussian(m8, 1.0), P, batched=True, seed=s, raise_on_failure=False),
        "check_exact given the position / plain rounding of spread inputs":
            lambda s: check_exact(plain_rounding, plain_rounding_decode, q_xs, batched=True, seed=s, given=XS_POSITION,
                                  raise_on_failure=False),
        "check_exact given the position / dither biased by 0.15·(position − ½)":
            lambda s: check_exact(functools.partial(dq_spread_encode, slope=0.15), dq_decode, q_xs, batched=True,
                                  seed=s, given=XS_POSITION, raise_on_failure=False),
        "check_exact without given / dither biased by 0.15·(position − ½)":
            lambda s: check_exact(functools.partial(dq_spread_encode, slope=0.15), dq_decode, q_xs, batched=True,
                                  seed=s, raise_on_failure=False),
        "false alarms: check_exact given the position / right DQ of spread inputs":
            lambda s: check_exact(dq_spread_encode, dq_decode, q_xs, batched=True, seed=s, given=XS_POSITION,
                                  raise_on_failure=False),
        "false alarms: check_exact / exact PFR":
            lambda s: check_exact(pfr_exact, pfr_decode, Gaussian(*EXACT_Q), P, batched=True, seed=s,
                                  raise_on_failure=False),
        "false alarms: check_exact / right DQ":
            lambda s: check_exact(dq_encode, dq_decode, q_dq, batched=True, seed=s, raise_on_failure=False),
    }
    seeds = [0, 1000, 2000, 3000, 4000]  # seeds 0–4 in units of 1000 (calls use seed, seed + 1, ...)
    for name, run in runs.items():
        results = [run(s) for s in seeds]
        rejected = sum(not r.passed for r in results)
        print(f"{name}: rejected {rejected}/{len(seeds)}; p-values {[f'{r.p_value:.2g}' for r in results]}")
