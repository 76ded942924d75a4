"""Pareto table of budgeted PFR / ORC for equal-variance Gaussian chunks (the DiffC case).

For each chunk information D and candidate budget K = 2^(D + pad): the bits per
chunk actually spent (message bytes, amortised over many chunks), the fraction of
the mean shift the chosen sample realises (target 1) and its variance along the
shift (target 1), and the encoder's candidate count. Equal variances make the
problem rotation invariant, so 1-D chunks give the exact law of any dimension.

    python benchmarks/pfr_pareto.py > pareto.md
"""

from __future__ import annotations

import math
import sys
import time

import numpy as np

from chansim import pfr


def row(mode: str, d_bits: float, pad: int, n: int, seed: int = 11) -> dict:
    m = math.sqrt(2 * d_bits * math.log(2))
    k = 2 ** int(d_bits + pad)
    t = time.perf_counter()
    _, data, info = pfr.encode_gaussian(np.full(n, m), 1.0, 0.0, 1.0, seed, 1 << 20, mode=mode,
                                        chunk_bits=d_bits + 1e-6, candidates=k, return_info=True)
    dt = time.perf_counter() - t
    eps = pfr.candidates_of(pfr.plan(np.full(n, m), 1.0, 0.0, 1.0, chunk_bits=d_bits + 1e-6),
                            info["indices"], seed, 1 << 20).astype(np.float64)
    return dict(mode=mode, D=d_bits, pad=pad, K=k, n=n, bits=8 * len(data) / n, frac=eps.mean() / m,
                frac_se=eps.std() / m / math.sqrt(n), var=eps.var(), seconds_per_chunk=dt / n)


def main() -> None:
    print("| mode | D (bits) | K | chunks | bits / chunk | bits over D | shift fraction (±SE) | variance along shift | encode ms / chunk |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for d_bits in (4, 8, 12, 16):
        for pad in (0, 2, 4, 6, 8):
            k = 2 ** (d_bits + pad)
            if k > 2**22:
                continue
            n = int(min(2000, max(64, 2**27 // k)))
            for mode in ("budgeted", "orc"):
                r = row(mode, d_bits, pad, n)
                print(f"| {mode} | {d_bits} | 2^{d_bits + pad} | {n} | {r['bits']:.2f} | {r['bits'] - d_bits:+.2f} | "
                      f"{r['frac']:.3f} ± {r['frac_se']:.3f} | {r['var']:.2f} | {1e3 * r['seconds_per_chunk']:.2f} |")
                sys.stdout.flush()


if __name__ == "__main__":
    main()
