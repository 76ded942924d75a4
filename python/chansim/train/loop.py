"""The training loop: Adam + warm-up/cosine LR, gradient clipping, EMA weights,
periodic checkpoints (resumable bit for bit in the data stream), held-out bits/dim.

Everything a resumed run needs lives in ``<out>/checkpoint.pt``: model, EMA,
optimizer, step, data-sampler and torch RNG states, accumulated wall time, the
run's arguments and its evaluation history. ``<out>/log.jsonl`` gets one line per
log interval and per evaluation.
"""

from __future__ import annotations

import json
import math
import platform
import sys
import time
from pathlib import Path
from typing import Any, Dict, Optional

import torch

from ..diffusion import likelihood
from ..diffusion.models import GaussianDiffusion, default_diffc, default_uqdm
from ..diffusion.schedules import LinearSchedule
from ..diffusion.unet import UNet


class EMA:
    """Exponential moving average of parameters with the usual warm-up: decay_n = min(d, (1 + n)/(10 + n))."""

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.updates = 0
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        # Parameters are averaged; buffers (a fixed schedule's endpoints, …) are copied: averaging a
        # constant in float32 drifts it by rounding (γ_min = −10 became −10.00012 over 9,474 updates).
        params = {k for k, _ in model.named_parameters()}
        for k, v in model.state_dict().items():
            if v.is_floating_point() and k in params:
                self.shadow[k].mul_(d).add_(v.detach(), alpha=1 - d)
            else:
                self.shadow[k].copy_(v)

    def copy_to(self, model: torch.nn.Module) -> None:
        model.load_state_dict(self.shadow)

    def state_dict(self):
        return {"decay": self.decay, "updates": self.updates, "shadow": self.shadow}

    def load_state_dict(self, sd) -> None:
        self.decay, self.updates = sd["decay"], sd["updates"]
        self.shadow = {k: v.clone() for k, v in sd["shadow"].items()}


def make_model(args) -> torch.nn.Module:
    widths = tuple(args.widths)
    if args.kind == "uqdm":
        m = default_uqdm(steps=args.uqdm_steps, widths=widths)
    else:
        m = default_diffc(widths=widths)
    net_range = getattr(args, "net_gamma_range", None)
    if net_range:  # conditioning range of a network this run was initialised from
        cfg = m.net.config()
        cfg["gamma_range"] = list(net_range)
        m.net = UNet(**cfg)
    if args.schedule == "fixed_linear":
        m.schedule = LinearSchedule(m.schedule.gamma_min, m.schedule.gamma_max)
    return m


@torch.no_grad()
def init_from(model: torch.nn.Module, source: torch.nn.Module) -> Dict[str, str]:
    """Copy a trained network into ``model``'s network (the schedule stays the run's own).

    Tensors of equal shape are copied. The output convolution may have more channels
    than the source (UQDM's extra scale outputs): the source's channels are copied
    into the leading ones (pixel-shuffle keeps channel c in rows 4c … 4c + 3) and the
    rest keep their zero initialisation, i.e. scale factor 1. Returns what was done
    per tensor ("copied" / "partial").
    """
    dst, src = model.net.state_dict(), source.net.state_dict()
    done = {}
    for k, v in dst.items():
        if k not in src:
            continue
        w = src[k]
        if w.shape == v.shape:
            v.copy_(w)
            done[k] = "copied"
        elif k.startswith("conv_out.") and w.shape[1:] == v.shape[1:] and w.shape[0] < v.shape[0]:
            v[: w.shape[0]].copy_(w)
            done[k] = "partial"
    model.net.load_state_dict(dst)
    missing = sorted(set(dst) - set(done))
    if missing:
        raise ValueError(f"cannot initialise {missing[:5]}… from the source network (architectures differ)")
    return done


@torch.no_grad()
def evaluate_per_image(model: torch.nn.Module, images: torch.Tensor, batch: int = 4, seed: int = 0,
                       time_samples: int = 8) -> Dict[str, torch.Tensor]:
    """NELBO terms per image in bits per dimension (fixed noise seed, so runs are comparable).

    Images are processed in batches of ``batch`` with one generator, so the first k·batch
    images get the same numbers whether or not the rest are evaluated. The Gaussian
    model's continuous-time term is averaged over ``time_samples`` stratified t per
    image; UQDM's T steps are all evaluated anyway.
    """
    was_training = model.training
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    parts: Dict[str, list] = {}
    for i in range(0, images.shape[0], batch):
        x = images[i:i + batch]
        kw = {"time_samples": time_samples} if isinstance(model, GaussianDiffusion) else {}
        for k, v in model.loss(x, generator=gen, **kw).items():
            parts.setdefault(k, []).append(likelihood.nats_to_bpd(v.double(), x[0].numel()))
    model.train(was_training)
    out = {k: torch.cat(v) for k, v in parts.items()}
    out["total"] = sum(out.values())
    return out


def evaluate(model: torch.nn.Module, images: torch.Tensor, **kw) -> Dict[str, float]:
    """Mean of :func:`evaluate_per_image` over the images."""
    return {k: float(v.mean()) for k, v in evaluate_per_image(model, images, **kw).items()}


def lr_at(step: int, args) -> float:
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    frac = min(1.0, (step - args.warmup) / max(1, args.steps - args.warmup))
    return args.lr * (args.lr_final + (1 - args.lr_final) * 0.5 * (1 + math.cos(math.pi * frac)))


class Checkpointed:
    """What every trainer resumes from: ``<out>/checkpoint.pt`` (model, EMA, optimizer, step, wall
    time, data-sampler and torch RNG states, arguments, history) and ``<out>/log.jsonl``.

    Needs ``out``, ``model`` (with ``config()``), ``ema``, ``opt``, ``sampler``, ``args``, ``step``,
    ``elapsed`` and ``history``; :meth:`checkpoint_extra` adds a trainer's own entries.
    """

    @property
    def ckpt_path(self) -> Path:
        return self.out / "checkpoint.pt"

    def checkpoint_args(self) -> Dict[str, Any]:
        return vars(self.args)

    def checkpoint_extra(self) -> Dict[str, Any]:
        return {}

    def save_checkpoint(self) -> None:
        blob = {"model": self.model.state_dict(), "ema": self.ema.state_dict(), "opt": self.opt.state_dict(),
                "step": self.step, "elapsed": self.elapsed, "sampler": self.sampler.state(),
                "torch_rng": torch.get_rng_state(), "args": self.checkpoint_args(), "history": self.history,
                "config": self.model.config(), **self.checkpoint_extra()}
        tmp = self.ckpt_path.with_suffix(".tmp")
        torch.save(blob, tmp)
        tmp.replace(self.ckpt_path)

    def load_checkpoint(self) -> None:
        blob = torch.load(self.ckpt_path, map_location="cpu", weights_only=False)
        self.model.load_state_dict(blob["model"])
        self.ema.load_state_dict(blob["ema"])
        self.opt.load_state_dict(blob["opt"])
        self.step, self.elapsed, self.history = blob["step"], blob["elapsed"], blob["history"]
        self.sampler.set_state(blob["sampler"])
        torch.set_rng_state(blob["torch_rng"])

    def log(self, record: Dict[str, Any]) -> None:
        with open(self.out / "log.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")


class Trainer(Checkpointed):
    def __init__(self, args, sampler, heldout: Optional[torch.Tensor]):
        self.args = args
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.sampler, self.heldout = sampler, heldout
        torch.manual_seed(args.seed)
        self.model = make_model(args)
        if getattr(args, "init_from", None) and not getattr(args, "resume", False):
            from ..diffusion.io import load_model

            init_from(self.model, load_model(args.init_from)[0])
        self.opt = torch.optim.Adam(self.model.parameters(), lr=args.lr, betas=(0.9, 0.99), eps=1e-8)
        self.ema = EMA(self.model, args.ema)
        self.step = 0
        self.elapsed = 0.0
        self.history = []

    # -- checkpoints -------------------------------------------------------------------------
    # -- evaluation --------------------------------------------------------------------------
    def evaluate_ema(self) -> Optional[Dict[str, float]]:
        if self.heldout is None:
            return None
        live = {k: v.clone() for k, v in self.model.state_dict().items()}
        self.ema.copy_to(self.model)
        res = evaluate(self.model, self.heldout)
        self.model.load_state_dict(live)
        rec = {"step": self.step, "elapsed_s": round(self.elapsed, 1), "heldout_bpd": res}
        self.history.append(rec)
        self.log(rec)
        return res

    # -- the loop ----------------------------------------------------------------------------
    def run(self) -> None:
        from tqdm import tqdm

        a = self.args
        self.model.train()
        deadline = time.monotonic() + a.time_limit * 60 if a.time_limit else math.inf
        last_ckpt = last_eval = time.monotonic()
        smooth = None
        bar = tqdm(total=a.steps, initial=self.step, desc=f"train {a.kind}", unit="step", dynamic_ncols=True,
                   mininterval=5.0, file=sys.stderr)
        stop_at = min(a.steps, self.step + a.session_steps) if getattr(a, "session_steps", None) else a.steps
        while self.step < stop_at and time.monotonic() < deadline:
            t0 = time.monotonic()
            for g in self.opt.param_groups:
                g["lr"] = lr_at(self.step, a)
            x = self.sampler.batch(a.batch)
            terms = self.model.loss(x)
            bpd = likelihood.nats_to_bpd(sum(terms.values()), x[0].numel()).mean()
            self.opt.zero_grad(set_to_none=True)
            bpd.backward()
            gnorm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), a.grad_clip)
            if torch.isfinite(gnorm):
                self.opt.step()
                self.ema.update(self.model)
            self.step += 1
            self.elapsed += time.monotonic() - t0
            b = float(bpd.detach())
            smooth = b if smooth is None else 0.98 * smooth + 0.02 * b
            bar.update(1)
            bar.set_postfix(bpd=f"{smooth:.3f}", refresh=False)
            if self.step % a.log_every == 0:
                self.log({"step": self.step, "elapsed_s": round(self.elapsed, 1), "train_bpd": b,
                          "train_bpd_smooth": smooth, "lr": lr_at(self.step - 1, a), "grad_norm": float(gnorm),
                          "gamma": [self.model.schedule.gamma_min, self.model.schedule.gamma_max]})
            now = time.monotonic()
            if now - last_eval > a.eval_minutes * 60:
                res = self.evaluate_ema()
                if res is not None:
                    bar.write(f"step {self.step}: held-out {res['total']:.4f} bits/dim (EMA)")
                last_eval = time.monotonic()
            if now - last_ckpt > a.checkpoint_minutes * 60:
                self.save_checkpoint()
                last_ckpt = time.monotonic()
        bar.close()
        res = self.evaluate_ema()
        if res is not None:
            print(f"step {self.step}: held-out {res['total']:.4f} bits/dim (EMA)", file=sys.stderr)
        self.save_checkpoint()


def describe_machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}; torch {torch.__version__}; python {platform.python_version()}"
