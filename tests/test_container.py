"""The codec container (docs/format.md §6): exact round trips, prefixes, and a clear
FormatError for every kind of bad file."""

import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chansim import FormatError
from chansim.codecs import container as C

MID = "ab" * 32


def _file(**kw):
    base = dict(codec="diffc", model_tag=C.model_tag(MID), height=512, width=768, seed=2**64 - 1,
                settings=b"\x01\x02", sections=[b"x" * 300, b"", b"yz"])
    base.update(kw)
    return C.Container(**base)


def _recrc(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body))


@settings(derandomize=True, max_examples=60, deadline=None)
@given(codec=st.sampled_from(sorted(C.CODEC_IDS)), h=st.integers(1, 4096), w=st.integers(1, 4096),
       seed=st.integers(0, 2**64 - 1), settings_=st.binary(max_size=300),
       sections=st.lists(st.binary(max_size=200), max_size=12))
def test_round_trip_and_prefixes(codec, h, w, seed, settings_, sections):
    c = _file(codec=codec, height=h, width=w, seed=seed, settings=settings_, sections=sections)
    data = c.pack()
    assert C.unpack(data, codec=codec, model_id=MID) == c
    offsets = C.section_offsets(data)
    assert [data[a:b] for a, b in offsets] == sections
    for k in range(len(sections) + 1):
        assert C.unpack(C.truncate(data, k)).sections == sections[:k]


def test_every_truncation_and_bit_flip_is_a_format_error():
    data = _file().pack()
    for n in range(len(data)):
        with pytest.raises(FormatError):
            C.unpack(data[:n])
    for bit in range(8 * len(data)):
        bad = bytearray(data)
        bad[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(FormatError):
            C.unpack(bytes(bad))


@pytest.mark.parametrize("edit, message", [
    (lambda d: b"PNG!" + d[4:], "bad magic"),
    (lambda d: _recrc(d[:4] + b"\x02" + d[5:-4]), "version 2.*newer"),
    (lambda d: _recrc(d[:5] + b"\x09" + d[6:-4]), "unknown codec id 9"),
    (lambda d: _recrc(d[:-4] + b"\x00"), "unexpected bytes|truncated"),
    (lambda d: d + b"\x00", "unexpected bytes"),
])
def test_bad_files_name_the_problem(edit, message):
    with pytest.raises(FormatError, match=message):
        C.unpack(edit(_file().pack()))


def test_foreign_codec_and_model_are_named():
    data = _file().pack()
    with pytest.raises(FormatError, match="written by the diffc codec, not uqdm"):
        C.unpack(data, codec="uqdm")
    with pytest.raises(FormatError, match="model mismatch: .*abababababababab.*cdcdcdcdcdcdcdcd"):
        C.unpack(data, model_id="cd" * 32)


def test_hostile_lengths_are_refused_before_allocating():
    head = C.MAGIC + bytes([C.VERSION, C.CODEC_IDS["uqdm"]]) + bytes(8)
    huge = bytearray()
    C.put_varint(huge, 1 << 40)
    with pytest.raises(FormatError, match="height"):
        C.unpack(_recrc(head + bytes(huge)))
    side = bytearray()
    C.put_varint(side, C.MAX_SIDE)
    with pytest.raises(FormatError, match="outside the supported range"):
        C.unpack(_recrc(head + bytes(side) + bytes(side)))
    # A section length beyond the bytes present: refused, not read.
    body = bytearray(head)
    for v in (16, 16, 0, 0, 1):
        C.put_varint(body, v)
    C.put_varint(body, 1 << 50)
    with pytest.raises(FormatError, match="section 0"):
        C.unpack(_recrc(bytes(body)))
    # An 11-byte varint overflows 64 bits.
    with pytest.raises(FormatError, match="overflows 64 bits|truncated"):
        C.unpack(_recrc(head + b"\xff" * 10 + b"\x7f"))


def test_writer_rejects_what_a_reader_would_refuse():
    with pytest.raises(ValueError, match="unknown codec"):
        _file(codec="jpeg").pack()
    with pytest.raises(ValueError, match="outside the supported range"):
        _file(height=0).pack()
    with pytest.raises(ValueError, match="hex"):
        C.model_tag("zz" * 32)
    with pytest.raises(ValueError, match="sections must be in"):
        C.truncate(_file().pack(), 4)


def test_one_varint_rule_for_every_python_reader():
    """chansim.varint is the one LEB128 reader: ≤ 10 bytes, 10th byte 0 or 1 (as format.cpp)."""
    from chansim import pfr, varint

    for v in (0, 1, 127, 128, 300, 1 << 35, (1 << 64) - 1):
        enc = varint.encode(v)
        assert varint.read(enc + b"\xaa", 0) == (v, len(enc))
        assert pfr._read_varint(b"\x00" + enc, 1) == (v, 1 + len(enc))
        assert C.Reader(enc).varint("v") == v
    assert varint.encode((1 << 64) - 1) == b"\xff" * 9 + b"\x01"
    for bad, message in ((b"\xff" * 9 + b"\x02", "overflows 64 bits"),   # 2**64: 10th byte above 1
                         (b"\x80" * 9 + b"\x81\x00", "overflows 64 bits"),  # an 11th byte
                         (b"\x80\x80", "truncated")):
        for read in (lambda b: varint.read(b, 0), lambda b: pfr._read_varint(b, 0), lambda b: C.Reader(b).varint("v")):
            with pytest.raises(FormatError, match=message):
                read(bad)
    with pytest.raises(FormatError, match="exceeds its limit 5"):
        varint.read(varint.encode(6), 0, "width", limit=5)
    with pytest.raises(ValueError, match="out of range"):
        varint.encode(1 << 64)
    with pytest.raises(ValueError, match="out of range"):
        varint.encode(-1)
