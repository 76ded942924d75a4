"""Dithered (universal) quantization: exact simulation of x̂ = x + U(−Δ/2, Δ/2).

With a dither ``u`` shared through common randomness (element ``i`` uses word
``start + i`` of ``(seed, stream)``, ``u = uniform_f32 − ½``)::

    k = rint((x − μ)/Δ + u)        x̂ = μ + Δ (k − u)

so ``x̂ − x ~ U(−Δ/2, Δ/2)`` independently of ``x``. ``μ`` (default 0) makes the
index small when a prior mean is known, which keeps entropy tables small.
``step`` and ``mu`` are scalars or arrays broadcastable to ``x``. All arithmetic is
float64 in a fixed order (docs/format.md §3), so both sides agree bit for bit.

Output precision: x̂ is computed in float64. Rounding it to float32 moves it by up to half
the float32 spacing at |x̂|, which breaks the law when the step is not large against that
spacing (x = 1e7, Δ = 0.01: the float32 x̂ is x itself). :func:`dequantize` therefore returns
float32 only when every element's float32 spacing is at most :data:`FLOAT32_MAX_SPACING`
(2^-12) times its step — then the error's CDF is within 2^-13 of U(−Δ/2, Δ/2)'s everywhere
(Kolmogorov distance; invisible to a KS test below ~10^8 samples) — and float64 otherwise.
"""

from __future__ import annotations

import numpy as np

from . import _core
from ._validate import count, u64

__all__ = ["FLOAT32_MAX_SPACING", "decode", "dequantize", "dither", "encode", "quantize"]

#: dequantize returns float32 only where the float32 spacing at |x̂| is ≤ this fraction of Δ:
#: rounding then shifts the error by ≤ 2^-13 Δ, a Kolmogorov distance ≤ 2^-13 from U(−Δ/2, Δ/2).
FLOAT32_MAX_SPACING = 2.0**-12


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


def _float32_holds(x_hat: np.ndarray, step: np.ndarray) -> bool:
    """Every |x̂| has float32 spacing ≤ FLOAT32_MAX_SPACING·Δ (and is finite in float32)."""
    with np.errstate(over="ignore", invalid="ignore"):
        spacing = np.spacing(np.abs(x_hat).astype(np.float32)).astype(np.float64)
        return bool(np.all(spacing <= FLOAT32_MAX_SPACING * step))


def dequantize(k, step, seed, stream, *, mu=0.0, start=0, dtype=None) -> np.ndarray:
    """Reconstruction ``μ + Δ (k − u)``, computed in float64.

    ``dtype=None`` (default): float32 when float32 holds the error law — every element's
    float32 spacing at |x̂| is ≤ :data:`FLOAT32_MAX_SPACING` (2^-12) × its step, so
    x̂ − x ~ U(−Δ/2, Δ/2) to a Kolmogorov distance ≤ 2^-13 — else float64 (e.g. x = 1e7 with
    Δ = 0.01). ``dtype=np.float64``: always float64. ``dtype=np.float32``: float32, or
    ``ValueError`` where float32 cannot hold the law.
    """
    ka = np.asarray(k)
    if not np.issubdtype(ka.dtype, np.integer):
        raise ValueError(f"k must be an integer array, got dtype {ka.dtype}")
    if ka.size and (ka.min() < -(2**31 - 1) or ka.max() > 2**31 - 1):
        raise ValueError("k must fit in int32")
    dt = None if dtype is None else np.dtype(dtype)
    if dt is not None and dt not in (np.float32, np.float64):
        raise ValueError(f"unsupported dtype {dt}: use float32, float64 or None (float32 where it holds the law)")
    ki = np.ascontiguousarray(ka, dtype=np.int32)
    steps = _param(step, ka.shape, "step")
    out = _core.dq_dequantize(ki.reshape(-1), _param(mu, ka.shape, "mu"), steps,
                              u64(seed, "seed"), u64(stream, "stream"), u64(start, "start"), True)
    if dt != np.float64:
        if _float32_holds(out, steps):
            out = out.astype(np.float32)  # round to nearest: the core's float32 path, bit for bit
        elif dt == np.float32:
            raise ValueError(
                "float32 cannot hold x̂ − x ~ U(−Δ/2, Δ/2) here: the float32 spacing at |x̂| exceeds "
                f"{FLOAT32_MAX_SPACING:g} × step (e.g. |x̂| = {float(np.max(np.abs(out))):.6g}); use dtype=None "
                "(float64 where needed) or dtype=np.float64")
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
    # float64 input stays float64; float32 input gets float32 where it holds the law (dequantize).
    x_hat = dequantize(k, step, seed, stream, mu=mu, start=start, dtype=np.float64 if a.dtype == np.float64 else None)
    return x_hat, enc.finish()


def decode(data, shape, step, seed, stream, *, mu=0.0, scale=1.0, prior="logistic", start=0, dtype=None):
    """The ``x_hat`` of :func:`encode` from its bytes, the shape and the same parameters
    (``dtype`` as in :func:`dequantize`: by default float32 where it holds the law, else float64)."""
    from . import rans

    shape = tuple(int(s) for s in np.atleast_1d(shape)) if np.ndim(shape) else (int(shape),)
    u, width, sc = _code_args(shape, step, mu, scale, prior, seed, stream, start)
    dec = rans.Decoder(data)
    k = getattr(dec, f"decode_{prior}_uniform")(0.0, sc, width, u, shape=shape)
    if dec.remaining:
        raise rans.FormatError(f"DQ stream holds {dec.num_symbols} symbols, {dec.remaining} more than the shape")
    return dequantize(k, step, seed, stream, mu=mu, start=start, dtype=dtype)
