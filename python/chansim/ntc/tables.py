"""The fixed-point side of the NTC entropy model: what both sides must agree on bit for bit.

* Hyper-latent tables: the learned density of each ẑ channel is tabulated once, when a
  model is exported, as integer frequencies on ``[offset_c, offset_c + K)`` and stored in
  the model file. Coding never evaluates the density network, so no float rounding can
  make two machines disagree.
* Latent parameters: the hyper-synthesis runs in float64 and its outputs are snapped to a
  documented grid — means to multiples of 1/64 (:data:`MEAN_GRID`), scales to
  ``2^(j/32)`` (:data:`SCALE_STEPS_PER_OCTAVE`) clipped to ``[scale_min, SCALE_MAX]`` — so
  the tables the coder builds depend on grid indices only. Two machines whose float64
  convolutions differ by a relative δ pick different grid points for an element with
  probability ≈ 2·δ·(64·|μ| + 32/ln 2); for a 768×512 image (196,608 latents) and
  δ = 1e-15 that is < 1e-8 per file. (In float32, δ ≈ 1e-7, it would be a few elements per
  image, which is why the hyper-synthesis does not run in float32.)
"""

from __future__ import annotations

import math

import numpy as np

MEAN_GRID = 64                   # means are multiples of 1/MEAN_GRID (in units of the quantization step)
SCALE_STEPS_PER_OCTAVE = 32      # scales are 2^(j / SCALE_STEPS_PER_OCTAVE)
#: Floor of σ' of a model whose config has no ``scale_min`` (CompressAI's bound). Under universal
#: quantization the floor is not free: the cell's edges fall at a random place relative to μ, so a
#: latent that carries no information still costs bits in proportion to the floor (0.16 bits per
#: latent at 0.11 — measured on Kodak at the lowest quality, where 95 % of the latents sit at the
#: floor and carry 84 % of the bits). A model may set a lower floor, down to :data:`SCALE_MIN_LOWEST`.
SCALE_MIN = 0.11
#: The lowest floor a model may set: the mean grid's step (μ̂ is placed to within half of it, so a
#: narrower density would gain little and cost much when μ̂ is off).
SCALE_MIN_LOWEST = 1.0 / MEAN_GRID
SCALE_MAX = 256.0
_J_LOWEST = math.ceil(SCALE_STEPS_PER_OCTAVE * math.log2(SCALE_MIN_LOWEST))   # -192
_J_MAX = math.floor(SCALE_STEPS_PER_OCTAVE * math.log2(SCALE_MAX))          # 256
TABLE_PRECISION = 16             # hyper-latent frequencies sum to about 2^16 per channel
TAIL_MASS = 1e-9                 # probability left outside a channel's table (coded by the rANS escape)


def _round_mantissa(v: np.ndarray, bits: int) -> np.ndarray:
    """Round to ``bits`` significant bits (makes the table immune to last-ulp differences of exp2)."""
    m, e = np.frexp(v)
    return np.ldexp(np.rint(np.ldexp(m, bits)), e - bits)


#: Scale grid: SCALE_TABLE[j − J_LOWEST] = 2^(j/32) rounded to 20 significant bits (each entry depends on
#: its j alone, so a model's floor only decides where the grid starts).
SCALE_TABLE = _round_mantissa(np.exp2(np.arange(_J_LOWEST, _J_MAX + 1) / SCALE_STEPS_PER_OCTAVE), 20)


def check_scale_min(scale_min) -> float:
    """A model's floor of σ' as a float in [:data:`SCALE_MIN_LOWEST`, 1] (ValueError otherwise)."""
    try:
        v = float(scale_min)
    except (TypeError, ValueError):
        raise ValueError(f"scale_min must be a number, got {scale_min!r}") from None
    if not SCALE_MIN_LOWEST <= v <= 1.0:
        raise ValueError(f"scale_min must be in [1/{MEAN_GRID}, 1], got {scale_min!r}")
    return v


def snap_means(mean: np.ndarray) -> np.ndarray:
    """float64 means on the 1/64 grid."""
    return np.rint(np.asarray(mean, dtype=np.float64) * MEAN_GRID) / MEAN_GRID


def scale_index(scale: np.ndarray, scale_min: float = SCALE_MIN) -> np.ndarray:
    """Index into :data:`SCALE_TABLE` of each scale (int32): the nearest ``2^(j/32)`` in log scale to
    max(scale, ``scale_min``), j clipped to [⌈32·log2 scale_min⌉, 256]."""
    scale_min = check_scale_min(scale_min)
    s = np.maximum(np.asarray(scale, dtype=np.float64), scale_min)
    j = np.rint(SCALE_STEPS_PER_OCTAVE * np.log2(s))
    j_min = math.ceil(SCALE_STEPS_PER_OCTAVE * math.log2(scale_min))
    return (np.clip(j, j_min, _J_MAX) - _J_LOWEST).astype(np.int32)


def snap_scales(scale: np.ndarray, scale_min: float = SCALE_MIN) -> np.ndarray:
    return SCALE_TABLE[scale_index(scale, scale_min)]


def frequency_table(pmf: np.ndarray, tail: float = TAIL_MASS, precision: int = TABLE_PRECISION):
    """(offsets int32[C], frequencies int32[C, K]) from a float64 pmf on the integers
    ``[-R, R]`` (shape (C, 2R+1)): each channel keeps the shortest central range outside
    which at most ``tail`` of its mass lies; K is the longest such range; every entry is
    at least 1 so every in-range symbol stays codable."""
    pmf = np.asarray(pmf, dtype=np.float64)
    c, width = pmf.shape
    r = (width - 1) // 2
    cdf = np.cumsum(pmf, axis=1)
    total = cdf[:, -1:]
    lo = np.argmax(cdf > tail / 2 * total, axis=1)
    hi = width - 1 - np.argmax((total - (cdf - pmf))[:, ::-1] > tail / 2 * total, axis=1)
    k = int((hi - lo).max()) + 1
    lo = np.minimum(lo, width - k)
    rows = np.stack([pmf[i, lo[i]:lo[i] + k] for i in range(c)])
    freq = np.maximum(1, np.rint(rows / rows.sum(axis=1, keepdims=True) * (1 << precision))).astype(np.int32)
    return (lo - r).astype(np.int32), freq
