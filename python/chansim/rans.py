"""rANS entropy coding with parametric model families.

An :class:`Encoder` takes a sequence of calls, each coding an array of int32
symbols under one model family with per-symbol (or shared) parameters, and
:meth:`Encoder.finish` returns the stream. A :class:`Decoder` repeats the same
calls, in the same order and with the same parameters, and gets the symbols
back::

    enc = chansim.rans.Encoder()
    enc.encode_gaussian(k, means, scales)
    enc.encode_categorical(labels, probs)
    data = enc.finish()

    dec = chansim.rans.Decoder(data)
    k = dec.decode_gaussian(means, scales)
    labels = dec.decode_categorical(probs, shape=labels.shape)

Every model is built from its parameters by deterministic integer-exact code
(``docs/format.md`` §2), so both sides agree bit for bit on any machine, and the
stream is byte-identical for any thread count (:func:`chansim.set_num_threads`).
Symbols outside a model's support are coded through an escape, so any int32 is
encodable under any family. Encoding and decoding run on all threads, with the
GIL released.

Families (the scale is each distribution's natural scale: standard deviation
for the Gaussian, ``s`` for the logistic, ``b`` for the Laplace):

- ``gaussian`` / ``logistic`` / ``laplace``: ``P(k)`` is the mass of
  ``[k - 1/2, k + 1/2)``; means may be fractional.
- ``*_dithered`` (``gaussian_dithered`` / ``logistic_dithered`` /
  ``laplace_dithered``): the same on a dithered grid, for dithered quantization
  ``k = round(x / width + offset)``:
  ``P(k) = G((width (k - offset + 1/2) - mean) / scale) - G((width (k - offset - 1/2) - mean) / scale)``
  with ``G`` the standard CDF (the UQDM prior ``g * U(-width/2, width/2)`` evaluated
  on the offset grid). Their older names ``*_uniform`` (e.g.
  ``encode_logistic_uniform``) remain as aliases that write the same bytes.
- ``categorical``: a probability table, shared or one row per symbol.
- ``zipf``: ``P(n) ∝ n**-lam`` on ``[1, n_max]`` (PFR indices).
- ``uniform``: integers on ``[low, high]`` (the only meaning of "uniform" here).

Parameters are quantized before use (means to multiples of 2**-20, scales to
16 mantissa bits, probabilities to integer frequencies at the stream's
precision), which costs well under 0.001 % of the ideal code length.

Arguments: symbols are any integer array (int32 is used without a copy);
parameters are NumPy arrays (or anything with ``__array__``, e.g. CPU torch
tensors) of the symbols' shape or broadcastable to it, or scalars. float32 and
float64 parameters of the symbols' shape are read in place; other dtypes and
broadcasts are converted once. Bad arguments raise ``ValueError``; a stream that
is truncated, corrupted or foreign raises :class:`chansim.FormatError`.
"""

from __future__ import annotations

import operator

import numpy as np

from . import _core
from .errors import FormatError

__all__ = ["Decoder", "Encoder", "FormatError", "MAX_PRECISION", "MIN_PRECISION"]

MIN_PRECISION = 16
MAX_PRECISION = 30

_GAUSSIAN, _LOGISTIC, _LAPLACE = 0, 1, 2
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1


# ---- argument preparation ----------------------------------------------------


def _symbols(symbols) -> np.ndarray:
    a = np.asarray(symbols)
    if a.dtype.kind not in "iu":
        raise ValueError(f"symbols must be integers, got dtype {a.dtype}")
    if a.dtype != np.int32:
        if a.size and (a.min() < _INT32_MIN or a.max() > _INT32_MAX):
            raise ValueError("symbols must fit in int32")
        a = a.astype(np.int32)
    return np.ascontiguousarray(a)


def _numeric(value, name: str, kinds: str) -> np.ndarray:
    try:
        a = np.asarray(value)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name}: cannot be read as an array ({e})") from None
    if a.dtype.kind not in kinds:
        what = "real numbers" if "f" in kinds else "integers"
        raise ValueError(f"{name} must be {what}, got dtype {a.dtype}")
    return a


def _broadcast(a: np.ndarray, shape: tuple, name: str) -> np.ndarray:
    if a.shape == shape:
        return a
    try:
        return np.broadcast_to(a, shape)
    except ValueError:
        raise ValueError(f"{name} with shape {a.shape} does not broadcast to shape {shape}") from None


def _real(value, shape: tuple, name: str):
    """A float for all symbols, or a flat C-contiguous float32/float64 array."""
    a = _numeric(value, name, "iuf")
    if a.size == 1 and a.ndim <= len(shape):
        return float(a.reshape(()))
    a = _broadcast(a, shape, name)
    if a.dtype not in (np.float32, np.float64):
        a = a.astype(np.float64)
    return np.ascontiguousarray(a).reshape(-1)


def _integer(value, shape: tuple, name: str):
    """An int for all symbols, or a flat C-contiguous int32 array."""
    a = _numeric(value, name, "iu")
    if a.size and (a.min() < _INT32_MIN or a.max() > _INT32_MAX):
        raise ValueError(f"{name} must fit in int32")
    if a.size == 1 and a.ndim <= len(shape):
        return int(a.reshape(()))
    a = _broadcast(a, shape, name)
    return np.ascontiguousarray(a, dtype=np.int32).reshape(-1)


def _shape(shape, *params) -> tuple:
    """The decoded array's shape: given, or the broadcast of the parameters'."""
    if shape is not None:
        try:
            return tuple(operator.index(s) for s in ((shape,) if np.ndim(shape) == 0 else shape))
        except TypeError:
            raise ValueError(f"shape must be a tuple of ints, got {shape!r}") from None
    try:
        return tuple(np.broadcast_shapes(*(np.shape(p) for p in params)))
    except ValueError:
        raise ValueError("the parameters' shapes do not broadcast together") from None


def _size(shape: tuple) -> int:
    if any(s < 0 for s in shape):
        raise ValueError(f"shape must be non-negative, got {shape}")
    return int(np.prod(shape, dtype=np.int64)) if shape else 1


def _table(probabilities, shape: tuple | None):
    """(flat float32/float64 table, shared?, shape) for the categorical family."""
    p = _numeric(probabilities, "probabilities", "iuf")
    if p.ndim == 0:
        raise ValueError("probabilities must have at least one dimension (the categories)")
    if p.dtype not in (np.float32, np.float64):
        p = p.astype(np.float64)
    if p.ndim == 1:
        if shape is None:
            raise ValueError("a shared probability table needs the shape of the decoded array")
        return np.ascontiguousarray(p), True, shape
    if shape is None:
        shape = p.shape[:-1]
    p = _broadcast(p, tuple(shape) + p.shape[-1:], "probabilities")
    return np.ascontiguousarray(p).reshape(-1, p.shape[-1]), False, shape


def _options(precision, lanes, segment_size) -> tuple[int, int, int]:
    """(precision, lanes, log2 segment_size); the native core checks the ranges."""
    try:
        precision, lanes, segment_size = (operator.index(v) for v in (precision, lanes, segment_size))
    except TypeError:
        raise ValueError("precision, lanes and segment_size must be integers") from None
    if segment_size < 1 or segment_size & (segment_size - 1):
        raise ValueError(f"segment_size must be a power of two, got {segment_size}")
    return precision, lanes, segment_size.bit_length() - 1


# ---- encoder -------------------------------------------------------------------


class Encoder:
    """Buffers model-family calls; :meth:`finish` codes them and returns the stream.

    precision: probability precision in bits, ``MIN_PRECISION..MAX_PRECISION``
        (24 keeps the coding loss far below 0.001 %; 30 suits very skewed models).
    lanes: interleaved rANS states per segment, 1..32 (8 lets the decoder keep
        several symbols in flight; each lane adds about 6 bits to the stream).
    segment_size: symbols per independently coded segment, a power of two in
        ``[2**12, 2**30]``; segments are what threads share out, and each costs
        about 10 bytes. Boundaries depend only on the total symbol count, so the
        bytes never depend on the thread count.
    """

    def __init__(self, precision: int = 24, lanes: int = 8, segment_size: int = 2**19):
        self._core = _core.RansEncoder(*_options(precision, lanes, segment_size))
        self._finished = False

    @property
    def num_symbols(self) -> int:
        """Symbols encoded so far."""
        return int(self._core.size)

    def _live(self):
        if self._finished:
            raise RuntimeError("this Encoder has finished; start a new one")
        return self._core

    def _param(self, shape_id, symbols, means, scales, width=None, offset=None):
        s = _symbols(symbols)
        dims = s.shape
        extra = ()
        if width is not None:
            extra = (_real(width, dims, "width"), _real(offset, dims, "offset"))
        self._live().param(shape_id, s.reshape(-1), _real(means, dims, "means"), _real(scales, dims, "scales"),
                           *extra)

    def encode_gaussian(self, symbols, means, scales) -> None:
        """Quantized Gaussian: P(k) = Φ((k + ½ − mean)/scale) − Φ((k − ½ − mean)/scale)."""
        self._param(_GAUSSIAN, symbols, means, scales)

    def encode_logistic(self, symbols, means, scales) -> None:
        """Quantized logistic with location ``means`` and scale ``scales`` (s)."""
        self._param(_LOGISTIC, symbols, means, scales)

    def encode_laplace(self, symbols, means, scales) -> None:
        """Quantized Laplace with location ``means`` and scale ``scales`` (b)."""
        self._param(_LAPLACE, symbols, means, scales)

    def encode_gaussian_dithered(self, symbols, means, scales, width, offset) -> None:
        """Gaussian prior on a dithered grid: the symbols ``k = round(x / width + offset)``.

        ``P(k) = Φ((width (k − offset + ½) − mean)/scale) − Φ((width (k − offset − ½) − mean)/scale)``,
        the probability of the cell under N(mean, scale²), equal to ``width`` times
        the density of ``N(mean, scale²) ⋆ U(−width/2, width/2)`` at ``width (k − offset)``.
        ``width`` > 0 and ``offset`` (the dither) are scalars or per-symbol arrays.
        """
        self._param(_GAUSSIAN, symbols, means, scales, width, offset)

    def encode_logistic_dithered(self, symbols, means, scales, width, offset) -> None:
        """Logistic prior on a dithered grid (UQDM's ``g ⋆ U``); see :meth:`encode_gaussian_dithered`."""
        self._param(_LOGISTIC, symbols, means, scales, width, offset)

    def encode_laplace_dithered(self, symbols, means, scales, width, offset) -> None:
        """Laplace prior on a dithered grid; see :meth:`encode_gaussian_dithered`."""
        self._param(_LAPLACE, symbols, means, scales, width, offset)

    # Older names of the dithered-grid families, kept working (same bytes).
    def encode_gaussian_uniform(self, symbols, means, scales, width, offset) -> None:
        """Older name of :meth:`encode_gaussian_dithered` (an alias; same stream)."""
        self.encode_gaussian_dithered(symbols, means, scales, width, offset)

    def encode_logistic_uniform(self, symbols, means, scales, width, offset) -> None:
        """Older name of :meth:`encode_logistic_dithered` (an alias; same stream)."""
        self.encode_logistic_dithered(symbols, means, scales, width, offset)

    def encode_laplace_uniform(self, symbols, means, scales, width, offset) -> None:
        """Older name of :meth:`encode_laplace_dithered` (an alias; same stream)."""
        self.encode_laplace_dithered(symbols, means, scales, width, offset)

    def encode_categorical(self, symbols, probabilities) -> None:
        """Categorical on ``[0, K)``: ``probabilities`` of shape (K,) shared by all
        symbols, or of the symbols' shape + (K,) (one row each). Entries must be
        finite and >= 0 and each row must sum to 1 within 1e-3 (rows are
        renormalised exactly); K <= 2**(precision - 1).
        """
        s = _symbols(symbols)
        p, shared, _ = _table(probabilities, s.shape)
        self._live().categorical(s.reshape(-1), p, shared)

    def encode_zipf(self, symbols, lam, n_max: int) -> None:
        """Truncated Zipf ``P(n) ∝ n**-lam`` on ``[1, n_max]``; ``lam`` in (0, 1000],
        shared or per symbol; ``n_max`` in ``[1, 2**31 - 1]``.
        """
        s = _symbols(symbols)
        self._live().zipf(s.reshape(-1), _real(lam, s.shape, "lam"), _index(n_max, "n_max"))

    def encode_uniform(self, symbols, low, high) -> None:
        """Uniform integers on ``[low, high]`` (inclusive, any int32 range)."""
        s = _symbols(symbols)
        self._live().uniform(s.reshape(-1), _integer(low, s.shape, "low"), _integer(high, s.shape, "high"))

    def finish(self) -> bytes:
        """Code everything buffered and return the stream (docs/format.md §2)."""
        data = self._live().finish()
        self._finished = True
        return data


def _index(value, name: str) -> int:
    try:
        return operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer, got {type(value).__name__}") from None


# ---- decoder -------------------------------------------------------------------


class Decoder:
    """Decodes a stream from :meth:`Encoder.finish`, call by call in encoding order.

    Each ``decode_*`` method takes the parameters of the matching ``encode_*``
    call and returns int32 symbols of ``shape`` (default: the parameters'
    broadcast shape). A stream that is truncated, corrupted or foreign, or a
    request for more symbols than remain, raises :class:`chansim.FormatError`.
    Parameters that differ from the encoder's decode to wrong (but valid int32)
    symbols.
    """

    def __init__(self, data):
        try:
            raw = bytes(data)
        except TypeError:
            raise ValueError(f"data must be bytes-like, got {type(data).__name__}") from None
        self._core = _core.RansDecoder(raw)

    @property
    def num_symbols(self) -> int:
        """Symbols in the stream."""
        return int(self._core.size)

    @property
    def remaining(self) -> int:
        """Symbols not decoded yet."""
        return int(self._core.remaining)

    @property
    def precision(self) -> int:
        return int(self._core.precision)

    @property
    def lanes(self) -> int:
        return int(self._core.lanes)

    @property
    def segment_size(self) -> int:
        return 1 << int(self._core.segment_log2)

    def _param(self, shape_id, means, scales, shape, width=None, offset=None):
        params = (means, scales) if width is None else (means, scales, width, offset)
        dims = _shape(shape, *params)
        n = _size(dims)
        extra = ()
        if width is not None:
            extra = (_real(width, dims, "width"), _real(offset, dims, "offset"))
        out = self._core.param(shape_id, n, _real(means, dims, "means"), _real(scales, dims, "scales"), *extra)
        return out.reshape(dims)

    def decode_gaussian(self, means, scales, shape=None) -> np.ndarray:
        """Symbols of an :meth:`Encoder.encode_gaussian` call."""
        return self._param(_GAUSSIAN, means, scales, shape)

    def decode_logistic(self, means, scales, shape=None) -> np.ndarray:
        """Symbols of an :meth:`Encoder.encode_logistic` call."""
        return self._param(_LOGISTIC, means, scales, shape)

    def decode_laplace(self, means, scales, shape=None) -> np.ndarray:
        """Symbols of an :meth:`Encoder.encode_laplace` call."""
        return self._param(_LAPLACE, means, scales, shape)

    def decode_gaussian_dithered(self, means, scales, width, offset, shape=None) -> np.ndarray:
        """Symbols of an :meth:`Encoder.encode_gaussian_dithered` call."""
        return self._param(_GAUSSIAN, means, scales, shape, width, offset)

    def decode_logistic_dithered(self, means, scales, width, offset, shape=None) -> np.ndarray:
        """Symbols of an :meth:`Encoder.encode_logistic_dithered` call."""
        return self._param(_LOGISTIC, means, scales, shape, width, offset)

    def decode_laplace_dithered(self, means, scales, width, offset, shape=None) -> np.ndarray:
        """Symbols of an :meth:`Encoder.encode_laplace_dithered` call."""
        return self._param(_LAPLACE, means, scales, shape, width, offset)

    # Older names of the dithered-grid families, kept working.
    def decode_gaussian_uniform(self, means, scales, width, offset, shape=None) -> np.ndarray:
        """Older name of :meth:`decode_gaussian_dithered` (an alias)."""
        return self.decode_gaussian_dithered(means, scales, width, offset, shape=shape)

    def decode_logistic_uniform(self, means, scales, width, offset, shape=None) -> np.ndarray:
        """Older name of :meth:`decode_logistic_dithered` (an alias)."""
        return self.decode_logistic_dithered(means, scales, width, offset, shape=shape)

    def decode_laplace_uniform(self, means, scales, width, offset, shape=None) -> np.ndarray:
        """Older name of :meth:`decode_laplace_dithered` (an alias)."""
        return self.decode_laplace_dithered(means, scales, width, offset, shape=shape)

    def decode_categorical(self, probabilities, shape=None) -> np.ndarray:
        """Symbols of an :meth:`Encoder.encode_categorical` call; ``shape`` is
        required with a shared (1-D) table, per-symbol tables imply it."""
        dims = None if shape is None else _shape(shape)
        p, shared, dims = _table(probabilities, dims)
        return self._core.categorical(_size(dims), p, shared).reshape(dims)

    def decode_zipf(self, lam, n_max: int, shape=None) -> np.ndarray:
        """Indices of an :meth:`Encoder.encode_zipf` call."""
        dims = _shape(shape, lam)
        return self._core.zipf(_size(dims), _real(lam, dims, "lam"), _index(n_max, "n_max")).reshape(dims)

    def decode_uniform(self, low, high, shape=None) -> np.ndarray:
        """Symbols of an :meth:`Encoder.encode_uniform` call."""
        dims = _shape(shape, low, high)
        return self._core.uniform(_size(dims), _integer(low, dims, "low"), _integer(high, dims, "high")).reshape(dims)
