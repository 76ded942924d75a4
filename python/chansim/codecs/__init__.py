"""Image codecs on one contract (:class:`~chansim.codecs.base.Codec`): NTC, UQDM, DiffC.

``NTC.pretrained()``, ``UQDM.pretrained()`` and ``DiffC.pretrained()`` load the default
models shipped inside the package (``chansim/models/``), offline. The codec classes
need PyTorch (``pip install "chansim[codecs]"``) and are imported on first access, so
``chansim.codecs.container`` and ``chansim.codecs.base`` work without it.
"""

from .base import CODECS, Codec, Evaluation, codec_class, codec_names

__all__ = ["CODECS", "Codec", "DiffC", "Evaluation", "NTC", "UQDM", "codec_class", "codec_names"]

_CLASSES = {"NTC": "ntc", "UQDM": "uqdm", "DiffC": "diffc"}


def __getattr__(name):
    if name in _CLASSES:
        return codec_class(_CLASSES[name])
    raise AttributeError(f"module 'chansim.codecs' has no attribute {name!r}")
