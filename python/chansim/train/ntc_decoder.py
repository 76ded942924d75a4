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
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch

from ..diffusion.models import ResidualDiffusion, default_residual
from ..diffusion.temperature import TEMPERATURE_MAX, TEMPERATURE_MIN, temperature_search
from ..diffusion.io import load_model as load_diffusion
from ..ntc.io import load_model
from ..ntc.model import HyperpriorModel
from .data import crop_side
from .loop import EMA, TrainingLoop, add_precision_arg, init_from, resume_args
from .ntc import EVAL_CROP
from .qualities import QualityLaw, quality_weights

EVAL_IMAGES = 8


@torch.no_grad()
def ntc_base(ntc: HyperpriorModel, x: torch.Tensor, q: torch.Tensor, generator=None) -> torch.Tensor:
    """x̂_mmse of crops x (B, 3, H, W) in [0, 1] at qualities q, with the codec's exact error law."""
    y = ntc.analysis(x, q)
    y_hat = y + torch.rand(y.shape, generator=generator, dtype=y.dtype) - 0.5
    mean = scale = None
    if ntc.residual is not None:        # its synthesis estimates y' from the entropy model's (μ', σ') too
        z_hat = torch.round(ntc.hyper_analysis(y, q))
        mean, scale = ntc.entropy_parameters(z_hat, y_hat, q)
        scale = scale.clamp_min(ntc.scale_min)
    return ntc.synthesis(y_hat, q, mean, scale).clamp(0.0, 1.0)


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


CALIBRATION_IMAGES = 16         # distinct training photos …
CALIBRATION_SIDE = 256          # … centre-cropped to this square (whole scenes, as Kodak is measured)
CALIBRATION_SEED = 4242
CALIBRATION_TOLERANCE = 0.03    # |mean HF ratio − 1| at which the search stops
CALIBRATION_EVALS = 6           # sampling passes per quality at most


def calibration_images(root: Optional[Path] = None, count: int = CALIBRATION_IMAGES, side: int = CALIBRATION_SIDE,
                       seed: int = CALIBRATION_SEED) -> torch.Tensor:
    """(n, 3, side, side) uint8: the centre crop of each of ``count`` distinct training photos (a seeded
    choice among those with both sides ≥ ``side``) — never the evaluation set. One crop per photo, so
    the set's per-image ratios vary as a photo collection's do, not as a texture sampler's."""
    from .data import _require_shared, centre_crop, image_files, load_rgb

    if side % 64:
        raise ValueError(f"the calibration side must be a multiple of 64 (the NTC model's stride), got {side}")
    files = image_files(_require_shared("train", root))
    out = []
    for i in np.random.default_rng(seed).permutation(len(files)):
        im = load_rgb(files[i])
        if min(im.shape[:2]) >= side:
            out.append(centre_crop(im, side))
            if len(out) == count:
                break
    if not out:
        raise ValueError(f"no training photo is at least {side}×{side}")
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).contiguous()


@torch.no_grad()
def _mean_hf_ratios(decoder: ResidualDiffusion, ntc: HyperpriorModel, images: torch.Tensor, q: int, seed: int,
                    chunk: int = 4):
    """Mean over ``images`` (N, 3, S, S) uint8 of the per-image HF energy ratios (mmse, generative) at
    0-based quality q — the statistic the realism goal averages — with the noise fixed by ``seed``, so
    two calls differ only in what the decoder changed."""
    from ..metrics import hf_energy_ratio

    gen = torch.Generator().manual_seed(seed)
    ratios_m, ratios_g = [], []
    for part in images.split(chunk):
        x = part.float() / 255.0
        base = ntc_base(ntc, x, torch.full((x.shape[0],), q, dtype=torch.long), gen)
        out = decoder.sample(base, q, torch.randn(x.shape, generator=gen))
        for i, im in enumerate(part):
            orig = im.permute(1, 2, 0).numpy()
            ratios_m.append(hf_energy_ratio(_pixels(base[i:i + 1]), orig))
            ratios_g.append(hf_energy_ratio(_pixels(out[i:i + 1]), orig))
    return float(np.mean(ratios_m)), float(np.mean(ratios_g))


def _pixels(x: torch.Tensor) -> np.ndarray:
    return (x[0].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def calibrate_temperatures(decoder: ResidualDiffusion, ntc: HyperpriorModel, images: torch.Tensor,
                           seed: int = CALIBRATION_SEED, tolerance: float = CALIBRATION_TOLERANCE,
                           max_evals: int = CALIBRATION_EVALS) -> List[dict]:
    """Set each quality's sampling temperature τ_q (:func:`temperature_search`) so that the
    generative reconstruction's mean per-image HF ratio on ``images`` (training photos,
    :func:`calibration_images`) is 1."""
    rows = []
    for q in range(decoder.num_qualities):
        mmse = []

        def ratio_at(tau: float) -> float:
            decoder.temperatures[q] = tau
            hf_m, hf_g = _mean_hf_ratios(decoder, ntc, images, q, seed)
            mmse.append(hf_m)
            return hf_g

        tau, got, tried = temperature_search(ratio_at, tolerance, max_evals)
        decoder.temperatures[q] = tau
        rows.append({"quality": q + 1, "hf_mmse": round(mmse[0], 4), "hf_generative_at_1": round(tried[0][1], 4),
                     "temperature": round(tau, 4), "hf_generative": round(got, 4), "passes": len(tried)})
        print(f"calibration q{q + 1}: HF mmse {mmse[0]:.3f}, generative {tried[0][1]:.3f} at τ = 1 → "
              f"τ = {tau:.3f}: {got:.3f} ({len(tried)} passes)", file=sys.stderr, flush=True)
    return rows


class DecoderTrainer(TrainingLoop):
    """The generative decoder against a frozen NTC model: each crop draws a quality, the loss is the
    residual's v-prediction MSE (:meth:`ResidualDiffusion.loss`)."""

    def __init__(self, args, sampler, heldout: Optional[torch.Tensor]):
        self.ntc, _, ntc_id = load_model(args.ntc)
        self.ntc.requires_grad_(False)
        # Runs from before --quality-weights have none: uniform.
        self.qualities = QualityLaw(getattr(args, "quality_weights", None), self.ntc.num_qualities, str(args.ntc))
        self._start(args, sampler, heldout)
        source = None
        if getattr(args, "init_from", None) and not getattr(args, "resume", False):
            source, args.init_from_id = load_diffusion(args.init_from)
            if not isinstance(source, ResidualDiffusion):
                raise ValueError(f"{args.init_from} is not a generative decoder of NTC model {ntc_id[:16]}…")
            if source.base_model != ntc_id and not getattr(args, "rebase", False):
                raise ValueError(f"{args.init_from} is not a generative decoder of NTC model {ntc_id[:16]}… (it "
                                 f"decodes {source.base_model[:16]}…; --rebase continues it on this model)")
            # The source's widths define the network being continued; its unit too, unless it is rebased
            # onto another NTC model, whose residuals are measured afresh below.
            args.widths = list(source.net.config()["widths"])
            if source.base_model == ntc_id:
                args.residual_scales = [float(v) for v in source.residual_scales]
            args.ntc_id = ntc_id
        if getattr(args, "residual_scales", None) is None:
            args.residual_scales = residual_scales(self.ntc, sampler)
            args.ntc_id = ntc_id
        if args.ntc_id != ntc_id:
            raise ValueError(f"{args.ntc} is NTC model {ntc_id[:16]}…, this run trains against {args.ntc_id[:16]}…")
        self.model = default_residual(args.residual_scales, ntc_id, widths=tuple(args.widths))
        if source is not None:
            init_from(self.model, source)     # the network only: schedule fixed, temperatures recalibrated
        self.opt = torch.optim.Adam(self.model.parameters(), lr=args.lr, betas=(0.9, 0.99))
        self.ema = EMA(self.model, args.ema)

    def loss_step(self, generator: torch.Generator):
        x = self.sampler.batch(self.args.batch).float() / 255.0
        q = self.qualities.draw(x.shape[0], generator)
        return self.model.loss(x, ntc_base(self.ntc, x, q, generator), q, generator), {}

    def heldout_figures(self) -> Dict:
        return {"heldout": evaluate(self.model, self.ntc, self.heldout)}

    def report(self, rec: dict) -> None:
        pts = "; ".join(f"q{r['quality']}: PSNR {r['psnr_mmse']:.2f}/{r['psnr_gen']:.2f} "
                        f"HF {r['hf_mmse']:.2f}/{r['hf_gen']:.2f}" for r in rec["heldout"])
        print(f"step {rec['step']} held-out (mmse/generative) {pts}", file=sys.stderr, flush=True)


def add_parser(sub) -> None:
    from ..codecs._pretrained import models_dir

    p = sub.add_parser("ntc-decoder", help="train the NTC codec's generative (diffusion) decoder")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--ntc", type=Path, default=models_dir() / "ntc_default.pt",
                   help="the NTC model file whose reconstructions it decodes (default: the shipped one)")
    p.add_argument("--init-from", type=Path, default=None,
                   help="continue the network of an exported decoder of the same NTC model (fresh optimizer; "
                        "--rebase for a decoder of another)")
    p.add_argument("--rebase", action="store_true",
                   help="with --init-from: continue a decoder trained on another NTC model (e.g. the previous "
                        "ntc_default after a warm restart of it) on --ntc; the residual unit is measured afresh")
    p.add_argument("--quality-weights", type=quality_weights, default=None,
                   help="comma-separated relative frequencies of qualities 1, 2, … among the training crops "
                        "(one per quality of --ntc; default: uniform), e.g. 3,3,3,3,3,3,1,1,1,1 to spend 82 %% "
                        "of the crops on q1-6 (uniform: 60 %%), where the realism goal's cost bound binds")
    p.add_argument("--steps", type=int, default=20000)
    p.add_argument("--time-budget", type=float, default=None,
                   help="minutes of optimisation the LR schedule is planned for (cosine over whichever ends first)")
    p.add_argument("--time-limit", type=float, default=None, help="stop this session after this many minutes")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--crop", type=crop_side, default=128, help="crop side (a multiple of 64, the NTC model's stride)")
    p.add_argument("--widths", type=int, nargs="+", default=[32, 48, 64, 96])
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--lr-final", type=float, default=0.05)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--grad-clip", type=float, default=1.0)
    p.add_argument("--ema", type=float, default=0.998)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    add_precision_arg(p)
    p.add_argument("--checkpoint-minutes", type=float, default=3.0)
    p.add_argument("--eval-minutes", type=float, default=15.0)
    p.add_argument("--log-every", type=int, default=20)
    p.add_argument("--data-dir", type=Path, default=None)
    p.add_argument("--eval-crop", type=crop_side, default=EVAL_CROP, help="side of the held-out Kodak centre crops")


def main(args) -> int:
    from .data import CropSampler, kodak_heldout

    torch.set_num_threads(args.threads)
    if args.resume:
        args = resume_args(args.out, {k: getattr(args, k)
                                      for k in ("steps", "time_budget", "time_limit", "threads", "precision")})
    sampler = CropSampler.from_shared(args.crop, seed=args.seed, root=args.data_dir, progress=False)
    heldout = kodak_heldout(crop=args.eval_crop, root=args.data_dir)[:EVAL_IMAGES]
    try:
        trainer = DecoderTrainer(args, sampler, heldout)
    except ValueError as e:            # weights that do not fit --ntc, a source that is not its decoder
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2)
    if args.resume:
        trainer.load_checkpoint()
        print(f"resumed at step {trainer.step} ({trainer.elapsed / 60:.1f} min)", file=sys.stderr)
    trainer.run()
    return 0


def is_decoder_run(run_dir: Path) -> bool:
    blob = torch.load(Path(run_dir) / "checkpoint.pt", map_location="cpu", weights_only=False)
    return blob.get("config", {}).get("kind") == ResidualDiffusion.kind


def export(run_dir: Path, dest: Path, name: str, command: str = "", data_dir: Optional[Path] = None,
           calibrate: bool = True, calibration_side: int = CALIBRATION_SIDE,
           calibration_count: int = CALIBRATION_IMAGES) -> Path:
    """Write ``dest/name.pt`` (float16) and its card, with held-out figures measured on the stored weights;
    ``calibrate``: set the sampling temperatures first (:func:`calibrate_temperatures` on
    :func:`calibration_images` of that side and count)."""
    import datetime as _dt

    from ..diffusion.io import file_sha256, save_model, write_card
    from .data import kodak_heldout
    from .export import _source_summary
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
        images = calibration_images(data_dir, calibration_count, calibration_side)
        rounded, _ = load_diffusion(path)        # calibrate the weights as stored (float16)
        calibration = calibrate_temperatures(rounded, ntc, images)
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
                                    + QualityLaw(args.get("quality_weights"), ntc.num_qualities, "").describe()},
        "steps": blob["step"],
        "optimizer": {"adam_lr": args["lr"], "warmup": args["warmup"], "lr_final_fraction": args["lr_final"],
                      "time_budget_min": args.get("time_budget"), "grad_clip": args["grad_clip"],
                      "ema_decay": args["ema"], "loss": "v-prediction MSE, t ~ U(0, 1)",
                      "precision": args.get("precision") or "fp32"},
        "wall_time_s": round(blob["elapsed"], 1),
        "wall_time_note": "seconds inside optimisation steps on 2 threads of a 2-core machine; evaluations excluded",
        "machine": describe_machine(),
        "heldout": f"Kodak, centre {crop}×{crop} crops of the first {EVAL_IMAGES} images; PSNR and "
                   "high-frequency energy ratio (chansim.metrics.hf_energy_ratio) of the MMSE and the "
                   "generative reconstruction",
        "heldout_figures": [{k: round(v, 4) for k, v in r.items()} for r in rows],
        "temperature_calibration": {
            "data": f"centre {calibration_side}² crops of {len(images) if calibrate else 0} training photos "
                    f"(seeded choice, seed {CALIBRATION_SEED}), not Kodak",
            "rule": f"mean per-image HF ratio of the generative reconstruction → 1: τ_q = 1 unless it is more than "
                    f"{CALIBRATION_TOLERANCE} from 1 at τ = 1, then a bracketing false-position search on "
                    f"[{TEMPERATURE_MIN}, {TEMPERATURE_MAX}] (chansim.diffusion.temperature.temperature_search; "
                    f"≤ {CALIBRATION_EVALS} passes, stop within ±{CALIBRATION_TOLERANCE})",
            "rows": calibration},
        "initialised_from": _source_summary({"init_from": args.get("init_from"),
                                             "init_from_id": args.get("init_from_id")},
                                            keys=("name", "steps", "wall_time_s", "base_model",
                                                  "initialised_from")),
        "training_curve": [{"step": h["step"], "elapsed_s": h["elapsed_s"], "heldout": h["heldout"]}
                           for h in blob["history"]],
        "command": command,
        "exported": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    write_card(card, dest / f"{name}.json")
    return path
