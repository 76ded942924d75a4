"""The ``chansim`` command line (``chansim compress | decompress | eval | bench | demo``).

Modules, each importing only downward (``main`` → the commands → ``common``):
``main`` (parser, :func:`main`), ``common`` (codecs from the registry, checked inputs,
atomic outputs), ``compress`` (compress and decompress), ``eval``, ``bench``, ``demo``.
Evaluation helpers shared with ``benchmarks/`` live in :mod:`chansim.evaluation`.
"""

from .main import build_parser, main

__all__ = ["build_parser", "main"]
