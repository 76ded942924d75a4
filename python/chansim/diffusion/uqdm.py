"""UQDM quantities (papers.md §5–6; Yang, Will & Mandt 2025).

Forward step: q(z_s | z_t, x) = U(μ_Q ± Δ/2) with Δ = √12·β (same variance as the
Gaussian posterior). Reverse step: p(z_s | z_t) = g ⋆ U(−Δ/2, Δ/2) with g logistic,
mean μ_p = μ_Q(z_t, x̂) and scale s = f·σ_{t|s}·√3/π (f > 0 learned per coordinate
through a softplus initialised at 1, so the logistic's standard deviation starts at
the forward kernel's σ_{t|s}, as in the released models). Its density is
(G(z + Δ/2) − G(z − Δ/2))/Δ, G the logistic CDF; the probability mass of one
quantisation bin of width Δ is the numerator, and its −log is the code length.

This module is the model's math only. What the UQDM *codec* adds — the entropy-table
scale grid, the dithered indices on the wire and the fused step — lives with the codec,
in :mod:`chansim.codecs.uqdm_step`; the old names here (``SCALE_TABLE``,
``SCALE_BOUNDARIES``, ``SCALE_TABLE_*``, ``scale_index``, ``dither_index``,
``dither_reconstruct``) still resolve, with a DeprecationWarning, for one release.
"""

from __future__ import annotations

import math

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


def symbol_log_prob(k: torch.Tensor, u: torch.Tensor, width, scale: torch.Tensor) -> torch.Tensor:
    """log P(k | u) under p: the logistic mass of the bin Δ(k − u ± ½) around μ_p (papers.md §5)."""
    return log_bin_mass(width * (k - u), width, scale)


_MOVED = {"SCALE_TABLE", "SCALE_BOUNDARIES", "SCALE_TABLE_LEVELS", "SCALE_TABLE_MIN", "SCALE_TABLE_MAX",
          "scale_index"}


def _dither_index(value, mean, width, u):
    from ..kernels.diffusion_steps import rint_ref

    return rint_ref((value - mean) / width + u)


def _dither_reconstruct(k, mean, width, u):
    return mean + width * (k - u)


def __getattr__(name):
    # Deprecated names (one release): the codec's tables and the dithered index moved to
    # chansim.codecs.uqdm_step (the fused kernel computes the index; chansim.dq in float64).
    import warnings

    if name in _MOVED:
        import importlib

        warnings.warn(f"chansim.diffusion.uqdm.{name} moved to chansim.codecs.uqdm_step.{name}",
                      DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module("chansim.codecs.uqdm_step"), name)
    if name in ("dither_index", "dither_reconstruct"):
        warnings.warn(f"chansim.diffusion.uqdm.{name} is deprecated: the UQDM codec quantizes in the fused "
                      "kernel (chansim.kernels.diffusion_steps.uqdm_encode), chansim.dq in float64",
                      DeprecationWarning, stacklevel=2)
        return _dither_index if name == "dither_index" else _dither_reconstruct
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
