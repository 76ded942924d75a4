"""Rate–distortion evaluation helpers shared by ``chansim eval``/``demo``, the trainers and ``benchmarks/``.

One of each: the Bjøntegaard delta (:func:`bd_psnr`, PCHIP — see its docstring for why),
the metrics (:func:`image_metrics`: :func:`chansim.metrics.psnr`, the NumPy
:func:`chansim.metrics.ms_ssim` and :func:`chansim.metrics.hf_energy_ratio`), the classical baselines measured beside the codecs
(:func:`encode_baseline` / :func:`decode_baseline` / :func:`baseline_rows`: JPEG, WebP,
AVIF through Pillow), per-setting means (:func:`summarize`), BD tables (:func:`bd_table`),
R-D plots (:func:`plot_rd`, matplotlib) and side-by-side crops (:func:`side_by_side`).

Imports NumPy and Pillow only (matplotlib when a plot is drawn); never PyTorch or the CLI.
"""

from __future__ import annotations

import io
import math
import time
from collections import defaultdict
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .metrics import HF_MIN_SIDE, MS_SSIM_MIN_SIDE, hf_energy_ratio, ms_ssim, psnr

__all__ = ["BASELINE_FORMATS", "BASELINE_LABELS", "BASELINE_QUALITIES", "available_baselines", "baseline_rows",
           "bd_psnr", "bd_table", "crop_box", "decode_baseline", "encode_baseline", "image_metrics", "MEAN_FIELDS",
           "msssim_db",
           "pchip_integral", "plot_rd", "side_by_side", "summarize"]

#: Classical formats measured beside the codecs (Pillow), each over this quality sweep.
BASELINE_QUALITIES = (2, 5, 10, 15, 20, 30, 40, 50, 60, 70, 80, 90, 95)
BASELINE_FORMATS = {"jpeg": "JPEG", "webp": "WEBP", "avif": "AVIF"}
#: Names of the baselines in tables and plots.
BASELINE_LABELS = {"jpeg": "JPEG", "webp": "WebP", "avif": "AVIF"}
CROP = 192
#: Per-image quantities :func:`summarize` averages (those a row lacks count as missing).
MEAN_FIELDS = ("bytes", "bpp", "psnr", "ms_ssim", "hf_ratio", "lpips", "dists", "encode_s", "decode_s")


# ---- metrics ----------------------------------------------------------------------------


def image_metrics(original: np.ndarray, decoded: np.ndarray) -> Dict[str, float]:
    """{"psnr", "ms_ssim", "hf_ratio"} of a decoded image. Where a metric is undefined it is NaN,
    never a different metric under the same name: MS-SSIM below 176 pixels a side, the
    high-frequency energy ratio below 16 or for an original with no energy above a quarter of
    the sampling rate (a flat image)."""
    decoded = np.asarray(decoded)
    if decoded.shape != original.shape:
        raise RuntimeError(f"decoded shape {decoded.shape} differs from the original {original.shape}")
    small = min(original.shape[:2]) < MS_SSIM_MIN_SIDE
    try:
        hf = hf_energy_ratio(decoded, original) if min(original.shape[:2]) >= HF_MIN_SIDE else float("nan")
    except ValueError:  # the original's band is empty: the ratio is undefined
        hf = float("nan")
    return {"psnr": psnr(original, decoded), "ms_ssim": float("nan") if small else ms_ssim(original, decoded),
            "hf_ratio": hf}


def msssim_db(v: float) -> float:
    """MS-SSIM on a dB scale, −10·log10(1 − v), as the learned-compression literature plots it."""
    return float(-10.0 * np.log10(max(1e-12, 1.0 - v)))


# ---- Bjøntegaard delta -------------------------------------------------------------------


def _pchip_slopes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Fritsch–Carlson derivatives of the monotone piecewise-cubic Hermite interpolant
    (the rule of SciPy's ``PchipInterpolator``: weighted harmonic means inside, the
    shape-preserving three-point formula at the ends)."""
    h = np.diff(x)
    delta = np.diff(y) / h
    n = len(x)
    if n == 2:
        return np.array([delta[0], delta[0]])
    d = np.zeros(n)
    w1, w2 = 2 * h[1:] + h[:-1], h[1:] + 2 * h[:-1]
    same = delta[:-1] * delta[1:] > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        hm = (w1 + w2) / (w1 / delta[:-1] + w2 / delta[1:])
    d[1:-1] = np.where(same, hm, 0.0)

    def edge(h0, h1, m0, m1):
        e = ((2 * h0 + h1) * m0 - h0 * m1) / (h0 + h1)
        if np.sign(e) != np.sign(m0):
            return 0.0
        if np.sign(m0) != np.sign(m1) and abs(e) > abs(3 * m0):
            return 3 * m0
        return e

    d[0] = edge(h[0], h[1], delta[0], delta[1])
    d[-1] = edge(h[-1], h[-2], delta[-1], delta[-2])
    return d


def pchip_integral(x, y, lo: float, hi: float) -> float:
    """∫ from lo to hi of the PCHIP interpolant through (x, y) (x strictly increasing,
    x[0] ≤ lo < hi ≤ x[-1]); exact: two-point Gauss–Legendre per piece, exact for cubics."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    d = _pchip_slopes(x, y)
    total = 0.0
    g = 0.5 / math.sqrt(3.0)
    for i in range(len(x) - 1):
        a, b = max(lo, x[i]), min(hi, x[i + 1])
        if b <= a:
            continue
        h = x[i + 1] - x[i]
        for u in ((a + b) / 2 - g * (b - a), (a + b) / 2 + g * (b - a)):
            t = (u - x[i]) / h
            t2, t3 = t * t, t * t * t
            total += (b - a) / 2 * ((2 * t3 - 3 * t2 + 1) * y[i] + (t3 - 2 * t2 + t) * h * d[i]
                                    + (-2 * t3 + 3 * t2) * y[i + 1] + (t3 - t2) * h * d[i + 1])
    return float(total)


def _curve(rate, quality) -> Tuple[np.ndarray, np.ndarray]:
    r, q = np.asarray(rate, np.float64).ravel(), np.asarray(quality, np.float64).ravel()
    if r.shape != q.shape:
        raise ValueError(f"rates and qualities differ in length: {r.size} vs {q.size}")
    ok = np.isfinite(r) & np.isfinite(q) & (r > 0)
    x, y = np.log10(r[ok]), q[ok]
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    keep = np.concatenate([[True], np.diff(x) > 0]) if x.size else np.zeros(0, bool)
    return x[keep], y[keep]


def bd_psnr(rate_ref, psnr_ref, rate_test, psnr_test, *, rate_range: Optional[Tuple[float, float]] = None,
            return_range: bool = False):
    """Bjøntegaard delta PSNR (dB) of the test curve over the reference curve.

    The mean vertical distance between the two curves of quality (PSNR, or any metric in
    dB) against log rate, over the rate range both cover (optionally narrowed by
    ``rate_range`` = (lo, hi) in the rates' unit). Positive: the test curve is better.

    Interpolation: piecewise cubic Hermite (PCHIP) through the measured points, the
    method of Bjøntegaard's own revision (VCEG-AL22, 2008) that the JVET/VCEG common test
    conditions use, rather than VCEG-M33's single cubic polynomial fit (2001). A quality
    sweep gives 10–20 points per curve (JPEG's 13, UQDM's steps), over which one cubic
    fit does not pass through the points and can oscillate, so the delta would depend on
    how many points were measured; PCHIP passes through every point, keeps a monotone
    curve monotone and, with four points on a smooth curve, agrees with the cubic fit.
    Points with a non-finite or non-positive value are dropped; repeated rates keep the
    first point. Returns None when a curve has fewer than two points or the rate ranges
    do not overlap; with ``return_range`` a pair (delta or None, (lo, hi) rates or None).
    """
    xa, ya = _curve(rate_ref, psnr_ref)
    xb, yb = _curve(rate_test, psnr_test)
    none = (None, None) if return_range else None
    if len(xa) < 2 or len(xb) < 2:
        return none
    lo, hi = max(xa[0], xb[0]), min(xa[-1], xb[-1])
    if rate_range is not None:
        lo, hi = max(lo, math.log10(rate_range[0])), min(hi, math.log10(rate_range[1]))
    if hi <= lo:
        return none
    v = float((pchip_integral(xb, yb, lo, hi) - pchip_integral(xa, ya, lo, hi)) / (hi - lo))
    return (v, (float(10.0 ** lo), float(10.0 ** hi))) if return_range else v


def bd_rate(rate_ref, psnr_ref, rate_test, psnr_test) -> Optional[float]:
    """Bjøntegaard delta rate of the test curve over the reference curve, as a fraction
    (−0.1: the test needs 10 % fewer bits for the same quality).

    The mean horizontal distance in log rate between the curves over the quality range
    both reach, interpolated by PCHIP in quality (the same interpolant as :func:`bd_psnr`,
    axes swapped), returned as ``10^mean − 1``. None when a curve has fewer than two
    points or the quality ranges do not overlap.
    """
    xa, ya = _curve(rate_ref, psnr_ref)
    xb, yb = _curve(rate_test, psnr_test)
    if len(xa) < 2 or len(xb) < 2:
        return None
    (qa, la), (qb, lb) = (_by_quality(x, y) for x, y in ((xa, ya), (xb, yb)))
    if len(qa) < 2 or len(qb) < 2:
        return None
    lo, hi = max(qa[0], qb[0]), min(qa[-1], qb[-1])
    if hi <= lo:
        return None
    return float(10.0 ** ((pchip_integral(qb, lb, lo, hi) - pchip_integral(qa, la, lo, hi)) / (hi - lo)) - 1.0)


def _by_quality(log_rate: np.ndarray, quality: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(quality, log rate) sorted by quality, keeping the first of repeated qualities."""
    order = np.argsort(quality, kind="stable")
    q, r = quality[order], log_rate[order]
    keep = np.concatenate([[True], np.diff(q) > 0])
    return q[keep], r[keep]


# ---- classical baselines ------------------------------------------------------------------


def available_baselines() -> List[str]:
    """The baseline formats this Pillow can write (AVIF needs a Pillow built with it)."""
    from PIL import features

    return [name for name in BASELINE_FORMATS if features.check(name if name != "jpeg" else "jpg")]


def encode_baseline(image: np.ndarray, fmt: str, quality: int) -> bytes:
    """``image`` as a JPEG (optimized Huffman tables), WebP or AVIF file at Pillow ``quality``."""
    from PIL import Image

    if fmt not in BASELINE_FORMATS:
        raise ValueError(f"unknown baseline {fmt!r}; choose from {', '.join(BASELINE_FORMATS)}")
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


def crop_box(h: int, w: int, size: int = CROP) -> Tuple[int, int, int]:
    """(top, left, side) of the central square crop of at most ``size`` pixels."""
    s = min(size, h, w)
    return (h - s) // 2, (w - s) // 2, s


def baseline_rows(image_name: str, image: np.ndarray, fmt: str, qualities: Sequence[int] = BASELINE_QUALITIES,
                  keep_crop: bool = False, extra: Optional[Callable[[np.ndarray], dict]] = None) -> List[dict]:
    """One classical format over its quality sweep on one image: a row per quality
    (bytes, bpp, :func:`image_metrics`, timings; the central crop under ``_crop`` if asked).
    ``extra(decoded)``, if given, adds its items to each row (``chansim eval`` measures the
    perceptual metrics through it, so this module needs no PyTorch)."""
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
        row = dict(image=image_name, method=BASELINE_LABELS[fmt], codec=fmt, quality=str(q), reconstruction="",
                   width=w, height=h, bytes=len(data), bpp=8.0 * len(data) / (h * w), encode_s=enc, decode_s=dec,
                   **image_metrics(image, decoded))
        if extra is not None:
            row.update(extra(decoded))
        if keep_crop:
            row["_crop"] = decoded[top:top + s, left:left + s].copy()
        rows.append(row)
    return rows


# ---- aggregation and plots ----------------------------------------------------------------


def summarize(rows: List[dict]) -> List[dict]:
    """Means over images per (method, codec, quality, reconstruction), sorted by method then rate:
    each of :data:`MEAN_FIELDS` that some row has (NaN where no row of the group has a value)."""
    groups: Dict[tuple, List[dict]] = defaultdict(list)
    present = set()
    for r in rows:
        groups[(r["method"], r["codec"], r["quality"], r["reconstruction"])].append(r)
        present.update(r)
    out = []
    for (method, codec, quality, rec), rs in groups.items():
        entry = dict(method=method, codec=codec, quality=quality, reconstruction=rec, images=len(rs))
        for key in MEAN_FIELDS:
            if key not in present:
                continue
            vals = np.array([r.get(key, np.nan) for r in rs], dtype=np.float64)
            entry[key] = float(np.nan) if np.isnan(vals).all() else float(np.nanmean(vals))
        out.append(entry)
    out.sort(key=lambda e: (e["method"], e["bpp"]))
    return out


def bd_table(summary: List[dict], reference: str = "JPEG") -> Dict[str, Optional[float]]:
    """BD-PSNR (:func:`bd_psnr`) of every method's mean curve over ``reference``'s."""
    curves: Dict[str, List[dict]] = defaultdict(list)
    for e in summary:
        curves[e["method"]].append(e)
    if reference not in curves:
        return {}
    ref = curves[reference]
    return {m: bd_psnr([e["bpp"] for e in ref], [e["psnr"] for e in ref], [e["bpp"] for e in c], [e["psnr"] for e in c])
            for m, c in curves.items() if m != reference}


def plot_rd(summary: List[dict], path, metric: str, title: str, max_bpp: Optional[float] = None) -> bool:
    """Mean rate against mean ``metric`` ("psnr" or "ms_ssim") per method into ``path``;
    False (no file) when no point has the metric."""
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
        classical = method in BASELINE_LABELS.values()
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


def side_by_side(panels: List[tuple], path) -> None:
    """Crops in a row with a caption under each: panels = [(caption, uint8[s, s, 3]), …]."""
    from PIL import Image, ImageDraw

    s = max(p[1].shape[0] for p in panels)
    cap = 18
    sheet = Image.new("RGB", (len(panels) * (s + 4), s + cap), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (caption, crop) in enumerate(panels):
        sheet.paste(Image.fromarray(crop), (i * (s + 4), 0))
        draw.text((i * (s + 4) + 3, s + 3), caption, fill="black")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
