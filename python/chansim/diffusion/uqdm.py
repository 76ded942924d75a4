"""UQDM quantities (papers.md §5–6; Yang, Will & Mandt 2025).

Forward step: q(z_s | z_t, x) = U(μ_Q ± Δ/2) with Δ = √12·β (same variance as the
Gaussian posterior). Reverse step: p(z_s | z_t) = g ⋆ U(−Δ/2, Δ/2) with g logistic,
mean μ_p = μ_Q(z_t, x̂) and scale s = f·σ_{t|s}·√3/π (f > 0 learned per coordinate
through a softplus initialised at 1, so the logistic's standard deviation starts at
the forward kernel's σ_{t|s}, as in the released models). Its density is
(G(z + Δ/2) − G(z − Δ/2))/Δ, G the logistic CDF; the probability mass of one
quantisation bin of width Δ is the numerator, and its −log is the code length.

Entropy tables use a fixed log-spaced grid of scales in units of Δ
(:data:`SCALE_TABLE`), so sender and receiver build identical tables from an index.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .gaussian import posterior, transition

SQRT12 = math.sqrt(12.0)
LOGISTIC_STD_TO_SCALE = math.sqrt(3.0) / math.pi  # logistic scale with unit standard deviation
SOFTPLUS_INV1 = math.log(math.expm1(1.0))  # softplus(raw + SOFTPLUS_INV1) = 1 at raw = 0


def delta(gamma_s, gamma_t):
    """Δ_t = √12·β for the step t → s (s < t)."""
    _, _, beta2 = posterior(gamma_s, gamma_t)
    return SQRT12 * beta2.sqrt()


def scale_factor(raw: torch.Tensor) -> torch.Tensor:
    """Network output → positive per-coordinate factor f, equal to 1 at raw = 0."""
    return F.softplus(raw + SOFTPLUS_INV1)


def logistic_scale(factor: torch.Tensor, gamma_s, gamma_t) -> torch.Tensor:
    """Logistic scale s = f·σ_{t|s}·√3/π of the reverse density's g."""
    _, sigma2_ts = transition(gamma_s, gamma_t)
    return factor * (sigma2_ts.sqrt() * LOGISTIC_STD_TO_SCALE).to(factor.dtype)


def log_bin_mass(v: torch.Tensor, width, scale) -> torch.Tensor:
    """log(G((v + w/2)/s) − G((v − w/2)/s)) for the standard logistic CDF G.

    Uses σ(a) − σ(b) = sinh(h) / (2 cosh(a/2) cosh(b/2)) with a, b = y ± h,
    y = v/s, h = w/(2s): no cancellation between the two CDFs anywhere, finite
    gradients, and exact 0 → log 1 as the bin swallows the distribution.
    """
    y = v / scale
    h = 0.5 * width / scale
    a, b = y + h, y - h
    # log sinh(h) − log 2 = h + log(−expm1(−2h)) − 2 log 2; log cosh(x/2) = |x|/2 + softplus(−|x|) − log 2.
    return (h + torch.log(-torch.expm1(-2.0 * h))
            - 0.5 * a.abs() - F.softplus(-a.abs())
            - 0.5 * b.abs() - F.softplus(-b.abs()))


def log_density(z: torch.Tensor, mean: torch.Tensor, scale: torch.Tensor, width) -> torch.Tensor:
    """log of the logistic ⋆ uniform density (G(z + Δ/2) − G(z − Δ/2))/Δ (G centred at ``mean``)."""
    return log_bin_mass(z - mean, width, scale) - torch.log(torch.as_tensor(width, dtype=z.dtype))


def dither_index(value: torch.Tensor, mean: torch.Tensor, width, u: torch.Tensor) -> torch.Tensor:
    """k = rint((value − μ_p)/Δ + u): dithered quantisation relative to the prior mean.

    Ties round to even, the one rule of :mod:`chansim.dq` (docs/format.md §3) and of the
    fused kernels, so a value exactly between two grid points gets the same index everywhere.
    """
    return torch.round((value - mean) / width + u)


def dither_reconstruct(k: torch.Tensor, mean: torch.Tensor, width, u: torch.Tensor) -> torch.Tensor:
    """z = μ_p + Δ(k − u); z − value ~ U(−Δ/2, Δ/2) independently of value."""
    return mean + width * (k - u)


def symbol_log_prob(k: torch.Tensor, u: torch.Tensor, width, scale: torch.Tensor) -> torch.Tensor:
    """log P(k | u) under p: the logistic mass of the bin Δ(k − u ± ½) around μ_p (papers.md §5)."""
    return log_bin_mass(width * (k - u), width, scale)


# Scales in units of Δ (ŝ = s/Δ) snap to this grid for entropy coding: 64 log-spaced
# values over [1/64, 64] (ratio 2^(12/63) ≈ 1.14 per level, so a snapped scale is
# within 7 % of the true one and costs < 0.003 nats per symbol). Below 1/64 the
# bin holds the mass to within 1e−27; above 64 the symbol is ~8 bits of near-flat mass.
SCALE_TABLE_LEVELS = 64
SCALE_TABLE_MIN = 1.0 / 64.0
SCALE_TABLE_MAX = 64.0
_table64 = np.exp(np.linspace(np.log(SCALE_TABLE_MIN), np.log(SCALE_TABLE_MAX), SCALE_TABLE_LEVELS))
SCALE_TABLE = _table64.astype(np.float32)
#: Boundaries between neighbouring levels (geometric midpoints, float32): index = #{b_j ≤ ŝ}.
SCALE_BOUNDARIES = np.sqrt(_table64[:-1] * _table64[1:]).astype(np.float32)


def scale_index(scale: torch.Tensor, width) -> torch.Tensor:
    """Index into :data:`SCALE_TABLE` of ŝ = s/Δ: the number of boundaries ≤ ŝ (int32).

    Comparisons only (no log), so every backend gives the same index for the same
    float32 ŝ; ŝ below the table maps to 0, above it to 63, NaN to 0.
    """
    s_hat = (scale / width).contiguous()
    bounds = torch.from_numpy(SCALE_BOUNDARIES).to(device=s_hat.device, dtype=s_hat.dtype)
    idx = torch.searchsorted(bounds, s_hat, right=True, out_int32=True)
    return torch.where(torch.isnan(s_hat), torch.zeros_like(idx), idx)
