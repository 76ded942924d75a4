"""DiffC on Kodak: rate–distortion for each reconstruction against JPEG / WebP / AVIF, and the
channel frontier (bias, bits over KL, seconds) of the PFR presets.

    python benchmarks/eval_diffc.py rd --images 8 --preset unbiased --out benchmarks/results/diffc
    python benchmarks/eval_diffc.py frontier --images 2 --crop 256 --quality 12 --out benchmarks/results/diffc

``rd``: each image is compressed once at the highest quality; lower qualities are the
file's prefixes (``container.truncate``), which is exactly what compressing at that quality
produces (tested in tests/test_codec_diffc.py). Encode seconds at quality q are the
measured time of the first q steps plus the setup; decode seconds at q are the measured
time of decoding q sections plus the flow reconstruction. bpp = file bytes × 8 / pixels.
Pillow's JPEG / WebP / AVIF run a quality sweep on the same images in the same run and are
interpolated (linearly in bpp, per image) to DiffC's rate. Writes ``rd.json``, ``rd.md``
and ``rd.png``.

``frontier``: each preset (and a few extra settings) compresses the same centre crops at one
quality; reports the KL-weighted shift fraction (1 = unbiased), file bits over the summed
KL, and encode seconds. Writes ``frontier.json`` and ``frontier.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from chansim.machine import cpu_name

KODAK = Path(os.environ.get("CHANSIM_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")) / "kodak"
BASELINE_QUALITIES = {"jpeg": [1, 2, 3, 5, 10, 15, 20, 30, 40, 50, 60, 70, 80, 90, 95],
                      "webp": [1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95],
                      "avif": [1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95]}


def load_kodak(n: int, crop: int = 0, first: int = 1):
    from PIL import Image

    out = []
    for i in range(first, first + n):
        img = np.array(Image.open(KODAK / f"kodim{i:02d}.png").convert("RGB"))
        if crop:
            h, w = img.shape[:2]
            img = np.ascontiguousarray(img[(h - crop) // 2:(h + crop) // 2, (w - crop) // 2:(w + crop) // 2])
        out.append((f"kodim{i:02d}", img))
    return out


def metrics(a, b):
    from chansim.metrics import ms_ssim, psnr

    return psnr(a, b), ms_ssim(a, b)


def baselines(images):
    from chansim.evaluation import available_baselines, decode_baseline, encode_baseline

    rows = []
    for fmt in available_baselines():
        for name, img in images:
            for q in BASELINE_QUALITIES.get(fmt, BASELINE_QUALITIES["webp"]):
                data = encode_baseline(img, fmt, q)
                p, m = metrics(img, decode_baseline(data))
                rows.append(dict(format=fmt.upper() if fmt != "webp" else "WebP", image=name, quality=q,
                                 bpp=8 * len(data) / (img.shape[0] * img.shape[1]), psnr=p, ms_ssim=m))
    return rows


def at_rate(base_rows, fmt, image, bpp, key):
    """The format's metric at ``bpp`` on one image (linear in bpp between sweep points; NaN outside)."""
    pts = sorted((r["bpp"], r[key]) for r in base_rows if r["format"] == fmt and r["image"] == image)
    x = np.array([p[0] for p in pts])
    y = np.array([p[1] for p in pts])
    if not len(x) or bpp < x[0] or bpp > x[-1]:
        return float("nan")
    return float(np.interp(bpp, x, y))


def run_rd(args):
    import torch

    from chansim.codecs import DiffC, container

    torch.set_num_threads(args.threads)
    codec = DiffC.pretrained(channel=args.preset, recon_steps=args.recon_steps)
    images = load_kodak(args.images, args.crop, args.first)
    qualities = [q for q in args.qualities if q in codec.qualities]
    top = max(qualities)
    rows, steps_log = [], []
    t_all = time.perf_counter()
    done = []
    for name, img in images:
        if args.budget_s and time.perf_counter() - t_all > args.budget_s:
            print(f"time budget of {args.budget_s} s reached: stopping after {len(done)} images", flush=True)
            break
        done.append((name, img))
        h, w = img.shape[:2]
        t0 = time.perf_counter()
        enc = codec.encode(img, top)
        enc_total = time.perf_counter() - t0
        step_s = [s["seconds"] + s["network_seconds"] for s in enc.steps]
        setup = enc_total - sum(step_s)
        steps_log.append(dict(image=name, encode_s=enc_total, steps=enc.steps))
        t0 = time.perf_counter()
        dec_elapsed = 0.0
        for i, z, g, den in codec.trajectory(enc.data):
            if i not in qualities:
                continue
            traj_s = time.perf_counter() - t0 - dec_elapsed  # trajectory time only (reconstructions excluded)
            data = container.truncate(enc.data, i)
            bpp = 8 * len(data) / (h * w)
            tr = time.perf_counter()
            recs = {}
            for kind in ("mmse", "flow"):
                tk = time.perf_counter()
                recs[kind] = codec.reconstruct(z, g, h, w, container.unpack(data).seed, kind, denoised=den)
                if kind == "flow":
                    flow_s = time.perf_counter() - tk
            recs.update(codec.reconstruct_many(z, g, h, w, container.unpack(data).seed, ("ancestral", "interp"),
                                               lam=args.lam, denoised=den))
            kl = sum(s["kl_bits"] for s in enc.steps[:i])
            row = dict(image=name, quality=i, gamma=g, bpp=bpp, kl_bpp=kl / (h * w),
                       encode_s=setup + sum(step_s[:i]), decode_flow_s=traj_s + flow_s)
            for kind, rec in recs.items():
                row[f"psnr_{kind}"], row[f"msssim_{kind}"] = metrics(img, rec)
            rows.append(row)
            print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}), flush=True)
            dec_elapsed += time.perf_counter() - tr  # reconstructions and metrics are not trajectory time
    diffc_s = time.perf_counter() - t_all
    meta = dict(preset=args.preset, channel=str(codec.channel), crop=args.crop,
                threads=args.threads, recon_steps=args.recon_steps, lam=args.lam, model_id=codec.model_id,
                machine=f"{cpu_name()}, torch threads {args.threads}",
                diffc_seconds=diffc_s)
    finish_rd(rows, done, meta, Path(args.out), steps_log)


def finish_rd(rows, images, meta, out, steps_log=()):
    """Baselines on the same images, then rd.json / rd.md / rd.png."""
    meta = dict(meta, images=[n for n, _ in images])
    base = baselines(images)
    for r in rows:
        for fmt in sorted({b["format"] for b in base}):
            r[f"psnr_{fmt}"] = at_rate(base, fmt, r["image"], r["bpp"], "psnr")
            r[f"msssim_{fmt}"] = at_rate(base, fmt, r["image"], r["bpp"], "ms_ssim")
    out.mkdir(parents=True, exist_ok=True)
    (out / "rd.json").write_text(json.dumps(dict(meta=meta, rows=rows, baselines=base, steps=steps_log),
                                            indent=1, default=float))
    md = rd_table(rows, base, meta)
    (out / "rd.md").write_text(md)
    print(md)
    plot(rows, base, out / "rd.png", meta)


def run_report(args):
    """rd's output files from the JSON rows an interrupted ``rd`` run printed (one per line)."""
    rows = [json.loads(line) for log in args.log for line in Path(log).read_text().splitlines()
            if line.startswith("{")]
    names = sorted({r["image"] for r in rows})
    counts = {n: sum(r["image"] == n for r in rows) for n in names}
    full = max(counts.values())
    names = [n for n in names if counts[n] == full]  # drop an image cut off mid-way
    rows = [r for r in rows if r["image"] in names]
    images = [(n, img) for n, img in load_kodak(24, args.crop) if n in names]
    meta = dict(preset=args.preset, crop=args.crop, threads=args.threads, recon_steps=args.recon_steps, lam=args.lam,
                source=[str(x) for x in args.log])
    finish_rd(rows, images, meta, Path(args.out))


def _mean(rows, key):
    v = np.array([r[key] for r in rows], dtype=np.float64)
    return float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")


def rd_table(rows, base, meta):
    fmts = sorted({b["format"] for b in base})
    qs = sorted({r["quality"] for r in rows})
    head = ("| q | γ | bpp | KL bpp | PSNR flow | PSNR mmse | PSNR ancestral | PSNR interp λ=%g | "
            % meta["lam"] + " | ".join(f"PSNR {f}" for f in fmts)
            + " | MS-SSIM flow | MS-SSIM mmse | MS-SSIM ancestral | " + " | ".join(f"MS-SSIM {f}" for f in fmts)
            + " | encode s | decode s (flow) |")
    lines = [head, "|" + "---:|" * (head.count("|") - 1)]
    for q in qs:
        rr = [r for r in rows if r["quality"] == q]
        cells = [str(q), f"{rr[0]['gamma']:.2f}", f"{_mean(rr, 'bpp'):.3f}", f"{_mean(rr, 'kl_bpp'):.3f}"]
        cells += [f"{_mean(rr, 'psnr_' + k):.2f}" for k in ("flow", "mmse", "ancestral", "interp")]
        cells += [f"{_mean(rr, 'psnr_' + f):.2f}" for f in fmts]
        cells += [f"{_mean(rr, 'msssim_' + k):.4f}" for k in ("flow", "mmse", "ancestral")]
        cells += [f"{_mean(rr, 'msssim_' + f):.4f}" for f in fmts]
        cells += [f"{_mean(rr, 'encode_s'):.1f}", f"{_mean(rr, 'decode_flow_s'):.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(rows, base, path, meta):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot")
        return
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    qs = sorted({r["quality"] for r in rows})
    for ax, metric, label in ((axes[0], "psnr", "PSNR (dB)"), (axes[1], "msssim", "MS-SSIM")):
        for kind, style in (("flow", "o-"), ("mmse", "s-"), ("ancestral", "^-"), ("interp", "v--")):
            xs = [_mean([r for r in rows if r["quality"] == q], "bpp") for q in qs]
            ys = [_mean([r for r in rows if r["quality"] == q], f"{metric}_{kind}") for q in qs]
            ax.plot(xs, ys, style, label=f"DiffC {kind}")
        for fmt in sorted({b["format"] for b in base}):
            bq = sorted({b["quality"] for b in base if b["format"] == fmt})
            xs = [_mean([b for b in base if b["format"] == fmt and b["quality"] == q], "bpp") for q in bq]
            ys = [_mean([b for b in base if b["format"] == fmt and b["quality"] == q],
                        "ms_ssim" if metric == "msssim" else "psnr") for q in bq]
            ax.plot(xs, ys, "x:", label=fmt)
        ax.set_xlim(0, max(_mean([r for r in rows if r["quality"] == qs[-1]], "bpp") * 1.05, 0.5))
        ax.set_xlabel("bits per pixel (whole file)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"DiffC ({meta['preset']}) on Kodak {meta['images'][0]}–{meta['images'][-1]}"
                 + (f", centre {meta['crop']}² crops" if meta["crop"] else ""))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


FRONTIER = [
    ("unbiased", None),
    ("balanced", None),
    ("compact", None),
    ("budgeted D=2 pad 4", ("budgeted", 2, 4, 4)),
    ("budgeted D=3 pad 6", ("budgeted", 3, 6, 4)),
    ("budgeted D=4 pad 8", ("budgeted", 4, 8, 4)),
    ("orc D=6 pad 2", ("orc", 6, 2, 4)),
    ("budgeted D=8 pad 4", ("budgeted", 8, 4, 4)),
]


def run_frontier(args):
    import torch

    from chansim.codecs import DiffC
    from chansim.codecs.diffc_channel import PRESETS, ChannelSettings

    torch.set_num_threads(args.threads)
    base = DiffC.pretrained()
    images = load_kodak(args.images, args.crop)
    out_rows = []
    for label, spec in FRONTIER:
        cs = PRESETS[label] if spec is None else ChannelSettings(*spec)
        codec = DiffC(base.model, base.model_id, base.card, channel=cs, recon_steps=args.recon_steps)
        acc = dict(bits=0.0, kl=0.0, shift_w=0.0, pfr_s=0.0, net_s=0.0, work=0.0, pixels=0, capped=0, psnr=[])
        for name, img in images:
            enc = codec.encode(img, args.quality)
            for s in enc.steps:
                acc["bits"] += s["bits"]
                acc["kl"] += s["kl_bits"]
                acc["shift_w"] += s["shift_fraction"] * s["kl_bits"]
                acc["pfr_s"] += s["seconds"]
                acc["net_s"] += s["network_seconds"]
                acc["work"] += s["work"]
                acc["capped"] += s["capped"]
            acc["pixels"] += img.shape[0] * img.shape[1]
            acc["file_bits"] = acc.get("file_bits", 0) + 8 * len(enc.data)
            rec = codec.reconstruct(enc.z, enc.gamma, img.shape[0], img.shape[1], 0, "flow")
            acc["psnr"].append(metrics(img, rec)[0] if min(img.shape[:2]) >= 176 else float("nan"))
        n = len(images)
        # SE of the pooled fraction under an exact channel: 1/√Σm², Σm² = 2 ln2 · KL in bits
        row = dict(setting=label, channel=str(cs), shift_fraction=acc["shift_w"] / acc["kl"],
                   shift_se=1.0 / float(np.sqrt(2 * np.log(2) * acc["kl"])),
                   section_bits_over_kl=acc["bits"] / acc["kl"], file_bpp=acc["file_bits"] / acc["pixels"],
                   kl_bpp=acc["kl"] / acc["pixels"], pfr_s_per_image=acc["pfr_s"] / n,
                   network_s_per_image=acc["net_s"] / n, candidate_coords_per_image=acc["work"] / n,
                   capped_chunks=acc["capped"], psnr_flow=float(np.nanmean(acc["psnr"])))
        out_rows.append(row)
        print(json.dumps(row), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = dict(images=[n for n, _ in images], crop=args.crop, quality=args.quality, threads=args.threads)
    (out / "frontier.json").write_text(json.dumps(dict(meta=meta, rows=out_rows), indent=1))
    lines = ["| setting | mode, D, pad, cap | shift fraction (KL-weighted, ±SE) | bits / KL | file bpp | KL bpp | "
             "PSNR flow | PFR s / image | network s / image | candidate·coords / image | capped chunks |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in out_rows:
        c = PRESETS.get(r["setting"]) or ChannelSettings(*dict(FRONTIER)[r["setting"]])
        lines.append(f"| {r['setting']} | {c.mode}, {c.chunk_bits}, {c.pad_bits}, {c.cap_bits} | "
                     f"{r['shift_fraction']:.3f} ± {r['shift_se']:.3f} | {r['section_bits_over_kl']:.2f} | {r['file_bpp']:.3f} | "
                     f"{r['kl_bpp']:.3f} | {r['psnr_flow']:.2f} | {r['pfr_s_per_image']:.1f} | "
                     f"{r['network_s_per_image']:.1f} | {r['candidate_coords_per_image']:.2e} | {r['capped_chunks']} |")
    md = "\n".join(lines) + "\n"
    (out / "frontier.md").write_text(md)
    print(md)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("rd", "frontier", "report"):
        p = sub.add_parser(name)
        p.add_argument("--images", type=int, default=24 if name == "rd" else 2)
        p.add_argument("--crop", type=int, default=0 if name in ("rd", "report") else 256)
        p.add_argument("--threads", type=int, default=2)
        p.add_argument("--recon-steps", type=int, default=8)
        p.add_argument("--out", default="benchmarks/results/diffc")
    rd = sub.choices["rd"]
    rd.add_argument("--preset", default="unbiased")
    rd.add_argument("--first", type=int, default=1, help="first Kodak image (shards: --first 13 --images 12)")
    rd.add_argument("--qualities", type=int, nargs="+", default=[4, 6, 8, 10, 12, 14, 16, 18, 20])
    rd.add_argument("--lam", type=float, default=0.5)
    rd.add_argument("--budget-s", type=float, default=0.0, help="start no new image after this many seconds")
    sub.choices["frontier"].add_argument("--quality", type=int, default=12)
    rep = sub.choices["report"]
    rep.add_argument("log", nargs="+", help="stdout of rd runs (shards are merged)")
    rep.add_argument("--preset", default="unbiased")
    rep.add_argument("--lam", type=float, default=0.5)
    args = ap.parse_args()
    {"rd": run_rd, "frontier": run_frontier, "report": run_report}[args.cmd](args)


if __name__ == "__main__":
    main()
