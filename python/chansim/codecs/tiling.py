"""Tiled files: a large photo as a grid of independent codec files (``docs/format.md`` §6.1).

Every codec's peak memory grows with the image (the networks' activations, the latents,
the rANS buffers), so a 24-megapixel photo coded whole needs several gigabytes. Instead,
an image whose tile grid (:func:`grid`, tile edge :attr:`Codec.tile_edge
<chansim.codecs.base.Codec.tile_edge>`, 1024 by default) has more than one tile is cut
into tiles, each tile is coded by the codec as an ordinary, self-contained chansim file,
and the tile files are stored one after the other behind a small header. Peak memory is
then that of one tile (per worker) plus the output image, whatever the photo's size, and
tiles decode independently, so ``decompress(data, workers=N)`` decodes N at a time in
threads; the result is bit-identical for every N.

The scheme lives here once, for every codec: :class:`~chansim.codecs.base.Codec` wraps
each subclass's ``compress``, ``decompress``, ``decompress_progressive`` and ``evaluate``
(:func:`install`), so a codec needs no code of its own, and an image whose grid is a
single tile (every Kodak image at the default edge) is coded exactly as before, byte for
byte. ``tile=`` on ``compress`` overrides the edge (``tile=0``: never tile).

Seeds: tile i of a file with seed s is coded with :func:`tile_seed` (s, i), a hash of both,
so tiles never share common randomness (no repeated noise patterns across tiles).

Progressive decoding of a tiled file runs the tiles' own previews in lockstep and yields
the previews assembled across tiles: after i sections of every tile, as bits the size of
the tiled file whose tiles hold i sections (:func:`truncate`).
"""

from __future__ import annotations

import functools
import hashlib
import struct
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from .. import varint
from ..errors import FormatError
from . import container as C

#: Format version byte of a tiled file (after the ``CHSM`` magic; untiled files are 1 or 2).
TILED_VERSION = C.TILED_VERSION
#: Default tile edge in pixels: a multiple of every codec's stride (NTC pads to 64), and small
#: enough that one tile of the heaviest codec stays far below 2 GB (BENCHMARKS.md, "Large photos").
DEFAULT_TILE = 1024
#: Smallest accepted tile edge (twice the smallest image side a codec accepts).
MIN_TILE = 32
#: Smallest side of a tile: a remainder row or column narrower than this joins its neighbour.
MIN_TILE_SIDE = 16
MAX_TILES = 1 << 16

__all__ = ["TILED_VERSION", "DEFAULT_TILE", "Tiled", "grid", "tile_seed", "is_tiled", "unpack", "pack",
           "truncate", "with_flags", "compress", "decompress", "decompress_progressive", "install"]


# ---- geometry and seeds ---------------------------------------------------------------------------

def _edges(n: int, tile: int) -> List[int]:
    bounds = list(range(0, n, tile)) + [n]
    if len(bounds) > 2 and bounds[-1] - bounds[-2] < MIN_TILE_SIDE:
        del bounds[-2]  # a sliver under 16 px joins the previous row/column
    return bounds


def grid(height: int, width: int, tile: int) -> List[Tuple[int, int, int, int]]:
    """The tiles of an H×W image as (y0, y1, x0, x1), in raster order (rows top to bottom).

    Rows and columns are ``tile`` pixels except the last, which takes the rest; a rest under
    16 pixels is merged into the previous row or column (so a tile is 16 … tile + 15 pixels
    on each side). ``tile=0`` means one tile.
    """
    if tile == 0:
        return [(0, height, 0, width)]
    check_tile(tile)
    ys, xs = _edges(height, tile), _edges(width, tile)
    return [(ys[r], ys[r + 1], xs[c], xs[c + 1]) for r in range(len(ys) - 1) for c in range(len(xs) - 1)]


def check_tile(tile, exc=ValueError) -> int:
    if isinstance(tile, bool) or not isinstance(tile, (int, np.integer)) or not MIN_TILE <= tile <= C.MAX_SIDE:
        raise exc(f"tile edge must be an integer in {MIN_TILE}…{C.MAX_SIDE} (or 0: no tiling), got {tile!r}")
    return int(tile)


def tile_seed(seed: int, index: int) -> int:
    """Seed of tile ``index``: the first 8 bytes (little-endian) of
    SHA-256(``b"chansim tile"`` ‖ seed as 8 bytes LE ‖ index as 4 bytes LE), kept to its low
    32 bits when ``seed`` < 2^32 (a short varint in each tile, as NTC's default seeds)."""
    d = hashlib.sha256(b"chansim tile" + int(seed).to_bytes(8, "little") + int(index).to_bytes(4, "little"))
    s = int.from_bytes(d.digest()[:8], "little")
    return s & 0xFFFFFFFF if seed < 1 << 32 else s


def default_seed(image: np.ndarray, model_id: str) -> int:
    """The file seed when none is given: 32 bits of the image/model hash."""
    return C.derive_seed(image.tobytes(), model_id) & 0xFFFFFFFF


# ---- the byte layout ------------------------------------------------------------------------------

@dataclass
class Tiled:
    """A parsed tiled file: header fields and the tile files in raster order."""

    codec: str
    model_tag: bytes
    height: int
    width: int
    seed: int
    tile: int
    tiles: List[bytes] = field(default_factory=list)
    flags: int = 0

    @property
    def rects(self) -> List[Tuple[int, int, int, int]]:
        return grid(self.height, self.width, self.tile)

    def pack(self) -> bytes:
        return pack(self)


def is_tiled(data) -> bool:
    """Whether ``data`` starts like a tiled chansim file (magic and version 3; not validated)."""
    return (isinstance(data, (bytes, bytearray, memoryview)) and len(data) > len(C.MAGIC)
            and bytes(data[:len(C.MAGIC)]) == C.MAGIC and data[len(C.MAGIC)] == TILED_VERSION)


def _header(t: Tiled) -> bytearray:
    out = bytearray(C.MAGIC)
    out += bytes([TILED_VERSION, C.CODEC_IDS[t.codec], t.flags])
    out += t.model_tag
    for v in (t.height, t.width, t.seed, t.tile, len(t.tiles)):
        C.put_varint(out, v)
    for b in t.tiles:
        C.put_varint(out, len(b))
    return out


def pack(t: Tiled) -> bytes:
    if t.codec not in C.CODEC_IDS:
        raise ValueError(f"unknown codec {t.codec!r}; known: {sorted(C.CODEC_IDS)}")
    if len(t.model_tag) != C.MODEL_ID_BYTES:
        raise ValueError(f"model_tag must be {C.MODEL_ID_BYTES} bytes")
    C._check_shape(t.height, t.width, ValueError)
    check_tile(t.tile)
    if len(t.tiles) != len(t.rects):
        raise ValueError(f"{len(t.tiles)} tiles for a grid of {len(t.rects)}")
    if not 0 <= t.flags <= 255 or t.flags & ~C.KNOWN_FLAGS:
        raise ValueError(f"unknown container flags {t.flags:#x}")
    out = _header(t)
    for b in t.tiles:
        out += b
    out += struct.pack("<I", zlib.crc32(out))
    return bytes(out)


def packed_size(t: Tiled, tile_sizes: Sequence[int]) -> int:
    """Length of the tiled file with t's header and tiles of the given sizes."""
    n = len(_header(Tiled(t.codec, t.model_tag, t.height, t.width, t.seed, t.tile, [], t.flags)))
    return n + sum(len(varint.encode(s)) for s in tile_sizes) + sum(tile_sizes) + 4


def unpack(data, codec: Optional[str] = None, model_id: Optional[str] = None) -> Tiled:
    """Parse and verify a tiled file: header, tile count, lengths, CRC32, and every tile (a valid
    file of the same codec and model, of its rectangle's size, with its derived seed).

    Every failure is a :class:`~chansim.errors.FormatError`; truncation is named with the byte
    counts.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    what = "tiled chansim file"
    if not is_tiled(data):
        raise FormatError("not a tiled chansim file (expected b'CHSM' and format version 3)")
    r = C.Reader(data, what)
    r.pos = len(C.MAGIC) + 1
    cid = r.u8("codec id")
    if cid not in C._CODEC_NAMES:
        raise FormatError(C.unknown_codec_message(data, cid, what))
    name = C._CODEC_NAMES[cid]
    flags = r.u8("flags")
    if flags & ~C.KNOWN_FLAGS:
        raise FormatError(f"corrupted {what}: container flags {flags:#04x} (known: {C.KNOWN_FLAGS:#04x})")
    tag = r.take(C.MODEL_ID_BYTES, "model id")
    h = r.varint("height", C.MAX_SIDE)
    w = r.varint("width", C.MAX_SIDE)
    C._check_shape(h, w, lambda m: FormatError(f"corrupted {what}: {m}"))
    seed = r.varint("seed")
    tile = check_tile(r.varint("tile edge", C.MAX_SIDE), FormatError)
    rects = grid(h, w, tile)
    n = r.varint("tile count", MAX_TILES)
    if n != len(rects):
        raise FormatError(f"corrupted {what}: {n} tiles, but a {w}×{h} image in {tile}-pixel tiles has "
                          f"{len(rects)}")
    lengths = [r.varint(f"length of tile {i}") for i in range(n)]
    need = sum(lengths) + 4
    if need > r.remaining():
        left = r.remaining()
        raise FormatError(f"truncated {what}: its {n} tiles and CRC32 need {need} bytes, {left} left "
                          f"({need - left} bytes missing)")
    if need < r.remaining():
        raise FormatError(f"corrupted {what}: {r.remaining() - need} unexpected bytes after the CRC32")
    tiles = [r.take(n_i, f"tile {i}") for i, n_i in enumerate(lengths)]
    crc_at = r.pos
    if struct.unpack("<I", r.take(4, "CRC32"))[0] != zlib.crc32(data[:crc_at]):
        raise FormatError(f"corrupted {what}: CRC32 mismatch")
    if codec is not None and codec != name:
        raise FormatError(f"this file was written by the {name} codec, not {codec}")
    if model_id is not None and C.model_tag(model_id) != tag:
        raise FormatError(
            f"model mismatch: the file was written with model {tag.hex()}…, this codec's model is "
            f"{model_id[:2 * C.MODEL_ID_BYTES]}… — decode it with the model that wrote it")
    for i, (b, (y0, y1, x0, x1)) in enumerate(zip(tiles, rects)):
        if is_tiled(b):
            raise FormatError(f"corrupted {what}: tile {i} is itself a tiled file")
        try:
            c = C.unpack(b)
        except FormatError as e:
            raise FormatError(f"tile {i} of the {what}: {e}") from None
        if c.codec != name or c.model_tag != tag:
            raise FormatError(f"corrupted {what}: tile {i} was written by {c.codec} model {c.model_tag.hex()}, "
                              f"the file's header says {name} model {tag.hex()}")
        if (c.height, c.width) != (y1 - y0, x1 - x0):
            raise FormatError(f"corrupted {what}: tile {i} is {c.width}×{c.height}, its place in the grid is "
                              f"{x1 - x0}×{y1 - y0}")
        if c.seed != tile_seed(seed, i):
            raise FormatError(f"corrupted {what}: tile {i} has seed {c.seed}, the file's seed gives "
                              f"{tile_seed(seed, i)}")
        if c.flags:
            raise FormatError(f"corrupted {what}: tile {i} has container flags (only the tiled header may)")
    return Tiled(name, tag, h, w, seed, tile, tiles, flags)


def truncate(data, sections: int) -> bytes:
    """``container.truncate`` for either kind of file: a tiled file's tiles each keep their first
    ``sections`` sections (fewer when a tile has fewer)."""
    if not is_tiled(data):
        return C.truncate(data, sections)
    t = unpack(data)
    most = max(len(C.unpack(b).sections) for b in t.tiles)
    if not 0 <= sections <= most:
        raise ValueError(f"sections must be in 0…{most}, got {sections}")
    t.tiles = [C.truncate(b, min(sections, len(C.unpack(b).sections))) for b in t.tiles]
    return t.pack()


def with_flags(data, flags: int) -> bytes:
    """``container.with_flags`` for either kind of file (a tiled file carries the flags in its header)."""
    if not is_tiled(data):
        return C.with_flags(data, flags)
    t = unpack(data)
    t.flags = flags
    return t.pack()


def summary(data):
    """(codec name, flags, sections per tile at most, height, width, tiles) of a valid file of either kind."""
    if is_tiled(data):
        t = unpack(data)
        return t.codec, t.flags, max(len(C.unpack(b).sections) for b in t.tiles), t.height, t.width, len(t.tiles)
    c = C.unpack(data)
    return c.codec, c.flags, len(c.sections), c.height, c.width, 1


# ---- coding -----------------------------------------------------------------------------------

_local = threading.local()


class _inner:
    """Marks the current thread as coding one tile: the codec's wrapped methods pass straight through."""

    def __enter__(self):
        _local.depth = getattr(_local, "depth", 0) + 1

    def __exit__(self, *exc):
        _local.depth -= 1


def _inside() -> bool:
    return getattr(_local, "depth", 0) > 0


def _run(jobs: Sequence[Callable[[], object]], workers: int) -> list:
    """Results of ``jobs`` in order, ``workers`` at a time (1: in this thread)."""
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")

    def call(job):
        with _inner():
            return job()

    if workers == 1 or len(jobs) < 2:
        return [call(j) for j in jobs]
    with ThreadPoolExecutor(max_workers=min(int(workers), len(jobs))) as pool:
        return list(pool.map(call, jobs))


def compress(codec, raw: Callable, image: np.ndarray, quality, seed: Optional[int], tile: int, workers: int = 1,
             **kwargs) -> bytes:
    """A tiled file of ``image`` (which must need more than one tile); ``raw`` is the codec's
    untiled ``compress``."""
    h, w = image.shape[:2]
    rects = grid(h, w, tile)
    seed = default_seed(image, codec.model_id) if seed is None else codec.check_seed(seed)

    def job(i, rect):
        y0, y1, x0, x1 = rect
        return raw(codec, np.ascontiguousarray(image[y0:y1, x0:x1]), quality, seed=tile_seed(seed, i), **kwargs)

    tiles = _run([functools.partial(job, i, r) for i, r in enumerate(rects)], workers)
    return Tiled(codec.name, C.model_tag(codec.model_id), h, w, seed, tile, tiles).pack()


def decompress(codec, raw: Callable, data, reconstruction, workers: int = 1, **kwargs) -> np.ndarray:
    """Decode a tiled file tile by tile into one preallocated uint8[H, W, 3]."""
    t = unpack(data, codec=codec.name, model_id=codec.model_id)
    out = np.empty((t.height, t.width, 3), dtype=np.uint8)

    def job(i, b, rect):
        y0, y1, x0, x1 = rect
        img = np.asarray(raw(codec, b, reconstruction, **kwargs))
        if img.shape != (y1 - y0, x1 - x0, 3):
            raise FormatError(f"tile {i} decoded to shape {img.shape}, expected {(y1 - y0, x1 - x0, 3)}")
        out[y0:y1, x0:x1] = img

    _run([functools.partial(job, i, b, r) for i, (b, r) in enumerate(zip(t.tiles, t.rects))], workers)
    return out


def decompress_progressive(codec, raw: Callable, data, reconstruction, **kwargs) -> Iterator[Tuple[int, np.ndarray]]:
    """The tiles' previews in lockstep: the k-th yield assembles every tile's k-th preview (a tile
    with fewer previews keeps its last); bits are 8 × the size of the tiled file whose tiles hold
    what those previews used."""
    t = unpack(data, codec=codec.name, model_id=codec.model_id)
    gens = [raw(codec, b, reconstruction, **kwargs) for b in t.tiles]
    sizes = [0] * len(gens)
    live = [True] * len(gens)
    out = np.zeros((t.height, t.width, 3), dtype=np.uint8)
    first = True
    while True:
        advanced = False
        for i, (g, (y0, y1, x0, x1)) in enumerate(zip(gens, t.rects)):
            if not live[i]:
                continue
            with _inner():
                try:
                    bits, img = next(g)
                except StopIteration:
                    live[i] = False
                    if first:
                        raise FormatError(f"tile {i} yielded no image") from None
                    continue
            img = np.asarray(img)
            if img.shape != (y1 - y0, x1 - x0, 3):
                raise FormatError(f"tile {i} decoded to shape {img.shape}, expected {(y1 - y0, x1 - x0, 3)}")
            out[y0:y1, x0:x1] = img
            sizes[i] = bits // 8
            advanced = True
        first = False
        if not advanced:
            return
        yield 8 * packed_size(t, sizes), out.copy()


# ---- the base-class hook ------------------------------------------------------------------------

def _needs_tiles(codec, image, tile) -> Optional[int]:
    """The tile edge to use for ``image``, or None when it is coded whole."""
    edge = getattr(codec, "tile_edge", DEFAULT_TILE) if tile is None else tile
    if not edge or not isinstance(image, np.ndarray) or image.ndim != 3:
        return None
    edge = check_tile(edge)
    return edge if len(grid(image.shape[0], image.shape[1], edge)) > 1 else None


def _bind(fn, args):
    """``fn`` with extra positional arguments bound after the first three (the codec, the image or
    file, the quality or reconstruction)."""
    return fn if not args else (lambda c, x, q, **kw: fn(c, x, q, *args, **kw))


def _wrap_compress(fn):
    @functools.wraps(fn)
    def wrapper(self, image, quality=None, *args, seed=None, tile=None, workers=1, **kwargs):
        edge = None if _inside() else _needs_tiles(self, image, tile)
        if edge is None:
            return fn(self, image, quality, *args, seed=seed, **kwargs)
        from .image import check_image

        return compress(self, _bind(fn, args), check_image(image), quality, seed, edge, workers, **kwargs)
    wrapper._tiling = True
    return wrapper


def _wrap_decompress(fn):
    @functools.wraps(fn)
    def wrapper(self, data, reconstruction=None, *args, workers=1, **kwargs):
        if _inside() or not is_tiled(data):
            return fn(self, data, reconstruction, *args, **kwargs)
        return decompress(self, _bind(fn, args), data, reconstruction, workers, **kwargs)
    wrapper._tiling = True
    return wrapper


def _wrap_progressive(fn):
    @functools.wraps(fn)
    def wrapper(self, data, reconstruction=None, *args, **kwargs):
        if _inside() or not is_tiled(data):
            return fn(self, data, reconstruction, *args, **kwargs)
        return decompress_progressive(self, _bind(fn, args), data, reconstruction, **kwargs)
    wrapper._tiling = True
    return wrapper


def _wrap_evaluate(fn, generic_evaluate):
    @functools.wraps(fn)
    def wrapper(self, image, qualities=None, *args, **kwargs):
        if _inside() or _needs_tiles(self, image, None) is None:
            return fn(self, image, qualities, *args, **kwargs)
        # A large image: the generic evaluation (compress and decompress each quality), which tiles;
        # a codec's own shared-work evaluate would hold the whole image's activations.
        return generic_evaluate(self, image, qualities, *args, **kwargs)
    wrapper._tiling = True
    return wrapper


_WRAPPERS = {"compress": _wrap_compress, "decompress": _wrap_decompress,
             "decompress_progressive": _wrap_progressive, "evaluate": _wrap_evaluate}


def install(cls, generic_evaluate) -> None:
    """Wrap the coding methods ``cls`` defines itself so that large images are tiled (called by
    ``Codec.__init_subclass__`` for every codec class, which passes the base class's generic
    ``evaluate``: this module never imports :mod:`.base`, so the two do not form an import cycle)."""
    for name, wrap in _WRAPPERS.items():
        fn = cls.__dict__.get(name)
        if callable(fn) and not getattr(fn, "_tiling", False) and not getattr(fn, "__isabstractmethod__", False):
            setattr(cls, name, wrap(fn, generic_evaluate) if name == "evaluate" else wrap(fn))
