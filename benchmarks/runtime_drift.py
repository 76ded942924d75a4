"""How DiffC degrades when the decoder's network differs slightly from the encoder's.

A decoder on another device or dtype computes the same network with other rounding. DiffC
regenerates every candidate from Philox and reads every index from the file, so only the prior
mean μ_p moves: z_s = μ_p' + β·ξ instead of μ_p + β·ξ. This script measures that on a real image:
the decoder's network outputs carry a relative perturbation (x̂, ε̂) → (x̂, ε̂)·(1 + r·n), n ~ N(0, 1)
fresh per call, r = 1e-6 (float32 rounding is ≈ 6e-8; bfloat16's ≈ 4e-3, also measured), and we
report the PSNR of the perturbed decode against the image and against the exact decode.

    python benchmarks/runtime_drift.py [--size 256] [--quality 12]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch


class Perturbed(torch.nn.Module):
    """A denoiser whose outputs carry a relative perturbation of size ``r`` (fixed generator)."""

    def __init__(self, model, r: float, seed: int = 0):
        super().__init__()
        self.inner, self.r = model, float(r)
        self.gen = torch.Generator().manual_seed(seed)
        self.schedule = model.schedule

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.inner, name)

    def denoise(self, z, gamma, clip=None):
        x_hat, eps_hat = self.inner.denoise(z, gamma, clip)
        return tuple(t * (1 + self.r * torch.randn(t.shape, generator=self.gen, dtype=t.dtype)) for t in (x_hat, eps_hat))


def measure(codec, image: np.ndarray, quality: int, rates=(1e-6, 1e-4, 4e-3)) -> list:
    import warnings

    from chansim.codecs import DiffC
    from chansim.metrics import psnr

    data = codec.compress(image, quality, seed=1)
    exact = codec.decompress(data)
    rows = [{"r": 0.0, "psnr_vs_image": psnr(image, exact), "psnr_vs_exact": float("inf"), "bytes": len(data)}]
    for r in rates:
        other = DiffC(Perturbed(codec.model, r), codec.model_id, recon_steps=codec.recon_steps)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = other.decompress(data)
        rows.append({"r": r, "psnr_vs_image": psnr(image, out), "psnr_vs_exact": psnr(exact, out), "bytes": len(data)})
    return rows


def main() -> None:
    from chansim.codecs import DiffC
    from chansim.data import shared_path

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--quality", type=int, default=12)
    ap.add_argument("--image", default="kodim23")
    args = ap.parse_args()
    from PIL import Image

    kodak = shared_path("kodak")
    if kodak is None:
        raise SystemExit("no shared data directory (set CHANSIM_SHARED_DATA): Kodak is needed")
    path = next(kodak.glob(f"{args.image}.*"))
    img = np.asarray(Image.open(path).convert("RGB"))
    h, w = img.shape[:2]
    img = np.ascontiguousarray(img[(h - args.size) // 2:(h + args.size) // 2, (w - args.size) // 2:(w + args.size) // 2])
    codec = DiffC.pretrained()
    t = time.perf_counter()
    rows = measure(codec, img, args.quality)
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "image": f"{args.image} centre {args.size}²",
            "quality": args.quality, "model": "diffc_default (shipped)", "seconds": time.perf_counter() - t}
    out = Path(__file__).parent / "results" / "runtime_drift.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    print(f"{meta['image']}, quality {args.quality}, {rows[0]['bytes']} bytes")
    print("| relative perturbation r | PSNR vs image (dB) | PSNR vs exact decode (dB) |")
    print("|---:|---:|---:|")
    for r in rows:
        print(f"| {r['r']:g} | {r['psnr_vs_image']:.3f} | {r['psnr_vs_exact']:.2f} |")


if __name__ == "__main__":
    main()
