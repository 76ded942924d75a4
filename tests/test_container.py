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
    (lambda d: _recrc(d[:4] + b"\x04" + d[5:-4]), "version 4 \\(written by a newer chansim\\)"),
    (lambda d: _recrc(d[:4] + b"\x03" + d[5:-4]), "a tiled chansim file \\(format version 3"),  # §6.1
    (lambda d: d[:4] + b"\x03" + d[5:], "corrupted .*version byte 3.*CRC32 does not match"),
    (lambda d: _recrc(d[:4] + b"\x00" + d[5:-4]), "version 0; this chansim reads versions 1, 2"),
    (lambda d: _recrc(d[:5] + b"\x09" + d[6:-4]), "codec id 9, which this chansim does not know.*newer chansim"),
    (lambda d: d[:5] + b"\x09" + d[6:], "corrupted chansim file: unknown codec id 9 .*CRC32 does not match"),
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
    head = C.MAGIC + bytes([1, C.CODEC_IDS["uqdm"]]) + bytes(8)
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
    with pytest.raises(FormatError, match="corrupted .*length of section 0 is 1125899906842624 bytes, implausible "
                                          "for a 16×16 image"):
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


# ---- issue 17: messages that name the problem; the grayscale flag ----------------------------


def test_a_truncated_file_says_truncated_and_how_many_bytes_are_missing():
    data = _file().pack()
    start, end = C.section_offsets(data)[0]  # section 0 holds 300 bytes
    cut = data[: start + 100]
    with pytest.raises(FormatError, match=r"truncated chansim file: section 0 needs 300 bytes, 100 left "
                                          r"\(at least 204 bytes missing\)"):
        C.unpack(cut)
    half = data[: len(data) // 2]
    with pytest.raises(FormatError, match=r"^truncated chansim file: .*bytes missing"):
        C.unpack(half)
    with pytest.raises(FormatError, match=r"truncated chansim file: CRC32 needs 4 bytes .* 1 left \(3 bytes missing\)"):
        C.unpack(data[:-3])


def test_magic_then_random_bytes_is_not_a_newer_version():
    import random

    rng = random.Random(17)
    for _ in range(200):
        junk = C.MAGIC + bytes(rng.randrange(256) for _ in range(rng.randrange(0, 200)))
        with pytest.raises(FormatError) as exc:
            C.unpack(junk)
        assert "newer" not in str(exc.value), str(exc.value)


@pytest.mark.parametrize("version", [1, 2, 3, 4, 200])
def test_magic_version_then_random_bytes_is_called_corrupted(version):
    """Random bytes after a readable (or future) version byte: the plain and the tiled parser both say
    *corrupted* — never *newer*, and *truncated* only when the bytes really ran out inside the header."""
    import random

    from chansim.codecs import tiling

    rng = random.Random(version)
    for _ in range(300):
        junk = C.MAGIC + bytes([version]) + bytes(rng.randrange(256) for _ in range(rng.randrange(24, 300)))
        with pytest.raises(FormatError) as exc:
            (tiling.unpack if tiling.is_tiled(junk) else C.unpack)(junk)
        msg = str(exc.value)
        assert "newer" not in msg, msg
        assert msg.startswith(("corrupted", "truncated", "not a chansim")), msg
        if msg.startswith("truncated"):     # only possible when a field's declared length ran past the end
            assert "missing" in msg, msg


def test_version_message_of_a_plausible_future_file():
    future = _recrc(_file().pack()[:4] + b"\x07" + _file().pack()[5:-4])
    with pytest.raises(FormatError, match="version 7 \\(written by a newer chansim\\).*upgrade"):
        C.unpack(future)


def test_gray_flag_writes_version_2_and_reads_back():
    plain = _file()
    assert plain.pack()[4] == 1  # no flag: byte-identical version-1 files, as before
    gray = _file(flags=C.FLAG_GRAY)
    data = gray.pack()
    assert data[4] == 2 and data[6] == C.FLAG_GRAY
    assert len(data) == len(plain.pack()) + 1
    back = C.unpack(data)
    assert back == gray and back.flags == C.FLAG_GRAY
    assert [data[a:b] for a, b in C.section_offsets(data)] == gray.sections
    assert C.unpack(C.truncate(data, 1)).flags == C.FLAG_GRAY  # previews keep the flag
    for bad in (0, 2, 0x80):
        body = bytearray(data[:-4])
        body[6] = bad
        with pytest.raises(FormatError, match="container flags"):
            C.unpack(_recrc(bytes(body)))
    with pytest.raises(ValueError, match="unknown container flags"):
        _file(flags=4).pack()
    for n in range(len(data)):
        with pytest.raises(FormatError):
            C.unpack(data[:n])
