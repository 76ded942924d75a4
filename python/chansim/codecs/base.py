"""The codec contract every chansim image codec implements, and the registry of codecs.

A codec turns a uint8[H, W, 3] photo into one self-describing file (``docs/format.md``
§6) and back. Its whole contract::

    codec = CodecClass.pretrained()            # the model shipped in the package, offline
    codec.name                                 # "ntc", "uqdm", "diffc": the name in files and on the CLI
    codec.model_id                             # SHA-256 hex of the model; files carry its first 8 bytes
    codec.qualities                            # valid ``quality`` values, lowest rate first
    codec.default_quality                      # what ``compress`` uses when quality is None
    codec.reconstructions                      # names ``decompress`` accepts; [0] is the default
    data = codec.compress(image, quality=q, seed=s)        # bytes; seed < 2**64, default: hash of image+model
    image = codec.decompress(data, reconstruction="mmse")  # uint8[H, W, 3]
    for bits, preview in codec.decompress_progressive(data):   # coarse to fine, bits of the prefix read
        ...
    for result in codec.evaluate(image, qualities, reconstructions=...):   # the evaluation entry point
        result.quality, result.data, result.images["mmse"]

Large images (:mod:`.tiling`, docs/format.md §6.1): an image whose grid of
``codec.tile_edge``-pixel tiles (1024 by default) has more than one tile is coded as a tiled
file, each tile an independent file of the codec, so peak memory stays that of one tile
whatever the photo's size; ``compress(..., tile=E)`` picks the edge (``tile=0``: never tile)
and ``decompress(..., workers=N)`` decodes N tiles at a time (bit-identical for every N).
Every subclass gets this from :meth:`Codec.__init_subclass__`, which wraps the ``compress``,
``decompress``, ``decompress_progressive`` and ``evaluate`` it defines; smaller images are
coded exactly as the codec codes them.

Reconstruction names mean the same thing in every codec: ``"mmse"`` the network's
estimate of E[x | what was received] (best PSNR), ``"flow"`` the deterministic
probability-flow ODE, ``"ancestral"`` a sample of the model's reverse process,
``"generative"`` a sample from a conditional generative decoder, ``"interp"`` the
interpolation between a sample and the MMSE estimate, ``"lossless"`` the exact image.

This module imports without PyTorch; the codec classes are loaded on first use
(:func:`codec_class`), so the file-level tools (container, sniffing, metrics) work in
a base install.
"""

from __future__ import annotations

import abc
import importlib
from dataclasses import dataclass, field
from typing import Any, ClassVar, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

__all__ = ["Codec", "Evaluation", "CODECS", "DEFAULT_CODEC", "codec_class", "codec_names", "pretrained"]

#: name → "module:Class" of every codec, in the order the CLI lists them.
CODECS: Dict[str, str] = {
    "uqdm": "chansim.codecs.uqdm:UQDM",
    "diffc": "chansim.codecs.diffc:DiffC",
    "ntc": "chansim.codecs.ntc:NTC",
}
#: The codec ``chansim compress`` and ``chansim demo`` use unless told otherwise.
DEFAULT_CODEC = "uqdm"

#: What to install for the codecs' networks.
CODECS_EXTRA = 'pip install "chansim[codecs]"'


@dataclass
class Evaluation:
    """One file of :meth:`Codec.evaluate`: its quality, bytes and reconstructions by name.

    ``info`` holds what the sender measured on the way, codec-specific and documented by each
    codec's ``evaluate`` (e.g. DiffC's per-step KL and channel diagnostics); it may be empty.
    """

    quality: Any
    data: bytes
    images: Dict[str, np.ndarray] = field(default_factory=dict)
    info: Dict[str, Any] = field(default_factory=dict)

    @property
    def bits(self) -> int:
        return 8 * len(self.data)


class Codec(abc.ABC):
    """Base class of the image codecs; see the module docstring for the contract."""

    name: ClassVar[str]
    reconstructions: ClassVar[Tuple[str, ...]]
    model_id: str
    card: Optional[Dict[str, Any]] = None
    #: Tile edge in pixels for large images (:mod:`.tiling`); 0 never tiles.
    tile_edge: ClassVar[int] = 1024

    def __init_subclass__(cls, **kwargs):
        """Wrap the subclass's coding methods so that large images are tiled (:func:`.tiling.install`)."""
        super().__init_subclass__(**kwargs)
        from . import tiling

        tiling.install(cls, Codec.evaluate)

    @classmethod
    @abc.abstractmethod
    def pretrained(cls, name: Optional[str] = None) -> "Codec":
        """The codec on the model shipped in the package (no network access)."""

    @property
    @abc.abstractmethod
    def qualities(self) -> Sequence:
        """Valid ``quality`` values, lowest rate first."""

    @property
    def default_quality(self):
        q = list(self.qualities)
        return q[len(q) // 2]

    @abc.abstractmethod
    def compress(self, image: np.ndarray, quality=None, *, seed: Optional[int] = None) -> bytes:
        """uint8[H, W, 3] → a whole, self-describing file."""

    @abc.abstractmethod
    def decompress(self, data, reconstruction: Optional[str] = None) -> np.ndarray:
        """A file → uint8[H, W, 3]; ``reconstruction`` from :attr:`reconstructions`."""

    def decompress_progressive(self, data, reconstruction: Optional[str] = None) -> Iterator[Tuple[int, np.ndarray]]:
        """(bits, image) from coarse to fine; a codec without previews yields the final image once.

        ``bits`` is always 8 × the length of the valid file that holds exactly what the preview
        used — ``container.truncate(data, i)`` for the preview after i sections (header, those
        sections and the CRC): the size a user would store for that quality. The last entry's
        bits are therefore ``8 * len(data)``.
        """
        yield 8 * len(data), self.decompress(data, reconstruction)

    def evaluate(self, image: np.ndarray, qualities: Optional[Sequence] = None, *,
                 reconstructions: Optional[Sequence[str]] = None, seed: Optional[int] = None) -> List[Evaluation]:
        """Files and reconstructions for several qualities: what an R-D evaluation needs.

        The result is what ``compress`` and ``decompress`` give for each pair; codecs
        override this to share work between qualities (one network pass, one trajectory).
        """
        qualities = list(self.qualities if qualities is None else qualities)
        kinds = tuple(reconstructions or self.reconstructions[:1])
        self.check_reconstructions(kinds)
        out = []
        for q in qualities:
            data = self.compress(image, q, seed=seed)
            out.append(Evaluation(q, data, {k: self.decompress(data, k) for k in kinds}))
        return out

    # -- shared argument checks -------------------------------------------------------------
    def check_reconstructions(self, kinds: Sequence[str]) -> None:
        for k in kinds:
            if k not in self.reconstructions:
                raise ValueError(f"{self.name} has no reconstruction {k!r}; it offers {', '.join(self.reconstructions)}")

    def check_quality(self, quality):
        """``quality`` or the default, validated against :attr:`qualities`."""
        if quality is None:
            return self.default_quality
        if isinstance(quality, (bool, np.bool_)) or quality not in list(self.qualities):
            q = list(self.qualities)
            raise ValueError(f"{self.name} quality must be one of {q[0]} … {q[-1]}, got {quality!r}")
        return quality

    @staticmethod
    def check_seed(seed) -> int:
        try:
            s = int(seed)
        except (TypeError, ValueError):
            raise ValueError(f"seed must be an integer in [0, 2**64), got {seed!r}") from None
        if s != seed or not 0 <= s < 1 << 64:
            raise ValueError(f"seed must be an integer in [0, 2**64), got {seed!r}")
        return s

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model_id={self.model_id[:16]}…)"


class DeprecatedAttribute:
    """A class attribute kept under an old name for one release (warns on access)."""

    def __init__(self, old: str, new: str, value):
        self.old, self.new, self.value = old, new, value

    def __get__(self, obj, cls=None):
        import warnings

        warnings.warn(f"{self.old} is deprecated: use {self.new}", DeprecationWarning, stacklevel=2)
        return self.value


def codec_names() -> List[str]:
    return list(CODECS)


def codec_class(name: str) -> type:
    """The class registered as ``name`` (imports it, and so PyTorch, on first use).

    Raises ValueError for an unknown name and ImportError naming the extra to install
    when the codecs' dependencies are missing.
    """
    if name not in CODECS:
        raise ValueError(f"unknown codec {name!r}; known: {', '.join(CODECS)}")
    module, cls = CODECS[name].split(":")
    try:
        return getattr(importlib.import_module(module), cls)
    except ModuleNotFoundError as e:
        if e.name and e.name.split(".")[0] == "torch":
            raise ImportError(f"the {name} codec needs PyTorch: {CODECS_EXTRA}") from e
        raise


def pretrained(name: str) -> Codec:
    """``codec_class(name).pretrained()``."""
    return codec_class(name).pretrained()
