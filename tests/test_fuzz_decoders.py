"""Every decoder against hostile input: truncation at every byte, every single-bit flip,
random bytes and hypothesis-chosen edits of small valid messages.

The contract under test (DESIGN.md): a truncated, corrupted or foreign message raises
``chansim.FormatError`` — never another exception, a crash, a hang or a huge allocation.
Formats with a CRC32 (PFR, GRC/GPRS, the codec container) must reject every truncation
and every single-bit flip outright (CRC-32 detects all 1-bit errors); to reach the
parsers behind the checksum, the same edits are also tried with the CRC recomputed
("CRC-fixed"), where the outcome may be FormatError or a well-formed result. rANS
streams carry no checksum (the formats that embed them do), so a flipped bit may decode
to other valid symbols, but never to anything else.

The targets here are shared with the long coverage-guided job ``benchmarks/fuzz_decoders.py``.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, List

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chansim import FormatError, grc, pfr, rans

SEED, STREAM = 12345, 77

FAST = settings(derandomize=True, deadline=None, max_examples=300, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SLOW = settings(FAST, max_examples=15)


@dataclass
class Target:
    name: str
    seeds: List[bytes]  # valid messages
    decode: Callable[[bytes], object]  # returns normally or raises FormatError; anything else is a bug
    crc: bool  # the last 4 bytes are CRC-32 (zlib) of everything before them, little-endian
    slow: bool = False
    stride: int = 1  # the deterministic sweeps try every `stride`-th bit flip (the long job tries all)


def fix_crc(data: bytes) -> bytes:
    """The same bytes with a valid trailing CRC-32 (what a forger — or a fuzzer — would do)."""
    if len(data) < 4:
        return data
    return data[:-4] + struct.pack("<I", zlib.crc32(data[:-4]))


def flip(data: bytes, bit: int) -> bytes:
    b = bytearray(data)
    b[bit // 8] ^= 1 << (bit % 8)
    return bytes(b)


# ---- rANS ------------------------------------------------------------------------------------

_RANS_CALLS = (64, 32, 24, 16, 16)
_RANS_SEGMENTED = 4200  # symbols in the segmented stream: two segments of at most 4096


def _rans_message() -> bytes:
    """Every model family, one call each, in one stream."""
    rng = np.random.default_rng(1)
    n_g, n_lu, n_cat, n_z, n_u = _RANS_CALLS
    enc = rans.Encoder(lanes=4)
    enc.encode_gaussian(np.round(rng.normal(0, 3, n_g)).astype(np.int32), np.linspace(-2, 2, n_g), 3.0)
    enc.encode_logistic_dithered(np.round(rng.normal(0, 2, n_lu)).astype(np.int32), 0.3, 1.5, 1.0, 0.25)
    enc.encode_categorical(rng.integers(0, 5, n_cat), [0.1, 0.2, 0.3, 0.25, 0.15])
    enc.encode_zipf(rng.integers(1, 40, n_z), 1.3, 1000)
    enc.encode_uniform(rng.integers(-5, 6, n_u), -5, 5)
    return enc.finish()


def decode_rans(data: bytes):
    n_g, n_lu, n_cat, n_z, n_u = _RANS_CALLS
    dec = rans.Decoder(data)
    out = [dec.decode_gaussian(np.linspace(-2, 2, n_g), 3.0),
           dec.decode_logistic_dithered(0.3, 1.5, 1.0, 0.25, shape=(n_lu,)),
           dec.decode_categorical([0.1, 0.2, 0.3, 0.25, 0.15], shape=(n_cat,)),
           dec.decode_zipf(1.3, 1000, shape=(n_z,)),
           dec.decode_uniform(-5, 5, shape=(n_u,))]
    # No range check: every family keeps an escape so that any int32 is codable (docs/format.md
    # §2.4), so a corrupted stream may decode to symbols outside a call's support; callers that
    # index with them check (as pfr does for its Zipf indices).
    for a, n in zip(out, _RANS_CALLS):
        assert a.shape == (n,) and a.dtype == np.int32
    return out


def _rans_segmented_message() -> bytes:
    """Two independently coded segments (segment table in the header), eight lanes."""
    rng = np.random.default_rng(3)
    enc = rans.Encoder(lanes=8, segment_size=4096)
    enc.encode_gaussian(np.round(rng.normal(0, 0.7, _RANS_SEGMENTED)).astype(np.int32), 0.0, 0.7)
    return enc.finish()


def decode_rans_segmented(data: bytes):
    out = rans.Decoder(data).decode_gaussian(0.0, 0.7, shape=(_RANS_SEGMENTED,))
    assert out.shape == (_RANS_SEGMENTED,) and out.dtype == np.int32
    return out


# ---- PFR -------------------------------------------------------------------------------------

_PFR_D = 48


def _pfr_messages() -> List[bytes]:
    rng = np.random.default_rng(2)
    mu_q = rng.normal(0, 0.6, _PFR_D)
    out = []
    for mode, kw in (("exact", dict(chunk_bits=8.0)), ("budgeted", dict(chunk_bits=6.0)), ("orc", dict(chunk_bits=6.0))):
        out.append(pfr.encode_gaussian(mu_q, 0.5, 0.0, 1.0, SEED, STREAM, mode=mode, **kw)[1])
    return out


def decode_pfr(data: bytes):
    # As a codec calls it: the prior has the sample's shape, so a forged length cannot size an allocation.
    s = pfr.decode_gaussian(data, np.zeros(_PFR_D), np.ones(_PFR_D), SEED, STREAM)
    assert s.shape == (_PFR_D,) and np.isfinite(s).all()
    return s


# ---- GRC / GPRS ------------------------------------------------------------------------------

_GRC_N = 24


def _grc_message(method: str) -> bytes:
    mu = np.linspace(-1.5, 1.5, _GRC_N)
    return grc.encode_gaussian(mu, 0.3, 0.0, 1.0, SEED, STREAM, method=method)[1]


def _decode_grc(method):
    def decode(data: bytes):
        s = grc.decode_gaussian(data, np.zeros(_GRC_N), np.ones(_GRC_N), SEED, STREAM, method=method)
        assert s.shape == (_GRC_N,) and np.isfinite(s).all()
        return s

    return decode


# ---- codecs ----------------------------------------------------------------------------------


def _codec_image() -> np.ndarray:
    y, x = np.mgrid[0:16, 0:16]
    return np.stack([x * 15, y * 15, (x ^ y) * 15], -1).astype(np.uint8)


@lru_cache(maxsize=None)
def codec(name: str):
    pytest.importorskip("torch")
    from chansim.codecs import DiffC, UQDM

    cls = {"uqdm": UQDM, "diffc": DiffC}[name]
    c = cls.pretrained()
    if not hasattr(c, "compress"):
        pytest.skip(f"{cls.__name__} has no compress() yet")
    return c


# The cheapest reconstruction of each codec: parsing and checks do not depend on it.
_CHEAP = {"uqdm": "mmse", "diffc": "mmse"}


def _codec_target(name: str) -> Target:
    c = codec(name)
    seeds = [c.compress(_codec_image(), quality=list(c.qualities)[0])]

    def decode(data: bytes):
        out = np.asarray(c.decompress(data, reconstruction=_CHEAP[name]))
        assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3
        return out

    return Target(name, seeds, decode, crc=True, slow=True, stride=9)


def container_target() -> Target:
    from chansim.codecs.container import Container, unpack

    seeds = [Container("uqdm", bytes(range(8)), 17, 40, 2**63 + 5, b"\x01\x02", [b"abc", b"", b"\xff" * 9]).pack(),
             Container("diffc", bytes(8), 1, 1, 0, b"", []).pack()]
    return Target("container", seeds, unpack, crc=True)


@lru_cache(maxsize=None)
def target(name: str) -> Target:
    if name == "rans":
        return Target("rans", [_rans_message()], decode_rans, crc=False)
    if name == "rans-segments":
        return Target("rans-segments", [_rans_segmented_message()], decode_rans_segmented, crc=False, stride=7)
    if name == "pfr":
        return Target("pfr", _pfr_messages(), decode_pfr, crc=True)
    if name in ("grc-dyadic", "grc-sample"):
        method = "gprs-" + name.split("-")[1]
        return Target(name, [_grc_message(method)], _decode_grc(method), crc=True)
    if name == "container":
        return container_target()
    return _codec_target(name)


CORE = ["rans", "rans-segments", "pfr", "grc-dyadic", "grc-sample", "container"]
CODECS = ["uqdm", "diffc"]
ALL = CORE + CODECS


def outcome(t: Target, data: bytes) -> str:
    """'ok' or 'format'; any other exception propagates and fails the test with this input."""
    try:
        t.decode(data)
    except FormatError:
        return "format"
    return "ok"


# ---- deterministic sweeps --------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_seeds_decode(name):
    t = target(name)
    for s in t.seeds:
        assert outcome(t, s) == "ok"


@pytest.mark.parametrize("name", ALL)
def test_truncation_at_every_byte(name):
    t = target(name)
    for s in t.seeds:
        for n in range(len(s)):
            assert outcome(t, s[:n]) == "format", f"{name}: a {n}-byte prefix of a {len(s)}-byte message decoded"
        if t.crc and not t.slow:
            for n in range(4, len(s)):  # the structure cut short, behind a valid checksum
                outcome(t, fix_crc(s[:n - 4] + b"\0\0\0\0"))


@pytest.mark.parametrize("name", ALL)
def test_every_single_bit_flip(name):
    t = target(name)
    for s in t.seeds:
        # Every bit of the first 64 bytes (magic, header, tables), every `stride`-th one after.
        bits = sorted(set(range(min(8 * len(s), 512))) | set(range(0, 8 * len(s), t.stride)))
        for bit in bits:
            r = outcome(t, flip(s, bit))
            if t.crc:
                assert r == "format", f"{name}: flipping bit {bit} went undetected"
        if t.crc:
            # Behind a recomputed CRC: every bit for the fast targets; for the codecs, whose every
            # accepted step runs the network, eight bits spread over the file.
            for bit in range(0, 8 * (len(s) - 4), max(9, 8 * len(s) // 8) if t.slow else 1):
                outcome(t, fix_crc(flip(s, bit)))


def _random_bytes_test(name):
    t = target(name)

    @(SLOW if t.slow else FAST)
    @given(data=st.binary(max_size=600), keep=st.integers(0, 64), crc=st.booleans())
    def run(data, keep, crc):
        # Random bytes, alone and after a valid message's first `keep` bytes (its magic and header).
        for s in t.seeds[:1]:
            for candidate in (data, s[:keep] + data):
                outcome(t, fix_crc(candidate) if crc else candidate)

    run()


@pytest.mark.parametrize("name", ALL)
def test_random_bytes(name):
    _random_bytes_test(name)


@pytest.mark.parametrize("name", ALL)
def test_random_edits(name):
    t = target(name)
    edit = st.tuples(st.sampled_from(["set", "insert", "delete"]), st.integers(0, 1 << 16), st.integers(0, 255))

    @(SLOW if t.slow else FAST)
    @given(which=st.integers(0, 7), edits=st.lists(edit, min_size=1, max_size=6), crc=st.booleans())
    def run(which, edits, crc):
        b = bytearray(t.seeds[which % len(t.seeds)])
        for op, pos, val in edits:
            pos %= len(b) + 1
            if op == "set" and pos < len(b):
                b[pos] = val
            elif op == "insert":
                b.insert(pos, val)
            elif op == "delete" and pos < len(b):
                del b[pos]
        data = bytes(b)
        r = outcome(t, fix_crc(data) if (crc and t.crc) else data)
        if t.crc and not crc and data != t.seeds[which % len(t.seeds)]:
            # Edits that leave the CRC stale: only a checksum collision (odds 2^-32) could pass.
            assert r == "format"

    run()
