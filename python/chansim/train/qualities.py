"""How a training run of a variable-rate model draws each crop's quality (``--quality-weights``) and
how much each crop's loss weighs (``--loss-weights``).

One law for every trainer: uniform over the model's qualities by default — drawn with
``torch.randint``, so a run without weights draws exactly what runs drew before the option
existed — or with given relative frequencies, which move training effort to the qualities a
goal depends on (the generative decoder's realism goal binds at qualities 1–6; the NTC codec's
gap to WebP is largest at its top rates).

Loss weights multiply each crop's Lagrangian λ·D + R by its quality's weight. All qualities share
the transforms, and a plain sum lets the largest losses set their direction: the shipped NTC
model's λ·MSE + bpp is ≈ 50× larger at quality 10 than at quality 1, so the low rates — where
most of a BD figure's log-rate range lies — get little say. ``balanced`` weights
(:func:`balanced`) make every quality's *relative* change of loss count the same; ``balanced:α``
(0 < α < 1) goes part of the way. Weighting a
crop's loss and drawing its quality more often have the same expectation; weights keep every
quality in every stretch of training (a 50 : 1 draw would show quality 10 one crop in 150).
"""

from __future__ import annotations

import argparse
import math
from typing import List, Optional, Sequence, Union

import torch


def _weights(text: str, flag: str) -> List[float]:
    try:
        w = [float(t) for t in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{flag} must be comma-separated numbers, got {text!r}") from None
    if not all(math.isfinite(v) and v >= 0 for v in w) or not sum(w) > 0:
        raise argparse.ArgumentTypeError(f"{flag} must be finite, non-negative and not all zero, got {text!r}")
    return w


def quality_weights(text: str) -> List[float]:
    """argparse type of --quality-weights: finite, non-negative numbers, not all zero."""
    return _weights(text, "--quality-weights")


#: ``--loss-weights balanced[:α]``: weights measured on the starting model (:func:`balanced`).
BALANCED = "balanced"


def balance_power(spec: object) -> Optional[float]:
    """The power α of a ``balanced`` / ``balanced:α`` spec (``balanced`` is α = 1); None for anything
    else (explicit weights, or none). ValueError for a ``balanced:`` whose α is not a finite number > 0."""
    if not isinstance(spec, str) or not (spec == BALANCED or spec.startswith(BALANCED + ":")):
        return None
    if spec == BALANCED:
        return 1.0
    try:
        power = float(spec[len(BALANCED) + 1:])
    except ValueError:
        power = float("nan")
    if not (math.isfinite(power) and power > 0):
        raise ValueError(f"--loss-weights {spec!r}: the power after 'balanced:' must be a finite number > 0")
    return power


def loss_weights(text: str) -> Union[str, List[float]]:
    """argparse type of --loss-weights: ``balanced``, ``balanced:α``, or positive numbers (one per quality)."""
    spec = text.strip()
    try:
        if balance_power(spec) is not None:
            return spec
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    w = _weights(text, "--loss-weights")
    if not all(v > 0 for v in w):
        raise argparse.ArgumentTypeError(f"--loss-weights must be positive (a zero weight never trains its "
                                         f"quality's gains), got {text!r}")
    return w


def balanced(losses: Sequence[float], power: float = 1.0) -> List[float]:
    """Loss weights w_q = c · L_q^(−α) from each quality's mean loss L_q, with c = Σ L / Σ L^(1−α) so that
    Σ_q w_q L_q = Σ_q L_q — the total keeps its scale, and the gradient clip its meaning.

    α = 1 (``balanced``): w_q = mean(L) / L_q, every quality's weighted loss is the same, so a relative
    change of any quality's loss moves the total alike. 0 < α < 1 balances partly: w_q L_q ∝ L_q^(1−α),
    the top rates keep part of their larger say (α → 0 is the plain sum)."""
    losses = [float(v) for v in losses]
    if not losses or not all(math.isfinite(v) and v > 0 for v in losses):
        raise ValueError(f"balanced loss weights need finite, positive mean losses, got {losses}")
    if not (math.isfinite(power) and power > 0):
        raise ValueError(f"the balance's power must be a finite number > 0, got {power}")
    if power == 1.0:                   # the original closed form, bit for bit
        mean = sum(losses) / len(losses)
        return [mean / v for v in losses]
    c = sum(losses) / sum(v ** (1.0 - power) for v in losses)
    return [c * v ** -power for v in losses]


class QualityLaw:
    """The law of a crop's quality index (0 … count − 1): uniform when ``weights`` is None, else
    proportional to ``weights`` (one per quality; ValueError naming ``what`` otherwise); and each
    crop's loss weight by its quality, 1 when ``losses`` is None (else one positive number per quality)."""

    def __init__(self, weights: Optional[Sequence[float]], count: int, what: str,
                 losses: Optional[Sequence[float]] = None):
        if weights is not None and len(weights) != count:
            raise ValueError(f"--quality-weights has {len(weights)} weights; {what} has {count} qualities")
        if losses is not None and len(losses) != count:
            raise ValueError(f"--loss-weights has {len(losses)} weights; {what} has {count} qualities")
        self.weights = None if weights is None else [float(v) for v in weights]
        self.losses = None if losses is None else [float(v) for v in losses]
        self.count = int(count)
        self._probs = None if weights is None else torch.tensor(self.weights, dtype=torch.float64)

    def draw(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` quality indices (int64)."""
        if self._probs is None:                    # the original draw, bit for bit
            return torch.randint(0, self.count, (n,), generator=generator)
        return torch.multinomial(self._probs, n, replacement=True, generator=generator)

    def loss_weight(self, q: torch.Tensor) -> Optional[torch.Tensor]:
        """Each crop's loss weight (float32, like ``q``'s shape), or None when every crop weighs 1."""
        return None if self.losses is None else torch.tensor(self.losses, dtype=torch.float32)[q]

    def describe(self) -> str:
        """The card's words for the law."""
        if self.weights is None:
            text = f"uniform over the {self.count} qualities per crop"
        else:
            text = f"quality per crop drawn with weights {self.weights} (q1, q2, …)"
        if self.losses is not None:
            text += f"; each crop's loss weighted by its quality: {[round(v, 4) for v in self.losses]}"
        return text
