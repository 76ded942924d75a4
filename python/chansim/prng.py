"""Addressed common randomness: Philox4x32-10 with random access.

Every variate is a pure function of ``(seed, stream, index)``: key = the 64-bit
seed, counter = (block index, stream) as two 64-bit halves. Element ``i`` of a
float32 variate uses word ``i`` of the stream; element ``i`` of a float64 variate
uses the 64-bit value ``i`` (words ``2i`` and ``2i + 1``). The float transforms use
only IEEE basic operations in a fixed order, so the native core (any thread count,
any SIMD path), :mod:`chansim.prng.reference` (pure NumPy) and the Triton kernels
in :mod:`chansim.kernels.prng` agree bit for bit. ``docs/format.md`` documents the
transforms, their accuracy and :func:`stream_id`.
"""

from __future__ import annotations

import numpy as np

from . import _core
from . import prng_reference as reference
from ._validate import U64_LIMIT, count, float_dtype, u64

__all__ = [
    "PURPOSES",
    "RETIRED_PURPOSES",
    "exponential",
    "normal",
    "philox4x32",
    "reference",
    "stream_id",
    "uniform",
    "words",
]

_UNIFORM, _NORMAL, _EXPONENTIAL = 0, 1, 2

#: Registered ``purpose`` codes for :func:`stream_id` (the high 8 bits of a stream). Which
#: (purpose, step, chunk) each codec uses is listed in one place, :mod:`chansim.codecs.streams`
#: (docs/format.md §1.2).
PURPOSES = {
    "user": 0,
    "diffusion_init": 1,  # z_T shared by both sides
    "dither": 2,  # dithered quantization offsets
    "pfr_candidates": 3,  # PFR / ORC shared candidates (their arrivals use key seed ^ pfr.ARRIVAL_KEY)
    "grc": 5,  # GPRS / GRC shared proposals and arrivals
    "ancestral": 6,  # decoder-side ancestral sampling noise
    "permutation": 7,  # coordinate permutations shared by both sides (DiffC's PFR layout)
}
#: Codes that were registered once and are never reused for another purpose (a name here is
#: refused by :func:`stream_id`; the integer still packs, for reading old streams).
RETIRED_PURPOSES = {
    4: "pfr_arrivals",  # registered, never used: PFR arrivals use the candidates' stream under another key
}


def stream_id(purpose, step: int = 0, chunk: int = 0) -> int:
    """Pack (purpose, step, chunk) into a 64-bit stream: purpose << 56 | step << 40 | chunk.

    ``purpose`` is a name from :data:`PURPOSES` or an int in [0, 256); ``step`` in
    [0, 65536); ``chunk`` in [0, 2**40).
    """
    if isinstance(purpose, str):
        if purpose not in PURPOSES:
            retired = " (retired: its code is reserved)" if purpose in RETIRED_PURPOSES.values() else ""
            raise ValueError(f"unknown purpose {purpose!r}{retired}; known: {sorted(PURPOSES)}")
        purpose = PURPOSES[purpose]
    return int(_core.stream_id(u64(purpose, "purpose"), u64(step, "step"), u64(chunk, "chunk")))


def philox4x32(counter, key) -> np.ndarray:
    """Philox4x32-10 of ``counter`` (uint32[..., 4]) under ``key`` (uint32[..., 2]); broadcasts."""
    c = np.asarray(counter)
    k = np.asarray(key)
    for name, a, width in (("counter", c, 4), ("key", k, 2)):
        if a.dtype != np.uint32:
            raise ValueError(f"{name} must have dtype uint32, got {a.dtype}")
        if a.ndim < 1 or a.shape[-1] != width:
            raise ValueError(f"{name} must have shape (..., {width}), got {a.shape}")
    try:
        shape = np.broadcast_shapes(c.shape[:-1], k.shape[:-1])
    except ValueError:
        raise ValueError(f"counter {c.shape} and key {k.shape} do not broadcast") from None
    c2 = np.ascontiguousarray(np.broadcast_to(c, shape + (4,))).reshape(-1, 4)
    k2 = np.ascontiguousarray(np.broadcast_to(k, shape + (2,))).reshape(-1, 2)
    return _core.philox4x32(c2, k2).reshape(shape + (4,))


def _prepare(seed, stream, start, n, out, dtype):
    seed = u64(seed, "seed")
    stream = u64(stream, "stream")
    start = u64(start, "start")
    if out is None:
        n = count(n)
        dt = float_dtype(dtype) if dtype is not None else None
        return seed, stream, start, n, dt
    if not isinstance(out, np.ndarray):
        raise ValueError("out must be a numpy array")
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError("out must be a writable C-contiguous array")
    return seed, stream, start, count(out.size, "out.size"), out.dtype


def words(seed, stream, start, n, *, out=None) -> np.ndarray:
    """Raw uint32 words ``start .. start + n - 1`` of the stream."""
    seed, stream, start, n, _ = _prepare(seed, stream, start, n, out, None)
    if start + n > U64_LIMIT:
        raise ValueError("start + n is beyond the 2**64 words of a stream")
    if out is None:
        out = np.empty(n, dtype=np.uint32)
    elif out.dtype != np.uint32:
        raise ValueError(f"out must have dtype uint32, got {out.dtype}")
    _core.fill_words(seed, stream, start, out.reshape(-1))
    return out


def _variate(kind, seed, stream, start, n, dtype, out):
    seed, stream, start, n, dt = _prepare(seed, stream, start, n, out, dtype)
    if out is None:
        out = np.empty(n, dtype=dt)
    elif out.dtype not in (np.float32, np.float64):
        raise ValueError(f"out has unsupported dtype {out.dtype}: use float32 or float64")
    _core.fill(kind, seed, stream, start, out.reshape(-1))
    return out


def uniform(seed, stream, start, n, dtype=np.float32, *, out=None) -> np.ndarray:
    """Uniform variates in the open interval (0, 1).

    float32: ``(2k + 1) * 2**-24`` with ``k`` the top 23 bits of word ``start + i``;
    float64: ``(2k + 1) * 2**-53`` with ``k`` the top 52 bits of 64-bit value ``start + i``.
    """
    return _variate(_UNIFORM, seed, stream, start, n, dtype, out)


def normal(seed, stream, start, n, dtype=np.float32, *, out=None) -> np.ndarray:
    """Standard normal variates by inversion (Wichura's AS 241 with a deterministic log)."""
    return _variate(_NORMAL, seed, stream, start, n, dtype, out)


def exponential(seed, stream, start, n, dtype=np.float32, *, out=None) -> np.ndarray:
    """Exp(1) variates, ``-log(u)`` with a deterministic log."""
    return _variate(_EXPONENTIAL, seed, stream, start, n, dtype, out)


def isa() -> str:
    """The SIMD kernel set the native core chose on this machine ("avx2" or "baseline")."""
    return _core.prng_isa()
