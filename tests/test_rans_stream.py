"""The rANS stream: pinned bytes, thread-count invariance, header fields as in
docs/format.md §2, and a decoder fed truncated, bit-flipped, random or forged
data ends in chansim.FormatError (or in int32 garbage of the requested size),
never in a crash, a hang or a huge allocation."""

import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest

import chansim
from chansim import prng, rans


def _golden_input(n=20000):
    """Inputs built from chansim's addressed randomness with IEEE + and × only,
    so they are the same on every machine and NumPy version."""
    u = prng.uniform(7, 1, 0, n, np.float64)
    z = prng.normal(7, 2, 0, n, np.float64)
    means = 10.0 * u - 5.0
    scales = 0.2 + 9.8 * prng.uniform(7, 3, 0, n, np.float64)
    symbols = np.round(means + scales * z).astype(np.int32)
    symbols[::1000] = 2**31 - 1 - np.arange(len(symbols[::1000]), dtype=np.int32)  # escapes
    return symbols, means, scales


def _golden_stream(**options):
    symbols, means, scales = _golden_input()
    enc = rans.Encoder(**options)
    enc.encode_gaussian(symbols, means, scales)
    enc.encode_logistic_dithered(symbols[:5000], means[:5000], 1.5, 0.75, means[5000:10000] / 10.0)
    enc.encode_categorical(np.arange(-1, 7) % 9, [0.5, 0.25, 0.125, 0.0625, 0.0625])
    enc.encode_zipf(np.arange(1, 300), 1.3, 2**20)
    enc.encode_uniform(np.arange(-1000, 1000, 7), -2**31, 2**31 - 1)
    enc.encode_laplace(symbols[:3000], 0.0, scales[:3000])
    return enc.finish()


# SHA-256 of the golden stream (docs/format.md §2). A change here is a format
# change: bump the stream version and document it.
GOLDEN_SHA256 = "fd0cd75cea415f4e7fa1b96387f7c3d715dcc454ad7af6c66ef2989816d42e06"


def test_golden_bitstream():
    data = _golden_stream()
    assert data[:3] == b"rA\x01"
    assert hashlib.sha256(data).hexdigest() == GOLDEN_SHA256, len(data)
    symbols, means, scales = _golden_input()
    dec = rans.Decoder(data)
    np.testing.assert_array_equal(dec.decode_gaussian(means, scales), symbols)


def test_golden_stream_is_thread_count_and_isa_invariant():
    base = _golden_stream(segment_size=2**12)
    for threads in (1, 2, 3):
        chansim.set_num_threads(threads)
        try:
            assert _golden_stream(segment_size=2**12) == base
        finally:
            chansim.set_num_threads(0)
    # The portable baseline kernels (chosen once per process) give the same bytes.
    code = ("import hashlib, sys; sys.path.insert(0, sys.argv[1]); import test_rans_stream as t; "
            "print(hashlib.sha256(t._golden_stream()).hexdigest())")
    env = dict(os.environ, CHANSIM_ISA="baseline")
    out = subprocess.run([sys.executable, "-c", code, os.path.dirname(__file__)], env=env, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == GOLDEN_SHA256


@pytest.mark.parametrize("threads", [1, 2])
def test_identical_bytes_and_symbols_at_any_thread_count(threads):
    rng = np.random.default_rng(5)
    n = 300_000
    mu, sigma = rng.uniform(-5, 5, n), np.exp(rng.uniform(np.log(0.2), np.log(10), n))
    x = np.round(rng.normal(mu, sigma)).astype(np.int32)
    streams = []
    for t in (1, threads):
        chansim.set_num_threads(t)
        try:
            enc = rans.Encoder(segment_size=2**14)
            enc.encode_gaussian(x, mu, sigma)
            streams.append(enc.finish())
            dec = rans.Decoder(streams[-1])
            # Decode in uneven pieces that straddle segment boundaries.
            parts = [dec.decode_gaussian(mu[a:b], sigma[a:b]) for a, b in ((0, 12345), (12345, 200001), (200001, n))]
            np.testing.assert_array_equal(np.concatenate(parts), x)
        finally:
            chansim.set_num_threads(0)
    assert streams[0] == streams[1]


def test_header_layout():
    enc = rans.Encoder(precision=20, lanes=5, segment_size=2**13)
    enc.encode_uniform(np.zeros(20000, np.int32), 0, 3)
    data = enc.finish()
    assert data[0:2] == b"rA" and data[2] == 1
    assert (data[3], data[4], data[5]) == (20, 5, 13)
    assert data[6:9] == bytes([20000 & 0x7F | 0x80, (20000 >> 7) & 0x7F | 0x80, 20000 >> 14])


# ---- corrupted input -----------------------------------------------------------


def _small_stream():
    rng = np.random.default_rng(6)
    x = np.round(rng.normal(0, 3, 6000)).astype(np.int32)
    x[::500] = 2**31 - 1
    enc = rans.Encoder(segment_size=2**12)
    enc.encode_gaussian(x, 0.0, 3.0)
    return enc.finish(), x


def _try_decode(data, n):
    """FormatError, or n int32 symbols; anything else fails the test."""
    try:
        dec = rans.Decoder(data)
        out = dec.decode_gaussian(0.0, 3.0, shape=min(n, dec.remaining))
    except chansim.FormatError:
        return "error"
    assert out.dtype == np.int32 and out.size <= n
    return "silent"


def test_every_truncation_is_detected():
    data, x = _small_stream()
    outcomes = {_try_decode(data[:k], len(x)) for k in range(len(data))}
    assert outcomes == {"error"}


def test_bit_flips_are_detected_or_bounded():
    """Every single-bit flip of the first 400 bytes (header, segment table, final
    states, first words) and of 400 later positions."""
    data, x = _small_stream()
    rng = np.random.default_rng(7)
    positions = list(range(min(400, len(data)))) + list(rng.integers(400, len(data), 400))
    counts = {"error": 0, "silent": 0}
    for i, pos in enumerate(positions):
        bad = bytearray(data)
        bad[pos] ^= 1 << (i % 8)
        counts[_try_decode(bytes(bad), len(x))] += 1
    # The end-of-segment state checks catch nearly every flip; the rest decode
    # to wrong symbols of the right count.
    assert counts["error"] >= 0.95 * len(positions), counts


def test_random_and_forged_data():
    rng = np.random.default_rng(8)
    for size in (0, 1, 5, 6, 7, 12, 100, 5000):
        for _ in range(20):
            assert _try_decode(rng.integers(0, 256, size, dtype=np.uint8).tobytes(), 10**6) == "error"
    # Valid magic and version, random rest.
    for _ in range(200):
        body = rng.integers(0, 256, int(rng.integers(0, 300)), dtype=np.uint8).tobytes()
        _try_decode(b"rA\x01" + body, 10**6)


def test_forged_counts_never_allocate_what_the_data_cannot_back():
    def varint(v):
        out = bytearray()
        while v >= 0x80:
            out.append(v & 0x7F | 0x80)
            v >>= 7
        return bytes(out + bytes([v]))

    # 2**40 symbols in 2**28 segments claimed by a 20-byte stream.
    forged = b"rA\x01\x18\x08\x0c" + varint(2**40) + b"\x01" * 10
    with pytest.raises(chansim.FormatError, match="segment table"):
        rans.Decoder(forged)
    # A plausible header whose single segment holds almost nothing: asking for
    # many symbols fails before any output is allocated beyond what remains.
    forged = b"rA\x01\x18\x08\x13" + varint(2**19) + b"\x00"
    dec = rans.Decoder(forged)
    with pytest.raises(chansim.FormatError, match="remain"):
        dec.decode_gaussian(0.0, 1.0, shape=2**19 + 1)
    with pytest.raises(chansim.FormatError):
        dec.decode_gaussian(0.0, 1.0, shape=2**19)
    # Unknown version, bad magic.
    good, _ = _small_stream()
    with pytest.raises(chansim.FormatError, match="version"):
        rans.Decoder(good[:2] + b"\x02" + good[3:])
    with pytest.raises(chansim.FormatError, match="magic"):
        rans.Decoder(b"XX" + good[2:])
    with pytest.raises(chansim.FormatError, match="precision"):
        rans.Decoder(good[:3] + b"\x1f" + good[4:])


def test_a_failed_decoder_stays_failed():
    data, x = _small_stream()
    bad = bytearray(data)
    bad[-1] ^= 0xFF
    dec = rans.Decoder(bytes(bad))
    with pytest.raises(chansim.FormatError):
        dec.decode_gaussian(0.0, 3.0, shape=len(x))
    with pytest.raises(chansim.FormatError, match="earlier"):
        dec.decode_gaussian(0.0, 3.0, shape=1)


# ---- an independent known answer: a tiny stream built by hand from docs/format.md §2 -------------

def _varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append(v & 0x7F | 0x80)
        v >>= 7
    return bytes(out + bytes([v]))


def _spec_categorical_stream(symbols, probabilities, p, lanes, s):
    """The bytes of one categorical call, built from §2.1–2.3 and §2.7 alone (no chansim code):
    one segment of m ≤ 4096 symbols is all tail (t = 0, one lane, mode A from x₀ = 1)."""
    M, K = 1 << p, len(probabilities)
    W = M - K - 1
    partial = [0.0]
    for q in probabilities:  # left-to-right partial sums
        partial.append(partial[-1] + q)
    S = partial[-1]
    G = [0] + [int((partial[k] / S) * W) for k in range(1, K)] + [W]
    cum = [G[k] + k for k in range(K + 1)]
    x, words = 1, []
    for sym in reversed(symbols):  # the encoder runs backwards
        c, f = cum[sym], cum[sym + 1] - cum[sym]
        if x >= (1 << (63 - p)) * f:
            words.append(x & 0xFFFFFFFF)
            x >>= 32
        x = (x // f) * M + (x % f) + c
    b = x.bit_length()
    bits = [0]  # mode bit: A
    bits += [(b >> i) & 1 for i in range(6)]  # t = 0: b in 6 bits
    bits += [(x >> i) & 1 for i in range(b - 1)]  # the low b − 1 bits (top bit implicit)
    bits += [0] * (-len(bits) % 8)
    state = bytes(sum(bits[8 * j + i] << i for i in range(8)) for j in range(len(bits) // 8))
    body = state + b"".join(w.to_bytes(4, "little") for w in reversed(words))
    header = b"rA\x01" + bytes([p, lanes, s]) + _varint(len(symbols))
    return header + body, len(words)


def test_tiny_stream_matches_the_spec_by_hand():
    """64 categorical symbols under (½, ¼, ⅛, ⅛) at precision 16: dyadic probabilities make
    every G exact, and 64 symbols are enough for the encoder to emit words. The library's bytes
    equal the ones built from the format text, and decode back."""
    symbols = [(i * i + 3 * i + i // 7) % 4 for i in range(64)]
    probs = [0.5, 0.25, 0.125, 0.125]
    expected, n_words = _spec_categorical_stream(symbols, probs, p=16, lanes=8, s=19)
    assert n_words >= 1  # the renormalisation path is exercised
    enc = rans.Encoder(precision=16)
    enc.encode_categorical(np.array(symbols, np.int32), probs)
    data = enc.finish()
    assert data == expected
    dec = rans.Decoder(expected)
    np.testing.assert_array_equal(dec.decode_categorical(probs, shape=64), symbols)


def test_empty_stream_is_the_bare_header():
    """§2.1: an empty stream is the 7-byte header alone (n = 0, no segments)."""
    assert rans.Encoder(precision=20, lanes=3, segment_size=2**12).finish() == b"rA\x01\x14\x03\x0c\x00"
