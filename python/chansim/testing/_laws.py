"""How ``chansim.testing`` describes a target q and a prior p (no SciPy needed here).

A law is one of

- ``Gaussian(mean, std)`` (or a plain ``(mean, std)`` tuple): a diagonal Gaussian whose mean and
  standard deviation are scalars or arrays of the sample's shape;
- any object with a vectorised ``cdf(x)`` method, e.g. a frozen SciPy distribution such as
  ``scipy.stats.norm(loc, scale)`` or ``scipy.stats.uniform(x - 0.5, 1.0)``: a product law whose
  coordinate ``j`` has CDF ``cdf(x)[j]`` (its parameters broadcast against the sample's shape).
  Only continuous marginals are supported (the checks use the probability-integral transform).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Gaussian", "as_law", "dinf_bits", "kl_bits"]

LOG2E = 1.0 / math.log(2.0)


@dataclass(frozen=True)
class Gaussian:
    """A diagonal Gaussian N(mean, diag std²); ``mean`` and ``std`` broadcast to the sample's shape."""

    mean: object
    std: object

    def __post_init__(self):
        m = np.asarray(self.mean, dtype=np.float64)
        s = np.asarray(self.std, dtype=np.float64)
        if not (np.all(np.isfinite(m)) and np.all(np.isfinite(s)) and np.all(s > 0)):
            raise ValueError("Gaussian needs finite means and standard deviations > 0")
        object.__setattr__(self, "mean", m)
        object.__setattr__(self, "std", s)

    @property
    def shape(self):
        return np.broadcast_shapes(self.mean.shape, self.std.shape)

    def cdf(self, x):
        z = (np.asarray(x, np.float64) - self.mean) / self.std
        try:
            from scipy.special import ndtr
        except ImportError:  # pragma: no cover - the checks need SciPy anyway
            return 0.5 * np.vectorize(math.erfc, otypes=[np.float64])(-z / math.sqrt(2.0))
        return ndtr(z)


def as_law(law):
    """A law object with ``cdf``: a ``(mean, std)`` tuple becomes :class:`Gaussian`."""
    if isinstance(law, Gaussian):
        return law
    if isinstance(law, tuple) and len(law) == 2:
        return Gaussian(*law)
    if hasattr(law, "cdf"):
        return law
    raise TypeError("a law is Gaussian(mean, std), a (mean, std) tuple or an object with a cdf(x) method "
                    f"(e.g. a frozen scipy.stats distribution), got {type(law).__name__}")


def _pair(q, p):
    q, p = as_law(q), as_law(p)
    if not (isinstance(q, Gaussian) and isinstance(p, Gaussian)):
        raise TypeError("KL and D∞ are computed in closed form for Gaussian laws only; pass kl_bits= for others")
    shape = np.broadcast_shapes(q.shape, p.shape)
    return [np.broadcast_to(a, shape) for a in (q.mean, q.std, p.mean, p.std)]


def kl_bits(q, p) -> float:
    """KL(q‖p) in bits, summed over coordinates, for diagonal Gaussians."""
    mq, sq, mp, sp = _pair(q, p)
    s2 = (sq / sp) ** 2
    m2 = ((mq - mp) / sp) ** 2
    return float(np.sum(0.5 * (s2 + m2 - 1.0 - np.log(s2))) * LOG2E)


def dinf_bits(q, p) -> float:
    """D∞(q‖p) = log₂ sup q/p in bits, summed over coordinates, for diagonal Gaussians
    (``inf`` where σq ≥ σp with q ≠ p there)."""
    mq, sq, mp, sp = _pair(q, p)
    s = sq / sp
    m = (mq - mp) / sp
    total = 0.0
    for sj, mj in zip(s.ravel(), m.ravel()):
        if sj < 1.0:
            total += -math.log(sj) + mj * mj / (2.0 * (1.0 - sj * sj))
        elif sj == 1.0 and mj == 0.0:
            continue
        else:
            return math.inf
    return total * LOG2E
