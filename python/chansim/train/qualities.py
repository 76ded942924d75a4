"""How a training run of a variable-rate model draws each crop's quality (``--quality-weights``).

One law for every trainer: uniform over the model's qualities by default — drawn with
``torch.randint``, so a run without weights draws exactly what runs drew before the option
existed — or with given relative frequencies, which move training effort to the qualities a
goal depends on (the generative decoder's realism goal binds at qualities 1–6; the NTC codec's
gap to WebP is largest at its top rates).
"""

from __future__ import annotations

import argparse
import math
from typing import List, Optional, Sequence

import torch


def quality_weights(text: str) -> List[float]:
    """argparse type of --quality-weights: finite, non-negative numbers, not all zero."""
    try:
        w = [float(t) for t in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--quality-weights must be comma-separated numbers, got {text!r}") from None
    if not all(math.isfinite(v) and v >= 0 for v in w) or not sum(w) > 0:
        raise argparse.ArgumentTypeError(f"--quality-weights must be finite, non-negative and not all zero, got {text!r}")
    return w


class QualityLaw:
    """The law of a crop's quality index (0 … count − 1): uniform when ``weights`` is None, else
    proportional to ``weights`` (one per quality; ValueError naming ``what`` otherwise)."""

    def __init__(self, weights: Optional[Sequence[float]], count: int, what: str):
        if weights is not None and len(weights) != count:
            raise ValueError(f"--quality-weights has {len(weights)} weights; {what} has {count} qualities")
        self.weights = None if weights is None else [float(v) for v in weights]
        self.count = int(count)
        self._probs = None if weights is None else torch.tensor(self.weights, dtype=torch.float64)

    def draw(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` quality indices (int64)."""
        if self._probs is None:                    # the original draw, bit for bit
            return torch.randint(0, self.count, (n,), generator=generator)
        return torch.multinomial(self._probs, n, replacement=True, generator=generator)

    def describe(self) -> str:
        """The card's words for the law."""
        if self.weights is None:
            return f"uniform over the {self.count} qualities per crop"
        return f"quality per crop drawn with weights {self.weights} (q1, q2, …)"
