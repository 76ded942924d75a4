"""Poisson functional representation (PFR) for diagonal Gaussian pairs.

Sends a sample of ``q = N(mu_q, diag sigma_q²)`` to a receiver who knows only
``p = N(mu_p, diag sigma_p²)`` and the shared randomness ``(seed, stream)``.

Modes
-----
``"exact"``
    Li & El Gamal's PFR with the exact stopping rule: the output is distributed
    exactly as q. Needs a finite D∞ = log sup q/p in every chunk, i.e.
    ``sigma_q < sigma_p`` (or ``sigma_q == sigma_p`` with ``mu_q == mu_p``) per
    coordinate. Expected work ≈ 2^D∞ candidates per chunk.
``"budgeted"``
    PFR truncated to ``K = 2^(ceil(D) + pad_bits)`` candidates per chunk (or
    ``candidates=K``). Works for equal variances (the DiffC case, D∞ = ∞) but is
    *biased*; the returned info carries a bias diagnostic.
``"orc"``
    Ordered random coding (Theis & Yosri 2022): the same budget with sorted
    exponential arrivals; the minimal-random-coding sample law, cheaper indices.

High-dimensional vectors are split into chunks on the *measured*
per-coordinate KL (or D∞ in exact mode) so that no chunk exceeds
``chunk_bits`` (default :data:`DEFAULT_CHUNK_BITS`: 16 bits of D∞ in exact mode,
12 bits of KL otherwise): coordinate ``j`` belongs to chunk ``j mod C`` with ``C`` the
smallest count that satisfies the budget. ``C`` travels in the message.

Exact mode is exact for q restricted to the candidates' range μp ± EPS_MAX·σp
(EPS_MAX = 6.338, the largest float32 candidate normal); it refuses, before searching,
targets with more than :data:`EXACT_TAIL_TOL` of their mass outside that range
(:func:`tail_mass`) and chunks whose expected work exceeds ``max_candidates / 8``.

Messages come in two framings (``framing=``): ``"full"``, self-describing with a
CRC (docs/format.md §5.2, ≈ 21–25 bytes for one chunk), and ``"compact"``, one
header byte and the index code (≈ 2–3 bytes for one small chunk), for callers who
send many small messages and know the sample's shape (docs/format.md §5.3).

Candidates: candidate ``n`` (1-based) of chunk ``c`` with ``d_c`` coordinates is
``eps_i = normal_f32`` word ``(n − 1)·d_c + i`` of stream ``stream + c``; the
sample is ``mu_p + sigma_p · eps`` in float64. Arrival times are private to the
encoder (key ``seed ^ 0x9E3779B97F4A7C15``, same streams). Decoding regenerates
only the chosen candidates: O(d).
"""

from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass, field

import numpy as np

from . import _core
from ._validate import u64
from .errors import FormatError
from .prng import reference as _ref

__all__ = ["DEFAULT_CHUNK_BITS", "EXACT_TAIL_TOL", "FRAMINGS", "MODES", "Plan", "decode_callback", "decode_gaussian",
           "dinf_bits", "encode_callback", "encode_gaussian", "frame", "kl_bits", "plan", "tail_mass", "unframe"]

MODES = ("exact", "budgeted", "orc")
LOG2E = 1.0 / math.log(2.0)
ARRIVAL_KEY = 0x9E3779B97F4A7C15
#: Largest |eps| a float32 candidate normal can take (u = 2^-33 on the grid).
EPS_MAX = float(np.float32(-_ref.ndtri(_ref.uniform_f64_from32(np.zeros(1, np.uint32)))[0]))
#: ``chunk_bits`` when the caller gives none: bits of D∞ per chunk in exact mode (expected work
#: ≈ 2^16 candidates per chunk), of KL in budgeted / ORC mode (budget 2^(12 + pad_bits)). A single
#: coordinate heavier than this gets a chunk of its own (the work check below still applies).
DEFAULT_CHUNK_BITS = {"exact": 16.0, "budgeted": 12.0, "orc": 12.0}
#: Exact mode refuses before searching when a chunk's expected work exp(sup log r) ≈ 2^D∞ exceeds
#: ``max_candidates / EXACT_WORK_MARGIN``: the search then stops within ``max_candidates`` with
#: probability ≥ 1 − e^-8 (the stopping index is ≈ exp(sup log r)·S with S ~ Exp(1)).
EXACT_WORK_MARGIN = 8
#: Exact mode refuses a coordinate whose target puts more than this mass outside the candidates'
#: reachable range mu_p ± EPS_MAX·sigma_p. The output law is then q restricted to that range, at
#: total variation distance ≤ the sum of these masses over the coordinates from q. Ordinary exact
#: targets sit well inside: q = N(3.27, 0.6²) against N(0, 1) (8 bits of KL) leaves 1.6e-7 out,
#: q = N(2, 0.8²) 2.9e-8; q = N(5.5, 0.4²) leaves 1.8e-2 and is refused.
EXACT_TAIL_TOL = 1e-6


# ---- per-coordinate information quantities --------------------------------

def kl_bits(mu_q, sigma_q, mu_p, sigma_p) -> np.ndarray:
    """KL(q‖p) per coordinate, in bits."""
    r = sigma_q / sigma_p
    return LOG2E * (-np.log(r) + 0.5 * (r * r + ((mu_q - mu_p) / sigma_p) ** 2) - 0.5)


def dinf_bits(mu_q, sigma_q, mu_p, sigma_p) -> np.ndarray:
    """D∞ = log₂ sup q/p per coordinate: finite iff sigma_q < sigma_p, or the
    coordinates are identical (then 0). ``inf`` elsewhere."""
    mu_q, sigma_q, mu_p, sigma_p = np.broadcast_arrays(mu_q, sigma_q, mu_p, sigma_p)
    out = np.full(mu_q.shape, np.inf)
    same = (sigma_q == sigma_p) & (mu_q == mu_p)
    out[same] = 0.0
    ok = sigma_q < sigma_p
    sq, sp, dm = sigma_q[ok], sigma_p[ok], (mu_q - mu_p)[ok]
    out[ok] = LOG2E * (np.log(sp / sq) + dm * dm / (2.0 * (sp * sp - sq * sq)))
    return out


def tail_mass(mu_q, sigma_q, mu_p, sigma_p) -> np.ndarray:
    """q's mass per coordinate outside the range the candidates reach, |x − mu_p| ≤ EPS_MAX·sigma_p.

    Closed form ``Φ((lo − μq)/σq) + Φ((μq − hi)/σq)`` (``math.erfc``; below 1e-300 it is 0).
    Exact mode refuses coordinates where it exceeds :data:`EXACT_TAIL_TOL`.
    """
    mu_q, sigma_q, mu_p, sigma_p = (np.asarray(a, np.float64) for a in (mu_q, sigma_q, mu_p, sigma_p))
    mu_q, sigma_q, mu_p, sigma_p = np.broadcast_arrays(mu_q, sigma_q, mu_p, sigma_p)
    reach = EPS_MAX * sigma_p
    z_lo = (mu_q - (mu_p - reach)) / sigma_q  # standardised distances from the mean to each end
    z_hi = ((mu_p + reach) - mu_q) / sigma_q
    out = np.zeros(mu_q.shape)
    near = (z_lo < 38.0) | (z_hi < 38.0)  # erfc(38/√2) < 1e-300: nothing to add elsewhere
    if np.any(near):
        erfc = np.frompyfunc(math.erfc, 1, 1)
        lo, hi = z_lo[near], z_hi[near]
        out[near] = (0.5 * erfc(lo / math.sqrt(2.0)).astype(np.float64)
                     + 0.5 * erfc(hi / math.sqrt(2.0)).astype(np.float64))
    return out


# ---- chunk layout ----------------------------------------------------------

def _chunk_count(weights: np.ndarray, chunk_bits: float) -> int:
    """Smallest C with every interleaved chunk (j mod C) weighing <= chunk_bits."""
    d = weights.size
    if d == 0:
        return 0
    wmax = float(weights.max())
    if not wmax <= chunk_bits:
        j = int(np.argmax(weights))
        raise ValueError(
            f"coordinate {j} alone carries {wmax:.3f} bits, beyond chunk_bits={chunk_bits}: "
            "raise chunk_bits (or the budget) or reduce that coordinate's information")
    total = float(weights.sum())
    c = max(1, math.ceil(total / chunk_bits))
    idx = np.arange(d)
    for _ in range(64):
        if c >= d:
            return d
        if np.bincount(idx % c, weights, minlength=c).max() <= chunk_bits:
            return c
        c += max(1, c // 16)
    return d


@dataclass
class Plan:
    """Chunk layout and standardised score coefficients of one PFR vector."""

    d: int
    chunks: int
    order: np.ndarray  # coordinates of chunk 0, then chunk 1, ...
    offsets: np.ndarray  # uint64[chunks + 1] into ``order``
    lin: np.ndarray = field(repr=False)
    quad: np.ndarray | None = field(repr=False)
    c0: np.ndarray = field(repr=False)
    kl: np.ndarray = field(repr=False)  # bits per chunk
    dinf: np.ndarray = field(repr=False)  # bits per chunk
    bound: np.ndarray = field(repr=False)  # sup log r over the candidates (|eps| <= EPS_MAX), nats per chunk; <= D∞


def _layout(d: int, chunks: int):
    """Interleaved chunks: chunk j holds coordinates j, j + C, j + 2C, … (C = chunks).

    Built in O(d) by reading a row-major C-column grid by columns (the same order as a
    stable sort of ``arange(d) % C``, without the sort)."""
    if chunks == 0:
        return np.zeros(0, np.int64), np.zeros(1, np.uint64)
    rows = -(-d // chunks)
    grid = np.arange(rows * chunks, dtype=np.int64).reshape(rows, chunks).T.ravel()
    order = grid[grid < d] if rows * chunks != d else grid
    sizes = np.full(chunks, d // chunks, np.uint64)
    sizes[: d % chunks] += 1
    offsets = np.zeros(chunks + 1, np.uint64)
    np.cumsum(sizes, out=offsets[1:])
    return order, offsets


def _prepare(mu_q, sigma_q, mu_p, sigma_p):
    arrays = [np.asarray(a, dtype=np.float64) for a in (mu_q, sigma_q, mu_p, sigma_p)]
    try:
        shape = np.broadcast_shapes(*(a.shape for a in arrays))
    except ValueError:
        raise ValueError("mu_q, sigma_q, mu_p, sigma_p do not broadcast to one shape: "
                         + ", ".join(str(a.shape) for a in arrays)) from None
    out = [np.ascontiguousarray(np.broadcast_to(a, shape)).reshape(-1) for a in arrays]
    for name, a in zip(("mu_q", "sigma_q", "mu_p", "sigma_p"), out):
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name} contains NaN or Inf")
    for name, a in (("sigma_q", out[1]), ("sigma_p", out[3])):
        if a.size and not np.all(a > 0):
            raise ValueError(f"{name} must be > 0 everywhere")
    return shape, out


def plan(mu_q, sigma_q, mu_p, sigma_p, *, mode="budgeted", chunk_bits=None) -> Plan:
    """Chunk layout and score coefficients for a diagonal Gaussian pair.

    ``chunk_bits=None`` chunks to :data:`DEFAULT_CHUNK_BITS` of the mode (D∞ in exact mode, KL
    otherwise), or to the heaviest coordinate if that is larger. Exact mode refuses targets it
    cannot reach (see :func:`tail_mass`)."""
    return _plan(*_prepare(mu_q, sigma_q, mu_p, sigma_p)[1], mode=mode, chunk_bits=chunk_bits)


def _plan(mq, sq, mp, sp, *, mode, chunk_bits) -> Plan:
    """plan() on the flat float64 arrays _prepare returned (validated once per call chain)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    d = mq.size
    kl = kl_bits(mq, sq, mp, sp)
    dinf = dinf_bits(mq, sq, mp, sp)
    if mode == "exact" and not np.all(np.isfinite(dinf)):
        j = int(np.argmax(~np.isfinite(dinf)))
        raise ValueError(
            f"exact mode needs a finite D∞ = log sup q/p, but coordinate {j} has sigma_q={float(sq[j])!r} >= "
            f"sigma_p={float(sp[j])!r} (with a different mean or a larger variance the ratio q/p is unbounded, "
            "so no exact stopping rule exists). Use mode='budgeted' or mode='orc' with a candidate budget, "
            "which reports its bias.")
    if mode == "exact" and d:
        # Only coordinates within 6 σq of an end can exceed the tolerance (2·Φ̄(6) < 2e-9 < 1e-6).
        reach = EPS_MAX * sp
        near = np.flatnonzero(np.minimum(mq - (mp - reach), (mp + reach) - mq) < 6.0 * sq)
        tail = tail_mass(mq[near], sq[near], mp[near], sp[near]) if near.size else np.zeros(1)
        if tail.max() > EXACT_TAIL_TOL:
            worst = float(tail.max())
            j = int(near[np.argmax(tail)])
            raise ValueError(
                f"exact mode cannot reach coordinate {j}'s target: q = N({float(mq[j])!r}, {float(sq[j])!r}²) puts "
                f"{worst:.3g} of its mass beyond the candidates' range mu_p ± {EPS_MAX:.4f}·sigma_p "
                f"= [{mp[j] - EPS_MAX * sp[j]:.6g}, {mp[j] + EPS_MAX * sp[j]:.6g}] (tolerance "
                f"{EXACT_TAIL_TOL:g}); the sample would not follow q. Widen the prior (sigma_p) or "
                "move mu_p toward mu_q")
    weights = dinf if mode == "exact" else kl
    if chunk_bits is None:
        # Documented default: chunk to DEFAULT_CHUNK_BITS, never refusing a single heavy coordinate.
        chunk_bits = max(DEFAULT_CHUNK_BITS[mode], float(weights.max())) if d else DEFAULT_CHUNK_BITS[mode]
    chunks = _chunk_count(weights, float(chunk_bits))
    order, offsets = _layout(d, chunks)
    mq, sq, mp, sp = mq[order], sq[order], mp[order], sp[order]
    # log r(eps) = c0 + lin·eps + quad·eps², eps standardised under p.
    b = sp / sq
    a = (mp - mq) / sq
    lin = -a * b
    equal = np.array_equal(sq, sp)
    quad = None if equal else 0.5 * (1.0 - b * b)
    # log q(x) − log p(x) at x = mu_p + sigma_p·eps: with (x − mu_q)/sigma_q = a + b·eps,
    # log(sigma_p/sigma_q) − (a + b·eps)²/2 + eps²/2, so the constant is log b − a²/2.
    per = np.log(b) - 0.5 * a * a
    seg = offsets[:-1].astype(np.int64)
    c0 = np.add.reduceat(per, seg) if d else np.zeros(0)
    kl_c = np.add.reduceat(kl[order], seg) if d else np.zeros(0)
    dinf_c = np.add.reduceat(dinf[order], seg) if d else np.zeros(0)
    # sup of log r over the candidates' range |eps| <= EPS_MAX, coordinate-wise.
    e = EPS_MAX
    if quad is None:
        best = np.abs(lin) * e
    else:
        ends = np.maximum(lin * e + quad * e * e, -lin * e + quad * e * e)
        with np.errstate(divide="ignore", invalid="ignore"):
            v = -lin / (2 * quad)
            inner = (quad < 0) & (np.abs(v) <= e)
            vertex = np.where(inner, lin * v + quad * v * v, -np.inf)
        best = np.maximum(ends, vertex)
    # The sup over the candidates' box is separable, so it is the sum of the coordinates' sups:
    # D∞ (nats) when every maximiser lies inside the range, less otherwise. It is computed from
    # the same coefficients the scores use, so it is the stopping rule's bound as it stands (a cap
    # at the separately computed D∞ could undercut it by rounding and is never tighter).
    bound = c0 + (np.add.reduceat(best, seg) if d else np.zeros(0))
    return Plan(d, chunks, order, offsets, np.ascontiguousarray(lin), None if quad is None else np.ascontiguousarray(quad),
                np.ascontiguousarray(c0, np.float64), kl_c, dinf_c, np.ascontiguousarray(bound, np.float64))


def _streams(stream: int, chunks: int) -> np.ndarray:
    """stream + j mod 2^64 for each chunk j (uint64 array arithmetic wraps)."""
    return np.arange(chunks, dtype=np.uint64) + np.uint64(stream)


def _budgets(p: Plan, mode: str, pad_bits: float, candidates, max_candidates: int) -> np.ndarray:
    if mode == "exact":
        return np.full(p.chunks, max_candidates, np.uint64)
    if candidates is not None:
        k = int(candidates)
        if not 1 <= k <= max_candidates:
            raise ValueError(f"candidates must be in [1, {max_candidates}], got {candidates}")
        return np.full(p.chunks, k, np.uint64)
    if not pad_bits >= 0:
        raise ValueError("pad_bits must be >= 0")
    bits = np.ceil(p.kl) + pad_bits
    k = np.minimum(np.exp2(np.minimum(bits, 62)), max_candidates)
    return np.maximum(k, 1).astype(np.uint64)


def search(mu_q, sigma_q, mu_p, sigma_p, seed, stream, *, mode="exact", chunk_bits=None, pad_bits=4.0,
           candidates=None, max_candidates=1 << 30):
    """Run the encoder's search. Returns ``(plan, indices, info)`` (no bytes)."""
    return _search(_plan(*_prepare(mu_q, sigma_q, mu_p, sigma_p)[1], mode=mode, chunk_bits=chunk_bits), seed, stream,
                   mode=mode, pad_bits=pad_bits, candidates=candidates, max_candidates=max_candidates)


def _check_exact_work(p: Plan, max_candidates: int) -> None:
    """Refuse, before any search, an exact chunk whose expected work exceeds the budget."""
    if not p.chunks:
        return
    work_bits = p.bound * LOG2E  # log2 of the expected number of examined candidates
    limit_bits = math.log2(max_candidates / EXACT_WORK_MARGIN) if max_candidates > EXACT_WORK_MARGIN else 0.0
    if np.max(work_bits) > limit_bits:
        c = int(np.argmax(work_bits))
        sizes = np.diff(p.offsets.astype(np.int64))
        hint = ("lower chunk_bits (more, smaller chunks)" if sizes[c] > 1 else
                "this chunk is a single coordinate, so only a larger max_candidates (or a closer prior) helps")
        raise ValueError(
            f"exact search of chunk {c} ({int(sizes[c])} coordinates, sup log2 q/p = {work_bits[c]:.2f} bits) "
            f"would examine ≈ 2^{work_bits[c]:.1f} candidates on average, beyond max_candidates="
            f"{max_candidates} / {EXACT_WORK_MARGIN}: {hint}, or raise max_candidates. chunk_bits sets the "
            f"D∞ bits per chunk (default {DEFAULT_CHUNK_BITS['exact']:g}).")


def _search(p: Plan, seed, stream, *, mode, pad_bits, candidates, max_candidates):
    seed, stream = u64(seed, "seed"), u64(stream, "stream")
    if mode == "exact":
        _check_exact_work(p, int(max_candidates))
    budgets = _budgets(p, mode, pad_bits, candidates, int(max_candidates))
    streams = _streams(stream, p.chunks)
    arrival = 1 if mode == "orc" else 0
    idx, examined, stopped = _core.pfr_search(p.lin, p.quad, p.c0, p.offsets, seed, streams, streams,
                                              budgets, p.bound, arrival) if p.chunks else (
        np.zeros(0, np.uint64), np.zeros(0, np.uint64), np.zeros(0, bool))
    # The arrivals use a different key than the candidates: same streams, key seed ^ ARRIVAL_KEY.
    if mode == "exact" and p.chunks and not np.all(stopped):
        c = int(np.argmin(stopped))
        raise ValueError(
            f"exact search of chunk {c} (D∞ = {p.dinf[c]:.2f} bits) did not stop within max_candidates="
            f"{max_candidates}; lower chunk_bits or raise max_candidates")
    info = {"kl_bits": p.kl, "dinf_bits": p.dinf, "budgets": budgets, "examined": examined, "stopped": stopped}
    return p, idx, info


def candidates_of(p: Plan, indices, seed, stream) -> np.ndarray:
    """The standardised candidates eps (float32, in chunk order) chosen by ``indices``."""
    idx = np.ascontiguousarray(indices, dtype=np.uint64)
    if idx.size != p.chunks:
        raise ValueError(f"expected {p.chunks} indices, got {idx.size}")
    return _core.pfr_candidates(u64(seed, "seed"), _streams(u64(stream, "stream"), p.chunks), idx, p.offsets)


def sample_of(eps_in_chunk_order: np.ndarray, order: np.ndarray, mu_p: np.ndarray, sigma_p: np.ndarray) -> np.ndarray:
    """z = mu_p + sigma_p · eps in float64, scattered back to coordinate order."""
    eps = np.empty(order.size, np.float64)
    eps[order] = eps_in_chunk_order
    return mu_p + sigma_p * eps


# ---- the message --------------------------------------------------------------

_MAGIC = b"PF"
_VERSION = 1
_LAM_ONE = 4096  # the Zipf exponent travels in units of 1/4096
_MODE_CODE = {"exact": 0, "budgeted": 1, "orc": 2}
_MAX_NMAX_LOG2 = 31  # the Zipf family's support ends at 2^31 - 1


def zipf_lambda(d_bits: float) -> float:
    """Zipf exponent for PFR indices of a chunk carrying ``d_bits``: 1 + 1/(D + 1.53)."""
    return 1.0 + 1.0 / (d_bits + 1.53)


def _zipf_log2_norm(lam: float, n_max: int) -> float:
    """log2 of sum_{n <= n_max} n^-lam: 4096 terms exactly, the rest by the midpoint integral."""
    m = min(n_max, 4096)
    head = float(np.sum(np.arange(1, m + 1, dtype=np.float64) ** -lam))
    if n_max > m:
        a, b = m + 0.5, n_max + 0.5
        tail = (b ** (1 - lam) - a ** (1 - lam)) / (1 - lam) if lam != 1 else math.log(b / a)
        head += tail
    return math.log2(head)


def fit_zipf_lambda(indices: np.ndarray, n_max: int, prior_bits: float) -> float:
    """The exponent that minimises the indices' code length under the truncated Zipf law.

    The encoder knows every index of the message, so it fits λ (convex negative
    log-likelihood, golden-section search) instead of trusting the a-priori
    1 + 1/(D + 1.53), and sends it in the header. Quantized to 1/4096.
    """
    if indices.size == 0:
        return zipf_lambda(prior_bits)
    s = float(np.sum(np.log2(indices.astype(np.float64))))
    c = indices.size

    def cost(lam):
        return lam * s + c * _zipf_log2_norm(lam, n_max)

    lo, hi = 1.0 + 2**-12, 16.0
    g = (math.sqrt(5) - 1) / 2
    x1, x2 = hi - g * (hi - lo), lo + g * (hi - lo)
    f1, f2 = cost(x1), cost(x2)
    for _ in range(40):
        if f1 <= f2:
            hi, x2, f2 = x2, x1, f1
            x1 = hi - g * (hi - lo)
            f1 = cost(x1)
        else:
            lo, x1, f1 = x1, x2, f2
            x2 = lo + g * (hi - lo)
            f2 = cost(x2)
    lam = (lo + hi) / 2
    return round(lam * _LAM_ONE) / _LAM_ONE


def _nmax_log2(budgets: np.ndarray) -> int:
    top = int(budgets.max()) if budgets.size else 1
    return max(1, (top - 1).bit_length())


def encode_gaussian(mu_q, sigma_q, mu_p, sigma_p, seed, stream, *, mode="exact", chunk_bits=None, pad_bits=4.0,
                    candidates=None, max_candidates=1 << 30, return_info=False, framing="full"):
    """Send a sample of q = N(mu_q, diag sigma_q²) given p = N(mu_p, diag sigma_p²).

    Returns ``(sample, data)`` (and ``info`` if ``return_info``): ``sample`` has the
    broadcast shape of the parameters (float64) and is exactly what
    :func:`decode_gaussian` returns from ``data``; ``len(data) * 8`` is the full
    cost, side information included. See the module docstring for the modes.

    Chunking: ``chunk_bits=None`` splits the vector so that no chunk carries more than
    :data:`DEFAULT_CHUNK_BITS` (16 bits of D∞ in exact mode, 12 bits of KL otherwise), or the
    heaviest single coordinate if that is more.

    Exact mode limits (``ValueError`` before any search):

    - every coordinate needs σq < σp (or q = p there): D∞ must be finite;
    - a chunk's expected work exp(sup log q/p) ≈ 2^D∞ candidates must not exceed
      ``max_candidates / 8`` (then the search stops within ``max_candidates`` with probability
      ≥ 1 − e^-8): lower ``chunk_bits`` or raise ``max_candidates``;
    - candidates are float32 normals, |ε| ≤ EPS_MAX = 6.338, so the sample lies in
      μp ± 6.338·σp: the output is q *restricted to that range*. A coordinate where q has more
      than :data:`EXACT_TAIL_TOL` (1e-6) of its mass outside (closed form :func:`tail_mass`;
      e.g. q = N(5.5, 0.4²) against N(0, 1) leaves 1.8 %) is refused; otherwise the law differs
      from q by at most the sum of those masses in total variation.

    Framing (``framing=``; :func:`decode_gaussian` must be told the same):

    - ``"full"`` (default): the self-describing message of docs/format.md §5.2 — magic,
      version, mode, d, C, λ (2 bytes), L, a complete rANS stream and a CRC-32. Fixed cost
      12–16 bytes of envelope plus the rANS stream's 7-byte header (for C < 128) and its flushed
      state (≈ 3 bytes for one index): 21–25 bytes for one chunk, whatever it carries.
    - ``"compact"``: for callers who send many small messages and know the sample's shape on
      the receiving side. One header byte (L − 1; C if C < 3, else C − 3 as a varint after it;
      which index code follows), then the shorter of two index codes: Elias-γ (2⌊log₂ n⌋ + 1 bits
      per index, for at most 64 chunks) or one byte λ (1/64 units) plus the rANS stream without
      its constant 7-byte header. Cost: 1 byte (2–5 if C ≥ 3) plus the index code in whole
      bytes — e.g. 2–3 bytes instead of 21–25 for 4 coordinates carrying 1.8 bits, 2 instead of
      21–24 for one coordinate. No checksum, no dimension, no mode: a damaged compact message
      raises ``FormatError`` or decodes to another sample.
    """
    if framing not in FRAMINGS:
        raise ValueError(f"framing must be one of {FRAMINGS}, got {framing!r}")
    shape, (mq, sq, mp, sp) = _prepare(mu_q, sigma_q, mu_p, sigma_p)
    p, idx, info = _search(_plan(mq, sq, mp, sp, mode=mode, chunk_bits=chunk_bits), seed, stream, mode=mode,
                           pad_bits=pad_bits, candidates=candidates, max_candidates=max_candidates)
    eps = candidates_of(p, idx, seed, stream)
    sample = sample_of(eps, p.order, mp, sp).reshape(shape)
    nmax_log2 = _nmax_log2(info["budgets"])
    if nmax_log2 > _MAX_NMAX_LOG2:
        raise ValueError(f"candidate budget 2**{nmax_log2} exceeds the format's 2**{_MAX_NMAX_LOG2} "
                         "(lower max_candidates, candidates or pad_bits)")
    n_max = _zipf_n(nmax_log2)
    lam = fit_zipf_lambda(idx, n_max, float(p.kl.mean()) if p.chunks else 0.0)
    if framing == "compact":
        data = _compact_frame(idx, lam, n_max, nmax_log2, p.chunks)
    else:
        lam_q = min(int(round(lam * _LAM_ONE)), 2**16 - 1)
        payload = _code_indices(idx, lam_q / _LAM_ONE, n_max)
        data = frame(_varint(p.chunks) + struct.pack("<HB", lam_q, nmax_log2) + payload, mode, p.d)
    if not return_info:
        return sample, data
    info = dict(info)
    info.update(_diagnostics(p, eps))
    info.update(chunks=p.chunks, bits=8 * len(data), kl_total_bits=float(p.kl.sum()), indices=idx)
    return sample, data, info


#: Largest sample a message may size by itself (scalar prior, no ``shape``): 2^22 float64 = 32 MiB.
_MAX_IMPLICIT_D = 1 << 22


def decode_gaussian(data, mu_p, sigma_p, seed, stream, *, shape=None, framing="full", **options):
    """The sample :func:`encode_gaussian` sent, bit for bit, from ``data`` and p alone.

    ``mu_p`` and ``sigma_p`` broadcast to the sample's shape; when both are
    scalars the sample is 1-D with the message's length (at most 2^22 coordinates,
    so a forged length cannot force a huge allocation), or ``shape`` if given.
    Encoder ``options`` are accepted for symmetry and ignored: the message carries
    everything the decoder needs (chunk count, Zipf parameters).

    ``framing`` must be the encoder's. A ``"compact"`` message carries no dimension: the
    sample has ``shape`` if given, else the broadcast shape of ``mu_p`` and ``sigma_p``
    (a scalar prior means one coordinate).
    """
    unknown = set(options) - {"mode", "chunk_bits", "pad_bits", "candidates", "max_candidates", "return_info"}
    if unknown:
        raise ValueError(f"unknown options {sorted(unknown)}")
    if framing not in FRAMINGS:
        raise ValueError(f"framing must be one of {FRAMINGS}, got {framing!r}")
    d_mp = np.asarray(mu_p, dtype=np.float64)
    d_sp = np.asarray(sigma_p, dtype=np.float64)
    try:
        pshape = np.broadcast_shapes(d_mp.shape, d_sp.shape)
    except ValueError:
        raise ValueError("mu_p and sigma_p do not broadcast") from None
    if not (np.all(np.isfinite(d_mp)) and np.all(np.isfinite(d_sp))):
        raise ValueError("mu_p / sigma_p contain NaN or Inf")
    if d_sp.size and not np.all(d_sp > 0):
        raise ValueError("sigma_p must be > 0 everywhere")
    seed, stream = u64(seed, "seed"), u64(stream, "stream")
    buf = bytes(data)
    if framing == "compact":
        shape = pshape if shape is None else tuple(int(x) for x in np.atleast_1d(shape))
        d = int(np.prod(shape, dtype=np.int64))
        chunks, nmax_log2, lam, payload = _compact_unframe(buf, d)
        return _decode_sample(payload, lam, nmax_log2, chunks, d, shape, d_mp, d_sp, pshape, seed, stream)
    if len(buf) < 13:
        raise FormatError(f"PFR message truncated: {len(buf)} bytes")
    body, (crc,) = buf[:-4], struct.unpack("<I", buf[-4:])
    if body[:2] != _MAGIC:
        raise FormatError("not a chansim PFR message (bad magic)")
    if body[2] != _VERSION:
        raise FormatError(f"PFR message version {body[2]} is not supported (this chansim reads {_VERSION})")
    if zlib.crc32(body) != crc:
        raise FormatError("PFR message corrupted (CRC mismatch)")
    if body[3] not in _MODE_CODE.values():
        raise FormatError("PFR message has an unknown mode")
    d, pos = _read_varint(body, 4)
    chunks, pos = _read_varint(body, pos)
    if pos + 3 > len(body):
        raise FormatError("PFR message truncated in its header")
    lam_q, nmax_log2 = struct.unpack_from("<HB", body, pos)
    payload = body[pos + 3:]
    if chunks > d or (d > 0 and chunks == 0) or not 1 <= nmax_log2 <= _MAX_NMAX_LOG2 or lam_q == 0:
        raise FormatError("PFR message header is inconsistent")
    if shape is not None:
        shape = tuple(int(x) for x in np.atleast_1d(shape))
    elif int(np.prod(pshape, dtype=np.int64)) == 1 and d > _MAX_IMPLICIT_D:
        # The length would come from the message alone: a forged header must not buy a huge array.
        raise FormatError(f"PFR message claims {d} coordinates; with scalar mu_p / sigma_p at most "
                          f"{_MAX_IMPLICIT_D} are decoded — pass shape= (or full-size priors) for more")
    elif int(np.prod(pshape, dtype=np.int64)) == 1 and pshape != ():
        shape = pshape if d == 1 else (d,)
    elif pshape == ():
        shape = () if d == 1 else (d,)
    else:
        shape = pshape
    if int(np.prod(shape, dtype=np.int64)) != d:
        # FormatError (a ValueError): the message does not belong to this prior, as in chansim.grc.
        raise FormatError(f"message was encoded for {d} coordinates, but the sample shape {shape} has "
                         f"{int(np.prod(shape, dtype=np.int64))}")
    return _decode_sample(payload, lam_q / _LAM_ONE, nmax_log2, chunks, d, shape, d_mp, d_sp, pshape, seed, stream)


def _decode_sample(payload, lam, nmax_log2, chunks, d, shape, d_mp, d_sp, pshape, seed, stream):
    """The sample from a message's index payload (a whole rANS stream) and its decoded header."""
    try:
        mp = np.ascontiguousarray(np.broadcast_to(d_mp, shape)).reshape(-1)
        sp = np.ascontiguousarray(np.broadcast_to(d_sp, shape)).reshape(-1)
    except ValueError:
        raise ValueError(f"mu_p/sigma_p of shape {pshape} do not broadcast to {shape}") from None
    # (A compact message's Elias-γ code arrives decoded: lam is None and payload the indices.)
    idx = payload if lam is None else _decode_indices(payload, lam, _zipf_n(nmax_log2), chunks)
    order, offsets = _layout(d, chunks)
    plan_ = Plan(d, chunks, order, offsets, np.zeros(0), None, np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0))
    eps = candidates_of(plan_, idx, seed, stream)
    return sample_of(eps, order, mp, sp).reshape(shape)


# ---- compact framing ------------------------------------------------------------
# byte 0: bits 0-4 L − 1, bits 5-6 min(C, 3), bit 7 the index code (0 rANS, 1 Elias-γ);
# [C − 3 as a varint if C ≥ 3]; rANS: [λ in units of 1/64 above 1, one byte] [rANS stream without
# its constant header]; Elias-γ: the C indices, each as ⌊log2 n⌋ zero bits then n's binary digits,
# most significant bit first, zero-padded to a whole byte.

FRAMINGS = ("full", "compact")
_COMPACT_LAM_ONE = 64
_GAMMA_MAX_CHUNKS = 64  # the Elias-γ index code is offered to messages of at most 64 chunks
# chansim.rans.Encoder() defaults: precision 24, 8 lanes, segments of 2^19 symbols.
_RANS_DEFAULT_HEAD = b"rA\x01" + bytes([24, 8, 19])


def _rans_head(count: int) -> bytes:
    """The constant header of a default rANS stream of ``count`` symbols (docs/format.md §2.1)."""
    return _RANS_DEFAULT_HEAD + _varint(count)


def _gamma_bits(idx: np.ndarray) -> int:
    return int(sum(2 * int(n).bit_length() - 1 for n in idx))


def _gamma_encode(idx: np.ndarray) -> bytes:
    acc, nbits = 0, 0
    for n in (int(v) for v in idx):
        width = 2 * n.bit_length() - 1  # leading zeros, then n itself
        acc, nbits = (acc << width) | n, nbits + width
    pad = -nbits % 8
    return (acc << pad).to_bytes((nbits + pad) // 8, "big")


def _gamma_decode(body: bytes, count: int, n_max: int) -> np.ndarray:
    bits = "".join(f"{b:08b}" for b in body)
    out, pos = [], 0
    for _ in range(count):
        zeros = 0
        while pos + zeros < len(bits) and bits[pos + zeros] == "0":
            zeros += 1
        if zeros > 31 or pos + 2 * zeros + 1 > len(bits):
            raise FormatError("compact PFR message: Elias-γ index code truncated or malformed")
        n = int(bits[pos + zeros: pos + 2 * zeros + 1], 2)
        pos += 2 * zeros + 1
        if n > n_max:
            raise FormatError("compact PFR message: index beyond the Zipf support")
        out.append(n)
    if len(bits) - pos >= 8 or "1" in bits[pos:]:
        raise FormatError("compact PFR message has trailing data")
    return np.array(out, dtype=np.uint64)


def _compact_frame(idx: np.ndarray, lam: float, n_max: int, nmax_log2: int, chunks: int) -> bytes:
    k = min(255, max(1, int(round((lam - 1.0) * _COMPACT_LAM_ONE))))
    stream = _code_indices(idx, 1.0 + k / _COMPACT_LAM_ONE, n_max)
    head = _rans_head(chunks)
    if not stream.startswith(head):  # the rANS defaults changed: the compact layout must follow
        raise RuntimeError("rANS stream header is not the compact framing's constant")
    rans_body = bytes([k]) + stream[len(head):]
    gamma = chunks <= _GAMMA_MAX_CHUNKS and (_gamma_bits(idx) + 7) // 8 <= len(rans_body)
    body = _gamma_encode(idx) if gamma else rans_body
    out = bytes([(nmax_log2 - 1) | (min(chunks, 3) << 5) | (0x80 if gamma else 0)])
    if chunks >= 3:
        out += _varint(chunks - 3)
    return out + body


def _compact_unframe(buf: bytes, d: int):
    """(chunks, L, λ, whole rANS stream) or (chunks, L, None, indices) of a compact message."""
    if len(buf) < 1:
        raise FormatError("compact PFR message is empty")
    nmax_log2, chunks, gamma = (buf[0] & 31) + 1, (buf[0] >> 5) & 3, bool(buf[0] & 0x80)
    pos = 1
    if chunks == 3:
        extra, pos = _read_varint(buf, pos)
        chunks += extra
    if nmax_log2 > _MAX_NMAX_LOG2 or chunks > d or (d > 0 and chunks == 0) or (
            gamma and chunks > _GAMMA_MAX_CHUNKS):
        raise FormatError(f"compact PFR message header is inconsistent with a {d}-coordinate sample")
    if gamma:
        return chunks, nmax_log2, None, _gamma_decode(buf[pos:], chunks, _zipf_n(nmax_log2))
    if pos >= len(buf) or buf[pos] == 0:
        raise FormatError("compact PFR message truncated or has a zero Zipf exponent")
    return chunks, nmax_log2, 1.0 + buf[pos] / _COMPACT_LAM_ONE, _rans_head(chunks) + buf[pos + 1:]


def frame(body: bytes, mode: str, d: int) -> bytes:
    """A whole message from its body (chunk count onward): magic, version, mode, d, body, CRC32.

    With :func:`unframe`, lets a container that already records the mode, the dimension and a
    checksum (the DiffC codec) store only the body.
    """
    head = _MAGIC + bytes([_VERSION, _MODE_CODE[mode]]) + _varint(d)
    msg = head + bytes(body)
    return msg + struct.pack("<I", zlib.crc32(msg))


def unframe(data: bytes) -> bytes:
    """The body of a message :func:`encode_gaussian` wrote (inverse of :func:`frame`; no checks
    beyond the envelope's shape — :func:`decode_gaussian` validates the framed message)."""
    buf = bytes(data)
    if buf[:3] != _MAGIC + bytes([_VERSION]) or len(buf) < 9:
        raise FormatError("not a chansim PFR message of this version")
    _, pos = _read_varint(buf, 4)
    return buf[pos:-4]


def _varint(v: int) -> bytes:
    """Unsigned LEB128."""
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    from .varint import read  # the one LEB128 reader (same overflow rule as the container and C++)

    return read(buf, pos, "varint", context="PFR message header")


def _zipf_n(nmax_log2: int) -> int:
    return min(1 << nmax_log2, 2**31 - 1)


def _code_indices(idx: np.ndarray, lam: float, n_max: int) -> bytes:
    from . import rans

    if idx.size and int(idx.max()) > n_max:
        raise ValueError(f"candidate index {int(idx.max())} beyond the Zipf support {n_max}")
    enc = rans.Encoder()
    enc.encode_zipf(idx.astype(np.int64), lam, n_max)
    return enc.finish()


def _decode_indices(payload: bytes, lam: float, n_max: int, count: int) -> np.ndarray:
    from . import rans

    try:
        dec = rans.Decoder(payload)
        idx = np.asarray(dec.decode_zipf(lam, n_max, shape=(count,)), dtype=np.int64)
        if dec.remaining:
            raise FormatError("PFR index payload has trailing symbols")
    except FormatError:
        raise
    except ValueError as exc:
        raise FormatError(f"PFR index payload is invalid: {exc}") from None
    if idx.size != count or (count and (idx.min() < 1 or idx.max() > n_max)):
        raise FormatError("PFR index payload decodes to out-of-range indices")
    return idx.astype(np.uint64)


def _diagnostics(p: Plan, eps: np.ndarray) -> dict:
    """Bias diagnostic of the chosen samples along each chunk's mean shift.

    Per chunk, proj = m̂·eps with m the linear score coefficients; under the
    target q it has mean m̂·E_q[eps] and variance Σ m̂² Var_q[eps]. Returns the
    mean and variance over chunks of the standardised proj (targets 0 and 1),
    and, for equal variances, the fraction of the mean shift realised (target 1).
    """
    if p.chunks == 0:
        return {}
    seg = p.offsets[:-1].astype(np.int64)
    lin = p.lin
    b2 = 1.0 if p.quad is None else (1.0 - 2.0 * p.quad)  # (sigma_p/sigma_q)^2
    # Under q: eps ~ N(lin / b², 1 / b²) coordinate-wise (standardised by p).
    mean_q = lin / b2
    var_q = np.ones_like(lin) / b2
    norm2 = np.add.reduceat(lin * lin, seg)
    nz = norm2 > 0
    proj = np.add.reduceat(lin * eps.astype(np.float64), seg)
    tmean = np.add.reduceat(lin * mean_q, seg)
    tvar = np.add.reduceat(lin * lin * var_q, seg)
    z = (proj[nz] - tmean[nz]) / np.sqrt(tvar[nz])
    out = {"bias_z_mean": float(z.mean()) if z.size else 0.0, "bias_z_var": float(z.var()) if z.size else 1.0}
    if p.quad is None and nz.any():
        out["shift_fraction"] = float(proj[nz].sum() / tmean[nz].sum())
    return out


# ---- research interface: any low-dimensional target through its log ratio -----

def encode_callback(log_ratio, d, seed, stream, *, log_r_bound=None, candidates=None, ordered=False,
                    max_candidates=1 << 24, batch=4096):
    """PFR for any target q given ``log_ratio(eps) = log dq/dp`` with p = N(0, I_d).

    ``log_ratio`` maps a float64 array of shape (B, d) to shape (B,). With
    ``log_r_bound`` = sup log r (nats) the search stops by the exact rule and the
    sample follows q exactly (up to the candidates' range |eps| <= EPS_MAX); with
    ``candidates = K`` instead it is truncated (``ordered=True`` gives ORC). The
    candidates are the same as :func:`encode_gaussian`'s single chunk on
    ``stream``. Returns ``(eps, index)``: code ``index`` (1-based) as you like, e.g.
    with ``chansim.rans`` under the Zipf family; :func:`decode_callback` rebuilds eps.
    With ``log_r_bound`` and no budget, a bound whose expected work exp(log_r_bound) exceeds
    ``max_candidates / 8`` is refused before any candidate is scored (as in exact
    :func:`encode_gaussian`).
    """
    from . import prng

    seed, stream = u64(seed, "seed"), u64(stream, "stream")
    if not callable(log_ratio):
        raise ValueError("log_ratio must be callable")
    d = int(d)
    if d < 1:
        raise ValueError("d must be >= 1")
    if log_r_bound is None and candidates is None:
        raise ValueError("give log_r_bound (exact stopping rule) or candidates (a budget)")
    if log_r_bound is not None and not math.isfinite(float(log_r_bound)) and candidates is None:
        raise ValueError("an infinite log_r_bound has no stopping rule: give candidates")
    k = int(candidates) if candidates is not None else int(max_candidates)
    if not 1 <= k <= max_candidates:
        raise ValueError(f"candidates must be in [1, {max_candidates}]")
    if ordered and candidates is None:
        raise ValueError("ORC (ordered=True) needs a candidate budget")
    bound = math.inf if log_r_bound is None else float(log_r_bound)
    if candidates is None and bound * LOG2E > math.log2(max(max_candidates / EXACT_WORK_MARGIN, 1.0)):
        raise ValueError(
            f"exact search with log_r_bound = {bound:.4g} nats would examine ≈ 2^{bound * LOG2E:.1f} candidates on "
            f"average, beyond max_candidates={max_candidates} / {EXACT_WORK_MARGIN}: raise max_candidates or give "
            "candidates (a budget)")
    best, best_n, t = math.inf, 0, 0.0
    n = 1
    while n <= k:
        b = min(batch, k - n + 1)
        eps = prng.normal(seed, stream, (n - 1) * d, b * d).astype(np.float64).reshape(b, d)
        lr = np.asarray(log_ratio(eps), dtype=np.float64).reshape(-1)
        if lr.shape != (b,) or np.any(np.isnan(lr)):
            raise ValueError("log_ratio must return one non-NaN value per candidate")
        e = prng.exponential(seed ^ ARRIVAL_KEY, stream, n - 1, b, np.float64)
        if ordered:
            e = e * (k / (k - np.arange(n, n + b, dtype=np.float64) + 1))
        tt = t + np.cumsum(e)
        score = _ref.det_log(tt) - lr
        j = int(np.argmin(score))
        if score[j] < best:
            best, best_n = float(score[j]), n + j
        t = float(tt[-1])
        n += b
        if _ref.det_log(np.array([t]))[0] - bound >= best:
            break
    else:
        if candidates is None:
            raise ValueError(f"exact search did not stop within {max_candidates} candidates")
    return decode_callback(best_n, d, seed, stream), best_n


def decode_callback(index, d, seed, stream) -> np.ndarray:
    """Candidate ``index`` (1-based) of :func:`encode_callback`: float64 eps of length d."""
    from . import prng

    index, d = int(index), int(d)
    if index < 1 or d < 1:
        raise ValueError("index and d must be >= 1")
    return prng.normal(u64(seed, "seed"), u64(stream, "stream"), (index - 1) * d, d).astype(np.float64)
