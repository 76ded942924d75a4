"""``chansim eval``: rate–distortion evaluation of the codecs on a directory of images.

Every (image, codec, quality) pair and every (image, classical format) pair is one task
on a Dask cluster — a local one with process workers by default, or any running
scheduler (``--scheduler tcp://host:8786``). Images travel to the workers as arrays, so
remote workers need no shared file system. Results: per-image and mean bpp / PSNR /
MS-SSIM / timings as CSV and JSON, R-D plots against JPEG / WebP / AVIF, and
side-by-side crops at the lowest rate.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import platform
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from .cli import IMAGE_SUFFIXES, UsageError, decode_kwargs, load_codec, parse_quality, read_image

#: Classical formats measured beside the codecs (Pillow), each over this quality sweep.
BASELINE_QUALITIES = (2, 5, 10, 15, 20, 30, 40, 50, 60, 70, 80, 90, 95)
BASELINE_FORMATS = {"jpeg": "JPEG", "webp": "WEBP", "avif": "AVIF"}
CROP = 192
FIELDS = ["image", "method", "codec", "quality", "reconstruction", "width", "height", "bytes", "bpp", "psnr",
          "ms_ssim", "encode_s", "decode_s"]


def available_baselines() -> List[str]:
    from PIL import features

    return [name for name, fmt in BASELINE_FORMATS.items() if features.check(name if name != "jpeg" else "jpg")]


def crop_box(h: int, w: int, size: int = CROP):
    s = min(size, h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return top, left, s


def _metrics(original: np.ndarray, decoded: np.ndarray) -> Dict[str, float]:
    from .metrics import MS_SSIM_MIN_SIDE, ms_ssim, psnr

    decoded = np.asarray(decoded)
    if decoded.shape != original.shape:
        raise RuntimeError(f"decoded shape {decoded.shape} differs from the original {original.shape}")
    small = min(original.shape[:2]) < MS_SSIM_MIN_SIDE
    # MS-SSIM is undefined below 176 pixels a side: NaN, not a different metric under the same name.
    return {"psnr": psnr(original, decoded), "ms_ssim": float("nan") if small else ms_ssim(original, decoded)}


def _worker_threads(threads: Optional[int]) -> None:
    """Pin the per-worker thread counts so workers do not oversubscribe the machine
    (None: thread workers sharing the caller's process, whose settings stay as they are)."""
    import chansim

    if threads is None:
        return

    chansim.set_num_threads(threads)
    torch = sys.modules.get("torch")  # imported by the codecs, never by the classical formats
    if torch is not None and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def codec_task(name: str, image_name: str, image: np.ndarray, codec_spec: str, quality_text: Optional[str],
               reconstructions: Sequence[Optional[str]], keep_crop: bool, threads: int) -> List[dict]:
    """Compress one image at one quality, decode it with each reconstruction; rows (+ crops)."""
    codec = load_codec(codec_spec)
    _worker_threads(threads)
    quality = parse_quality(codec, quality_text)
    h, w = image.shape[:2]
    t0 = time.perf_counter()
    data = codec.compress(image, quality=quality)
    enc = time.perf_counter() - t0
    rows = []
    top, left, s = crop_box(h, w)
    for rec in reconstructions:
        t0 = time.perf_counter()
        decoded = np.asarray(codec.decompress(data, **decode_kwargs(codec, rec)))
        dec = time.perf_counter() - t0
        label = name if rec is None else f"{name} ({rec})"
        row = dict(image=image_name, method=label, codec=name, quality=str(quality), reconstruction=rec or "",
                   width=w, height=h, bytes=len(data), bpp=8.0 * len(data) / (h * w), encode_s=enc, decode_s=dec,
                   **_metrics(image, decoded))
        if keep_crop:
            row["_crop"] = decoded[top:top + s, left:left + s].copy()
        rows.append(row)
    return rows


def encode_baseline(image: np.ndarray, fmt: str, quality: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    opts = {"quality": quality}
    if fmt == "jpeg":
        opts["optimize"] = True
    Image.fromarray(image).save(buf, format=BASELINE_FORMATS[fmt], **opts)
    return buf.getvalue()


def decode_baseline(data: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB"))


def baseline_task(image_name: str, image: np.ndarray, fmt: str, qualities: Sequence[int], keep_crop: bool,
                  threads: int) -> List[dict]:
    """One classical format over its quality sweep on one image."""
    _worker_threads(threads)
    h, w = image.shape[:2]
    top, left, s = crop_box(h, w)
    rows = []
    for q in qualities:
        t0 = time.perf_counter()
        data = encode_baseline(image, fmt, q)
        enc = time.perf_counter() - t0
        t0 = time.perf_counter()
        decoded = decode_baseline(data)
        dec = time.perf_counter() - t0
        row = dict(image=image_name, method=fmt.upper() if fmt != "webp" else "WebP", codec=fmt, quality=str(q),
                   reconstruction="", width=w, height=h, bytes=len(data), bpp=8.0 * len(data) / (h * w),
                   encode_s=enc, decode_s=dec, **_metrics(image, decoded))
        if keep_crop:
            row["_crop"] = decoded[top:top + s, left:left + s].copy()
        rows.append(row)
    return rows


# ---- aggregation, plots, crops ------------------------------------------------------------


def summarize(rows: List[dict]) -> List[dict]:
    """Means over images per (method, quality), in the order the methods first appear."""
    groups: Dict[tuple, List[dict]] = defaultdict(list)
    for r in rows:
        groups[(r["method"], r["codec"], r["quality"], r["reconstruction"])].append(r)
    out = []
    for (method, codec, quality, rec), rs in groups.items():
        entry = dict(method=method, codec=codec, quality=quality, reconstruction=rec, images=len(rs))
        for key in ("bytes", "bpp", "psnr", "ms_ssim", "encode_s", "decode_s"):
            vals = np.array([r[key] for r in rs], dtype=np.float64)
            entry[key] = float(np.nan) if np.isnan(vals).all() else float(np.nanmean(vals))
        out.append(entry)
    out.sort(key=lambda e: (e["method"], e["bpp"]))
    return out


def bd_psnr(rate_a, psnr_a, rate_b, psnr_b) -> Optional[float]:
    """Bjøntegaard delta PSNR (dB) of curve b over curve a: cubic fits of PSNR against
    log rate, integrated over the overlapping rate range. None when they do not overlap
    or a curve has fewer than four points."""
    ra, pa = np.log(np.asarray(rate_a, float)), np.asarray(psnr_a, float)
    rb, pb = np.log(np.asarray(rate_b, float)), np.asarray(psnr_b, float)
    ok_a, ok_b = np.isfinite(ra) & np.isfinite(pa), np.isfinite(rb) & np.isfinite(pb)
    ra, pa, rb, pb = ra[ok_a], pa[ok_a], rb[ok_b], pb[ok_b]
    if len(ra) < 4 or len(rb) < 4:
        return None
    lo, hi = max(ra.min(), rb.min()), min(ra.max(), rb.max())
    if hi <= lo:
        return None
    fa, fb = np.polyint(np.polyfit(ra, pa, 3)), np.polyint(np.polyfit(rb, pb, 3))
    return float(((np.polyval(fb, hi) - np.polyval(fb, lo)) - (np.polyval(fa, hi) - np.polyval(fa, lo))) / (hi - lo))


def bd_table(summary: List[dict], reference: str = "JPEG") -> Dict[str, Optional[float]]:
    curves: Dict[str, List[dict]] = defaultdict(list)
    for e in summary:
        curves[e["method"]].append(e)
    if reference not in curves:
        return {}
    ref = curves[reference]
    return {m: bd_psnr([e["bpp"] for e in ref], [e["psnr"] for e in ref], [e["bpp"] for e in c], [e["psnr"] for e in c])
            for m, c in curves.items() if m != reference}


def plot_rd(summary: List[dict], path: Path, metric: str, title: str, max_bpp: Optional[float] = None) -> bool:
    """Mean rate against mean ``metric`` per method; False (no file) when no point has the metric."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves: Dict[str, List[dict]] = defaultdict(list)
    for e in summary:
        if not math.isnan(e[metric]) and not math.isinf(e[metric]):
            curves[e["method"]].append(e)
    if not curves:
        return False
    fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=120)
    for method, pts in curves.items():
        pts.sort(key=lambda e: e["bpp"])
        classical = method in ("JPEG", "WebP", "AVIF")
        ax.plot([e["bpp"] for e in pts], [e[metric] for e in pts], "--" if classical else "-",
                marker="." if classical else "o", label=method, alpha=0.8 if classical else 1.0)
    ax.set_xlabel("bits per pixel (whole file)")
    ax.set_ylabel({"psnr": "PSNR (dB)", "ms_ssim": "MS-SSIM"}[metric])
    if max_bpp is not None:
        ax.set_xlim(0, max_bpp)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def side_by_side(panels: List[tuple], path: Path) -> None:
    """Crops in a row with a caption under each: panels = [(caption, uint8[s, s, 3]), …]."""
    from PIL import Image, ImageDraw

    s = max(p[1].shape[0] for p in panels)
    cap = 18
    sheet = Image.new("RGB", (len(panels) * (s + 4), s + cap), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (caption, crop) in enumerate(panels):
        sheet.paste(Image.fromarray(crop), (i * (s + 4), 0))
        draw.text((i * (s + 4) + 3, s + 3), caption, fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)


def write_crops(images: Dict[str, np.ndarray], rows: List[dict], out: Path) -> List[str]:
    """For each image: the original, each codec at its lowest rate, and each classical
    format at the smallest rate not below that codec's (so the classical file is never smaller)."""
    written = []
    by_image: Dict[str, List[dict]] = defaultdict(list)
    for r in rows:
        if "_crop" in r:
            by_image[r["image"]].append(r)
    for name, rs in by_image.items():
        img = images[name]
        top, left, s = crop_box(*img.shape[:2])
        panels = [("original", img[top:top + s, left:left + s])]
        codec_rows = [r for r in rs if r["codec"] not in BASELINE_FORMATS]
        if not codec_rows:
            continue
        target = min(r["bpp"] for r in codec_rows)
        for r in sorted(codec_rows, key=lambda r: r["method"]):
            panels.append((f"{r['method']} {r['bpp']:.3f} bpp", r["_crop"]))
        for fmt in BASELINE_FORMATS:
            cand = sorted((r for r in rs if r["codec"] == fmt), key=lambda r: r["bpp"])
            above = [r for r in cand if r["bpp"] >= target]
            if cand:
                r = above[0] if above else cand[-1]
                panels.append((f"{r['method']} {r['bpp']:.3f} bpp", r["_crop"]))
        path = out / "crops" / f"{Path(name).stem}.png"
        side_by_side(panels, path)
        written.append(str(path))
    return written


def write_results(rows: List[dict], summary: List[dict], meta: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    clean = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
    clean.sort(key=lambda r: (r["image"], r["method"], r["bpp"]))
    with open(out / "results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(clean)
    sfields = ["method", "codec", "quality", "reconstruction", "images", "bytes", "bpp", "psnr", "ms_ssim",
               "encode_s", "decode_s"]
    with open(out / "summary.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=sfields)
        w.writeheader()
        w.writerows(summary)

    def finite(x):
        return None if isinstance(x, float) and not math.isfinite(x) else x

    doc = {"meta": meta, "summary": [{k: finite(v) for k, v in e.items()} for e in summary],
           "images": [{k: finite(v) for k, v in r.items()} for r in clean]}
    (out / "results.json").write_text(json.dumps(doc, indent=1))


def print_summary(summary: List[dict], bd: Dict[str, Optional[float]]) -> None:
    print(f"{'method':<22} {'quality':>8} {'bpp':>8} {'PSNR':>7} {'MS-SSIM':>8} {'enc s':>7} {'dec s':>7}")
    for e in summary:
        ms = "   n/a" if math.isnan(e["ms_ssim"]) else f"{e['ms_ssim']:.4f}"
        print(f"{e['method']:<22} {e['quality']:>8} {e['bpp']:8.4f} {e['psnr']:7.2f} {ms:>8} "
              f"{e['encode_s']:7.2f} {e['decode_s']:7.3f}")
    for method, v in bd.items():
        if v is not None and method not in ("WebP", "AVIF"):
            print(f"BD-PSNR of {method} over JPEG: {v:+.2f} dB")


# ---- the command --------------------------------------------------------------------------


def list_images(directory: Path, limit: Optional[int]) -> List[Path]:
    if not directory.exists():
        raise FileNotFoundError(f"{directory}: no such directory")
    if directory.is_file():
        files = [directory]
    else:
        files = sorted(p for p in directory.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if limit is not None:
        files = files[:limit]
    if not files:
        raise UsageError(f"{directory}: no images ({', '.join(IMAGE_SUFFIXES)})")
    return files


def center_crop(image: np.ndarray, size: Optional[int]) -> np.ndarray:
    if size is None:
        return image
    h, w = image.shape[:2]
    sh, sw = min(size, h), min(size, w)
    top, left = (h - sh) // 2, (w - sw) // 2
    return np.ascontiguousarray(image[top:top + sh, left:left + sw])


def make_client(scheduler: str, workers: int, threads: int):
    """A Dask client: a local cluster of process workers ('processes', the default) or of
    threads in this process ('threads'), or a connection to a running scheduler address."""
    from distributed import Client, LocalCluster

    if scheduler in ("processes", "local", "threads"):
        cluster = LocalCluster(n_workers=workers, threads_per_worker=threads, processes=scheduler != "threads",
                               dashboard_address=None, silence_logs=40)
        return Client(cluster), cluster
    return Client(scheduler, timeout="30s"), None


def _eval(args) -> int:
    from tqdm.auto import tqdm

    out = Path(args.out)
    files = list_images(Path(args.dir), args.limit)
    images = {p.name: center_crop(read_image(p), args.crop) for p in files}
    codecs = [c.strip() for c in args.codec.split(",") if c.strip()]
    recs = [r.strip() or None for r in args.reconstruction.split(",")] if args.reconstruction else [None]
    baselines = [b.strip().lower() for b in args.baselines.split(",") if b.strip()] if args.baselines else []
    have = available_baselines()
    for b in baselines:
        if b not in BASELINE_FORMATS:
            raise UsageError(f"unknown baseline {b!r}; choose from {', '.join(BASELINE_FORMATS)}")
    skipped = [b for b in baselines if b not in have]
    baselines = [b for b in baselines if b in have]
    # Validate codecs and qualities here, before any worker starts, so a typo fails in one line.
    plan = []
    for spec in codecs:
        codec = load_codec(spec)
        for r in recs:
            decode_kwargs(codec, r)
        qs = [q.strip() for q in args.qualities.split(",")] if args.qualities else [str(q) for q in codec.qualities]
        qs = [str(parse_quality(codec, q)) for q in qs]
        plan.append((spec, codec, qs))
    n_images = len(images)
    client, cluster = make_client(args.scheduler, args.workers, args.threads)
    t_start = time.perf_counter()
    pin = None if args.scheduler == "threads" else args.threads
    try:
        futures = []
        for k, (name, img) in enumerate(images.items()):
            remote = client.scatter(img)
            keep = k < args.crops
            for spec, codec, qs in plan:
                label = spec if ":" not in spec else spec.split(":")[-1]
                for i, q in enumerate(qs):
                    futures.append(client.submit(codec_task, label, name, remote, spec, q, recs, keep and i == 0,
                                                 pin, pure=False))
            for fmt in baselines:
                futures.append(client.submit(baseline_task, name, remote, fmt, BASELINE_QUALITIES, keep, pin,
                                             pure=False))
        from distributed import as_completed

        rows: List[dict] = []
        with tqdm(total=len(futures), desc=f"eval on {n_images} images", unit="task", disable=args.quiet,
                  file=sys.stderr) as bar:
            for fut in as_completed(futures):
                rows.extend(fut.result())
                bar.update(1)
        workers = len(client.scheduler_info().get("workers", {}))
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    wall = time.perf_counter() - t_start
    summary = summarize(rows)
    bd = bd_table(summary)
    meta = dict(chansim=_version(), python=platform.python_version(), machine=platform.machine(),
                processor=_cpu_name(), cpus=os.cpu_count(), scheduler=args.scheduler, workers=workers,
                threads_per_worker=args.threads, images=sorted(images), crop=args.crop, wall_s=wall,
                codecs=[dict(spec=spec, model_id=getattr(c, "model_id", None), qualities=qs) for spec, c, qs in plan],
                baselines=baselines, baselines_unavailable=skipped, bd_psnr_over_jpeg=bd)
    write_results(rows, summary, meta, out)
    max_bpp = max([e["bpp"] for e in summary if e["codec"] not in BASELINE_FORMATS] or [2.0]) * 1.15
    plots = [p for p, m, t in ((out / "rd_psnr.png", "psnr", "PSNR"), (out / "rd_ms_ssim.png", "ms_ssim", "MS-SSIM"))
             if plot_rd(summary, p, m, f"{t} on {n_images} images ({Path(args.dir).name})", max_bpp)]
    crops = write_crops(images, rows, out)
    if not args.quiet:
        print_summary(summary, bd)
        if skipped:
            print(f"skipped (not supported by this Pillow): {', '.join(skipped)}")
        print(f"{len(rows)} rows in {wall:.1f} s on {workers} workers -> {out / 'results.csv'}, "
              f"{out / 'summary.csv'}, {out / 'results.json'}, {len(plots)} plots, {len(crops)} crops")
    return 0


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _version() -> str:
    from . import __version__

    return __version__


def add_parser(sub, common) -> None:
    p = sub.add_parser("eval", parents=[common], help="rate-distortion evaluation on a directory of images",
                       description=__doc__.split("\n\n")[0] + " " + __doc__.split("\n\n")[1].replace("\n", " "))
    p.add_argument("dir", metavar="DIR", help="directory of images (PNG, JPEG, TIFF, PPM, …) or one image")
    p.add_argument("--codec", default="uqdm", help="comma-separated codecs: uqdm, diffc or package.module:Class "
                                                  "(default uqdm)")
    p.add_argument("--out", required=True, help="output directory for CSV, JSON, plots and crops")
    p.add_argument("--qualities", default=None, help="comma-separated qualities (default: all of each codec's)")
    p.add_argument("--reconstruction", default=None,
                   help="comma-separated reconstructions to decode each file with (codec-specific)")
    p.add_argument("--baselines", default="jpeg,webp,avif",
                   help="classical formats measured in the same run (default jpeg,webp,avif; '' for none)")
    p.add_argument("--scheduler", default="processes",
                   help="'processes' (default: a local Dask cluster of process workers), 'threads', or the "
                        "address of a running Dask scheduler (tcp://host:8786)")
    p.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2)), help="local workers (default: CPUs)")
    p.add_argument("--threads", type=int, default=1, help="threads per worker (default 1)")
    p.add_argument("--limit", type=int, default=None, help="use only the first N images (sorted by name)")
    p.add_argument("--crop", type=int, default=None, metavar="S",
                   help="evaluate the central S×S crop of each image (faster)")
    p.add_argument("--crops", type=int, default=4, metavar="N",
                   help="write side-by-side crops at the lowest rate for the first N images (default 4)")
    p.set_defaults(func=_eval)
