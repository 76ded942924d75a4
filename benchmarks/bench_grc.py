"""GPRS and GRC on 1-D Gaussian channels: time per channel, search steps and bits against D.

Each call encodes (or decodes) N independent channels with the same (q, p), on
one thread. The pair is q = N(1, s^2), p = N(0, 1) with s solved for
KL(q || p) = D bits, so the mode of dq/dp is off every dyadic split point.
``extra_info`` carries the measured mean steps, mean code bits per channel and
D next to the timing; ``benchmarks/report.py`` turns the JSON into markdown.

Run: python -m pytest benchmarks/bench_grc.py --benchmark-json=grc.json
     python benchmarks/report.py grc.json      (timing tables)
     python benchmarks/bench_grc.py grc.json   (steps / bits / time per channel against D)
"""

import numpy as np
import pytest
from scipy import optimize

import chansim
from chansim import grc

N = 1000
D_BITS = [2, 4, 8, 12, 16, 20]
METHODS = ["gprs-sample", "gprs-dyadic", "grc-sample", "grc-dyadic"]
SEED, STREAM = 12345, chansim.prng.stream_id("grc", 0, 0)


def pair_for(d_bits: float):
    """(mu_q, sigma_q, mu_p, sigma_p) with mu_q - mu_p = 1 and KL = d_bits."""
    target = d_bits * np.log(2.0)
    s = optimize.brentq(lambda s: -np.log(s) + s * s / 2 - target, 1e-300, 1.0 - 1e-12)
    return 1.0, s, 0.0, 1.0


def _args(d_bits):
    mq, sq, mp, sp = pair_for(d_bits)
    return [np.full(N, v) for v in (mq, sq, mp, sp)]


@pytest.fixture(autouse=True)
def one_thread():
    chansim.set_num_threads(1)
    yield
    chansim.set_num_threads(0)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("d_bits", D_BITS)
def test_encode(benchmark, d_bits, method):
    args = _args(d_bits)
    _, data, info = grc.encode_gaussian(*args, SEED, STREAM, method, return_info=True)
    benchmark.group = f"GPRS / GRC encode, D = {d_bits} bits, {N} channels"
    benchmark.extra_info.update(
        items=N, peer=f"{method} (1 thread)", baseline=method == "gprs-dyadic", d_bits=d_bits,
        mean_steps=float(info["steps"].mean()), mean_bits=float(info["bits"].mean()),
        message_bytes=len(data),
    )
    benchmark.pedantic(grc.encode_gaussian, args=(*args, SEED, STREAM, method), rounds=3, iterations=1)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("d_bits", D_BITS)
def test_decode(benchmark, d_bits, method):
    args = _args(d_bits)
    x, data = grc.encode_gaussian(*args, SEED, STREAM, method)
    benchmark.group = f"GPRS / GRC decode, D = {d_bits} bits, {N} channels"
    benchmark.extra_info.update(items=N, peer=f"{method} (1 thread)", baseline=method == "gprs-dyadic",
                                d_bits=d_bits)
    y = benchmark.pedantic(grc.decode_gaussian, args=(data, args[2], args[3], SEED, STREAM, method),
                           rounds=5, iterations=1)
    assert np.array_equal(x, y)


def summary(path):
    """Markdown rows (D, method, steps, bits, bound, encode / decode time per channel) and the D = 8 -> 20 growth."""
    import json

    with open(path) as f:
        rows = json.load(f)["benchmarks"]
    enc, dec = {}, {}
    for r in rows:
        key = (r["params"]["d_bits"], r["params"]["method"])
        (enc if r["name"].startswith("test_encode") else dec)[key] = r
    print("| D (bits) | method | mean steps | mean bits / channel | bits − D | bound D + 2 log₂(D+1) + 4 "
          "| encode µs / channel | decode µs / channel |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for d in D_BITS:
        for m in METHODS:
            e, x = enc[(d, m)], dec[(d, m)]
            info = e["extra_info"]
            bound = d + 2 * np.log2(d + 1) + 4
            print(f"| {d} | {m} | {info['mean_steps']:.2f} | {info['mean_bits']:.2f} | {info['mean_bits'] - d:+.2f} "
                  f"| {bound:.2f} | {e['stats']['median'] / N * 1e6:.1f} | {x['stats']['median'] / N * 1e6:.1f} |")
    print()
    for m in METHODS:
        ge = enc[(20, m)]["stats"]["median"] / enc[(8, m)]["stats"]["median"]
        gd = dec[(20, m)]["stats"]["median"] / dec[(8, m)]["stats"]["median"]
        print(f"- {m}: encode time per channel D = 20 / D = 8: {ge:.2f}× (goal ≤ 3×); decode {gd:.2f}×")


if __name__ == "__main__":
    import sys

    summary(sys.argv[1])
