"""Large photos in tiles (docs/format.md §6.1): peak RSS and time on 6000×4000, and the R-D cost of tiling.

::

    python benchmarks/bench_tiling.py rss ntc:1 ntc:8 uqdm:1      # each step in a fresh process
    python benchmarks/bench_tiling.py rd --images 6 --tiles 256 512 # NTC on Kodak, tiled vs untiled

``rss``: the 6000×4000 photo is kodim23 upscaled ×7.8125 (bicubic, PIL). Compression and
decompression each run in a fresh subprocess; peak RSS is that process's ``ru_maxrss`` right
after the call (interpreter, PyTorch, model, image and the codec's working set).
``rd``: bpp and PSNR of every NTC quality on the first N Kodak images, untiled (the codec's
own files) and tiled with each edge; BD-PSNR (``chansim.evaluation.bd_psnr``, PCHIP) per
image, averaged.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

KODAK = Path(os.environ.get("CHANSIM_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")) / "kodak"
SIZE = (6000, 4000)


def big_photo() -> np.ndarray:
    from PIL import Image

    im = Image.open(KODAK / "kodim23.png").convert("RGB")
    return np.asarray(im.resize(SIZE, Image.BICUBIC))


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(mode: str, codec_name: str, quality: str, path: str, workers: int) -> dict:
    from chansim.codecs import codec_class

    codec = codec_class(codec_name).pretrained()
    q = quality if quality == "lossless" else int(quality)
    if mode == "compress":
        image = big_photo()
        t = time.perf_counter()
        data = codec.compress(image, q)
        seconds = time.perf_counter() - t
        peak = _peak_mb()
        Path(path).write_bytes(data)
        return {"seconds": seconds, "peak_mb": peak, "bytes": len(data), "bpp": 8 * len(data) / (SIZE[0] * SIZE[1])}
    data = Path(path).read_bytes()
    t = time.perf_counter()
    out = codec.decompress(data, workers=workers)
    seconds = time.perf_counter() - t
    peak = _peak_mb()
    ref = big_photo()
    mse = np.mean((out.astype(np.float64) - ref) ** 2)
    return {"seconds": seconds, "peak_mb": peak, "psnr": float(10 * np.log10(255 ** 2 / mse)) if mse else float("inf")}


def run_rss(specs, workers) -> None:
    for spec in specs:
        name, quality = spec.split(":")
        with tempfile.TemporaryDirectory() as d:
            path = str(Path(d) / "big.chsm")
            row = {"codec": name, "quality": quality}
            for mode in ("compress", "decompress"):
                cmd = [sys.executable, __file__, "_child", mode, name, quality, path, str(workers)]
                proc = subprocess.run(cmd, capture_output=True, text=True)
                if proc.returncode:
                    raise SystemExit(proc.stderr)
                row[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
            print(json.dumps(row), flush=True)


def run_rd(n_images: int, tiles) -> None:
    from PIL import Image

    from chansim.codecs import NTC
    from chansim.metrics import psnr

    codec = NTC.pretrained()
    qs = list(codec.qualities)
    rows = {}
    for k in range(1, n_images + 1):
        image = np.asarray(Image.open(KODAK / f"kodim{k:02d}.png").convert("RGB"))
        h, w = image.shape[:2]
        res = {"whole": [(8 * len(r.data) / (h * w), psnr(image, r.images["mmse"])) for r in codec.evaluate(image, qs)]}
        for t in tiles:
            pts = []
            for q in qs:
                data = codec.compress(image, q, tile=t)
                pts.append((8 * len(data) / (h * w), psnr(image, codec.decompress(data))))
            res[str(t)] = pts
        rows[f"kodim{k:02d}"] = res
        print(json.dumps({"image": f"kodim{k:02d}", **res}), flush=True)
    summarize(rows, tiles)


def summarize(rows, tiles) -> None:
    """Per tile edge: BD-PSNR of tiled over untiled (PCHIP, chansim.evaluation.bd_psnr) per image
    and its mean; mean ΔPSNR and relative rate change per quality (same quality, tiled − untiled)."""
    from chansim.evaluation import bd_psnr

    for t in tiles:
        bd = [bd_psnr(*map(np.array, zip(*r["whole"])), *map(np.array, zip(*r[str(t)]))) for r in rows.values()]
        dp = np.mean([[b[1] - a[1] for a, b in zip(r["whole"], r[str(t)])] for r in rows.values()], axis=0)
        dr = np.mean([[b[0] / a[0] - 1 for a, b in zip(r["whole"], r[str(t)])] for r in rows.values()], axis=0)
        print(json.dumps({"tile": t, "bd_psnr_mean": float(np.mean(bd)), "bd_psnr_per_image": bd,
                          "dpsnr_per_quality": dp.tolist(), "rate_increase_per_quality": dr.tolist()}), flush=True)


def main(argv=None) -> None:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "_child":
        print(json.dumps(_child(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6]))))
        return
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("rss")
    r.add_argument("specs", nargs="+", help="codec:quality, e.g. ntc:1 uqdm:1")
    r.add_argument("--workers", type=int, default=1)
    d = sub.add_parser("rd")
    d.add_argument("--images", type=int, default=6)
    d.add_argument("--tiles", type=int, nargs="+", default=[256])
    d.add_argument("--summarize", metavar="LOG", help="only summarize the per-image lines of an earlier run's output")
    a = p.parse_args(argv)
    if a.cmd == "rss":
        run_rss(a.specs, a.workers)
    elif a.summarize:
        lines = [json.loads(x) for x in Path(a.summarize).read_text().splitlines() if x.startswith('{"image"')]
        summarize({x.pop("image"): x for x in lines}, a.tiles)
    else:
        run_rd(a.images, a.tiles)


if __name__ == "__main__":
    main()
