"""Grayscale photos through a codec trained on colour (issue 17, item 5): what to code, what to return.

The codecs' networks take three channels, so a grayscale source (Kodak converted with Pillow's
``L`` mode, ITU-R 601 luma) is coded as R = G = B and the file is flagged gray. This measures,
per codec quality, on the same files:

* the rate of the gray file against the rate of the colour original at the same quality
  (how much of the colour cost disappears when the chroma is flat);
* the PSNR of three one-channel readings of the decoded RGB: the channel mean
  (:func:`chansim.codecs.image.to_gray`, what ``decompress`` returns for a gray file), the
  ITU-R 601 luma, and the green channel alone;
* the gray PSNR of Pillow's JPEG in ``L`` mode (one channel coded) as the peer, with the
  BD-PSNR of each reading against it.

Run: python benchmarks/gray.py [--codec ntc] [--images 24] [--qualities 1 2 …]
Writes benchmarks/results/gray_<codec>.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import io
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image

from chansim.codecs import codec_class
from chansim.codecs.image import to_gray
from chansim.data import shared_path
from chansim.evaluation import bd_psnr

OUT = Path(__file__).resolve().parent / "results"


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0 ** 2 / mse)) if mse > 0 else float("inf")


def readings(rgb: np.ndarray) -> dict:
    luma = np.clip(np.rint(rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])), 0, 255).astype(np.uint8)
    return {"mean": to_gray(rgb), "luma": luma, "green": rgb[..., 1]}


def jpeg_gray(gray: np.ndarray, quality: int):
    buf = io.BytesIO()
    Image.fromarray(gray, "L").save(buf, format="JPEG", quality=quality, optimize=True)
    rec = np.asarray(Image.open(io.BytesIO(buf.getvalue())))
    return 8 * len(buf.getvalue()) / gray.size, psnr(gray, rec)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--codec", default="ntc")
    ap.add_argument("--images", type=int, default=24)
    ap.add_argument("--qualities", type=int, nargs="*", default=None)
    args = ap.parse_args()

    codec = codec_class(args.codec).pretrained()
    qualities = args.qualities or list(codec.qualities)
    files = sorted(shared_path("kodak").glob("kodim*.png"))[:args.images]
    rows = {q: {"bpp_gray": [], "bpp_colour": [], "mean": [], "luma": [], "green": []} for q in qualities}
    jpeg = {q: ([], []) for q in range(5, 100, 5)}
    t0 = time.time()
    for f in files:
        colour = np.asarray(Image.open(f).convert("RGB"))
        gray = np.asarray(Image.open(f).convert("L"))
        as_rgb = np.repeat(gray[..., None], 3, axis=2)
        for q in qualities:
            data = codec.compress(as_rgb, q)
            back = codec.decompress(data)
            r = rows[q]
            r["bpp_gray"].append(8 * len(data) / gray.size)
            r["bpp_colour"].append(8 * len(codec.compress(colour, q)) / gray.size)
            for name, one in readings(back).items():
                r[name].append(psnr(gray, one))
        for q, (b, p) in jpeg.items():
            rate, quality = jpeg_gray(gray, q)
            b.append(rate)
            p.append(quality)
        print(f"{f.name} done ({time.time() - t0:.0f} s)", flush=True)

    curve = {q: {k: float(np.mean(v)) for k, v in r.items()} for q, r in rows.items()}
    jb = [float(np.mean(b)) for b, _ in jpeg.values()]
    jp = [float(np.mean(p)) for _, p in jpeg.values()]
    bpp = [curve[q]["bpp_gray"] for q in qualities]
    bd = {name: bd_psnr(jb, jp, bpp, [curve[q][name] for q in qualities]) for name in ("mean", "luma", "green")}
    result = {"codec": args.codec, "model_id": codec.model_id, "images": len(files), "curve": curve,
              "jpeg_gray": list(zip(range(5, 100, 5), jb, jp)), "bd_psnr_vs_jpeg_gray": bd,
              "seconds": round(time.time() - t0, 1)}
    OUT.mkdir(exist_ok=True)
    (OUT / f"gray_{args.codec}.json").write_text(json.dumps(result, indent=1))

    print(f"\n{args.codec}, {len(files)} Kodak images converted to gray (Pillow L), coded as R = G = B\n")
    print("| quality | bpp gray | bpp colour | gray/colour | PSNR mean | PSNR luma | PSNR green |")
    print("|---|---|---|---|---|---|---|")
    for q in qualities:
        c = curve[q]
        print(f"| {q} | {c['bpp_gray']:.3f} | {c['bpp_colour']:.3f} | {c['bpp_gray'] / c['bpp_colour']:.2f} | "
              f"{c['mean']:.2f} | {c['luma']:.2f} | {c['green']:.2f} |")
    print("\nBD-PSNR against Pillow JPEG in L mode: " +
          ", ".join(f"{k} {v:+.2f} dB" for k, v in bd.items() if v is not None))


if __name__ == "__main__":
    main()
