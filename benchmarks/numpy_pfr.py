"""The hand-written NumPy PFR a researcher would write: the peer of chansim.pfr.

Equal-variance Gaussian channel after standardising: q = N(m, I), p = N(0, I).
Shared candidates Z ~ N(0, I) (K × d, drawn in blocks to bound memory),
cumulative Exp(1) arrival times, index = argmin log T_n − (m·Z_n − ‖m‖²/2).
Truncated at K candidates, no stopping rule: the usual research baseline.
"""

from __future__ import annotations

import numpy as np


def numpy_pfr(m: np.ndarray, k: int, seed: int, block: int = 1 << 16) -> int:
    """1-based index of the chosen candidate among k (candidates regenerated from ``seed``)."""
    rng = np.random.default_rng(seed)
    d = m.size
    half = 0.5 * float(m @ m)
    best, best_n, t0 = np.inf, 0, 0.0
    for lo in range(0, k, block):
        b = min(block, k - lo)
        z = rng.standard_normal((b, d), dtype=np.float32)
        t = t0 + np.cumsum(rng.exponential(size=b))
        score = np.log(t) - (z @ m - half)
        j = int(np.argmin(score))
        if score[j] < best:
            best, best_n = float(score[j]), lo + j + 1
        t0 = float(t[-1])
    return best_n
