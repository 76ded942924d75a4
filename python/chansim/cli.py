"""The ``chansim`` command line."""

from __future__ import annotations

import argparse
import sys
import time


def _demo(args) -> int:
    """End to end through every layer that exists: common randomness, dithered
    quantization with rANS coding, exact PFR and GPRS channel simulation. Each step
    checks that the receiver reproduces the sender's result bit for bit and reports
    the rate against the information-theoretic quantity it should sit at."""
    import json
    from pathlib import Path

    import numpy as np

    from . import dq, grc, pfr, prng

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {}
    ok = True
    seed = 2026

    # 1. Common randomness.
    n = args.n
    stream = prng.stream_id("user", 0, 0)
    t0 = time.perf_counter()
    z = prng.normal(seed, stream, 0, n)
    dt = time.perf_counter() - t0
    ref = prng.reference.normal(seed, stream, 0, min(n, 100_000))
    same = bool(np.array_equal(ref.view(np.uint32), z[: ref.size].view(np.uint32)))
    ok &= same
    report["prng"] = dict(normals=n, mnormals_per_s=n / dt / 1e6, isa=prng.isa(), reference_identical=same)
    print(f"[1] common randomness : {n:,} addressed normals at {n / dt / 1e6:.0f} M/s ({prng.isa()}), "
          f"NumPy reference bit-identical: {same}")

    # 2. Dithered quantization: a Laplace source through the uniform-noise channel, coded under g * U.
    rng = np.random.default_rng(0)
    x = rng.laplace(0.0, 2.0, 1_000_000).astype(np.float32)
    rows = []
    for step in (4.0, 1.0, 0.25):
        x_hat, data = dq.encode(x, step, seed, prng.stream_id("dither", 0, 0), scale=2.0, prior="laplace")
        back = dq.decode(data, x.shape, step, seed, prng.stream_id("dither", 0, 0), scale=2.0, prior="laplace")
        exact = bool(np.array_equal(back.view(np.uint32), x_hat.view(np.uint32)))
        ok &= exact
        err = (x_hat - x) / step
        rows.append(dict(step=step, bits_per_sample=8 * len(data) / x.size, mse=float(np.mean((x_hat - x) ** 2)),
                         noise_var_over_step2=float(err.var()), decoder_identical=exact))
        print(f"[2] dithered quant.   : step {step:5.2f}  {8 * len(data) / x.size:6.3f} bits/sample, "
              f"noise var/Δ² {err.var():.4f} (exact channel: 1/12 = 0.0833), decoder identical: {exact}")
    report["dq"] = rows

    # 3. Exact PFR: a 4,096-dimensional Gaussian posterior sent in chunks of at most 16 bits of D∞.
    d = 4096
    mu_q = rng.normal(0.0, 0.5, d)
    sigma_q = 0.5
    t0 = time.perf_counter()
    sample, data, info = pfr.encode_gaussian(mu_q, sigma_q, 0.0, 1.0, seed, prng.stream_id("pfr_candidates", 0, 0),
                                             mode="exact", chunk_bits=16.0, return_info=True)
    dt = time.perf_counter() - t0
    back = pfr.decode_gaussian(data, 0.0, np.ones(d), seed, prng.stream_id("pfr_candidates", 0, 0))
    exact = bool(np.array_equal(back, sample))
    ok &= exact
    report["pfr"] = dict(d=d, kl_bits=info["kl_total_bits"], message_bits=info["bits"], chunks=info["chunks"],
                         seconds=dt, decoder_identical=exact, bias_z_mean=info["bias_z_mean"])
    print(f"[3] exact PFR         : d={d}, KL {info['kl_total_bits']:.0f} bits -> {info['bits']} bits in "
          f"{info['chunks']} chunks ({dt:.2f} s), decoder identical: {exact}")

    # 4. GPRS: 10,000 independent 1-D channels at 6 bits each.
    m = 10_000
    mu = np.full(m, 1.5)
    s = 0.25
    samples, data, ginfo = grc.encode_gaussian(mu, s, 0.0, 1.0, seed, prng.stream_id("grc", 0, 0),
                                               method="gprs-dyadic", return_info=True)
    back = grc.decode_gaussian(data, 0.0, np.ones(m), seed, prng.stream_id("grc", 0, 0), method="gprs-dyadic")
    exact = bool(np.array_equal(back, samples))
    ok &= exact
    kl = float(np.mean(grc.kl_bits(mu, s, 0.0, 1.0)))
    report["gprs"] = dict(channels=m, kl_bits_per_channel=kl, bits_per_channel=8 * len(data) / m,
                          decoder_identical=exact)
    print(f"[4] GPRS              : {m:,} channels, KL {kl:.2f} bits -> {8 * len(data) / m:.2f} bits each, "
          f"decoder identical: {exact}")

    (out / "report.json").write_text(json.dumps(report, indent=2))
    print(f"report written to {out / 'report.json'}; all decoders bit-identical: {ok}")
    return 0 if ok else 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="chansim", description=__doc__)
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the end-to-end demo on embedded defaults")
    demo.add_argument("--n", type=int, default=10_000_000, help="number of normals in step 1 (default 10M)")
    demo.add_argument("--out", default="chansim-demo", help="output directory (default ./chansim-demo)")
    demo.set_defaults(func=_demo)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except Exception as exc:  # one line on stderr, exit status 2; --debug shows the traceback
        if args.debug:
            raise
        print(f"chansim {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
