"""Greedy Poisson rejection sampling (GPRS) and greedy rejection coding (GRC) for 1-D Gaussian channels.

Each element ``i`` of the inputs is its own channel: the encoder draws an exact
sample of ``q_i = N(mu_q[i], sigma_q[i]**2)`` using randomness shared with the
decoder, which knows only ``p_i = N(mu_p[i], sigma_p[i]**2)``, ``seed``,
``stream`` and the message. Channel ``i`` is keyed by
``philox_u64(seed, stream, i)``, so channels decode independently and in
parallel. Use ``stream = chansim.prng.stream_id("grc", step, chunk)``.

Methods, all exact, on one binary search tree over the real line (the node
samples, split points and message code are shared; the decoder replays the
splits along the node index whichever sampler chose it):

``"gprs-sample"``  GPRS (Flamich, NeurIPS 2023), branch and bound, split the
                   search interval at each rejected sample.
``"gprs-dyadic"``  GPRS, split at the interval's prior median (best-first search).
``"grc-sample"``   greedy rejection coding (Flamich, Markou & Hernandez-Lobato,
                   NeurIPS 2023), split on sample: one node per level, each with
                   the acceptance level L = int_B (r - H)_+ dP / P(B); after a
                   rejection the child is chosen by its remaining Q-mass.
``"grc-dyadic"``   GRC with prior-median splits.

Both samplers need ``D_inf = log sup q/p < inf``: ``sigma_q < sigma_p``
(or ``q == p``). Supported range (float64 samples in prior units): the mode
``x* = (mu_q - mu_p) / sigma_p / (1 - s^2)`` of dq/dp within 30 prior standard
deviations, ``s = sigma_q / sigma_p >= 1e-9 * max(1, |x*|)``, and a search depth
of at most 126 levels (about D <= 100 bits); outside it ``ValueError`` or
``RuntimeError`` is raised, never an inexact sample. The message is the heap index of the accepted node of each
channel behind a 16-byte header (its method byte names one of the four methods)
and a CRC32 (``docs/format.md`` section 4): Elias-delta coded for the dyadic
rule; for split-on-sample, the depth in fair bits and each path bit arithmetic
coded with P(left) = P(left part) / P(node), which the decoder recomputes while
replaying the splits.
"""

from __future__ import annotations

import numpy as np

from . import _core
from ._validate import count, u64
from .errors import FormatError

__all__ = ["METHODS", "FormatError", "decode_gaussian", "decode_indices", "encode_gaussian", "excess_mass", "stretch"]

#: Methods and their code in the message header (bit 0: dyadic split, bit 1: GRC).
METHODS = {"gprs-sample": 0, "gprs-dyadic": 1, "grc-sample": 2, "grc-dyadic": 3}

DEFAULT_MAX_STEPS = 1_000_000


def _method(method) -> int:
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {sorted(METHODS)}")
    return METHODS[method]


def _params(names_values):
    """Float64 C-contiguous 1-D copies of broadcast-compatible parameters, plus the shape."""
    arrays = []
    for name, v in names_values:
        a = np.asarray(v)
        if a.dtype.kind not in "fiu":
            raise ValueError(f"{name} must be a real numeric array, got dtype {a.dtype}")
        a = a.astype(np.float64, copy=False)
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name} contains NaN or Inf")
        arrays.append(a)
    try:
        shape = np.broadcast_shapes(*(a.shape for a in arrays))
    except ValueError:
        shapes = ", ".join(f"{n} {a.shape}" for (n, _), a in zip(names_values, arrays))
        raise ValueError(f"parameter shapes do not broadcast: {shapes}") from None
    count(int(np.prod(shape, dtype=np.int64)), "number of channels")
    flat = [np.ascontiguousarray(np.broadcast_to(a, shape), dtype=np.float64).reshape(-1) for a in arrays]
    return flat, shape


def _check_scales(named):
    for name, a in named:
        if np.any(a <= 0):
            i = int(np.argmax(a <= 0))
            raise ValueError(f"{name} must be > 0 (element {i} is {a[i]!r})")


def encode_gaussian(mu_q, sigma_q, mu_p, sigma_p, seed, stream, method="gprs-dyadic", *,
                    max_steps=DEFAULT_MAX_STEPS, return_info=False):
    """Exact samples of N(mu_q, sigma_q^2) per channel and the message that lets the decoder reproduce them.

    Parameters broadcast against each other; ``samples`` has the broadcast shape.
    Returns ``(samples, data)``, or ``(samples, data, info)`` with ``return_info``:
    ``info["indices"]`` (heap indices as Python ints, object array), ``info["steps"]``
    (nodes examined per channel), ``info["bits"]`` (code bits per channel, without
    the 160 bits of header and checksum shared by the message; fractional for
    split-on-sample, whose path is arithmetic coded), ``info["kl_bits"]``
    (KL(q||p) per channel in bits).

    Raises ``ValueError`` for bad parameters (NaN/Inf, scales <= 0, shapes that do
    not broadcast, ``sigma_q > sigma_p`` or equal scales with different means,
    where D_inf is infinite) and ``RuntimeError`` if a channel needs more than
    ``max_steps`` search steps.
    """
    code = _method(method)
    seed = u64(seed, "seed")
    stream = u64(stream, "stream")
    max_steps = count(max_steps, "max_steps", limit=1 << 62)
    if max_steps < 1:
        raise ValueError("max_steps must be >= 1")
    (mq, sq, mp, sp), shape = _params([("mu_q", mu_q), ("sigma_q", sigma_q), ("mu_p", mu_p), ("sigma_p", sigma_p)])
    _check_scales([("sigma_q", sq), ("sigma_p", sp)])
    samples, data, lo, hi, steps, bits = _core.gprs_encode(mq, sq, mp, sp, seed, stream, code, max_steps)
    samples = samples.reshape(shape)
    if not return_info:
        return samples, bytes(data)
    indices = np.array([int(a) | (int(b) << 64) for a, b in zip(lo.tolist(), hi.tolist())], dtype=object)
    info = {
        "indices": indices.reshape(shape),
        "steps": steps.reshape(shape),
        "bits": bits.reshape(shape),
        "kl_bits": kl_bits(mu_q, sigma_q, mu_p, sigma_p),
        "header_bits": 160,
    }
    return samples, bytes(data), info


def decode_gaussian(data, mu_p, sigma_p, seed, stream, method="gprs-dyadic"):
    """The encoder's samples, bit for bit, from its message and the prior parameters.

    ``mu_p`` and ``sigma_p`` must have the encoder's broadcast shape (or broadcast
    to it). Raises :class:`chansim.FormatError` for a truncated, corrupted,
    foreign or mismatched message.
    """
    code = _method(method)
    seed = u64(seed, "seed")
    stream = u64(stream, "stream")
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ValueError(f"data must be bytes, got {type(data).__name__}")
    (mp, sp), shape = _params([("mu_p", mu_p), ("sigma_p", sigma_p)])
    _check_scales([("sigma_p", sp)])
    out = _core.gprs_decode(bytes(data), mp, sp, seed, stream, code)
    return out.reshape(shape)


def decode_indices(indices, mu_p, sigma_p, seed, stream, method="gprs-dyadic"):
    """Samples from heap indices directly (e.g. when the indices are entropy coded elsewhere)."""
    code = _method(method)
    seed = u64(seed, "seed")
    stream = u64(stream, "stream")
    (mp, sp), shape = _params([("mu_p", mu_p), ("sigma_p", sigma_p)])
    _check_scales([("sigma_p", sp)])
    idx = np.asarray(indices, dtype=object).reshape(-1)
    if idx.size != mp.size:
        raise ValueError(f"indices has {idx.size} elements, the prior {mp.size}")
    try:
        ints = [int(v) for v in idx]
    except (TypeError, ValueError):
        raise ValueError("indices must be integers") from None
    if any(not 1 <= v < (1 << 127) for v in ints):
        raise ValueError("heap indices are in [1, 2**127)")
    lo = np.array([v & ((1 << 64) - 1) for v in ints], dtype=np.uint64)
    hi = np.array([v >> 64 for v in ints], dtype=np.uint64)
    return _core.gprs_decode_indices(lo, hi, mp, sp, seed, stream, code).reshape(shape)


def kl_bits(mu_q, sigma_q, mu_p, sigma_p):
    """KL(q || p) in bits for Gaussian pairs (elementwise)."""
    mq, sq, mp, sp = (np.asarray(v, dtype=np.float64) for v in (mu_q, sigma_q, mu_p, sigma_p))
    nats = np.log(sp / sq) + (sq**2 + (mq - mp) ** 2) / (2 * sp**2) - 0.5
    return nats / np.log(2.0)


def stretch(mu_q, sigma_q, mu_p, sigma_p, delta):
    """GPRS stretch function of one channel at half-widths ``delta`` (standardised units).

    Returns ``(S, g, h, info)``: ``S(delta) = sigma(h(delta))``, ``g = w_Q - h w_P`` and the
    level ``h(delta) = r* exp(-c delta^2 / 2)`` at which ``{r >= h}`` has half-width ``delta``.
    """
    d = np.ascontiguousarray(np.asarray(delta, dtype=np.float64).reshape(-1))
    return _core.gprs_stretch(float(mu_q), float(sigma_q), float(mu_p), float(sigma_p), d)


def excess_mass(mu_q, sigma_q, mu_p, sigma_p, a, b, h):
    """GRC's remaining target mass ``int_(a, b) (r - h)_+ dP`` of one channel (standardised units).

    ``a``, ``b``, ``h`` broadcast; ``r = dq/dp``, ``P = N(0, 1)`` after standardising by the prior.
    """
    a, b, h = (np.ascontiguousarray(v, dtype=np.float64).reshape(-1) for v in np.broadcast_arrays(a, b, h))
    return _core.grc_excess(float(mu_q), float(sigma_q), float(mu_p), float(sigma_p), a, b, h)
