"""Hypothesis strategies for channel-simulation tests.

- :func:`gaussian_pairs`: diagonal Gaussian channels (q, p) with a requested KL or D∞ range,
  dimension, equal or unequal variances;
- :func:`unimodal_targets`: 1-D unimodal targets given by a log-density callback (and its CDF);
- :func:`seeds`, :func:`streams`: common-randomness addresses;
- :func:`images`: image-like ``uint8[H, W, C]`` arrays for codecs.

Each shrinks toward the simplest case: dimension 1, KL at the low end of its range, equal
variances, p = N(0, 1), seed 0, stream 0, a Gaussian target, the smallest constant image.
Needs Hypothesis (``pip install "chansim[testing]"``).

>>> from hypothesis import HealthCheck, given, settings
>>> from chansim.testing.strategies import gaussian_pairs
>>> @settings(derandomize=True, max_examples=20, database=None, deadline=None,
...           suppress_health_check=[HealthCheck.too_slow])
... @given(gaussian_pairs(dim=(1, 4), kl_bits=(0.5, 6.0)))
... def test_kl_in_range(pair):
...     assert 0.5 - 1e-6 <= pair.kl_bits() <= 6.0 + 1e-6
>>> test_kl_in_range()
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

try:
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - exercised only without Hypothesis
    raise ImportError('chansim.testing.strategies needs Hypothesis: pip install "chansim[testing]"') from None

from ._laws import LOG2E, Gaussian
from ._laws import dinf_bits as _dinf_bits
from ._laws import kl_bits as _kl_bits

__all__ = ["GaussianPair", "UnimodalTarget", "gaussian_pairs", "images", "seeds", "streams", "unimodal_targets"]


class GaussianPair(NamedTuple):
    """A diagonal Gaussian channel: unpacks as ``mu_q, sigma_q, mu_p, sigma_p`` (float64 arrays
    of shape ``(dim,)``), the argument order of ``chansim.pfr`` and ``chansim.grc``."""

    mu_q: np.ndarray
    sigma_q: np.ndarray
    mu_p: np.ndarray
    sigma_p: np.ndarray

    @property
    def q(self) -> Gaussian:
        return Gaussian(self.mu_q, self.sigma_q)

    @property
    def p(self) -> Gaussian:
        return Gaussian(self.mu_p, self.sigma_p)

    def kl_bits(self) -> float:
        """KL(q‖p) in bits, summed over coordinates."""
        return _kl_bits(self.q, self.p)

    def dinf_bits(self) -> float:
        """D∞(q‖p) in bits (``inf`` when some σq ≥ σp with a shift)."""
        return _dinf_bits(self.q, self.p)


def _range(value, name):
    lo, hi = (value, value) if np.ndim(value) == 0 else value
    lo, hi = float(lo), float(hi)
    if not (0 <= lo <= hi < math.inf):
        raise ValueError(f"{name} must be a number or a (low, high) range with 0 <= low <= high")
    return lo, hi


def _solve_t(a, target):
    """t ≥ 0 with Σ (a_j t + (e^{-2 a_j t} − 1)/2) = target (nats): the KL of variance ratios
    s_j = e^{-a_j t} at equal means. Increasing in t; bisection."""
    def f(t):
        return float(np.sum(a * t + np.expm1(-2 * a * t) / 2))
    hi = 1.0
    while f(hi) < target:
        hi *= 2
    lo = 0.0
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if f(mid) < target else (lo, mid)
    return (lo + hi) / 2


@st.composite
def gaussian_pairs(draw, dim=(1, 8), kl_bits=(0.0, 8.0), dinf_bits=None, equal_variances=None,
                   standard_prior=False, max_sigma_ratio_log=8.0):
    """Diagonal Gaussian channels (q, p) as :class:`GaussianPair` with a requested information.

    ``dim``: an int or a ``(low, high)`` range. Exactly one of ``kl_bits`` (default (0, 8)) and
    ``dinf_bits`` (a range; it replaces ``kl_bits`` and implies unequal variances everywhere,
    as D∞ is infinite otherwise) fixes the total over the coordinates: the pair is constructed
    to have it (to 1e-9 relative), not filtered. ``equal_variances``: ``True`` (σq = σp, the
    DiffC case), ``False`` (σq < σp in every coordinate) or ``None`` (either; shrinks to equal).
    ``standard_prior=True`` fixes p = N(0, I); otherwise μp ∈ [−3, 3], σp ∈ [e⁻², e²]
    (shrinking to 0 and 1). ``max_sigma_ratio_log`` caps −ln(σq/σp) per coordinate.

    Construction: a share w of the information comes from the variance ratios
    s_j = exp(−a_j t) (a_j drawn, t solved), the rest from a mean shift along a drawn direction.
    """
    dlo, dhi = (dim, dim) if np.ndim(dim) == 0 else dim
    d = draw(st.integers(int(dlo), int(dhi)))
    if dinf_bits is not None:
        if equal_variances:
            raise ValueError("dinf_bits needs unequal variances (D∞ = ∞ when σq = σp and μq ≠ μp)")
        lo, hi = _range(dinf_bits, "dinf_bits")
        target = draw(st.floats(lo, hi)) / LOG2E
    else:
        lo, hi = _range(kl_bits, "kl_bits")
        target = draw(st.floats(lo, hi)) / LOG2E
    if equal_variances is True:
        share = 0.0
    elif equal_variances is False or dinf_bits is not None:
        share = draw(st.floats(0.05, 1.0))
    else:
        share = draw(st.sampled_from([0.0, None]))
        share = draw(st.floats(0.05, 1.0)) if share is None else 0.0
    a = np.array([draw(st.floats(0.1, 1.0)) for _ in range(d)])
    direction = np.array([draw(st.floats(-1.0, 1.0)) for _ in range(d)])
    norm = float(np.linalg.norm(direction))
    if not norm > 1e-100:  # all zero (the shrunk case) or subnormal
        direction, norm = np.eye(d)[0], 1.0
    direction /= norm
    if dinf_bits is not None:
        # D∞ = Σ −ln s_j + Σ m_j² / (2 (1 − s_j²)): the variance share is Σ a_j t = share·target.
        t = share * target / float(np.sum(a)) if target > 0 else 0.0
        t = max(t, 1e-6)
        s = np.exp(-a * t)
        rest = max(target - float(np.sum(-np.log(s))), 0.0)
        r = math.sqrt(2 * rest / float(np.sum(direction**2 / (1 - s * s))))
    else:
        t = _solve_t(a, share * target) if share > 0 and target > 0 else 0.0
        s = np.exp(-a * t)
        var_kl = float(np.sum(-np.log(s) + (s * s - 1) / 2))
        r = math.sqrt(2 * max(target - var_kl, 0.0))
    if float(np.max(-np.log(s))) > max_sigma_ratio_log:
        from hypothesis import assume

        assume(False)
    m = r * direction
    if standard_prior:
        mp, sp = np.zeros(d), np.ones(d)
    else:
        mp = np.array([draw(st.floats(-3.0, 3.0)) for _ in range(d)])
        sp = np.exp(np.array([draw(st.floats(-2.0, 2.0)) for _ in range(d)]))
    return GaussianPair(mp + sp * m, sp * s, mp, sp)


class UnimodalTarget(NamedTuple):
    """A 1-D unimodal law: ``logpdf(x)`` and ``cdf(x)`` (vectorised NumPy callbacks), its
    ``mode`` and a ``name`` such as ``"logistic(loc=0.5, scale=2)"``. Usable as q in
    :func:`chansim.testing.check_exact` (it has ``cdf``) and, through ``logpdf``, with
    ``chansim.pfr.encode_callback``."""

    name: str
    logpdf: object
    cdf: object
    mode: float


def _gauss(loc, scale):
    from math import erfc, log, pi, sqrt

    def logpdf(x):
        z = (np.asarray(x, np.float64) - loc) / scale
        return -0.5 * z * z - log(scale) - 0.5 * log(2 * pi)

    def cdf(x):
        z = (np.asarray(x, np.float64) - loc) / scale
        return 0.5 * np.vectorize(erfc, otypes=[np.float64])(-z / sqrt(2.0))
    return logpdf, cdf


def _logistic(loc, scale):
    def logpdf(x):
        z = (np.asarray(x, np.float64) - loc) / scale
        return -z - 2 * np.logaddexp(0.0, -z) - math.log(scale)

    def cdf(x):
        z = (np.asarray(x, np.float64) - loc) / scale
        return np.exp(-np.logaddexp(0.0, -z))
    return logpdf, cdf


def _laplace(loc, scale):
    def logpdf(x):
        return -np.abs(np.asarray(x, np.float64) - loc) / scale - math.log(2 * scale)

    def cdf(x):
        z = (np.asarray(x, np.float64) - loc) / scale
        return np.where(z < 0, 0.5 * np.exp(np.minimum(z, 0)), 1 - 0.5 * np.exp(-np.maximum(z, 0)))
    return logpdf, cdf


def _gumbel(loc, scale):
    def logpdf(x):
        z = (np.asarray(x, np.float64) - loc) / scale
        return -(z + np.exp(-z)) - math.log(scale)

    def cdf(x):
        z = (np.asarray(x, np.float64) - loc) / scale
        return np.exp(-np.exp(-z))
    return logpdf, cdf


def _cauchy(loc, scale):
    def logpdf(x):
        z = (np.asarray(x, np.float64) - loc) / scale
        return -np.log1p(z * z) - math.log(math.pi * scale)

    def cdf(x):
        z = (np.asarray(x, np.float64) - loc) / scale
        return 0.5 + np.arctan(z) / math.pi
    return logpdf, cdf


_FAMILIES = {"gaussian": _gauss, "logistic": _logistic, "laplace": _laplace, "gumbel": _gumbel, "cauchy": _cauchy}


@st.composite
def unimodal_targets(draw, families=tuple(_FAMILIES), loc=(-3.0, 3.0), log_scale=(-1.5, 1.5)):
    """1-D unimodal targets with closed-form log-density and CDF (no SciPy): Gaussian, logistic,
    Laplace, Gumbel (skewed) and Cauchy (heavy-tailed) families, location in ``loc``, scale
    exp(``log_scale``). Shrinks to the standard Gaussian."""
    fam = draw(st.sampled_from(list(families)))
    lo_ = draw(st.floats(*loc))
    scale = math.exp(draw(st.floats(*log_scale)))
    logpdf, cdf = _FAMILIES[fam](lo_, scale)
    return UnimodalTarget(f"{fam}(loc={lo_:.6g}, scale={scale:.6g})", logpdf, cdf, lo_)


def seeds():
    """Common-randomness seeds: integers in [0, 2**64), shrinking to 0."""
    return st.integers(0, 2**64 - 1)


def streams(purposes=None):
    """Stream ids < 2**64 (shrinking to 0): raw integers, or with ``purposes`` (names of
    ``chansim.prng.PURPOSES``) the packed ``stream_id(purpose, step, chunk)``."""
    if purposes is None:
        return st.integers(0, 2**64 - 1)
    from chansim.prng import stream_id

    return st.builds(stream_id, st.sampled_from(list(purposes)), st.integers(0, 2**16 - 1), st.integers(0, 2**40 - 1))


@st.composite
def images(draw, min_side=16, max_side=64, channels=3, kinds=("constant", "gradient", "blocks", "noise")):
    """Image-like ``uint8[H, W, channels]`` arrays, ``min_side ≤ H, W ≤ max_side``: constant,
    gradients, piecewise-constant blocks, or noise (drawn from a NumPy generator seeded by the
    strategy, so examples stay small). Shrinks to the smallest all-zero image."""
    h = draw(st.integers(min_side, max_side))
    w = draw(st.integers(min_side, max_side))
    kind = draw(st.sampled_from(list(kinds)))
    base = np.array([draw(st.integers(0, 255)) for _ in range(channels)], np.float64)
    if kind == "constant":
        img = np.broadcast_to(base, (h, w, channels))
    elif kind == "gradient":
        gy = draw(st.floats(-4.0, 4.0))
        gx = draw(st.floats(-4.0, 4.0))
        yy, xx = np.mgrid[0:h, 0:w]
        img = base + (gy * yy + gx * xx)[..., None]
    else:
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        if kind == "blocks":
            b = draw(st.integers(2, 8))
            coarse = rng.integers(0, 256, ((h + b - 1) // b, (w + b - 1) // b, channels))
            img = np.repeat(np.repeat(coarse, b, 0), b, 1)[:h, :w]
        else:
            amp = draw(st.integers(0, 128))
            img = base + rng.normal(0, amp, (h, w, channels))
    return np.ascontiguousarray(np.clip(np.rint(img), 0, 255).astype(np.uint8))
