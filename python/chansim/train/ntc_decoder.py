"""Training of the NTC codec's generative decoder (:func:`chansim.diffusion.models.default_residual`) on CPU.

The decoder learns p(x | x̂_mmse, q), where x̂_mmse is what the shipped NTC model's synthesis
transform gives at quality q. Its training inputs need no encoding: the NTC file's latents
are ŷ' = y' + (ŷ' − y') with an error that is *exactly* U(−½, ½) and independent of y'
(universal quantization, :mod:`chansim.codecs.ntc`), so ``synthesis(y' + U(−½, ½))`` has the
same law as a decoded file's reconstruction. The NTC model stays frozen.

Held-out numbers (EMA weights): centre 256×256 crops of 8 Kodak images at three qualities —
PSNR of the MMSE and of the generative reconstruction, and the high-frequency energy ratio
(:func:`chansim.metrics.hf_energy_ratio`) of each — one line per evaluation in ``<out>/log.jsonl``.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch

from ..diffusion.models import ResidualDiffusion, default_residual
from ..ntc.io import load_model
from ..ntc.model import HyperpriorModel
from .loop import EMA, Checkpointed
from .ntc import lr_at

EVAL_IMAGES = 8
EVAL_CROP = 256


@torch.no_grad()
def ntc_base(ntc: HyperpriorModel, x: torch.Tensor, q: torch.Tensor, generator=None) -> torch.Tensor:
    """x̂_mmse of crops x (B, 3, H, W) in [0, 1] at qualities q, with the codec's exact error law."""
    y = ntc.analysis(x, q)
    y_hat = y + torch.rand(y.shape, generator=generator, dtype=y.dtype) - 0.5
    return ntc.synthesis(y_hat, q).clamp(0.0, 1.0)


@torch.no_grad()
def residual_scales(ntc: HyperpriorModel, sampler, batches: int = 12, batch: int = 8) -> List[float]:
    """RMS of x − x̂_mmse at each quality over ``batches`` training batches (the decoder's unit)."""
    gen = torch.Generator().manual_seed(12345)
    out = []
    for q in range(ntc.num_qualities):
        sq, n = 0.0, 0
        for _ in range(batches):
            x = sampler.batch(batch).float() / 255.0
            qq = torch.full((x.shape[0],), q, dtype=torch.long)
            sq += float((x - ntc_base(ntc, x, qq, gen)).square().sum())
            n += x.numel()
        out.append(math.sqrt(sq / n))
    return out


@torch.no_grad()
def evaluate(decoder: ResidualDiffusion, ntc: HyperpriorModel, images: torch.Tensor, seed: int = 0) -> List[dict]:
    """At the lowest quality, a quarter and half way up the ladder (0-based 0, 2, 4 of ten: the rates
    ≤ 0.5 bpp where generative decoding matters): mean PSNR and HF energy ratio of the MMSE and the
    generative reconstruction."""
    from ..metrics import hf_energy_ratio, psnr

    top = ntc.num_qualities - 1
    qualities = sorted({0, top // 4, top // 2})
    was = decoder.training
    decoder.eval()
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for q in qualities:
        acc: Dict[str, list] = {k: [] for k in ("psnr_mmse", "psnr_gen", "hf_mmse", "hf_gen")}
        for im in images:
            x = im[None].float() / 255.0
            qq = torch.tensor([q])
            base = ntc_base(ntc, x, qq, gen)
            gen_x = decoder.sample(base, q, torch.randn(x.shape, generator=gen))
            orig = im.permute(1, 2, 0).numpy()
            for name, rec in (("mmse", base), ("gen", gen_x)):
                pix = _pixels(rec)
                acc[f"psnr_{name}"].append(psnr(pix, orig))
                acc[f"hf_{name}"].append(hf_energy_ratio(pix, orig))
        rows.append({"quality": q + 1, **{k: float(np.mean(v)) for k, v in acc.items()}})
    decoder.train(was)
    return rows


CALIBRATION_CROPS = 12          # of the run's crop size (128: 12 crops hold ≈ 200k pixels)
CALIBRATION_SEED = 4242


@torch.no_grad()
def _hf_pair(decoder: ResidualDiffusion, ntc: HyperpriorModel, crops: torch.Tensor, q: int, seed: int):
    """HF energy ratios (mmse, generative) of the set ``crops`` (N, 3, S, S) uint8 at 0-based quality q —
    summed band energies over summed originals', so smooth crops (tiny energies) cannot dominate —
    with noise fixed by ``seed`` (two calls differ only in what the decoder changed)."""
    from ..metrics import hf_energy

    gen = torch.Generator().manual_seed(seed)
    e_orig = e_m = e_g = 0.0
    for im in crops:
        x = im[None].float() / 255.0
        base = ntc_base(ntc, x, torch.tensor([q]), gen)
        out = decoder.sample(base, q, torch.randn(x.shape, generator=gen))
        e_orig += hf_energy(im.permute(1, 2, 0).numpy())
        e_m += hf_energy(_pixels(base))
        e_g += hf_energy(_pixels(out))
    return e_m / e_orig, e_g / e_orig


def _pixels(x: torch.Tensor) -> np.ndarray:
    return (x[0].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def calibrate_temperatures(decoder: ResidualDiffusion, ntc: HyperpriorModel, crops: torch.Tensor,
                           seed: int = CALIBRATION_SEED, bisections: int = 5) -> List[dict]:
    """Set each quality's sampling temperature τ_q ≤ 1 so that the generative reconstruction does not
    carry more high-frequency energy than the photos (set ratio ≤ 1) on ``crops`` — training images,
    never the evaluation set. Where τ = 1 overshoots, τ is bisected on [0.25, 1] (the ratio grows
    with τ; measured far from the τ² a linear sampler would give: τ = 0.876 took quality 1 from 1.24
    to 0.73, not 1.0); a quality that does not overshoot keeps τ = 1."""
    rows = []
    for q in range(decoder.num_qualities):
        decoder.temperatures[q] = 1.0
        hf_m, hf_g = _hf_pair(decoder, ntc, crops, q, seed)
        tau, got = 1.0, hf_g
        if hf_g > 1.0:
            lo, hi = 0.25, 1.0
            for _ in range(bisections):
                mid = 0.5 * (lo + hi)
                decoder.temperatures[q] = mid
                r = _hf_pair(decoder, ntc, crops, q, seed)[1]
                lo, hi = (mid, hi) if r < 1.0 else (lo, mid)
            tau = lo                       # the largest τ tried whose ratio stayed below 1
            decoder.temperatures[q] = tau
            got = _hf_pair(decoder, ntc, crops, q, seed)[1]
        rows.append({"quality": q + 1, "hf_mmse": round(hf_m, 4), "hf_generative_at_1": round(hf_g, 4),
                     "temperature": round(tau, 4), "hf_generative": round(got, 4)})
        print(f"calibration q{q + 1}: HF mmse {hf_m:.3f}, generative {hf_g:.3f} at τ = 1 → τ = {tau:.3f}: {got:.3f}",
              file=sys.stderr, flush=True)
    return rows


class DecoderTrainer(Checkpointed):
    def __init__(self, args, sampler, heldout: Optional[torch.Tensor]):
        self.args = args
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.sampler, self.heldout = sampler, heldout
        torch.manual_seed(args.seed)
        self.ntc, _, ntc_id = load_model(args.ntc)
        self.ntc.requires_grad_(False)
        if getattr(args, "residual_scales", None) is None:
            args.residual_scales = residual_scales(self.ntc, sampler)
            args.ntc_id = ntc_id
        if args.ntc_id != ntc_id:
            raise ValueError(f"{args.ntc} is NTC model {ntc_id[:16]}…, this run trains against {args.ntc_id[:16]}…")
        self.model = default_residual(args.residual_scales, ntc_id, widths=tuple(args.widths))
        self.opt = torch.optim.Adam(self.model.parameters(), lr=args.lr, betas=(0.9, 0.99))
        self.ema = EMA(self.model, args.ema)
        self.step, self.elapsed, self.history = 0, 0.0, []

    def checkpoint_args(self) -> Dict:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(self.args).items()}

    def progress(self) -> float:
        p = self.step / self.args.steps
        if self.args.time_budget:
            p = max(p, self.elapsed / (self.args.time_budget * 60))
        return p

    def evaluate_ema(self) -> Optional[dict]:
        if self.heldout is None:
            return None
        live = {k: v.clone() for k, v in self.model.state_dict().items()}
        self.ema.copy_to(self.model)
        rows = evaluate(self.model, self.ntc, self.heldout)
        self.model.load_state_dict(live)
        rec = {"step": self.step, "elapsed_s": round(self.elapsed, 1), "heldout": rows}
        self.history.append(rec)
        self.log(rec)
        pts = "; ".join(f"q{r['quality']}: PSNR {r['psnr_mmse']:.2f}/{r['psnr_gen']:.2f} "
                        f"HF {r['hf_mmse']:.2f}/{r['hf_gen']:.2f}" for r in rows)
        print(f"step {self.step} held-out (mmse/generative) {pts}", file=sys.stderr, flush=True)
        return rec

    def run(self) -> None:
        a = self.args
        self.model.train()
        deadline = time.monotonic() + a.time_limit * 60 if a.time_limit else math.inf
        last_ckpt = last_eval = time.monotonic()
        smooth = None
        k = self.ntc.num_qualities
        gen = torch.Generator().manual_seed(a.seed + 1 + self.step)
        while self.step < a.steps and self.progress() < 1.0 and time.monotonic() < deadline:
            t0 = time.monotonic()
            lr = lr_at(self.progress(), self.step, a)
            for g in self.opt.param_groups:
                g["lr"] = lr
            x = self.sampler.batch(a.batch).float() / 255.0
            q = torch.randint(0, k, (x.shape[0],), generator=gen)
            base = ntc_base(self.ntc, x, q, gen)
            loss = self.model.loss(x, base, q, gen)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            gnorm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), a.grad_clip)
            if torch.isfinite(gnorm):
                self.opt.step()
                self.ema.update(self.model)
            self.step += 1
            self.elapsed += time.monotonic() - t0
            value = float(loss.detach())
            smooth = value if smooth is None else 0.98 * smooth + 0.02 * value
            if self.step % a.log_every == 0:
                self.log({"step": self.step, "elapsed_s": round(self.elapsed, 1), "loss": value,
                          "loss_smooth": smooth, "lr": lr, "grad_norm": float(gnorm)})
            if self.step % (a.log_every * 10) == 0:
                print(f"step {self.step} ({self.elapsed / 60:.1f} min, {self.progress():.1%}): "
                      f"loss {smooth:.4f} lr {lr:.2e}", file=sys.stderr, flush=True)
            now = time.monotonic()
            if now - last_eval > a.eval_minutes * 60:
                self.evaluate_ema()
                last_eval = time.monotonic()
            if now - last_ckpt > a.checkpoint_minutes * 60:
                self.save_checkpoint()
                last_ckpt = time.monotonic()
        self.save_checkpoint()
        self.evaluate_ema()
        self.save_checkpoint()


def add_parser(sub) -> None:
    from ..codecs._pretrained import models_dir

    p = sub.add_parser("ntc-decoder", help="train the NTC codec's generative (diffusion) decoder")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--ntc", type=Path, default=models_dir() / "ntc_default.pt",
                   help="the NTC model file whose reconstructions it decodes (default: the shipped one)")
    p.add_argument("--steps", type=int, default=20000)
    p.add_argument("--time-budget", type=float, default=None,
                   help="minutes of optimisation the LR schedule is planned for (cosine over whichever ends first)")
    p.add_argument("--time-limit", type=float, default=None, help="stop this session after this many minutes")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--crop", type=int, default=128, help="crop side (a multiple of 64, the NTC model's stride)")
    p.add_argument("--widths", type=int, nargs="+", default=[32, 48, 64, 96])
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--lr-final", type=float, default=0.05)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--grad-clip", type=float, default=1.0)
    p.add_argument("--ema", type=float, default=0.998)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--checkpoint-minutes", type=float, default=3.0)
    p.add_argument("--eval-minutes", type=float, default=15.0)
    p.add_argument("--log-every", type=int, default=20)
    p.add_argument("--data-dir", type=Path, default=None)
    p.add_argument("--eval-crop", type=int, default=EVAL_CROP, help="side of the held-out Kodak centre crops")


def main(args) -> int:
    import argparse

    from .data import CropSampler, kodak_heldout

    torch.set_num_threads(args.threads)
    if args.crop % 64:
        raise SystemExit(f"--crop must be a multiple of 64, got {args.crop}")
    if args.resume:
        blob = torch.load(args.out / "checkpoint.pt", map_location="cpu", weights_only=False)
        saved = dict(blob["args"])
        for k in ("steps", "time_budget", "time_limit"):
            if getattr(args, k) is not None:
                saved[k] = getattr(args, k)
        saved.update(threads=args.threads, resume=True, out=Path(saved["out"]), ntc=Path(saved["ntc"]),
                     data_dir=saved.get("data_dir") and Path(saved["data_dir"]))
        args = argparse.Namespace(**saved)
    sampler = CropSampler.from_shared(args.crop, seed=args.seed, root=args.data_dir, progress=False)
    heldout = kodak_heldout(crop=args.eval_crop, root=args.data_dir)[:EVAL_IMAGES]
    trainer = DecoderTrainer(args, sampler, heldout)
    if args.resume:
        trainer.load_checkpoint()
        print(f"resumed at step {trainer.step} ({trainer.elapsed / 60:.1f} min)", file=sys.stderr)
    trainer.run()
    return 0


def is_decoder_run(run_dir: Path) -> bool:
    blob = torch.load(Path(run_dir) / "checkpoint.pt", map_location="cpu", weights_only=False)
    return blob.get("config", {}).get("kind") == ResidualDiffusion.kind


def export(run_dir: Path, dest: Path, name: str, command: str = "", data_dir: Optional[Path] = None,
           calibrate: bool = True) -> Path:
    """Write ``dest/name.pt`` (float16) and its card, with held-out figures measured on the stored weights;
    ``calibrate``: set the sampling temperatures first (:func:`calibrate_temperatures`, on training crops)."""
    import datetime as _dt

    from ..diffusion.io import file_sha256, load_model as load_diffusion, save_model, write_card
    from .data import kodak_heldout
    from .loop import describe_machine

    run_dir, dest = Path(run_dir), Path(dest)
    blob = torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=False)
    args = blob["args"]
    model = default_residual(args["residual_scales"], args["ntc_id"], widths=tuple(args["widths"]))
    model.load_state_dict(blob["ema"]["shadow"])
    ntc, _, ntc_id = load_model(args["ntc"])
    if ntc_id != args["ntc_id"]:
        raise ValueError(f"{args['ntc']} is no longer the NTC model this decoder was trained on")
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / f"{name}.pt"
    save_model(model, path, torch.float16)
    calibration = []
    if calibrate:
        from .data import CropSampler

        crops = CropSampler.from_shared(args["crop"], seed=CALIBRATION_SEED, root=data_dir,
                                        progress=False).batch(CALIBRATION_CROPS)
        rounded, _ = load_diffusion(path)        # calibrate the weights as stored (float16)
        calibration = calibrate_temperatures(rounded, ntc, crops)
        model.temperatures = list(rounded.temperatures)
    mid = save_model(model, path, torch.float16)
    shipped, _ = load_diffusion(path)
    crop = args.get("eval_crop", EVAL_CROP)
    rows = evaluate(shipped, ntc, kodak_heldout(crop=crop, root=data_dir)[:EVAL_IMAGES])
    card = {
        "name": name,
        "summary": "Generative decoder of the NTC codec: a conditional diffusion model of the residual "
                   "x − x̂_mmse given x̂_mmse and the quality (HFD-style), sampled in "
                   f"{model.sample_steps + 1} network evaluations.",
        "status": "complete" if blob["step"] >= args["steps"] or blob["elapsed"] >= 60 * (args.get("time_budget") or 1e9)
        else f"partial: stopped at step {blob['step']} (resume with --resume)",
        "model_id": mid,
        "base_model": args["ntc_id"],
        "file": path.name,
        "file_sha256": file_sha256(path),
        "size_bytes": path.stat().st_size,
        "storage_dtype": "float16",
        "parameters": sum(p.numel() for p in model.parameters()),
        "config": model.config(),
        "training_data": {"source": "shared/data/train (random crops, horizontal flips; area-weighted image choice)",
                          "crop": args["crop"], "batch": args["batch"],
                          "inputs": "x̂_mmse = NTC synthesis of y' + U(−½, ½) (the codec's exact error law), "
                                    "quality uniform per crop"},
        "steps": blob["step"],
        "optimizer": {"adam_lr": args["lr"], "warmup": args["warmup"], "lr_final_fraction": args["lr_final"],
                      "time_budget_min": args.get("time_budget"), "grad_clip": args["grad_clip"],
                      "ema_decay": args["ema"], "loss": "v-prediction MSE, t ~ U(0, 1)"},
        "wall_time_s": round(blob["elapsed"], 1),
        "wall_time_note": "seconds inside optimisation steps on 2 threads of a 2-core machine; evaluations excluded",
        "machine": describe_machine(),
        "heldout": f"Kodak, centre {crop}×{crop} crops of the first {EVAL_IMAGES} images; PSNR and "
                   "high-frequency energy ratio (chansim.metrics.hf_energy_ratio) of the MMSE and the "
                   "generative reconstruction",
        "heldout_figures": [{k: round(v, 4) for k, v in r.items()} for r in rows],
        "temperature_calibration": {
            "data": f"{CALIBRATION_CROPS} random {args['crop']}² crops of the training photos (seed "
                    f"{CALIBRATION_SEED}), not Kodak",
            "rule": "HF ratios of the set (summed band energies); τ_q = 1 unless HF_gen(τ = 1) > 1, then "
                    "5 bisections on [0.25, 1] for the largest τ with HF_gen < 1",
            "rows": calibration},
        "training_curve": [{"step": h["step"], "elapsed_s": h["elapsed_s"], "heldout": h["heldout"]}
                           for h in blob["history"]],
        "command": command,
        "exported": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    write_card(card, dest / f"{name}.json")
    return path
