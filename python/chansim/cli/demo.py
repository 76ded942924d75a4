"""``chansim demo``: the main job on embedded defaults, into ./chansim-demo/.

Compresses a photo that ships with scikit-image (the astronaut, scaled to 256×256)
with UQDM and DiffC at three low-to-medium rates each (the lower half of each codec's
qualities) using the shipped default models, decodes
every file, prints bpp / PSNR / seconds, and writes the reconstructions, the
progressive previews of one file per codec and an R-D plot beside JPEG and WebP on the
same image. Then checks every lower layer end to end (common randomness, dithered
quantization with rANS, exact PFR, GPRS): each decoder must reproduce its encoder bit
for bit.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import List

import numpy as np

from ..evaluation import BASELINE_QUALITIES, available_baselines, baseline_rows, plot_rd, summarize
from .common import (UsageError, check_codec_spec, int_range, load_codec, read_image, split_list, unique, write_bytes,
                     write_png)

DEMO_CODECS = ("uqdm", "diffc")


def demo_image(size: int) -> np.ndarray:
    """scikit-image's astronaut (public domain, NASA), resized to size×size."""
    try:
        from skimage import data
    except ImportError:
        raise UsageError("the demo image comes from scikit-image: pip install scikit-image (or pass --image)") from None
    from PIL import Image

    img = data.astronaut()
    if size != img.shape[0]:
        img = np.asarray(Image.fromarray(img).resize((size, size), Image.LANCZOS))
    return np.ascontiguousarray(img)


def pick(qualities, k: int = 3) -> list:
    """k qualities spread evenly over the lower half of the codec's list (lowest rate first).

    The low rates are where generative codecs differ from classical ones, and the top of
    each list (UQDM's near-lossless steps, DiffC's 20 steps) costs minutes on 2 cores.
    """
    qs = list(qualities)
    qs = qs[: len(qs) // 2 + 1] if len(qs) > 2 * k else qs
    if len(qs) <= k:
        return qs
    idx = sorted({round(i * (len(qs) - 1) / (k - 1)) for i in range(k)})
    return [qs[i] for i in idx]


def _previews(codec, data: bytes, stem: str, out: Path, size: int) -> List[str]:
    """Each prefix's preview as its own PNG and all of them in one strip."""
    from PIL import Image, ImageDraw

    tiles, files = [], []
    h = w = None
    for i, (bits, img) in enumerate(codec.decompress_progressive(data), 1):
        img = np.asarray(img)
        h, w = img.shape[:2]
        path = out / f"{stem}_preview{i}.png"
        write_png(path, img)
        files.append(path.name)
        tiles.append((f"preview {i}: {bits / (h * w):.3f} bpp", img))
    if tiles:
        strip = Image.new("RGB", (len(tiles) * (w + 4), h + 18), "white")
        draw = ImageDraw.Draw(strip)
        for i, (caption, img) in enumerate(tiles):
            strip.paste(Image.fromarray(img), (i * (w + 4), 0))
            draw.text((i * (w + 4) + 3, h + 3), caption, fill="black")
        strip.save(out / f"{stem}_previews.png")
        files.append(f"{stem}_previews.png")
    return files


def run_codecs(image: np.ndarray, out: Path, specs, quiet: bool) -> dict:
    from tqdm.auto import tqdm

    from ..metrics import psnr

    h, w = image.shape[:2]
    write_png(out / "original.png", image)
    plan = []
    codecs = [load_codec(spec) for spec in specs]
    for codec in codecs:
        plan += [(codec, q) for q in pick(codec.qualities)]
    rows = []
    with tqdm(total=len(plan), desc="demo", unit="file", disable=quiet, file=sys.stderr) as bar:
        for codec, q in plan:
            bar.set_postfix_str(f"{codec.name} quality {q}")
            t0 = time.perf_counter()
            data = codec.compress(image, q)
            enc = time.perf_counter() - t0
            stem = f"{codec.name}_q{q}"
            write_bytes(out / f"{stem}.chsm", data)
            t0 = time.perf_counter()
            back = np.asarray(codec.decompress(data))
            dec = time.perf_counter() - t0
            write_png(out / f"{stem}.png", back)
            rows.append(dict(codec=codec.name, label=type(codec).__name__, quality=q, bytes=len(data),
                             bpp=8 * len(data) / (h * w), psnr=psnr(image, back), encode_s=enc, decode_s=dec,
                             file=f"{stem}.chsm", reconstruction=f"{stem}.png"))
            bar.update(1)
    previews = {}
    for codec in codecs:
        mine = [r for r in rows if r["codec"] == codec.name]
        mid = mine[len(mine) // 2]
        data = (out / mid["file"]).read_bytes()
        previews[codec.name] = _previews(codec, data, f"{codec.name}_q{mid['quality']}", out, max(h, w))

    # The R-D plot: the demo's points beside JPEG and WebP on the same image.
    points = [dict(method=r["label"], codec=r["codec"], quality=str(r["quality"]), reconstruction="", image="demo",
                   bytes=r["bytes"], bpp=r["bpp"], psnr=r["psnr"], ms_ssim=float("nan"), encode_s=r["encode_s"],
                   decode_s=r["decode_s"]) for r in rows]
    baselines = []
    for fmt in [f for f in ("jpeg", "webp") if f in available_baselines()]:
        baselines += baseline_rows("demo", image, fmt, BASELINE_QUALITIES)
    summary = summarize(points + baselines)
    max_bpp = max(r["bpp"] for r in rows) * 1.15
    plot_rd(summary, out / "rd.png", "psnr", f"demo image {w}×{h}", max_bpp)

    if not quiet:
        print(f"{'codec':<6} {'quality':>8} {'bytes':>8} {'bpp':>8} {'PSNR dB':>8} {'encode s':>9} {'decode s':>9}")
        for r in rows:
            print(f"{r['codec']:<6} {str(r['quality']):>8} {r['bytes']:>8,} {r['bpp']:8.4f} {r['psnr']:8.2f} "
                  f"{r['encode_s']:9.2f} {r['decode_s']:9.2f}")
    for r in rows:
        del r["label"]
    return dict(image=dict(height=h, width=w), rows=rows, previews=previews, rd_plot="rd.png",
                baselines=[{k: v for k, v in p.items() if k != "ms_ssim"} for p in baselines])


def run_layers(n: int, quiet: bool) -> tuple:
    """Every lower layer end to end; each decoder must reproduce its encoder bit for bit."""
    from .. import dq, grc, pfr, prng

    say = (lambda *a, **k: None) if quiet else print
    report = {}
    ok = True
    seed = 2026

    # 1. Common randomness.
    stream = prng.stream_id("user", 0, 0)
    t0 = time.perf_counter()
    z = prng.normal(seed, stream, 0, n)
    dt = time.perf_counter() - t0
    ref = prng.reference.normal(seed, stream, 0, min(n, 100_000))
    same = bool(np.array_equal(ref.view(np.uint32), z[: ref.size].view(np.uint32)))
    ok &= same
    report["prng"] = dict(normals=n, mnormals_per_s=n / dt / 1e6, isa=prng.isa(), reference_identical=same)
    say(f"[1] common randomness : {n:,} addressed normals at {n / dt / 1e6:.0f} M/s ({prng.isa()}), "
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
        say(f"[2] dithered quant.   : step {step:5.2f}  {8 * len(data) / x.size:6.3f} bits/sample, "
            f"noise var/Δ² {err.var():.4f} (exact channel: 1/12 = 0.0833), decoder identical: {exact}")
    report["dq"] = rows

    # 3. Exact PFR: a 4,096-dimensional Gaussian posterior sent in chunks of at most 16 bits of D∞.
    d = 4096
    mu_q = rng.normal(0.0, 0.5, d)
    t0 = time.perf_counter()
    sample, data, info = pfr.encode_gaussian(mu_q, 0.5, 0.0, 1.0, seed, prng.stream_id("pfr_candidates", 0, 0),
                                             mode="exact", chunk_bits=16.0, return_info=True)
    dt = time.perf_counter() - t0
    back = pfr.decode_gaussian(data, 0.0, np.ones(d), seed, prng.stream_id("pfr_candidates", 0, 0))
    exact = bool(np.array_equal(back, sample))
    ok &= exact
    report["pfr"] = dict(d=d, kl_bits=info["kl_total_bits"], message_bits=info["bits"], chunks=info["chunks"],
                         seconds=dt, decoder_identical=exact, bias_z_mean=info["bias_z_mean"])
    say(f"[3] exact PFR         : d={d}, KL {info['kl_total_bits']:.0f} bits -> {info['bits']} bits in "
        f"{info['chunks']} chunks ({dt:.2f} s), decoder identical: {exact}")

    # 4. GPRS: 10,000 independent 1-D channels at 6 bits each.
    m = 10_000
    mu = np.full(m, 1.5)
    samples, data, ginfo = grc.encode_gaussian(mu, 0.25, 0.0, 1.0, seed, prng.stream_id("grc", 0, 0),
                                               method="gprs-dyadic", return_info=True)
    back = grc.decode_gaussian(data, 0.0, np.ones(m), seed, prng.stream_id("grc", 0, 0), method="gprs-dyadic")
    exact = bool(np.array_equal(back, samples))
    ok &= exact
    kl = float(np.mean(grc.kl_bits(mu, 0.25, 0.0, 1.0)))
    report["gprs"] = dict(channels=m, kl_bits_per_channel=kl, bits_per_channel=8 * len(data) / m,
                          decoder_identical=exact)
    say(f"[4] GPRS              : {m:,} channels, KL {kl:.2f} bits -> {8 * len(data) / m:.2f} bits each, "
        f"decoder identical: {exact}")
    return report, ok


def run_demo(args) -> int:
    specs = unique(check_codec_spec(c) for c in split_list(args.codecs))
    image = None
    if specs:
        image = read_image(args.image) if args.image else demo_image(args.size)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {}
    if specs:
        report["codecs"] = run_codecs(image, out, specs, args.quiet)
    ok = True
    if not args.skip_layers:
        report["layers"], ok = run_layers(args.n, args.quiet)
    write_bytes(out / "report.json", json.dumps(report, indent=2, default=str).encode())
    if not args.quiet:
        print(f"outputs in {out}/ (report.json" + (", reconstructions, previews, rd.png" if specs else "") +
              f"); lower-layer decoders bit-identical: {ok}")
    return 0 if ok else 1


def add_parser(sub, common) -> None:
    p = sub.add_parser("demo", parents=[common], help="the end-to-end demo on embedded defaults",
                       description=" ".join(__doc__.replace("``", "").split("\n\n")[1].split()))
    p.add_argument("--out", default="chansim-demo", help="output directory (default ./chansim-demo)")
    p.add_argument("--size", type=int_range(16), default=256, help="side of the demo image in pixels (default 256)")
    p.add_argument("--image", default=None, help="use this image instead of the embedded one")
    p.add_argument("--codecs", default=",".join(DEMO_CODECS),
                   help=f"comma-separated codecs to run (default {','.join(DEMO_CODECS)}; '' for none)")
    p.add_argument("--n", type=int_range(1), default=10_000_000,
                   help="normals in the common-randomness check (default 10M)")
    p.add_argument("--skip-layers", action="store_true", help="skip the lower-layer checks")
    p.set_defaults(func=run_demo)
