"""Channel-simulation microbenchmarks: bits per step and speed, peers in the same run.

* PFR (equal-variance Gaussian chunk, the DiffC case) for D in {2, 4, 8, 12, 16}
  bits and d in {1, 16, 256}: chansim at 1 and 2 threads against the hand-written
  NumPy PFR (``numpy_pfr.py``), both with a 2^(D+4) candidate budget. Each call
  encodes ``reps`` independent channels (chunks) so rates are stable; the table
  reports candidate·dimensions per second and the ratio to NumPy.
* Bits used against D (message bytes, side information included).
* DQ: quantize with the dither against ``np.round`` on 4M float32 values.

    python -m pytest benchmarks/bench_channel.py --benchmark-json=channel.json
    python benchmarks/report.py channel.json
"""

import math

import numpy as np
import pytest

import chansim
from chansim import dq, pfr

from numpy_pfr import numpy_pfr

D_BITS = [2, 4, 8, 12, 16]
DIMS = [1, 16, 256]
PAD = 4


def _reps(d_bits, d):
    # Keep each call near 2^24 candidate·dimensions (NumPy needs seconds for that).
    return max(1, int(2**24 // (2 ** (d_bits + PAD) * d)))


def _shift(d_bits, d):
    m = math.sqrt(2 * d_bits * math.log(2))
    return np.full(d, m / math.sqrt(d))


@pytest.mark.parametrize("d", DIMS)
@pytest.mark.parametrize("d_bits", D_BITS)
@pytest.mark.parametrize("threads", [1, 2])
def test_pfr_chansim(benchmark, d_bits, d, threads):
    reps = _reps(d_bits, d)
    k = 2 ** (d_bits + PAD)
    m = np.tile(_shift(d_bits, d), reps)
    benchmark.group = f"PFR D={d_bits} bits, d={d}, K=2^{d_bits + PAD}, {reps} channels"
    benchmark.extra_info.update(items=reps * k * d, baseline=False,
                                peer=f"chansim ({threads} thread{'s' if threads > 1 else ''})")
    chansim.set_num_threads(threads)
    try:
        sample, data, info = benchmark.pedantic(
            pfr.encode_gaussian, args=(m, 1.0, 0.0, 1.0, 7, 99),
            kwargs=dict(mode="budgeted", chunk_bits=d_bits + 1e-6, candidates=k, return_info=True),
            rounds=3, iterations=1)
    finally:
        chansim.set_num_threads(0)
    assert info["chunks"] == reps
    benchmark.extra_info.update(bits_per_channel=8 * len(data) / reps, d_bits=d_bits,
                                shift_fraction=info.get("shift_fraction"))


@pytest.mark.parametrize("d", DIMS)
@pytest.mark.parametrize("d_bits", D_BITS)
def test_pfr_numpy(benchmark, d_bits, d):
    reps = _reps(d_bits, d)
    k = 2 ** (d_bits + PAD)
    m = _shift(d_bits, d).astype(np.float32)
    benchmark.group = f"PFR D={d_bits} bits, d={d}, K=2^{d_bits + PAD}, {reps} channels"
    benchmark.extra_info.update(items=reps * k * d, baseline=True, peer="NumPy PFR (1 thread)")
    benchmark.pedantic(lambda: [numpy_pfr(m, k, seed=r) for r in range(reps)], rounds=3, iterations=1)


@pytest.mark.parametrize("d_bits", D_BITS)
def test_pfr_decode(benchmark, d_bits):
    d, reps = 256, 64
    m = np.tile(_shift(d_bits, d), reps)
    _, data = pfr.encode_gaussian(m, 1.0, 0.0, 1.0, 7, 99, mode="budgeted", chunk_bits=d_bits + 1e-6,
                                  candidates=2 ** (d_bits + PAD))
    benchmark.group = f"PFR decode, d={d}, {reps} channels"
    benchmark.extra_info.update(items=reps * d, baseline=False, peer=f"chansim decode D={d_bits}")
    benchmark(pfr.decode_gaussian, data, 0.0, 1.0, 7, 99)


N_DQ = 4_000_000


def test_dq_quantize(benchmark):
    x = np.random.default_rng(0).normal(size=N_DQ).astype(np.float32)
    benchmark.group = f"DQ quantize, n={N_DQ:,} float32"
    benchmark.extra_info.update(items=N_DQ, baseline=False, peer="chansim dq.quantize (dither included, 2 threads)")
    benchmark(dq.quantize, x, 0.5, 1, 2)


def test_dq_quantize_one_thread(benchmark):
    x = np.random.default_rng(0).normal(size=N_DQ).astype(np.float32)
    benchmark.group = f"DQ quantize, n={N_DQ:,} float32"
    benchmark.extra_info.update(items=N_DQ, baseline=False, peer="chansim dq.quantize (dither included, 1 thread)")
    chansim.set_num_threads(1)
    try:
        benchmark(dq.quantize, x, 0.5, 1, 2)
    finally:
        chansim.set_num_threads(0)


def test_numpy_round(benchmark):
    x = np.random.default_rng(0).normal(size=N_DQ).astype(np.float32)
    benchmark.group = f"DQ quantize, n={N_DQ:,} float32"
    benchmark.extra_info.update(items=N_DQ, baseline=True, peer="np.round(x / step) (no dither)")
    benchmark(lambda: np.round(x / np.float32(0.5)).astype(np.int32))


def summary(path):
    """The PFR table of BENCHMARKS.md (rates in candidate·dimensions per second, ratios to NumPy) and the DQ rows."""
    import json

    with open(path) as f:
        rows = json.load(f)["benchmarks"]
    by = {}
    for r in rows:
        by[(r["name"].split("[")[0], tuple(sorted((r["params"] or {}).items())))] = r

    def rate(r):
        return r["extra_info"]["items"] / r["stats"]["median"]

    print("| D (bits) | d | K | channels / call | chansim 1 thread | chansim 2 threads | NumPy PFR | ratio 1 thread "
          "| ratio 2 threads | bits / channel (whole message) | shift fraction |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for d_bits in D_BITS:
        for d in DIMS:
            if ("test_pfr_numpy", (("d", d), ("d_bits", d_bits))) not in by:
                continue
            npy = by[("test_pfr_numpy", (("d", d), ("d_bits", d_bits)))]
            one = by[("test_pfr_chansim", (("d", d), ("d_bits", d_bits), ("threads", 1)))]
            two = by[("test_pfr_chansim", (("d", d), ("d_bits", d_bits), ("threads", 2)))]
            sf = one["extra_info"].get("shift_fraction")
            print(f"| {d_bits} | {d} | 2^{d_bits + PAD} | {_reps(d_bits, d)} | {rate(one) / 1e6:.0f} M/s "
                  f"| {rate(two) / 1e6:.0f} M/s | {rate(npy) / 1e6:.0f} M/s | {rate(one) / rate(npy):.1f}× "
                  f"| {rate(two) / rate(npy):.1f}× | {one['extra_info']['bits_per_channel']:.2f} "
                  f"| {sf if sf is None else format(sf, '.3f')} |")
    dqr = [r for r in rows if r["name"].startswith(("test_dq_quantize", "test_numpy_round"))]
    if len(dqr) >= 2:
        base = next(r for r in dqr if r["name"] == "test_numpy_round")["stats"]["median"]
        print()
        for r in dqr:
            print(f"| {r['extra_info']['peer']} | {r['stats']['median'] * 1e3:.2f} ms "
                  f"| {N_DQ / r['stats']['median'] / 1e6:.1f} M/s | {base / r['stats']['median']:.2f}× |")


if __name__ == "__main__":
    import sys

    summary(sys.argv[1])
