"""UQDM on the 24 Kodak images: bpp against PSNR and MS-SSIM, with JPEG, WebP and AVIF (Pillow) in
the same run, lossless bits per sub-pixel against PNG and WebP lossless, BD-PSNR, and an R-D plot.

Rates are whole file sizes (container header, section lengths, checksums included). UQDM's
reconstructions are the ``mmse`` ones; they come from :meth:`UQDM.evaluate`, which holds
the same latent the receiver rebuilds, and ``--verify`` images are also fully decoded and
compared bit for bit. Curves average bpp and quality per setting over the images; BD-PSNR
(:func:`chansim.evaluation.bd_psnr`: Bjøntegaard, PCHIP interpolation of PSNR over log rate,
on the overlapping rate range) compares those mean curves. MS-SSIM is
:func:`chansim.metrics.ms_ssim` (5 scales, 11×11 Gaussian window, data range 255; agrees with
pytorch_msssim to 1e-5), reported also as −10 log10(1 − MS-SSIM) dB.

Qualities evaluated: every one with fewer than ``--max-steps`` steps, those with ``--max-steps``
steps up to 16/64 of the last (the peers' rates end near 4.5 bpp), and every whole-step quality
beyond. Results are appended per image to the JSON (``--out``), in two phases that resume on
their own: ``peers`` (Pillow codecs; their numbers do not depend on the UQDM model, so they
can run before the model is final) and ``uqdm``; the report needs both for an image.

Run: python benchmarks/eval_uqdm.py [--phase all|peers|uqdm] [--max-steps 3] [--verify 1] [--images 24]
     python benchmarks/eval_uqdm.py --report
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
import chansim
from chansim.codecs import UQDM
from chansim.evaluation import bd_psnr, msssim_db
from chansim.metrics import ms_ssim, psnr
from chansim.data import shared_path

JPEG_Q = [5, 10, 15, 20, 30, 40, 50, 60, 70, 80, 90, 95]
WEBP_Q = [0, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 100]
AVIF_Q = [5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95]


def msssim(a: np.ndarray, b: np.ndarray) -> float:
    return ms_ssim(a, b)  # chansim.metrics: the project's one MS-SSIM (agrees with pytorch_msssim to 1e-5)


def pillow(img: np.ndarray, fmt: str, **kw):
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, fmt, **kw)
    data = buf.getvalue()
    out = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    return data, out


def point(img, data, out):
    h, w = img.shape[:2]
    return {"bpp": 8 * len(data) / (h * w), "psnr": psnr(img, out), "msssim": msssim(img, out)}


def eval_uqdm(codec, img, qualities, verify):
    res = {"uqdm": {}}
    t = time.perf_counter()
    files = codec.evaluate(img, list(qualities) + ["lossless"], reconstructions=("mmse",))
    res["uqdm_seconds"] = time.perf_counter() - t
    for q, r in zip(qualities, files):
        res["uqdm"][str(q)] = point(img, r.data, r.images["mmse"])
        if verify:
            assert np.array_equal(codec.decompress(r.data), r.images["mmse"]), f"quality {q}: decoder differs"
    ll = files[-1].data
    if verify:
        assert np.array_equal(codec.decompress(ll), img), "lossless decode is not exact"
    res["uqdm_lossless"] = 8 * len(ll) / img.size
    return res


def eval_peers(img):
    res = {"jpeg": {}, "webp": {}, "avif": {}}
    sub = img.size
    res["lossless"] = {"png": 8 * len(pillow(img, "PNG", optimize=True)[0]) / sub,
                       "webp": 8 * len(pillow(img, "WEBP", lossless=True, quality=50, method=6)[0]) / sub}
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


def bd(curve_a, curve_b, metric="psnr", lo=None, hi=None):
    """Mean quality difference of a over b (dB) on their overlapping rate range:
    chansim.evaluation.bd_psnr (PCHIP over log rate) with b as the reference curve."""
    def q(c):
        return [p["psnr"] if metric == "psnr" else msssim_db(p["msssim"]) for p in c]
    rng = None if lo is None and hi is None else (lo or 1e-300, hi or float("inf"))
    return bd_psnr([p["bpp"] for p in curve_b], q(curve_b), [p["bpp"] for p in curve_a], q(curve_a),
                   rate_range=rng, return_range=True)


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


def report(state) -> str:
    """Markdown tables of a finished run (what BENCHMARKS.md quotes)."""
    sm = state["summary"]
    lines = [f"UQDM (model {state['uqdm']['model_id'][:16]}), mean over {sm['images']} Kodak images:", "",
             "| quality | steps, fraction | bpp | PSNR (dB) | MS-SSIM | MS-SSIM (dB) |", "|---:|---|---:|---:|---:|---:|"]
    for p in sorted(sm["curves"]["uqdm"], key=lambda p: p["bpp"]):
        n, m = state["uqdm"]["quality_table"][int(p["q"]) - 1]
        lines.append(f"| {p['q']} | {n}, {m}/64 | {p['bpp']:.3f} | {p['psnr']:.2f} | {p['msssim']:.4f} | "
                     f"{msssim_db(p['msssim']):.2f} |")
    lines += ["", "| peer | settings | bpp range | PSNR range (dB) |", "|---|---|---|---|"]
    for peer, qs in (("jpeg", JPEG_Q), ("webp", WEBP_Q), ("avif", AVIF_Q)):
        c = sm["curves"][peer]
        lines.append(f"| {peer} | quality {qs[0]}…{qs[-1]} | {c[0]['bpp']:.2f}…{c[-1]['bpp']:.2f} | "
                     f"{c[0]['psnr']:.1f}…{c[-1]['psnr']:.1f} |")
    lines += ["", "| UQDM against | BD-PSNR (dB) | BD-MS-SSIM (dB) | overlapping bpp range |", "|---|---:|---:|---|"]
    for peer in ("jpeg", "webp", "avif"):
        a, b = sm["bd"][f"{peer}_psnr"], sm["bd"][f"{peer}_msssim"]
        rng = a["range_bpp"]
        lines.append(f"| {peer} | {a['db']:+.2f} | {b['db']:+.2f} | {rng[0]:.2f}…{rng[1]:.2f} |")
    ll = sm["lossless"]
    lines += ["", "| lossless | bits per sub-pixel | vs UQDM |", "|---|---:|---:|"]
    for k, name in (("uqdm", "UQDM lossless"), ("png", "PNG (Pillow, optimize)"),
                    ("webp", "WebP lossless (Pillow, method 6, quality 50)")):
        lines.append(f"| {name} | {ll[k]:.3f} | {ll[k] / ll['uqdm']:.3f} |")
    lines += ["", f"UQDM time per image (one pass for all evaluated qualities + lossless, encoder-side "
              f"reconstructions): {sm['uqdm_seconds_mean']:.1f} s"]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-steps", type=int, default=3, help="see the module docstring")
    ap.add_argument("--images", type=int, default=24)
    ap.add_argument("--verify", type=int, default=1, help="fully decode this many images' files")
    ap.add_argument("--out", default="benchmarks/results/uqdm_kodak.json")
    ap.add_argument("--plot", default="benchmarks/results/uqdm_rd.png")
    ap.add_argument("--phase", choices=("all", "peers", "uqdm"), default="all",
                    help="peers' results do not depend on the model; each phase resumes on its own")
    ap.add_argument("--report", action="store_true", help="print the markdown tables of --out and exit")
    args = ap.parse_args()
    if args.report:
        print(report(json.loads(Path(args.out).read_text())))
        return
    torch.set_num_threads(1)  # MS-SSIM and the peers; the codec pins its own inference threads
    chansim.set_num_threads(2)
    codec = UQDM.pretrained()
    qualities = [q for q, (n, m) in zip(codec.qualities, codec.quality_table)
                 if n < args.max_steps or (n == args.max_steps and m <= 16)]
    qualities += [q for q, (n, m) in zip(codec.qualities, codec.quality_table) if m == 64 and n >= args.max_steps]
    out = Path(args.out)
    state = json.loads(out.read_text()) if out.is_file() else {}
    state.setdefault("peers", {})
    u = state.get("uqdm", {})
    if u.get("model_id") != codec.model_id or u.get("qualities") != qualities:
        state["uqdm"] = {"model_id": codec.model_id, "qualities": qualities,
                         "quality_table": codec.quality_table, "images": {}}
    names = [f"kodim{i:02d}.png" for i in range(1, args.images + 1)]
    for i, name in enumerate(names):
        img = None
        for phase, done, run in (("peers", state["peers"], lambda im, i=i: eval_peers(im)),
                                 ("uqdm", state["uqdm"]["images"],
                                  lambda im, i=i: eval_uqdm(codec, im, qualities, verify=i < args.verify))):
            if name in done or args.phase not in (phase, "all"):
                continue
            img = np.asarray(Image.open(shared_path("kodak", name)).convert("RGB")) if img is None else img
            t = time.perf_counter()
            done[name] = run(img)
            print(f"{name} {phase}: {time.perf_counter() - t:.1f} s", flush=True)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(state))
    names = [n for n in names if n in state["peers"] and n in state["uqdm"]["images"]]
    if not names:
        return
    per = [dict(state["peers"][n], **state["uqdm"]["images"][n]) for n in names]
    curves = {c: mean_curve(per, c) for c in ("uqdm", "jpeg", "webp", "avif")}
    summary = {"images": len(per), "curves": curves, "bd": {}, "lossless": {
        "uqdm": float(np.mean([r["uqdm_lossless"] for r in per])),
        "png": float(np.mean([r["lossless"]["png"] for r in per])),
        "webp": float(np.mean([r["lossless"]["webp"] for r in per]))}}
    for peer in ("jpeg", "webp", "avif"):
        for metric in ("psnr", "msssim"):
            v, rng = bd(curves["uqdm"], curves[peer], metric)
            summary["bd"][f"{peer}_{metric}"] = {"db": v, "range_bpp": rng}
    summary["uqdm_seconds_mean"] = float(np.mean([r["uqdm_seconds"] for r in per]))
    state["summary"] = summary
    out.write_text(json.dumps(state))
    plot(curves, args.plot, len(per))
    print(report(state))


if __name__ == "__main__":
    main()
