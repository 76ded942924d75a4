"""The one container every chansim codec writes (``docs/format.md`` §6).

A file is a header (magic, version, codec, model id, image shape, seed, the codec's
settings), a list of length-prefixed sections in decoding order (one per transmitted
step, so any prefix of sections decodes to a preview) and a CRC32 of everything before
it. Parsing checks every length against the bytes actually present before it allocates
anything, so a hostile file costs at most its own size.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

from .. import varint
from ..errors import FormatError

MAGIC = b"CHSM"
#: The newest format version this chansim reads. Version 1 is written whenever no container
#: flag is set (so every codec file stays version 1); version 2 adds one flags byte after the
#: codec id and is written only when a flag is set (today: :data:`FLAG_GRAY`).
VERSION = 2
VERSIONS = (1, 2)
#: Container flags (version 2). Bit 0: the source image was grayscale (R = G = B was coded);
#: a reader that shows the image may return one channel. Other bits must be 0.
FLAG_GRAY = 1
KNOWN_FLAGS = FLAG_GRAY
MODEL_ID_BYTES = 8
#: Version byte of a tiled file (a header and independent containers, one per tile:
#: :mod:`chansim.codecs.tiling`, docs/format.md §6.1).
TILED_VERSION = 3
#: Codec ids on the wire. New codecs append; numbers are never reused.
CODEC_IDS = {"uqdm": 1, "diffc": 2, "ntc": 3}
_CODEC_NAMES = {v: k for k, v in CODEC_IDS.items()}
#: Largest accepted side and pixel count: bounds what a decoder can be made to allocate.
MAX_SIDE = 1 << 15
MAX_PIXELS = 1 << 26
MAX_SECTIONS = 1 << 12
MAX_SETTINGS = 1 << 16


def model_tag(model_id: str) -> bytes:
    """The 8 bytes of a model id that travel in a file (first 64 bits of its SHA-256 hex).

    64 bits identify a model with a negligible collision chance while costing 24 bytes
    less than the full hash, which matters at 0.05 bpp (≈ 2.4 kB for a Kodak image).
    """
    if not isinstance(model_id, str) or len(model_id) < 2 * MODEL_ID_BYTES:
        raise ValueError(f"model_id must be a hex digest of at least {2 * MODEL_ID_BYTES} characters")
    try:
        return bytes.fromhex(model_id[: 2 * MODEL_ID_BYTES])
    except ValueError:
        raise ValueError(f"model_id {model_id!r} is not hexadecimal") from None


#: LEB128 writer (the one in :mod:`chansim.varint`), under its historical name.
put_varint = varint.put


class Reader:
    """Bounds-checked cursor over a bytes object; every failure is a FormatError."""

    def __init__(self, data: bytes, what: str = "chansim file"):
        self.data, self.pos, self.what = data, 0, what

    def take(self, n: int, field_name: str) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            left = len(self.data) - self.pos
            raise FormatError(
                f"truncated {self.what}: {field_name} needs {n} bytes at offset {self.pos}, "
                f"{left} left ({n - left} bytes missing)")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def u8(self, field_name: str) -> int:
        return self.take(1, field_name)[0]

    def varint(self, field_name: str, limit: int = varint.MAX_VALUE) -> int:
        value, self.pos = varint.read(self.data, self.pos, field_name, limit, self.what)
        return value

    def remaining(self) -> int:
        return len(self.data) - self.pos


@dataclass
class Container:
    """The parsed contents of a chansim file."""

    codec: str
    model_tag: bytes
    height: int
    width: int
    seed: int
    settings: bytes = b""
    sections: List[bytes] = field(default_factory=list)
    #: Container flags (:data:`FLAG_GRAY`); 0 writes a version-1 file, anything else version 2.
    flags: int = 0

    def pack(self) -> bytes:
        if self.codec not in CODEC_IDS:
            raise ValueError(f"unknown codec {self.codec!r}; known: {sorted(CODEC_IDS)}")
        if len(self.model_tag) != MODEL_ID_BYTES:
            raise ValueError(f"model_tag must be {MODEL_ID_BYTES} bytes")
        _check_shape(self.height, self.width, ValueError)
        if len(self.settings) > MAX_SETTINGS:
            raise ValueError(f"settings of {len(self.settings)} bytes exceed {MAX_SETTINGS}")
        if len(self.sections) > MAX_SECTIONS:
            raise ValueError(f"{len(self.sections)} sections exceed {MAX_SECTIONS}")
        if not 0 <= self.flags <= 255 or self.flags & ~KNOWN_FLAGS:
            raise ValueError(f"unknown container flags {self.flags:#x}; known: {KNOWN_FLAGS:#x}")
        out = bytearray(MAGIC)
        out.append(2 if self.flags else 1)
        out.append(CODEC_IDS[self.codec])
        if self.flags:
            out.append(self.flags)
        out += self.model_tag
        put_varint(out, self.height)
        put_varint(out, self.width)
        put_varint(out, self.seed)
        put_varint(out, len(self.settings))
        out += self.settings
        put_varint(out, len(self.sections))
        for s in self.sections:
            put_varint(out, len(s))
            out += s
        out += struct.pack("<I", zlib.crc32(out))
        return bytes(out)

    @property
    def pixels(self) -> int:
        return self.height * self.width


def _check_shape(h: int, w: int, exc) -> None:
    if not (1 <= h <= MAX_SIDE and 1 <= w <= MAX_SIDE) or h * w > MAX_PIXELS:
        raise exc(f"image shape {w}×{h} (width×height) outside the supported range "
                  f"(sides 1…{MAX_SIDE}, at most {MAX_PIXELS} pixels)")


def unpack(data, codec: Optional[str] = None, model_id: Optional[str] = None) -> Container:
    """Parse and verify a chansim file.

    ``codec`` / ``model_id``, when given, must match the file: a file written by another
    codec or model raises FormatError naming both sides.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    r = Reader(data)
    if len(data) < len(MAGIC) or data[:len(MAGIC)] != MAGIC:
        raise FormatError("not a chansim file (bad magic; expected b'CHSM')")
    r.pos = len(MAGIC)
    version = r.u8("version")
    if version == TILED_VERSION and _crc_ok(data):
        raise FormatError("a tiled chansim file (format version 3, docs/format.md §6.1): its tiles are "
                          "containers; read it with chansim.codecs.tiling.unpack, or decode it with the codec")
    if version not in VERSIONS:
        raise FormatError(_version_message(data, version))
    cid = r.u8("codec id")
    if cid not in _CODEC_NAMES:
        raise FormatError(unknown_codec_message(data, cid, "chansim file"))
    name = _CODEC_NAMES[cid]
    flags = r.u8("flags") if version >= 2 else 0
    if version >= 2 and (flags == 0 or flags & ~KNOWN_FLAGS):
        raise FormatError(f"corrupted chansim file: container flags {flags:#04x} (known: {KNOWN_FLAGS:#04x}"
                          f"{', never 0 in version 2' if flags == 0 else ''})")
    tag = r.take(MODEL_ID_BYTES, "model id")
    h = r.varint("height", MAX_SIDE)
    w = r.varint("width", MAX_SIDE)
    _check_shape(h, w, lambda m: FormatError(f"corrupted chansim file: {m}"))
    seed = r.varint("seed")
    settings = r.take(r.varint("settings length", MAX_SETTINGS), "settings")
    n = r.varint("section count", MAX_SECTIONS)
    sections = []
    for i in range(n):
        length = r.varint(f"length of section {i}")
        if length > r.remaining():
            raise FormatError(_section_overrun(i, length, r.remaining(), h, w))
        sections.append(r.take(length, f"section {i}"))
    crc_at = r.pos
    crc = r.take(4, "CRC32")
    if r.remaining():
        raise FormatError(f"corrupted chansim file: {r.remaining()} unexpected bytes after the CRC32")
    if struct.unpack("<I", crc)[0] != zlib.crc32(data[:crc_at]):
        raise FormatError("corrupted chansim file: CRC32 mismatch")
    if codec is not None and codec != name:
        raise FormatError(f"this file was written by the {name} codec, not {codec}")
    if model_id is not None and model_tag(model_id) != tag:
        raise FormatError(
            f"model mismatch: the file was written with model {tag.hex()}…, this codec's model is "
            f"{model_id[:2 * MODEL_ID_BYTES]}… — decode it with the model that wrote it")
    return Container(name, tag, h, w, seed, settings, sections, flags)


def unknown_codec_message(data: bytes, cid: int, what: str) -> str:
    """Why a codec id is refused: a file whose CRC32 holds is well formed, so its codec is one a newer
    chansim added (ids are never reused); otherwise the byte is damage like any other."""
    known = ", ".join(f"{i} {n}" for i, n in sorted(_CODEC_NAMES.items()))
    if _crc_ok(data):
        return (f"{what} written with codec id {cid}, which this chansim does not know (known: {known}) — "
                f"written by a newer chansim? upgrade chansim to decode it")
    return f"corrupted {what}: unknown codec id {cid} (known: {known}) and the CRC32 does not match"


def _crc_ok(data: bytes) -> bool:
    """Whether ``data`` ends with the CRC32 of the bytes before it (every version's last field)."""
    return len(data) >= len(MAGIC) + 6 and struct.unpack("<I", data[-4:])[0] == zlib.crc32(data[:-4])


def _version_message(data: bytes, version: int) -> str:
    """Why a file with an unreadable version byte is refused.

    Every version ends with the CRC32 of all bytes before it (§6), so a matching CRC
    means a well-formed file of another version: only then is a newer chansim named.
    Otherwise the bytes after the magic are damaged or not chansim's at all.
    """
    crc_ok = _crc_ok(data)
    if crc_ok and version > VERSION:
        return (f"chansim file format version {version} (written by a newer chansim); this chansim reads "
                f"versions {', '.join(map(str, VERSIONS))} — upgrade chansim to decode it")
    if crc_ok:
        return f"chansim file format version {version}; this chansim reads versions {', '.join(map(str, VERSIONS))}"
    return (f"corrupted chansim file: version byte {version} is not one this chansim reads "
            f"({', '.join(map(str, VERSIONS))}) and the CRC32 does not match (damaged, or not a chansim file)")


def _section_overrun(i: int, length: int, left: int, h: int, w: int) -> str:
    """A section length beyond the bytes present: a cut-short file (named *truncated*, with the
    byte counts), unless the length is implausible for the image (then a corrupted length)."""
    if length > 64 * h * w + (1 << 20):  # far above any coding of an H×W image (raw RGB is 3·H·W)
        return (f"corrupted chansim file: length of section {i} is {length} bytes, implausible for a "
                f"{w}×{h} image ({left} bytes left)")
    missing = length - left + 4  # the section's missing bytes and at least the CRC32 after it
    return (f"truncated chansim file: section {i} needs {length} bytes, {left} left "
            f"(at least {missing} bytes missing)")


def header_end(data) -> int:
    """Offset of the section count in a (valid) file: the header is everything before it."""
    r = Reader(bytes(data))
    r.pos = len(MAGIC)
    version = r.u8("version")
    r.pos += 1 + (1 if version >= 2 else 0) + MODEL_ID_BYTES
    for _ in range(3):
        r.varint("header")
    r.take(r.varint("settings length"), "settings")
    return r.pos


def with_flags(data, flags: int) -> bytes:
    """``data`` (a valid file) with its container flags set to ``flags`` (re-packed, fresh CRC)."""
    c = unpack(data)
    c.flags = flags
    return c.pack()


def truncate(data, sections: int) -> bytes:
    """A valid file holding only the first ``sections`` sections of ``data`` (a coarser preview)."""
    c = unpack(data)
    if not 0 <= sections <= len(c.sections):
        raise ValueError(f"sections must be in 0…{len(c.sections)}, got {sections}")
    c.sections = c.sections[:sections]
    return c.pack()


def derive_seed(image_bytes: bytes, model_id: str) -> int:
    """A default per-file seed: a hash of the image and the model (reproducible, not secret)."""
    return int.from_bytes(hashlib.sha256(model_id.encode() + image_bytes).digest()[:8], "little")


def section_offsets(data) -> List[Tuple[int, int]]:
    """Byte range (start, end) of each section in ``data``; bits used by a prefix = 8·end."""
    c = unpack(data)
    r = Reader(bytes(data))
    r.pos = header_end(data)
    r.varint("section count")
    out = []
    for _ in c.sections:
        n = r.varint("section length")
        out.append((r.pos, r.pos + n))
        r.pos += n
    return out
