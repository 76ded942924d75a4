"""Pareto table of budgeted PFR / ORC for equal-variance Gaussian chunks (the DiffC case).

For each chunk information D and candidate budget K = 2^(D + pad): the bits per
chunk actually spent (message bytes, amortised over many chunks), the fraction of
the mean shift the chosen sample realises (target 1) and its variance along the
shift (target 1), and the encoder's candidate count. Equal variances make the
problem rotation invariant, so 1-D chunks give the exact law of any dimension.

    python benchmarks/pfr_pareto.py > pareto.md
    python benchmarks/pfr_pareto.py --latent > latent.md    # the latent presets' frontier
    python benchmarks/pfr_pareto.py --presets               # the DiffC presets' 1-D laws
    python benchmarks/pfr_pareto.py --codec                 # the presets through the DiffC channel

``--latent``: budgeted PFR at chunk KL D = 4 … 10 bits and pad 4 … 10 (K = 2^(D + pad) ≤ 2^20),
the frontier the DiffC latent presets are chosen from (``chansim.codecs.diffc_channel.PRESETS``).
K is the encoder's work per chunk *per coordinate*: a d-dimensional chunk costs K·d candidate
coordinates (the codec's cost model, ``diffc_channel._work``). Each row spends about
``--candidates`` candidates (n = clamp(candidates / K, 1024, 20000) chunks, so the whole message's
fixed bytes add at most 0.2 bits per chunk). Its time column is the encoder's CPU time per chunk
(process time; run it with ``CHANSIM_NUM_THREADS=1``), which a loaded machine inflates less than
wall time.

``--codec``: each DiffC preset through the codec's own channel (``diffc_channel.encode_step``: the
Philox permutation, C = ⌈KL / chunk_bits⌉ chunks, K_c = 2^(⌈KL_c⌉ + pad) capped) on synthetic
latent-like steps: p = N(0, 1), q = N(m, 1) with shifts m_j = s·g_j·exp(0.25·h_j), g and h
standard normal (kurtosis ≈ 3.9; the shipped pixel model's steps on Kodak crops measure 2–5), s set
so the step carries ``--kl-per-coord`` bits per coordinate. Reports the KL-weighted shift fraction
(±SE of an exact channel, 1/√(2 ln 2 · KL)), section bits over KL, and the work Σ K_c·d_c over
``diffc_channel.estimated_work`` (dims·2^(chunk_bits + 1 + pad_bits), the cost model
``choose_preset`` budgets with).
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np

from chansim import pfr


def row(mode: str, d_bits: float, pad: int, n: int, seed: int = 11) -> dict:
    m = math.sqrt(2 * d_bits * math.log(2))
    k = 2 ** int(d_bits + pad)
    t, c = time.perf_counter(), time.process_time()
    _, data, info = pfr.encode_gaussian(np.full(n, m), 1.0, 0.0, 1.0, seed, 1 << 20, mode=mode,
                                        chunk_bits=d_bits + 1e-6, candidates=k, return_info=True)
    dt, dc = time.perf_counter() - t, time.process_time() - c
    eps = pfr.candidates_of(pfr.plan(np.full(n, m), 1.0, 0.0, 1.0, chunk_bits=d_bits + 1e-6),
                            info["indices"], seed, 1 << 20).astype(np.float64)
    return dict(mode=mode, D=d_bits, pad=pad, K=k, n=n, bits=8 * len(data) / n, frac=eps.mean() / m,
                frac_se=eps.std() / m / math.sqrt(n), var=eps.var(), seconds_per_chunk=dt / n,
                cpu_seconds_per_chunk=dc / n)


def latent_chunks(k: int, candidates: int = 2**28, lo: int = 1024, hi: int = 20000) -> int:
    """Chunks of a ``--latent`` row: about ``candidates`` candidates in all, clamped to [lo, hi]."""
    return int(min(hi, max(lo, candidates // k)))


def latent_frontier(candidates: int = 2**28, d_range=range(4, 11), pads=range(4, 11), max_k: int = 2**20):
    """Budgeted rows of the latent frontier (:func:`row` each), K = 2^(D + pad) ≤ ``max_k``."""
    for d_bits in d_range:
        for pad in pads:
            k = 2 ** (d_bits + pad)
            if k <= max_k:
                yield row("budgeted", d_bits, pad, latent_chunks(k, candidates))


def preset_laws(candidates: int = 2**28):
    """The 1-D law of every DiffC preset at its chunk KL and pad (:func:`row` each): (name, row)."""
    from chansim.codecs.diffc_channel import PRESETS

    for name, cs in PRESETS.items():
        yield name, row(cs.mode, cs.chunk_bits, cs.pad_bits, latent_chunks(2 ** (cs.chunk_bits + cs.pad_bits),
                                                                            candidates))


def codec_law(cs, dims: int = 16384, steps: int = 8, kl_per_coord: float = 0.3, seed: int = 5) -> dict:
    """One preset through ``diffc_channel.encode_step`` on ``steps`` synthetic steps of ``dims`` coordinates."""
    from chansim.codecs.diffc_channel import encode_step, estimated_work, permutation

    rng = np.random.default_rng(seed)
    perm = permutation(seed, dims)
    acc = dict(bits=0.0, kl=0.0, shift_w=0.0, work=0.0, capped=0, chunks=0, cpu=0.0)
    for i in range(steps):
        m = rng.standard_normal(dims) * np.exp(0.25 * rng.standard_normal(dims))
        m *= math.sqrt(2 * math.log(2) * kl_per_coord * dims / float(m @ m))
        c = time.process_time()
        _, _, info = encode_step(np.zeros(dims), m, 1.0, seed, i, cs, perm)
        acc["cpu"] += time.process_time() - c
        for key, k2 in (("bits", "bits"), ("kl", "kl_bits"), ("work", "work"), ("capped", "capped"),
                        ("chunks", "chunks")):
            acc[key] += info[k2]
        acc["shift_w"] += info["shift_fraction"] * info["kl_bits"]
    return dict(dims=dims, steps=steps, kl_per_coord=kl_per_coord, frac=acc["shift_w"] / acc["kl"],
                frac_se=1.0 / math.sqrt(2 * math.log(2) * acc["kl"]), bits_over_kl=acc["bits"] / acc["kl"],
                chunk_kl=acc["kl"] / acc["chunks"], work_over_estimate=acc["work"] / (steps * estimated_work(cs, dims)),
                capped=acc["capped"], chunks=acc["chunks"], cpu_seconds_per_step=acc["cpu"] / steps)


CODEC_HEAD = ("| preset | mode, D, pad, cap | shift fraction (KL-weighted, ±SE) | bits / KL | mean chunk KL (bits) | "
              "work / estimate | capped / chunks | encode CPU s / step |\n|---|---|---:|---:|---:|---:|---:|---:|")


def codec_line(name: str, cs, r: dict) -> str:
    return (f"| {name} | {cs.mode}, {cs.chunk_bits}, {cs.pad_bits}, {cs.cap_bits} | {r['frac']:.3f} ± "
            f"{r['frac_se']:.3f} | {r['bits_over_kl']:.3f} | {r['chunk_kl']:.2f} | {r['work_over_estimate']:.2f} | "
            f"{r['capped']} / {r['chunks']} | {r['cpu_seconds_per_step']:.2f} |")


LATENT_HEAD = ("| D (bits) | pad | K = work / (chunk·coord) | chunks | bits / chunk | bits / D | "
               "shift fraction (±SE) | variance along shift | encode CPU ms / chunk |\n"
               "|---:|---:|---:|---:|---:|---:|---:|---:|---:|")


def latent_line(r: dict, label: str = "") -> str:
    """One markdown row; ``label`` (a preset name) prefixes D. Rows with shift ≥ 0.97 at
    bits / D ≤ 1.5 are marked ✓."""
    ok = r["frac"] >= 0.97 and r["bits"] / r["D"] <= 1.5
    d = f"{label} ({r['mode']}, {r['D']:g})" if label else f"{r['D']:g}"
    return (f"| {d} | {r['pad']} | 2^{int(round(math.log2(r['K'])))} | {r['n']} | {r['bits']:.2f} | "
            f"{r['bits'] / r['D']:.3f}{' ✓' if ok else ''} | {r['frac']:.3f} ± {r['frac_se']:.3f} | "
            f"{r['var']:.2f} | {1e3 * r['cpu_seconds_per_chunk']:.3f} |")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--latent", action="store_true", help="the latent presets' frontier (D 4–10, pad 4–10)")
    ap.add_argument("--presets", action="store_true", help="the 1-D law of each DiffC preset")
    ap.add_argument("--candidates", type=int, default=2**28, help="candidates per --latent row")
    ap.add_argument("--codec", nargs="*", metavar="PRESET",
                    help="these presets (all if none) through the DiffC channel")
    ap.add_argument("--dims", type=int, default=16384, help="--codec: coordinates per step")
    ap.add_argument("--steps", type=int, default=8, help="--codec: steps per preset")
    ap.add_argument("--kl-per-coord", type=float, default=0.3, help="--codec: mean KL per coordinate (bits)")
    args = ap.parse_args(argv)
    if args.codec is not None:
        from chansim.codecs.diffc_channel import PRESETS

        print(f"{args.steps} steps × {args.dims} coordinates, {args.kl_per_coord} bits of KL per coordinate\n")
        print(CODEC_HEAD)
        for name in args.codec or PRESETS:
            print(codec_line(name, PRESETS[name], codec_law(PRESETS[name], args.dims, args.steps, args.kl_per_coord)),
                  flush=True)
        return
    if args.latent or args.presets:
        print(LATENT_HEAD)
        if args.presets:
            for name, r in preset_laws(args.candidates):
                print(latent_line(r, name), flush=True)
        if args.latent:
            for r in latent_frontier(args.candidates):
                print(latent_line(r), flush=True)
        return
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
