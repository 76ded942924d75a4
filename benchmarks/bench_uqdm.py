"""UQDM codec speed: a 768×512 Kodak image end to end, the entropy coding's share, and the
reference approach (an entropy table built per element in a Python loop) on a 32×32 crop.

The reference UQDM coder builds one CDF row per element in a serial Python loop (papers.md §6:
about five minutes per 32×32 image with learned variance). ``reference_tables`` reproduces that
approach — per element, evaluate the logistic ⋆ uniform mass of every symbol of the element's
support with NumPy and quantize it to 16-bit frequencies — and the tables are then coded with
chansim's categorical family (per-symbol rows), so the comparison isolates the table building.
chansim's path codes each step in one native call under the parametric logistic ⋆ uniform family.
Both code the same indices of the same 32×32 crop, in the same process.

Run: python benchmarks/bench_uqdm.py [--image kodim23.png] [--json benchmarks/results/uqdm_speed.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import chansim
from chansim import rans
from chansim.codecs import UQDM
from chansim.codecs import uqdm_step
from chansim.data import shared_path
from chansim.machine import cpu_name


class Timed:
    """Accumulates wall time of the rANS calls the codec makes (tables, coding, finish)."""

    total = 0.0

    @classmethod
    def wrap(cls, klass, names):
        class W(klass):
            pass

        for name in names:
            def make(fn):
                def timed(self, *a, **k):
                    t = time.perf_counter()
                    try:
                        return fn(self, *a, **k)
                    finally:
                        cls.total += time.perf_counter() - t
                return timed
            setattr(W, name, make(getattr(klass, name)))
        return W


def _patch_rans():
    enc = Timed.wrap(rans.Encoder, ["encode_logistic_dithered", "encode_categorical", "finish"])
    dec_base = rans.Decoder

    class Dec(Timed.wrap(dec_base, ["decode_logistic_dithered", "decode_categorical"])):
        def __init__(self, data):
            t = time.perf_counter()
            super().__init__(data)
            Timed.total += time.perf_counter() - t

    uqdm_step.rans.Encoder, uqdm_step.rans.Decoder = enc, Dec  # same module object: chansim.rans
    return enc, Dec


def _logistic_cdf(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def reference_tables(k, idx, u):
    """Per element, in a Python loop: the support [−R, R] around 0, the logistic ⋆ uniform mass of
    each symbol (units of Δ, table scale), 16-bit frequencies with a floor of 1. Returns
    (symbols shifted into the support, rows)."""
    scales = uqdm_step.SCALES
    R = int(np.abs(k).max()) + 1
    support = np.arange(-R, R + 1, dtype=np.float64)
    rows = np.empty((k.size, support.size))
    for i in range(k.size):  # the reference approach: one table per element, serially
        s = scales[idx[i]]
        upper = _logistic_cdf((support - u[i] + 0.5) / s)
        lower = _logistic_cdf((support - u[i] - 0.5) / s)
        freq = np.maximum(np.round((upper - lower) * 65536.0), 1.0)
        rows[i] = freq / freq.sum()
    return (k + R).astype(np.int32), rows


def step_symbols(codec, img, seed=5):
    """Per step: (k, idx, u) that the codec codes for ``img`` (all steps whole)."""
    from chansim.diffusion import steps as S
    from chansim.diffusion.likelihood import to_unit
    from chansim.kernels import diffusion_steps as K

    x = to_unit(torch.from_numpy(img.transpose(2, 0, 1)[None].astype(np.int64)))
    z = uqdm_step.initial_latent(seed, x.shape)
    out = []
    g = codec.gammas()
    with torch.inference_mode():
        for i in range(codec.steps):
            step = uqdm_step.Step.make(g, i)
            u64, u = uqdm_step.dither(seed, i, z.shape)
            eps, f = uqdm_step.network(codec._inference(), z, step.gamma_t)
            _, _, k, idx, z = K.uqdm_encode(z, eps, f, x, u, step.coefs, S.scale_boundaries())
            out.append((k.numpy().reshape(-1), idx.numpy().reshape(-1), u64))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--image", default="kodim23.png")
    ap.add_argument("--json", default="benchmarks/results/uqdm_speed.json")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(2)
    chansim.set_num_threads(2)
    path = shared_path("kodak", args.image)
    img = np.asarray(Image.open(path).convert("RGB"))
    codec = UQDM.pretrained()
    _patch_rans()
    res = {"image": args.image, "shape": list(img.shape), "machine": cpu_name(),
           "threads": 2, "model_id": codec.model_id[:16]}

    rows = []
    for label, kw in [("all steps (quality %d)" % codec.qualities[-1], dict(quality=codec.qualities[-1])),
                      ("lossless", dict(lossless=True))]:
        best = None
        for _ in range(args.repeats):
            Timed.total = 0.0
            t0 = time.perf_counter()
            data = codec.compress(img, **kw)
            t1 = time.perf_counter()
            ec_enc = Timed.total
            Timed.total = 0.0
            out = codec.decompress(data)
            t2 = time.perf_counter()
            ec_dec = Timed.total
            r = dict(mode=label, encode_s=t1 - t0, decode_s=t2 - t1, total_s=t2 - t0,
                     entropy_encode_s=ec_enc, entropy_decode_s=ec_dec, entropy_s=ec_enc + ec_dec,
                     bpp=8 * len(data) / (img.shape[0] * img.shape[1]),
                     exact=bool(np.array_equal(out, img)) if kw.get("lossless") else None)
            best = r if best is None or r["total_s"] < best["total_s"] else best
        rows.append(best)
        print(best, flush=True)
    res["kodak"] = rows

    # 32×32: chansim's per-step native call vs the per-element Python table build, same symbols.
    crop = np.ascontiguousarray(img[240:272, 368:400])
    syms = step_symbols(codec, crop)
    t = time.perf_counter()
    sizes_fast = []
    for k, idx, u in syms:
        enc = rans.Encoder()
        enc.encode_logistic_dithered(k, 0.0, uqdm_step.SCALES[idx], 1.0, u)
        sizes_fast.append(len(enc.finish()))
    fast = time.perf_counter() - t
    t = time.perf_counter()
    sizes_ref = []
    for k, idx, u in syms:
        sym, tab = reference_tables(k, idx, u)
        enc = rans.Encoder()
        enc.encode_categorical(sym, tab)
        sizes_ref.append(len(enc.finish()))
    ref = time.perf_counter() - t
    t = time.perf_counter()
    codec.decompress(codec.compress(crop, quality=codec.qualities[-1]))
    whole = time.perf_counter() - t
    res["crop32"] = dict(chansim_entropy_encode_s=fast, reference_table_build_encode_s=ref, ratio=ref / fast,
                         chansim_codec_encode_decode_s=whole, bytes_chansim=sizes_fast, bytes_reference=sizes_ref)
    print(res["crop32"], flush=True)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
