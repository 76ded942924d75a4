"""PFR messages: the decoder returns the encoder's sample bit for bit from the bytes
alone; the code length sits near the bound; damaged messages raise FormatError."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import chansim
from chansim import pfr

rans = pytest.importorskip("chansim.rans")


@settings(derandomize=True, max_examples=30, deadline=None)
@given(d=st.integers(0, 256), seed=st.integers(0, 2**64 - 1), stream=st.integers(0, 2**64 - 1),
       shift=st.floats(0.0, 2.0), ratio=st.floats(0.2, 1.0), mode=st.sampled_from(["exact", "budgeted", "orc"]),
       chunk_bits=st.sampled_from([None, 4.0, 8.0]))
def test_round_trip_bit_exact(d, seed, stream, shift, ratio, mode, chunk_bits):
    rng = np.random.default_rng(d + 1)
    sp = rng.uniform(0.5, 2.0, d)
    sq = sp * (min(ratio, 0.9) if mode == "exact" else ratio)
    mp = rng.normal(0, 1, d)
    mq = mp + shift * sp * rng.normal(0, 1, d) / math.sqrt(max(d, 1))
    if chunk_bits is None and mode == "exact" and d and pfr.dinf_bits(mq, sq, mp, sp).sum() > 12:
        chunk_bits = 8.0
    if chunk_bits is None and mode != "exact" and d and pfr.kl_bits(mq, sq, mp, sp).sum() > 12:
        chunk_bits = 8.0
    w = pfr.dinf_bits(mq, sq, mp, sp) if mode == "exact" else pfr.kl_bits(mq, sq, mp, sp)
    if chunk_bits is not None and d and w.max() > chunk_bits:
        with pytest.raises(ValueError, match="chunk_bits"):
            pfr.encode_gaussian(mq, sq, mp, sp, seed, stream, mode=mode, chunk_bits=chunk_bits)
        return
    sample, data = pfr.encode_gaussian(mq, sq, mp, sp, seed, stream, mode=mode, chunk_bits=chunk_bits, pad_bits=2)
    got = pfr.decode_gaussian(data, mp, sp, seed, stream)
    assert got.shape == sample.shape
    np.testing.assert_array_equal(got.view(np.uint64), sample.view(np.uint64))


@pytest.mark.parametrize("d_bits", [1.0, 2.0, 4.0, 8.0])
def test_exact_code_length_near_bound(d_bits):
    """Mean message bits per chunk over 2,000 one-dimensional chunks (header amortised) is at
    most D + log2(D + 1) + 2, with D the chunk KL (sigma_q = 0.6 sigma_p)."""
    n = 2000
    sq, sp = 0.6, 1.0
    base = float(pfr.kl_bits(0.0, sq, 0.0, sp))
    # Shift that makes the per-coordinate KL exactly d_bits.
    dm = math.sqrt(max(0.0, 2 * (d_bits - base) * math.log(2))) * sp
    d_exact = float(pfr.kl_bits(dm, sq, 0.0, sp))
    dinf = float(pfr.dinf_bits(dm, sq, 0.0, sp))
    _, data, info = pfr.encode_gaussian(np.full(n, dm), sq, 0.0, sp, 3, 4, mode="exact",
                                        chunk_bits=dinf + 1e-9, return_info=True)
    bits = 8 * len(data) / n
    assert info["chunks"] == n
    assert bits <= d_exact + math.log2(d_exact + 1) + 2, (bits, d_exact)


def test_budgeted_diagnostic_reports_the_bias():
    n, d_bits = 1000, 14
    m = math.sqrt(2 * d_bits * math.log(2))
    _, _, info = pfr.encode_gaussian(np.full(n, m), 1.0, 0.0, 1.0, 1, 2, mode="budgeted", chunk_bits=d_bits + 0.01,
                                     candidates=2**12, return_info=True)
    # K = 2^12 at D = 14 is far too small: the diagnostic must show it.
    assert info["shift_fraction"] < 0.85 and info["bias_z_mean"] < -1.0
    _, _, info = pfr.encode_gaussian(np.full(n, 0.5), 0.5, 0.0, 1.0, 1, 2, mode="exact", chunk_bits=8,
                                     return_info=True)
    assert abs(info["bias_z_mean"]) < 4 / math.sqrt(info["chunks"]) + 0.05


def _message():
    rng = np.random.default_rng(0)
    mq = rng.normal(0, 0.5, 100)
    return pfr.encode_gaussian(mq, 0.5, 0.0, 1.0, 9, 10, chunk_bits=6.0)


def test_damaged_messages_raise_format_error():
    sample, data = _message()
    for cut in range(len(data)):
        with pytest.raises(chansim.FormatError):
            pfr.decode_gaussian(data[:cut], 0.0, np.ones(100), 9, 10)
    rng = np.random.default_rng(1)
    for _ in range(200):
        bad = bytearray(data)
        bit = int(rng.integers(0, 8 * len(bad)))
        bad[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises((chansim.FormatError, ValueError)):
            pfr.decode_gaussian(bytes(bad), 0.0, np.ones(100), 9, 10)
    for junk in (b"", b"PF", rng.bytes(64), b"XX" + data[2:]):
        with pytest.raises(chansim.FormatError):
            pfr.decode_gaussian(junk, 0.0, np.ones(100), 9, 10)
    # A future version is refused with a clear message.
    future = bytearray(data)
    future[2] = 99
    with pytest.raises(chansim.FormatError, match="version"):
        pfr.decode_gaussian(bytes(future), 0.0, np.ones(100), 9, 10)


def test_decoder_checks_dimensions():
    _, data = _message()
    with pytest.raises(ValueError, match="encoded for 100 coordinates"):
        pfr.decode_gaussian(data, 0.0, np.ones(99), 9, 10)
    with pytest.raises(ValueError, match="sigma_p"):
        pfr.decode_gaussian(data, 0.0, np.zeros(100), 9, 10)


def test_wrong_seed_decodes_a_different_sample():
    sample, data = _message()
    other = pfr.decode_gaussian(data, 0.0, np.ones(100), 9, 11)
    assert not np.array_equal(other, sample)


def test_forged_length_cannot_force_a_huge_allocation():
    """A message sized only by its own header (scalar prior) is capped at 2^22 coordinates."""
    import struct
    import zlib

    _, data = pfr.encode_gaussian(np.full(4, 0.3), 0.5, 0.0, 1.0, 7, 9, mode="exact")
    body = bytearray(data[:-4])
    d, pos = pfr._read_varint(bytes(body), 4)
    assert d == 4
    forged = bytes(body[:4]) + pfr._varint(1 << 26) + bytes(body[pos:])
    forged += struct.pack("<I", zlib.crc32(forged))
    with pytest.raises(chansim.FormatError, match="claims 67108864 coordinates"):
        pfr.decode_gaussian(forged, 0.0, 1.0, 7, 9)
    # Up to the cap the message still sizes the sample itself.
    assert pfr.decode_gaussian(data, 0.0, 1.0, 7, 9).shape == (4,)
