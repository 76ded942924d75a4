"""NTC on the 24 Kodak images against JPEG, WebP and AVIF (Pillow) in the same run.

Per image: every NTC quality from one :meth:`NTC.evaluate` pass (the images it returns are
what the receiver decodes; ``--verify`` images are fully decoded and compared bit for bit),
whole-file rates (container header, model tag, settings, CRC included) and, for the size
goal, the model's own −Σ log₂ P of the coded symbols computed here with SciPy's normal CDF
and the stored frequency tables, independently of the rANS coder. Peers: eval_uqdm's Pillow
sweeps. Curves are means per setting over the images; BD-PSNR is
:func:`chansim.evaluation.bd_psnr` (PCHIP over log rate) on the overlapping range. The
CompressAI bmshj2018-factorized (MSE) Kodak points are drawn as a reference line, and so is
CompressAI's mbt2018-mean (the mean-scale hyperprior family NTC belongs to, as trained and published
by CompressAI: one model per quality), whose BD-PSNR against the same Pillow peers the report gives
— how far the architecture family reaches with full training, beside what this model reaches.

Speed (``--speed``): encode and decode of kodim01 (768×512) on 2 threads, best of 3, with the
rANS calls timed alone on the same symbols.

Run: python benchmarks/eval_ntc.py [--images 24] [--verify 2] [--speed]
     python benchmarks/eval_ntc.py --report
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy import special

import chansim
from chansim import rans
from chansim.codecs.ntc import NTC
from chansim.ntc.tables import snap_scales
from chansim.data import shared_path
from chansim.evaluation import bd_psnr, bd_rate, msssim_db

sys.path.insert(0, str(Path(__file__).resolve().parent))
from eval_uqdm import bd, eval_peers, mean_curve, point  # noqa: E402  (one implementation of the peers)

#: CompressAI's results file for bmshj2018-factorized, MSE, Kodak (bpp, PSNR), quoted in the issue.
COMPRESSAI_FACTORIZED = [(0.123, 26.91), (0.288, 29.62), (0.440, 31.28)]
#: CompressAI's results file for mbt2018-mean, MSE, Kodak (results/image/kodak/
#: compressai-mbt2018-mean_mse_cuda.json: bpp, PSNR of its eight per-quality models).
COMPRESSAI_MEAN_SCALE = [(0.1239, 27.699), (0.1980, 29.359), (0.3072, 31.129), (0.4606, 32.951),
                         (0.6617, 34.968), (0.9144, 36.911), (1.2342, 38.838), (1.6191, 40.633)]


def symbols(codec: NTC, data: bytes):
    """(ẑ', k, u, σ̂) coded in the file ``data`` (:meth:`NTC.read_symbols`: checked by the symbol CRC) —
    of the latents, only those the file's quality codes (the others are never sent:
    :meth:`~chansim.ntc.model.HyperpriorModel.coded_slices`)."""
    sym = codec.read_symbols(data)[1]
    coded = codec.model.coded_channels(sym.quality - 1)
    return sym.z, sym.k[:, :coded], sym.u[:, :coded], sym.scale[:, :coded]


def code_lengths(codec: NTC, data: bytes) -> dict:
    """The model's −Σ log₂ P of the file's symbols (``ideal_bits``) and, of its latents, the share
    whose σ̂ is the model's floor (``floor_latents``) and the bits they cost (``floor_bits``): under
    universal quantization a latent at the floor that carries nothing still costs bits."""
    z, k, u, scale = symbols(codec, data)
    sym = z - codec.z_offsets[None, :, None, None]
    rows = np.broadcast_to(np.arange(codec.model.hyper_n)[None, :, None, None], sym.shape)   # z has hyper_n channels
    inside = (sym >= 0) & (sym < codec.z_probs.shape[1])
    bits = -np.log2(codec.z_probs[rows[inside], sym[inside]]).sum()
    assert inside.all(), "a hyper-latent escaped its table"
    # The model's own code length of each cell, −log₂ P with P the N(0, σ̂²) mass of
    # [|k − u| − ½, |k − u| + ½], in the upper-tail form so that cells far out (where the model's
    # scale is badly wrong: up to ~90 bits for one latent at the highest quality) keep their true
    # length; a floor at the coder's 24-bit resolution would understate the model's −Σ log₂ P
    # (the rANS escape sends such a cell for fewer bits than the model assigns it).
    a = np.abs(k - u)
    hi = special.log_ndtr(-(a - 0.5) / scale)
    lo = special.log_ndtr(-(a + 0.5) / scale)
    cell = -(hi + np.log1p(-np.exp(lo - hi))) / np.log(2)
    floor = scale <= snap_scales(np.array([0.0]), codec.model.scale_min)[0]
    return {"ideal_bits": float(bits + cell.sum()), "floor_bits": float(cell[floor].sum()),
            "floor_latents": float(floor.mean())}


def eval_ntc(codec: NTC, img: np.ndarray, verify: bool, refine: int = 0):
    """NTC at every quality (with ``refine`` steps of latent refinement); with refinement, the
    unrefined files of the same image too (key ``ntc_plain``), for the gain it buys."""
    res = {}
    for key, steps in (("ntc", refine),) + ((("ntc_plain", 0),) if refine else ()):
        t = time.perf_counter()
        results = codec.evaluate(img, refine=steps)
        res[f"{key}_seconds"] = time.perf_counter() - t
        res[key] = {}
        for r in results:
            pt = point(img, r.data, r.images["mmse"])
            pt.update(code_lengths(codec, r.data))
            pt["file_bits"] = 8 * len(r.data)
            res[key][str(r.quality)] = pt
            if verify:
                assert np.array_equal(codec.decompress(r.data), r.images["mmse"]), f"quality {r.quality}: decoder differs"
    return res


#: Cores' worth of other work (busy CPU time over one second while this process sleeps) above which a timing
#: is flagged as shared: on this project's 2-core machines a training run or test job beside the timing
#: read up to 0.1 s slow (BENCHMARKS.md, session 29). The load average would not do: right after the
#: evaluation's own sweep it still reads ≈ 2 on an otherwise idle machine.
QUIET_CORES = 0.2


def busy_cores(seconds: float = 1.0):
    """Cores' worth of CPU time the machine spent busy over ``seconds`` while this process slept (Linux
    /proc/stat; None elsewhere)."""
    def sample():
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(fields), fields[3] + fields[4]          # all jiffies; idle + iowait
    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    total = total1 - total0
    return os.cpu_count() * (1 - (idle1 - idle0) / total) if total > 0 else None


def speed(codec: NTC, img: np.ndarray, quality: int = 5) -> dict:
    """Best-of-3 encode / decode / rANS seconds, with the other work on the machine just before the timing
    (:func:`busy_cores`; the timing is only a figure on a quiet machine: a warning is printed above
    :data:`QUIET_CORES`)."""
    others = busy_cores()
    if others is not None and others > QUIET_CORES:
        print(f"warning: {others:.2f} cores busy with other work before timing; these seconds are not a figure",
              file=sys.stderr)
    enc, dec = [], []
    for _ in range(3):
        t = time.perf_counter()
        data = codec.compress(img, quality)
        enc.append(time.perf_counter() - t)
        t = time.perf_counter()
        codec.decompress(data)
        dec.append(time.perf_counter() - t)
    z, k, u, scale = symbols(codec, data)
    zs = z - codec.z_offsets[None, :, None, None]
    ent = []
    for _ in range(3):
        t = time.perf_counter()
        e = rans.Encoder()
        e.encode_categorical(zs, codec._z_probs(z.shape))
        e.encode_gaussian_dithered(k, 0.0, scale, 1.0, u)
        stream = e.finish()
        d = rans.Decoder(stream)
        d.decode_categorical(codec._z_probs(z.shape))
        d.decode_gaussian_dithered(0.0, scale, 1.0, u)
        ent.append(time.perf_counter() - t)
    return {"image": f"{img.shape[1]}x{img.shape[0]}", "quality": quality, "bytes": len(data),
            "encode_s": min(enc), "decode_s": min(dec), "entropy_coding_s": min(ent),
            "busy_cores_before": None if others is None else round(others, 2)}


def gap(point, curve) -> str:
    """PSNR of ``point`` minus the peer ``curve``'s at the same rate (PCHIP in log rate, as the BD
    figures), or a dash outside the peer's range."""
    from scipy.interpolate import PchipInterpolator

    pts = sorted(curve, key=lambda p: p["bpp"])
    x = np.log10([p["bpp"] for p in pts])
    if not x[0] <= np.log10(point["bpp"]) <= x[-1]:
        return "–"
    return f"{point['psnr'] - float(PchipInterpolator(x, [p['psnr'] for p in pts])(np.log10(point['bpp']))):+.2f}"


def report(state) -> str:
    sm = state["summary"]
    lines = [f"NTC (model {state['model_id'][:16]}), mean over {sm['images']} Kodak images:", "",
             "| quality | bpp | PSNR (dB) | MS-SSIM (dB) | file / ideal bits | latents at the σ floor | their bits (of the file) "
             "| PSNR − JPEG (dB) | PSNR − WebP (dB) |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for p in sm["curves"]["ntc"]:
        fl = sm.get("floor", {}).get(p["q"])
        floor = f"{fl['latents']:.1%} | {fl['bits']:.1%}" if fl else "– | –"
        lines.append(f"| {p['q']} | {p['bpp']:.3f} | {p['psnr']:.2f} | {msssim_db(p['msssim']):.2f} | "
                     f"{sm['overhead'][p['q']]:.4f} | {floor} | {gap(p, sm['curves']['jpeg'])} | "
                     f"{gap(p, sm['curves']['webp'])} |")
    lines += ["", "| NTC against | BD-PSNR (dB) | BD-MS-SSIM (dB) | overlapping bpp range |", "|---|---:|---:|---|"]
    for peer in ("jpeg", "webp", "avif"):
        a, b = sm["bd"][f"{peer}_psnr"], sm["bd"][f"{peer}_msssim"]
        rng = a["range_bpp"]
        lines.append(f"| {peer} | {a['db']:+.2f} | {b['db']:+.2f} | {rng[0]:.2f}…{rng[1]:.2f} |")
    if "reference" in sm:
        r = sm["reference"]
        lines += ["", f"Reference, {r['name']}: BD-PSNR against the same JPEG / WebP / AVIF "
                      + " / ".join(f"{r['bd_psnr_vs'][p]:+.2f}" for p in ("jpeg", "webp", "avif"))
                      + f" dB; this NTC model against it {r['ntc_bd_psnr']:+.2f} dB."]
    if "refine" in sm:
        r = sm["refine"]
        lines += ["", f"Latent refinement ({r['steps']} steps) against the same files unrefined: BD-PSNR "
                      f"{r['bd_psnr']:+.2f} dB, BD-rate {r['bd_rate']:+.1%} over {r['range_bpp'][0]:.2f}…"
                      f"{r['range_bpp'][1]:.2f} bpp; encoding {r['seconds_per_image']:.0f} s per image for all "
                      f"{len(sm['curves']['ntc'])} qualities (unrefined {r['plain_seconds_per_image']:.1f} s)."]
        if "plain_curve" in r:
            lines += ["", "| quality | unrefined bpp / PSNR | refined bpp / PSNR | rate | PSNR | unrefined − WebP | "
                          "refined − WebP |", "|---:|---|---|---:|---:|---:|---:|"]
            webp = sm["curves"]["webp"]
            for a, b in zip(sorted(r["plain_curve"], key=lambda p: int(p["q"])),
                            sorted(sm["curves"]["ntc"], key=lambda p: int(p["q"]))):
                lines.append(f"| {a['q']} | {a['bpp']:.3f} / {a['psnr']:.2f} | {b['bpp']:.3f} / {b['psnr']:.2f} | "
                             f"{b['bpp'] / a['bpp'] - 1:+.1%} | {b['psnr'] - a['psnr']:+.2f} | "
                             f"{gap(a, webp)} | {gap(b, webp)} |")
    if "speed" in state:
        s = state["speed"]
        lines += ["", f"Speed ({s['image']}, quality {s['quality']}, 2 threads, best of 3): encode "
                      f"{s['encode_s']:.2f} s, decode {s['decode_s']:.2f} s, of which rANS "
                      f"{s['entropy_coding_s'] * 1e3:.0f} ms (encode + decode)"
                      + (f"; {s['busy_cores_before']:.2f} cores busy with other work just before the timing"
                         if s.get("busy_cores_before") is not None else "") + "."]
    return "\n".join(lines)


def plot(curves, path, images):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    for name, c in curves.items():
        x = [p["bpp"] for p in c]
        axes[0].plot(x, [p["psnr"] for p in c], "o-", ms=3, label=name.upper() if name != "webp" else "WebP")
        axes[1].plot(x, [msssim_db(p["msssim"]) for p in c], "o-", ms=3, label=name.upper() if name != "webp" else "WebP")
    axes[0].plot(*zip(*COMPRESSAI_FACTORIZED), "k--", lw=1, label="bmshj2018-factorized (CompressAI)")
    axes[0].plot(*zip(*COMPRESSAI_MEAN_SCALE), "k:", lw=1, label="mbt2018-mean (CompressAI, per-quality models)")
    for ax, yl in zip(axes, ["PSNR (dB)", "MS-SSIM (dB)"]):
        ax.set_xscale("log")
        ax.set_xlim(0.05, 4)
        ax.set_xlabel("bits per pixel")
        ax.set_ylabel(yl)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"Kodak ({images} images, mean bpp and quality per setting; NTC vs Pillow peers)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=24)
    ap.add_argument("--verify", type=int, default=2)
    ap.add_argument("--speed", action="store_true")
    ap.add_argument("--model", type=Path, default=None,
                    help="an NTC model file to evaluate instead of the shipped one (e.g. a run's export; "
                         "give another --out and --plot, whose peers are kept when the file exists)")
    ap.add_argument("--out", default="benchmarks/results/ntc_kodak.json")
    ap.add_argument("--plot", default="benchmarks/results/ntc_rd.png")
    ap.add_argument("--phase", choices=("all", "peers"), default="all",
                    help="peers: only the Pillow sweeps (they do not depend on the model)")
    ap.add_argument("--report", action="store_true")
    ap.add_argument("--refine", type=int, default=0,
                    help="steps of encoder-side latent refinement (also codes each image unrefined, for the gain)")
    args = ap.parse_args()
    if args.report:
        print(report(json.loads(Path(args.out).read_text())))
        return
    torch.set_num_threads(2)
    chansim.set_num_threads(2)
    codec = NTC.from_file(args.model) if args.model else NTC.pretrained()
    out = Path(args.out)
    state = json.loads(out.read_text()) if out.is_file() else {}
    if state.get("model_id") != codec.model_id or state.get("refine", 0) != args.refine:
        state = {"model_id": codec.model_id, "refine": args.refine, "peers": state.get("peers", {}), "images": {}}
    phases = ("peers",) if args.phase == "peers" else ("peers", "images")
    names = [f"kodim{i:02d}.png" for i in range(1, args.images + 1)]
    for i, name in enumerate(names):
        img = np.asarray(Image.open(shared_path("kodak", name)).convert("RGB"))
        for key, run in (("peers", lambda: eval_peers(img)), ("images", lambda: eval_ntc(codec, img, i < args.verify, args.refine))):
            if name in state[key] or key not in phases:
                continue
            t = time.perf_counter()
            state[key][name] = run()
            print(f"{name} {key}: {time.perf_counter() - t:.1f} s", flush=True)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(state))
    if args.speed:
        state["speed"] = speed(codec, np.asarray(Image.open(shared_path("kodak", "kodim01.png")).convert("RGB")))
    names = [n for n in names if n in state["peers"] and n in state["images"]]
    if not names:
        return
    per = [dict(state["peers"][n], **state["images"][n]) for n in names]
    curves = {c: mean_curve(per, c) for c in ("ntc", "jpeg", "webp", "avif")}
    overhead = {q: float(np.sum([r["ntc"][q]["file_bits"] for r in per]) / np.sum([r["ntc"][q]["ideal_bits"] for r in per]))
                for q in per[0]["ntc"]}
    floor = {q: {"latents": float(np.mean([r["ntc"][q]["floor_latents"] for r in per])),
                 "bits": float(np.sum([r["ntc"][q]["floor_bits"] for r in per]) / np.sum([r["ntc"][q]["file_bits"] for r in per]))}
             for q in per[0]["ntc"] if "floor_bits" in per[0]["ntc"][q]}
    summary = {"images": len(per), "curves": curves, "bd": {}, "overhead": overhead, "floor": floor,
               "ntc_seconds_mean": float(np.mean([r["ntc_seconds"] for r in per]))}
    for peer in ("jpeg", "webp", "avif"):
        for metric in ("psnr", "msssim"):
            v, rng = bd(curves["ntc"], curves[peer], metric)
            summary["bd"][f"{peer}_{metric}"] = {"db": v, "range_bpp": rng}
    ref_bpp, ref_psnr = zip(*COMPRESSAI_MEAN_SCALE)
    summary["reference"] = {
        "name": "CompressAI mbt2018-mean (MSE), published Kodak results",
        "bd_psnr_vs": {peer: bd_psnr([p["bpp"] for p in curves[peer]], [p["psnr"] for p in curves[peer]],
                                     ref_bpp, ref_psnr) for peer in ("jpeg", "webp", "avif")},
        "ntc_bd_psnr": bd_psnr(ref_bpp, ref_psnr, [p["bpp"] for p in curves["ntc"]],
                               [p["psnr"] for p in curves["ntc"]])}
    if args.refine:
        plain = mean_curve(per, "ntc_plain")
        v, rng = bd(curves["ntc"], plain, "psnr")
        summary["refine"] = {"steps": args.refine, "bd_psnr": v, "range_bpp": rng, "plain_curve": plain,
                             "bd_rate": bd_rate([p["bpp"] for p in plain], [p["psnr"] for p in plain],
                                                [p["bpp"] for p in curves["ntc"]], [p["psnr"] for p in curves["ntc"]]),
                             "seconds_per_image": float(np.mean([r["ntc_seconds"] for r in per])),
                             "plain_seconds_per_image": float(np.mean([r["ntc_plain_seconds"] for r in per]))}
    state["summary"] = summary
    out.write_text(json.dumps(state))
    plot(curves, args.plot, len(per))
    print(report(state))


if __name__ == "__main__":
    main()
