"""How ``chansim.testing`` describes a target q and a prior p (no SciPy needed here).

A law is one of

- ``Gaussian(mean, std)`` (or a plain ``(mean, std)`` tuple): a diagonal Gaussian whose mean and
  standard deviation are scalars or arrays of the sample's shape;
- ``Uniform(low, high)`` (or ``Uniform.around(center, width)``): a product of uniform laws
  U(low, high), e.g. the channel of a subtractively dithered quantizer of step Δ,
  x̂ ~ U(x − Δ/2, x + Δ/2) = ``Uniform.around(x, Δ)``;
- any object with a vectorised ``cdf(x)`` method, e.g. a frozen SciPy distribution such as
  ``scipy.stats.norm(loc, scale)`` or ``scipy.stats.uniform(x - 0.5, 1.0)``: a product law whose
  coordinate ``j`` has CDF ``cdf(x)[j]`` (its parameters broadcast against the sample's shape).
  Only continuous marginals are supported (the checks use the probability-integral transform).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Gaussian", "Uniform", "as_law", "dinf_bits", "kl_bits"]

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


@dataclass(frozen=True)
class Uniform:
    """A product of uniform laws U(low, high); ``low`` and ``high`` broadcast to the sample's shape.

    ``Uniform.around(center, width)`` is U(center − width/2, center + width/2): the law of the
    output of a subtractively dithered quantizer of step ``width`` at input ``center`` (the
    quantization error is U(−Δ/2, Δ/2) whatever the input), which :func:`chansim.testing.check_exact`
    checks with ``given=`` for the error's independence of the input.

    >>> from chansim.testing import Uniform
    >>> q = Uniform.around([0.25, 2.0], 0.5)
    >>> q.low.tolist(), q.high.tolist(), q.cdf([0.25, 2.125]).tolist(), q.cdf([-1.0, 9.0]).tolist()
    ([0.0, 1.75], [0.5, 2.25], [0.5, 0.75], [0.0, 1.0])
    """

    low: object
    high: object

    def __post_init__(self):
        lo = np.asarray(self.low, dtype=np.float64)
        hi = np.asarray(self.high, dtype=np.float64)
        if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)) and np.all(hi > lo)):
            raise ValueError("Uniform needs finite bounds with high > low")
        object.__setattr__(self, "low", lo)
        object.__setattr__(self, "high", hi)

    @classmethod
    def around(cls, center, width) -> "Uniform":
        """U(center − width/2, center + width/2), elementwise."""
        c = np.asarray(center, dtype=np.float64)
        h = 0.5 * np.asarray(width, dtype=np.float64)
        return cls(c - h, c + h)

    @property
    def shape(self):
        return np.broadcast_shapes(self.low.shape, self.high.shape)

    def cdf(self, x):
        u = (np.asarray(x, np.float64) - self.low) / (self.high - self.low)
        return np.clip(u, 0.0, 1.0)


def as_law(law):
    """A law object with ``cdf``: a ``(mean, std)`` tuple becomes :class:`Gaussian`."""
    if isinstance(law, (Gaussian, Uniform)):
        return law
    if isinstance(law, tuple) and len(law) == 2:
        return Gaussian(*law)
    if hasattr(law, "cdf"):
        return law
    raise TypeError("a law is Gaussian(mean, std), a (mean, std) tuple, Uniform(low, high) or an object with a "
                    f"cdf(x) method (e.g. a frozen scipy.stats distribution), got {type(law).__name__}")


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
