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

__all__ = ["decode", "dequantize", "dither", "encode", "quantize"]


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


_PRIORS = ("logistic", "gaussian", "laplace")


def _code_args(x_shape, step, mu, scale, prior, seed, stream, start):
    if prior not in _PRIORS:
        raise ValueError(f"prior must be one of {_PRIORS}, got {prior!r}")
    n = int(np.prod(x_shape, dtype=np.int64))
    u = dither(seed, stream, start, n).reshape(x_shape)
    sc = np.asarray(scale, dtype=np.float64)
    if sc.size and not np.all(sc > 0):
        raise ValueError("scale must be > 0 everywhere")
    return u, np.broadcast_to(np.asarray(step, np.float64), x_shape), np.broadcast_to(sc, x_shape)


def encode(x, step, seed, stream, *, mu=0.0, scale=1.0, prior="logistic", start=0, precision=24):
    """Dithered quantization of ``x`` relative to the prior mean ``mu``, with the
    indices entropy-coded under the prior ``g ⋆ U(−Δ/2, Δ/2)`` on the dithered grid.

    ``g`` is a ``prior`` density (``"logistic"``, ``"gaussian"`` or ``"laplace"``)
    centred at ``mu`` with scale ``scale``. The code length is the uniform-noise
    channel's rate ``−log₂ P(k | u)``, with ``P(k | u) = G(Δ(k − u + ½)) − G(Δ(k − u − ½))``.
    Returns ``(x_hat, data)``; :func:`decode` recovers ``x_hat`` from ``data``.
    """
    from . import rans

    a = _array(x, "x")
    k = quantize(a, step, seed, stream, mu=mu, start=start)
    u, width, sc = _code_args(a.shape, step, mu, scale, prior, seed, stream, start)
    enc = rans.Encoder(precision=precision)
    getattr(enc, f"encode_{prior}_uniform")(k, 0.0, sc, width, u)
    x_hat = dequantize(k, step, seed, stream, mu=mu, start=start, dtype=a.dtype)
    return x_hat, enc.finish()


def decode(data, shape, step, seed, stream, *, mu=0.0, scale=1.0, prior="logistic", start=0, dtype=np.float32):
    """The ``x_hat`` of :func:`encode` from its bytes, the shape and the same parameters."""
    from . import rans

    shape = tuple(int(s) for s in np.atleast_1d(shape)) if np.ndim(shape) else (int(shape),)
    u, width, sc = _code_args(shape, step, mu, scale, prior, seed, stream, start)
    dec = rans.Decoder(data)
    k = getattr(dec, f"decode_{prior}_uniform")(0.0, sc, width, u, shape=shape)
    if dec.remaining:
        raise rans.FormatError(f"DQ stream holds {dec.num_symbols} symbols, {dec.remaining} more than the shape")
    return dequantize(k, step, seed, stream, mu=mu, start=start, dtype=dtype)
