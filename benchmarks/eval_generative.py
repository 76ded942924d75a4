"""NTC's three reconstructions of the same files on Kodak: mmse, generative and interp (issue 16).

Per image and quality (default: every NTC quality whose Kodak-24 mean rate is ≤ 0.5 bpp, read from
eval_ntc.py's results for the same model — the issue's "every NTC quality ≤ 0.5 bpp"): one
file from :meth:`NTC.evaluate`, decoded three ways — the images ``evaluate`` returns are what
``decompress`` gives for that file (tests/test_ntc_generative.py checks it). Metrics per image:
PSNR, MS-SSIM and the high-frequency energy ratio (:func:`chansim.metrics.hf_energy_ratio`:
power above a quarter of the sampling rate, reconstruction over original; 1.0 = as much fine
detail as the photo), averaged over the images per quality.

``--crops``: 160×160 crops of original / JPEG / NTC-mmse / NTC-generative at the same rate (JPEG
at the Pillow quality whose file is closest to the NTC file, never larger; by default at the lowest
NTC quality whose file JPEG can match) for a few images.
``--speed``: wall time of ``decompress(…, "generative")`` of kodim01 (768×512) on 2 threads (and of
``compress`` with the ``--temperature`` asked for).
``--temperature match`` (or a number): the files carry the sender's temperature (``NTC.compress(…,
temperature=…)``); each row records the τ its file holds.

Run: python benchmarks/eval_generative.py [--images 24] [--qualities 1,2,3] [--crops] [--speed]
                                          [--temperature match]
     python benchmarks/eval_generative.py --first 9 --images 16 --append …   # more images into a saved run
     python benchmarks/eval_generative.py --report
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image

from chansim.codecs.ntc import NTC
from chansim.data import shared_path
from chansim.evaluation import crop_box, decode_baseline, encode_baseline, side_by_side
from chansim.metrics import hf_energy_ratio, ms_ssim, psnr

KINDS = ("mmse", "generative", "interp")
#: The rate up to which the issue asks for the generative reconstruction's figures.
MAX_BPP = 0.5
NTC_RESULTS = Path(__file__).resolve().parent / "results" / "ntc_kodak.json"


def default_qualities(codec: NTC) -> list:
    """Every quality whose mean Kodak rate in eval_ntc.py's results for this model is ≤ MAX_BPP."""
    state = json.loads(NTC_RESULTS.read_text()) if NTC_RESULTS.is_file() else {}
    if state.get("model_id") != codec.model_id or "summary" not in state:
        raise SystemExit(f"{NTC_RESULTS} holds no eval_ntc.py run of model {codec.model_id[:16]}: run "
                         "benchmarks/eval_ntc.py first, or pass --qualities")
    return [int(p["q"]) for p in state["summary"]["curves"]["ntc"] if p["bpp"] <= MAX_BPP]
CROP_IMAGES = ("kodim01", "kodim05", "kodim08")


def kodak(n: int, first: int = 1):
    for i in range(first, first + n):
        name = f"kodim{i:02d}"
        yield name, np.asarray(Image.open(shared_path("kodak", f"{name}.png")).convert("RGB"))


def jpeg_at(image: np.ndarray, budget: int):
    """The largest Pillow-JPEG file of ``image`` not above ``budget`` bytes (quality 1 if none fits)."""
    best = None
    for q in range(1, 96):
        data = encode_baseline(image, "jpeg", q)
        if len(data) > budget and best is not None:
            break
        best = (q, data)
    return best


def run(args) -> dict:
    codec = NTC.pretrained()
    if codec.decoder is None:
        raise SystemExit("no generative decoder is shipped with this chansim")
    qualities = [int(q) for q in args.qualities.split(",")] if args.qualities else default_qualities(codec)
    rows, crops = [], []
    for name, img in kodak(args.images, args.first):
        t0 = time.perf_counter()
        evs = codec.evaluate(img, qualities, reconstructions=KINDS, lam=args.lam, temperature=args.temperature)
        print(f"{name}: {time.perf_counter() - t0:.1f} s", flush=True)
        h, w = img.shape[:2]
        # Crops at --crop-quality, else at the lowest quality whose file JPEG can match (Pillow's
        # quality 1 is not larger), so the JPEG panel is at the same rate, never a larger file.
        jpeg_min = len(encode_baseline(img, "jpeg", 1)) if args.crops and name in CROP_IMAGES else None
        crop_q = args.crop_quality or next((ev.quality for ev in evs if jpeg_min and len(ev.data) >= jpeg_min),
                                           evs[-1].quality)
        for ev in evs:
            row = {"image": name, "quality": ev.quality, "bytes": len(ev.data), "bpp": 8 * len(ev.data) / (h * w),
                   "temperature": codec.read_symbols(ev.data)[1].temperature
                   or codec.decoder.temperatures[ev.quality - 1]}
            for k in KINDS:
                rec = ev.images[k]
                row.update({f"psnr_{k}": psnr(img, rec), f"msssim_{k}": ms_ssim(img, rec),
                            f"hf_{k}": hf_energy_ratio(rec, img)})
            rows.append(row)
            if args.crops and name in CROP_IMAGES and ev.quality == crop_q:
                jq, jdata = jpeg_at(img, len(ev.data))
                top, left, s = crop_box(h, w, 160)
                cut = (slice(top, top + s), slice(left, left + s))
                bpp = 8 * len(ev.data) / (h * w)
                crops.append([("original", img[cut]),
                              (f"JPEG q{jq} {8 * len(jdata) / (h * w):.3f} bpp", decode_baseline(jdata)[cut]),
                              (f"NTC mmse {bpp:.3f} bpp", ev.images["mmse"][cut]),
                              (f"NTC generative {bpp:.3f} bpp", ev.images["generative"][cut])])
    if crops:
        from PIL import Image as _I

        paths = []
        for i, panels in enumerate(crops):
            p = Path(args.figure).with_name(f"_crop{i}.png")
            side_by_side(panels, p)
            paths.append(p)
        sheets = [_I.open(p) for p in paths]
        fig = _I.new("RGB", (max(s.width for s in sheets), sum(s.height for s in sheets)), "white")
        y = 0
        for s in sheets:
            fig.paste(s, (0, y))
            y += s.height
        fig.save(args.figure)
        for p in paths:
            p.unlink()
    out = {"ntc_model": codec.model_id, "decoder": codec.decoder_id, "lam": args.lam,
           "temperature": args.temperature, "rows": rows}
    if args.speed:
        name, img = next(iter(kodak(1)))
        t0 = time.perf_counter()
        data = codec.compress(img, qualities[0], temperature=args.temperature)
        out["encode_s"] = time.perf_counter() - t0
        best = []
        for _ in range(2):
            t0 = time.perf_counter()
            codec.decompress(data, "generative")
            best.append(time.perf_counter() - t0)
        out["decode_generative_s"] = min(best)
    return out


def summary(result: dict) -> list:
    by_q = {}
    for r in result["rows"]:
        by_q.setdefault(r["quality"], []).append(r)
    out = []
    for q, rs in sorted(by_q.items()):
        row = {"quality": q, "n": len(rs), "bpp": float(np.mean([r["bpp"] for r in rs]))}
        for key in rs[0]:
            if key.startswith(("psnr_", "msssim_", "hf_")) or key == "temperature":
                row[key] = float(np.mean([r[key] for r in rs]))
        hf = np.array([r["hf_generative"] for r in rs])
        row.update(hf_generative_median=float(np.median(hf)), hf_generative_max=float(hf.max()),
                   hf_generative_in_band=int(((hf >= 0.85) & (hf <= 1.15)).sum()))
        out.append(row)
    return out


def report(result: dict) -> str:
    lines = ["| quality | bpp | PSNR mmse / generative / interp (dB) | MS-SSIM mmse / gen / interp | "
             "HF mmse | HF generative (median; in 0.85–1.15; largest) | HF interp | mean τ |",
             "|---:|---:|---|---|---:|---|---:|---:|"]
    for r in summary(result):
        lines.append(f"| {r['quality']} | {r['bpp']:.3f} | {r['psnr_mmse']:.2f} / {r['psnr_generative']:.2f} / "
                     f"{r['psnr_interp']:.2f} | {r['msssim_mmse']:.4f} / {r['msssim_generative']:.4f} / "
                     f"{r['msssim_interp']:.4f} | {r['hf_mmse']:.2f} | {r['hf_generative']:.2f} "
                     f"({r['hf_generative_median']:.2f}; {r['hf_generative_in_band']}; {r['hf_generative_max']:.2f}) | "
                     f"{r['hf_interp']:.2f} | {r.get('temperature', float('nan')):.3f} |")
    if "decode_generative_s" in result:
        lines.append(f"\nkodim01 (768×512), 2 threads: encode {result.get('encode_s', float('nan')):.1f} s "
                     f"(temperature {result.get('temperature')}), generative decode {result['decode_generative_s']:.1f} s")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=24)
    ap.add_argument("--first", type=int, default=1, help="first Kodak image (kodimNN)")
    ap.add_argument("--append", action="store_true", help="add these images' rows to the saved --out run")
    ap.add_argument("--qualities", default=None,
                    help=f"comma-separated; default: every quality at ≤ {MAX_BPP} bpp on Kodak (eval_ntc.py's results)")
    ap.add_argument("--lam", type=float, default=0.5)
    ap.add_argument("--crops", action="store_true")
    ap.add_argument("--crop-quality", type=int, default=None,
                    help="quality of the crops (default: per image, the lowest whose file JPEG can match)")
    ap.add_argument("--speed", action="store_true")
    ap.add_argument("--out", default="benchmarks/results/ntc_generative_kodak.json")
    ap.add_argument("--figure", default="benchmarks/results/ntc_generative_crops.png")
    ap.add_argument("--report", action="store_true", help="print the table of a saved run")
    ap.add_argument("--temperature", type=lambda t: t if t == "match" else float(t), default=None,
                    help="'match' or a number: the sender's temperature written into every file")
    args = ap.parse_args()
    if args.report:
        print(report(json.loads(Path(args.out).read_text())))
        return
    import torch

    torch.set_num_threads(2)
    result = run(args)
    if args.append:
        # Rows of more images into a saved run of the same models and temperature (its speed and crops kept).
        saved = json.loads(Path(args.out).read_text())
        same = ("ntc_model", "decoder", "lam", "temperature")
        if any(saved.get(k) != result.get(k) for k in same):
            raise SystemExit(f"{args.out} was made with other {'/'.join(same)}")
        seen = {(r["image"], r["quality"]) for r in saved["rows"]}
        saved["rows"] += [r for r in result["rows"] if (r["image"], r["quality"]) not in seen]
        result = {**result, **{k: v for k, v in saved.items() if k != "rows"}, "rows": saved["rows"]}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(report(result))


if __name__ == "__main__":
    main()
