"""Side-by-side crops of DiffC's reconstructions at low rates, to judge by eye whether the
probability-flow decode is sharper than MMSE (issue 8's visual goal).

    python benchmarks/diffc_crops.py --image kodim23 --qualities 6 8 10 --out benchmarks/results/diffc

One encode at the highest quality; each lower quality is the file's prefix. Writes
``crops_<image>.png``: rows = qualities (with bpp and PSNR), columns = original, MMSE, flow,
ancestral and JPEG at the same rate (Pillow: the highest quality whose rate does not exceed
DiffC's, or quality 1 when even that is larger).
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np

from eval_diffc import KODAK


def jpeg_at(img, bpp):
    from PIL import Image

    best = None
    for q in range(1, 96):
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=q)
        rate = 8 * buf.tell() / (img.shape[0] * img.shape[1])
        if rate > bpp and best is not None:
            break
        best = (np.array(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")), rate, q)
    return best


def main():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch
    from PIL import Image

    from chansim.codecs import DiffC, container
    from chansim.metrics import psnr

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--image", default="kodim23")
    ap.add_argument("--qualities", type=int, nargs="+", default=[6, 8, 10])
    ap.add_argument("--crop", type=int, nargs=4, default=None, metavar=("TOP", "LEFT", "H", "W"),
                    help="crop box shown (default: a 160×160 box at the image centre)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="benchmarks/results/diffc")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    img = np.array(Image.open(KODAK / f"{args.image}.png").convert("RGB"))
    h, w = img.shape[:2]
    top, left, ch, cw = args.crop or ((h - 160) // 2, (w - 160) // 2, 160, 160)
    codec = DiffC.pretrained()
    enc = codec.encode(img, max(args.qualities))
    rows = []
    for i, z, g, den in codec.trajectory(enc.data):
        if i not in args.qualities:
            continue
        data = container.truncate(enc.data, i)
        seed = container.unpack(data).seed
        bpp = 8 * len(data) / (h * w)
        recs = {"MMSE": codec.reconstruct(z, g, h, w, seed, "mmse", denoised=den),
                "flow": codec.reconstruct(z, g, h, w, seed, "flow", denoised=den),
                "ancestral": codec.reconstruct(z, g, h, w, seed, "ancestral", denoised=den)}
        jp, jrate, jq = jpeg_at(img, bpp)
        rows.append((i, bpp, recs, (jp, jrate, jq)))
        print(f"q {i}: {bpp:.3f} bpp " + " ".join(f"{k} {psnr(img, v):.2f} dB" for k, v in recs.items())
              + f" | JPEG q{jq} {jrate:.3f} bpp {psnr(img, jp):.2f} dB", flush=True)
    cols = 5
    fig, axes = plt.subplots(len(rows), cols, figsize=(2.6 * cols, 2.75 * len(rows)))
    axes = np.atleast_2d(axes)
    for r, (i, bpp, recs, (jp, jrate, jq)) in enumerate(rows):
        panels = [("original", img, "")] + [(k, v, f"{psnr(img, v):.1f} dB") for k, v in recs.items()]
        panels.append((f"JPEG q{jq}", jp, f"{jrate:.3f} bpp, {psnr(img, jp):.1f} dB"))
        for c, (name, im, note) in enumerate(panels):
            ax = axes[r, c]
            ax.imshow(im[top:top + ch, left:left + cw], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            title = name if c == 0 else f"{name}\n{note}"
            ax.set_title(title if c else f"q {i}: {bpp:.3f} bpp\n{name}", fontsize=8)
    fig.suptitle(f"DiffC ({codec.channel}) on {args.image}, crop {ch}×{cw} at ({top}, {left})", fontsize=9)
    fig.tight_layout()
    out = Path(args.out) / f"crops_{args.image}.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
