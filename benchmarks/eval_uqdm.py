"""UQDM on the 24 Kodak images: bpp against PSNR and MS-SSIM, with JPEG, WebP and AVIF (Pillow) in
the same run, lossless bits per sub-pixel against PNG and WebP lossless, BD-PSNR, and an R-D plot.

Rates are whole file sizes (container header, section lengths, checksums included). UQDM's
reconstructions are the ``denoise`` ones; they come from :meth:`UQDM.compress_many`, which holds
the same latent the receiver rebuilds, and ``--verify`` images are also fully decoded and
compared bit for bit. Curves average bpp and quality per setting over the images; BD-PSNR
(Bjøntegaard, piecewise-cubic interpolation of PSNR over log rate, on the overlapping rate
range) compares those mean curves. MS-SSIM is pytorch_msssim's (5 scales, 11×11 Gaussian
window, data range 255), reported also as −10 log10(1 − MS-SSIM) dB.

Results are appended per image to the JSON (``--out``), so an interrupted run resumes.

Run: python benchmarks/eval_uqdm.py [--max-steps 3] [--verify 1] [--images 24]
"""

from __future__ import annotations

import argparse
import io
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from pytorch_msssim import ms_ssim
from scipy.interpolate import PchipInterpolator

import chansim
from chansim.codecs import UQDM
from chansim.codecs.image import psnr
from chansim.data import shared_path

JPEG_Q = [5, 10, 15, 20, 30, 40, 50, 60, 70, 80, 90, 95]
WEBP_Q = [0, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 100]
AVIF_Q = [5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95]


def msssim(a: np.ndarray, b: np.ndarray) -> float:
    ta = torch.from_numpy(a.transpose(2, 0, 1)[None].astype(np.float32))
    tb = torch.from_numpy(b.transpose(2, 0, 1)[None].astype(np.float32))
    return float(ms_ssim(ta, tb, data_range=255.0, size_average=True))


def pillow(img: np.ndarray, fmt: str, **kw):
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, fmt, **kw)
    data = buf.getvalue()
    out = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    return data, out


def point(img, data, out):
    h, w = img.shape[:2]
    return {"bpp": 8 * len(data) / (h * w), "psnr": psnr(img, out), "msssim": msssim(img, out)}


def eval_image(codec, img, qualities, verify):
    res = {"uqdm": {}, "jpeg": {}, "webp": {}, "avif": {}}
    t = time.perf_counter()
    files = codec.compress_many(img, list(qualities) + ["lossless"], reconstructions=True)
    res["uqdm_seconds"] = time.perf_counter() - t
    for q, (data, out) in zip(qualities, files):
        res["uqdm"][str(q)] = point(img, data, out)
        if verify:
            assert np.array_equal(codec.decompress(data), out), f"quality {q}: decoder differs"
    ll = files[-1][0]
    if verify:
        assert np.array_equal(codec.decompress(ll), img), "lossless decode is not exact"
    sub = img.size
    res["lossless"] = {"uqdm": 8 * len(ll) / sub,
                       "png": 8 * len(pillow(img, "PNG", optimize=True)[0]) / sub,
                       "webp": 8 * len(pillow(img, "WEBP", lossless=True, quality=100, method=6)[0]) / sub}
    for q in JPEG_Q:
        res["jpeg"][str(q)] = point(img, *pillow(img, "JPEG", quality=q))
    for q in WEBP_Q:
        res["webp"][str(q)] = point(img, *pillow(img, "WEBP", quality=q))
    for q in AVIF_Q:
        res["avif"][str(q)] = point(img, *pillow(img, "AVIF", quality=q))
    return res


def mean_curve(per_image, codec_name):
    keys = list(per_image[0][codec_name].keys())
    pts = []
    for k in keys:
        vals = [r[codec_name][k] for r in per_image]
        pts.append({m: float(np.mean([v[m] for v in vals])) for m in ("bpp", "psnr", "msssim")} | {"q": k})
    return sorted(pts, key=lambda p: p["bpp"])


def msssim_db(v):
    return -10.0 * np.log10(max(1e-12, 1.0 - v))


def bd(curve_a, curve_b, metric="psnr", lo=None, hi=None):
    """Mean quality difference of a over b (dB) on their overlapping log-rate range (PCHIP)."""
    def xy(c):
        x = np.log10([p["bpp"] for p in c])
        y = np.array([p[metric] if metric == "psnr" else msssim_db(p["msssim"]) for p in c])
        keep = np.concatenate([[True], np.diff(x) > 0])
        return x[keep], y[keep]
    xa, ya = xy(curve_a)
    xb, yb = xy(curve_b)
    a, b = max(xa[0], xb[0]), min(xa[-1], xb[-1])
    if lo is not None:
        a = max(a, np.log10(lo))
    if hi is not None:
        b = min(b, np.log10(hi))
    if b <= a:
        return None, None
    grid = np.linspace(a, b, 512)
    diff = PchipInterpolator(xa, ya)(grid) - PchipInterpolator(xb, yb)(grid)
    return float(np.trapezoid(diff, grid) / (b - a)), (float(10 ** a), float(10 ** b))


def plot(curves, path, images):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    for name, c in curves.items():
        x = [p["bpp"] for p in c]
        axes[0].plot(x, [p["psnr"] for p in c], "o-", ms=3, label=name)
        axes[1].plot(x, [msssim_db(p["msssim"]) for p in c], "o-", ms=3, label=name)
    for ax, yl in zip(axes, ["PSNR (dB)", "MS-SSIM (dB)"]):
        ax.set_xscale("log")
        ax.set_xlim(0.05, 30)
        ax.set_xlabel("bits per pixel")
        ax.set_ylabel(yl)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.suptitle(f"Kodak ({images} images, mean bpp and quality per setting; 2 cores, Pillow peers)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-steps", type=int, default=3, help="evaluate qualities with at most this many steps "
                    "(plus the all-steps quality); later partial steps lie far above the peers' rates")
    ap.add_argument("--images", type=int, default=24)
    ap.add_argument("--verify", type=int, default=1, help="fully decode this many images' files")
    ap.add_argument("--out", default="benchmarks/results/uqdm_kodak.json")
    ap.add_argument("--plot", default="benchmarks/results/uqdm_rd.png")
    args = ap.parse_args()
    torch.set_num_threads(2)
    chansim.set_num_threads(2)
    codec = UQDM.pretrained()
    qualities = [q for q, (n, _) in zip(codec.qualities, codec.quality_table) if n <= args.max_steps]
    qualities.append(codec.qualities[-1])
    out = Path(args.out)
    state = json.loads(out.read_text()) if out.is_file() else {}
    if state.get("model_id") != codec.model_id or state.get("qualities") != qualities:
        state = {"model_id": codec.model_id, "qualities": qualities,
                 "quality_table": codec.quality_table, "images": {}}
    names = [f"kodim{i:02d}.png" for i in range(1, args.images + 1)]
    for i, name in enumerate(names):
        if name in state["images"]:
            continue
        img = np.asarray(Image.open(shared_path("kodak", name)).convert("RGB"))
        t = time.perf_counter()
        state["images"][name] = eval_image(codec, img, qualities, verify=i < args.verify)
        print(f"{name}: {time.perf_counter() - t:.1f} s", flush=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(state))
    per = [state["images"][n] for n in names if n in state["images"]]
    curves = {c: mean_curve(per, c) for c in ("uqdm", "jpeg", "webp", "avif")}
    summary = {"images": len(per), "curves": curves, "bd": {}, "lossless": {
        k: float(np.mean([r["lossless"][k] for r in per])) for k in ("uqdm", "png", "webp")}}
    for peer in ("jpeg", "webp", "avif"):
        for metric in ("psnr", "msssim"):
            v, rng = bd(curves["uqdm"], curves[peer], metric)
            summary["bd"][f"{peer}_{metric}"] = {"db": v, "range_bpp": rng}
    summary["uqdm_seconds_mean"] = float(np.mean([r["uqdm_seconds"] for r in per]))
    state["summary"] = summary
    out.write_text(json.dumps(state))
    plot(curves, args.plot, len(per))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
