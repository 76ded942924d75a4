"""Dithered (universal) quantization: exact simulation of x̂ = x + U(−Δ/2, Δ/2).

With a dither ``u`` shared through common randomness (element ``i`` uses word
``start + i`` of ``(seed, stream)``, ``u = uniform_f32 − ½``)::

    k = rint((x − μ)/Δ + u)        x̂ = μ + Δ (k − u)

so ``x̂ − x ~ U(−Δ/2, Δ/2)`` independently of ``x``. ``μ`` (default 0) makes the
index small when a prior mean is known, which keeps entropy tables small.
``step`` and ``mu`` are scalars or arrays broadcastable to ``x``. All arithmetic is
float64 in a fixed order (docs/format.md §3), so both sides agree bit for bit.
"""

from __future__ import annotations

import numpy as np

from . import _core
from ._validate import count, u64

__all__ = ["dequantize", "dither", "quantize"]


def _param(value, shape, name) -> np.ndarray:
    a = np.asarray(value, dtype=np.float64)
    if a.size == 1:
        return np.ascontiguousarray(a.reshape(1))
    try:
        b = np.broadcast_to(a, shape)
    except ValueError:
        raise ValueError(f"{name} with shape {a.shape} does not broadcast to {shape}") from None
    return np.ascontiguousarray(b).reshape(-1)


def _array(x, name) -> np.ndarray:
    a = np.asarray(x)
    if a.dtype not in (np.float32, np.float64):
        if not np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.complexfloating):
            raise ValueError(f"{name} must be a real numeric array, got dtype {a.dtype}")
        a = a.astype(np.float64)
    return np.ascontiguousarray(a)


def dither(seed, stream, start, n) -> np.ndarray:
    """The dither values ``u`` in (−½, ½) of elements ``start .. start + n − 1`` (float64)."""
    return _core.dq_dithers(u64(seed, "seed"), u64(stream, "stream"), u64(start, "start"), count(n))


def quantize(x, step, seed, stream, *, mu=0.0, start=0) -> np.ndarray:
    """Dithered quantization indices ``k`` (int32, shape of ``x``)."""
    a = _array(x, "x")
    k = _core.dq_quantize(a.reshape(-1), _param(mu, a.shape, "mu"), _param(step, a.shape, "step"),
                          u64(seed, "seed"), u64(stream, "stream"), u64(start, "start"))
    return k.reshape(a.shape)


def dequantize(k, step, seed, stream, *, mu=0.0, start=0, dtype=np.float32) -> np.ndarray:
    """Reconstruction ``μ + Δ (k − u)`` (float32 by default, or float64)."""
    ka = np.asarray(k)
    if not np.issubdtype(ka.dtype, np.integer):
        raise ValueError(f"k must be an integer array, got dtype {ka.dtype}")
    if ka.size and (ka.min() < -(2**31 - 1) or ka.max() > 2**31 - 1):
        raise ValueError("k must fit in int32")
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise ValueError(f"unsupported dtype {dt}: use float32 or float64")
    ki = np.ascontiguousarray(ka, dtype=np.int32)
    out = _core.dq_dequantize(ki.reshape(-1), _param(mu, ka.shape, "mu"), _param(step, ka.shape, "step"),
                              u64(seed, "seed"), u64(stream, "stream"), u64(start, "start"), dt == np.float64)
    return out.reshape(ka.shape)
