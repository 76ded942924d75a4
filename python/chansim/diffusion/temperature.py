"""Choosing a sampling temperature τ by a statistic of the samples it gives.

A :class:`~chansim.diffusion.models.ResidualDiffusion` starts its probability-flow ODE from
τ·r_1. The amount of fine detail in its draws (the high-frequency energy ratio,
:func:`chansim.metrics.hf_energy_ratio`) increases with τ, so one τ per quality can be
calibrated on training photos (:func:`chansim.train.ntc_decoder.calibrate_temperatures`) and an
encoder that holds the original can choose τ for one image and send it
(:mod:`chansim.codecs.ntc`, ``temperature="match"``, where the ratio also carries the draw's
squared error against a budget whose edge is a bound, ``accept="within"``). Both solve
ratio(τ) = 1 with :func:`temperature_search`.
"""

from __future__ import annotations

import math
from typing import Callable, List, Optional, Tuple

#: Largest sampling temperature a ResidualDiffusion admits (its draws' detail grows as τ²).
TEMPERATURE_MAX = 2.0
#: Smallest temperature a search tries (the model admits any τ > 0).
TEMPERATURE_MIN = 0.05


def temperature_search(ratio_at: Callable[[float], float], tolerance: float = 0.03, max_evals: int = 6,
                       tau_max: float = TEMPERATURE_MAX, start: float = 1.0,
                       snap: Optional[Callable[[float], float]] = None,
                       accept: str = "nearest") -> Tuple[float, float, List[tuple]]:
    """A temperature τ ∈ [:data:`TEMPERATURE_MIN`, ``tau_max``] whose ratio ``ratio_at(τ)`` (increasing
    in τ) is at 1, its ratio, and every (τ, ratio) tried, first (``start``, ratio_at(``start``)).

    ``accept="nearest"``: the τ tried whose ratio is nearest 1, the search done within ``tolerance``
    of 1 on either side. ``accept="within"``: the same, except that a ratio above 1 + ``tolerance``
    is never returned while a τ at or under it was tried (the smallest ratio when none was) — for a
    ratio whose band's upper edge is a bound, such as a distortion budget folded into it.

    ``start`` is kept when its ratio is accepted. Otherwise the first guess is τ = start ·
    ratio^(−½) (a linear sampler's ratio grows as τ²); while 1 is not bracketed the
    power law through the last two points is extrapolated (clipped to the range); once it is,
    false-position steps on log ratio against log τ (the ratios met here are near power laws of τ,
    steep ones — τ⁷ and more — where a detail statistic takes over from a distortion budget, and a
    straight line through two such points lands far short of the root; Illinois: an end kept twice
    has its log ratio halved). ``snap`` maps each
    guess onto the values the caller can use (a file's temperature grid) before it is tried, so
    the τ returned is one of them. The search stops at an accepted ratio, after ``max_evals``
    evaluations, or when a guess repeats (the root lies outside the range, or between two grid
    points)."""
    if accept not in ("nearest", "within"):
        raise ValueError(f"accept must be 'nearest' or 'within', got {accept!r}")
    done = lambda r: abs(r - 1.0) <= tolerance                        # noqa: E731
    snap = snap or (lambda t: t)
    clip = lambda t: snap(min(tau_max, max(TEMPERATURE_MIN, t)))      # noqa: E731
    tau = clip(start)
    r0 = ratio_at(tau)
    tried = [(tau, r0)]
    log = lambda r: math.log(max(r, 1e-300))                           # noqa: E731
    lo = hi = None                               # (log τ, log ratio) below / above 1
    kept = None
    if not done(r0):
        if r0 > 1.0:
            hi = [math.log(tau), log(r0)]
        else:
            lo = [math.log(tau), log(r0)]
    tau = clip(tau * r0 ** -0.5) if r0 > 0 else clip(tau_max)
    while not done(tried[-1][1]) and len(tried) < max_evals and all(tau != t for t, _ in tried):
        r = ratio_at(tau)
        tried.append((tau, r))
        if r > 1.0:
            hi = [math.log(tau), log(r)]
            if kept == "lo" and lo is not None:
                lo[1] *= 0.5
            kept = "lo"
        else:
            lo = [math.log(tau), log(r)]
            if kept == "hi" and hi is not None:
                hi[1] *= 0.5
            kept = "hi"
        if lo is not None and hi is not None:
            tau = clip(math.exp(lo[0] + (hi[0] - lo[0]) * (-lo[1]) / (hi[1] - lo[1])))
        else:
            (t0, r0), (t1, r1) = tried[-2], tried[-1]
            b = math.log(r1 / r0) / math.log(t1 / t0) if r0 > 0 and r1 > 0 and t0 != t1 else 0.0
            b = b if math.isfinite(b) and b > 0.1 else 2.0
            tau = clip(t1 * r1 ** (-1.0 / b)) if r1 > 0 else clip(tau_max)
    admitted = [t for t in tried if t[1] <= 1.0 + tolerance] if accept == "within" else tried
    if not admitted:
        return (*min(tried, key=lambda t: t[1]), tried)
    tau, r = min(admitted, key=lambda t: abs(t[1] - 1.0))
    return tau, r, tried
