"""The one map of the codecs' common randomness: every Philox stream a UQDM or DiffC file uses.

A codec never builds a ``stream_id(purpose, step, chunk)`` triple itself; it calls the
function below, which is the table of ``docs/format.md`` §1.2 written as code (the
packing is ``purpose << 56 | step << 40 | chunk``, :func:`chansim.prng.stream_id`). The
key of every stream is the file's seed.

========================  ===================================  ==========================================
function                  (purpose, step, chunk)               used for
========================  ===================================  ==========================================
:func:`z_init`            (``diffusion_init``, 0, 0)           z_T ~ N(0, I): UQDM, DiffC and NTC's generative
                                                               decoder (float32 normals)
:func:`permutation`       (``permutation``, 0, 0)              DiffC's coordinate shuffle (uint32 words)
:func:`dither`            (``dither``, i, 0)                   UQDM step i's dither (§3)
:func:`pfr_candidates`    (``pfr_candidates``, i, 0)           DiffC step i's PFR candidates (+ chunk, §5.1)
:func:`uqdm_fill_in`      (``ancestral``, i, 0 / 1)            UQDM: the draw for the unsent elements of a
                                                               partial step i (logistic / uniform part)
:func:`uqdm_ancestral`    (``ancestral``, k, 2 / 3)            UQDM: ancestral grid step k after the file
                                                               (logistic / uniform part)
:func:`diffc_ancestral`   (``ancestral``, k, 0)                DiffC: ancestral reconstruction step k
:func:`ntc_dither`        (``dither``, 0, 0)                   NTC: the latents' universal-quantization dither
========================  ===================================  ==========================================

PFR's arrival times reuse the candidate streams under the key ``seed ^ pfr.ARRIVAL_KEY``
(§5.1), so they need no purpose of their own. The ``ancestral`` streams and NTC's z_T are
decoder-side only (no bits depend on them). A file belongs to one codec, so streams of different codecs
may coincide (UQDM's step-0 dither and NTC's dither are the same stream; DiffC's and UQDM's
``ancestral`` chunks overlap) — within a codec every stream has one use.
"""

from __future__ import annotations

import numpy as np

from .. import prng

__all__ = ["STREAMS", "diffc_ancestral", "dither", "initial_latent", "ntc_dither", "permutation", "pfr_candidates", "uqdm_ancestral", "uqdm_fill_in", "z_init"]


def z_init() -> int:
    """z_T of both codecs: float32 normals 0 … d − 1."""
    return prng.stream_id("diffusion_init", 0, 0)


def permutation() -> int:
    """DiffC's coordinate permutation: uint32 words 0 … d − 1, stably argsorted."""
    return prng.stream_id("permutation", 0, 0)


def dither(step: int) -> int:
    """UQDM step ``step``'s dither (``chansim.dq.dither`` of elements 0 … d − 1)."""
    return prng.stream_id("dither", step, 0)


def pfr_candidates(step: int) -> int:
    """DiffC step ``step``'s PFR candidate stream; PFR chunk c uses this + c."""
    return prng.stream_id("pfr_candidates", step, 0)


def uqdm_fill_in(step: int, part: int) -> int:
    """UQDM partial step ``step``: uniforms for the logistic (part 0) and uniform (part 1) halves of the
    draw that fills in the unsent elements (the ``"ancestral"`` reconstruction only)."""
    if part not in (0, 1):
        raise ValueError(f"part must be 0 or 1, got {part!r}")
    return prng.stream_id("ancestral", step, part)


def uqdm_ancestral(step: int, part: int) -> int:
    """UQDM ancestral step on grid step ``step`` (after the file's steps): logistic (part 0) and
    uniform (part 1) halves, chunks 2 and 3 (0 and 1 are :func:`uqdm_fill_in`'s)."""
    if part not in (0, 1):
        raise ValueError(f"part must be 0 or 1, got {part!r}")
    return prng.stream_id("ancestral", step, 2 + part)


def diffc_ancestral(step: int) -> int:
    """DiffC's ancestral reconstruction, step ``step`` of its grid: float32 normals."""
    return prng.stream_id("ancestral", step, 0)


def ntc_dither() -> int:
    """NTC's dither for its quantized latents (element j of the flattened latents)."""
    return prng.stream_id("dither", 0, 0)


#: (name, purpose, step, chunk) of every stream, as docs/format.md §1.2 lists them ("i" = the step).
STREAMS = (
    ("z_init", "diffusion_init", "0", "0"),
    ("permutation", "permutation", "0", "0"),
    ("dither", "dither", "i", "0"),
    ("pfr_candidates", "pfr_candidates", "i", "0 (+ PFR chunk)"),
    ("uqdm_fill_in", "ancestral", "i", "0, 1"),
    ("uqdm_ancestral", "ancestral", "k", "2, 3"),
    ("diffc_ancestral", "ancestral", "k", "0"),
    ("ntc_dither", "dither", "0", "0"),
)


def initial_latent(seed: int, shape):
    """z_T ~ N(0, I) of both codecs from common randomness (0 bits): a float32 torch tensor of ``shape``."""
    import torch

    n = int(np.prod(shape))
    return torch.from_numpy(prng.normal(seed, z_init(), 0, n)).reshape(tuple(shape))
