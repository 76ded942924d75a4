"""The training loop every trainer shares (:class:`TrainingLoop`: Adam + warm-up/cosine LR,
gradient clipping, EMA weights, held-out evaluations, checkpoints resumable bit for bit in the data
stream, a JSON-lines log), its pieces (:class:`EMA`, :func:`lr_at`, :func:`resume_args`) and the
trainer of UQDM's and DiffC's diffusion models (:class:`Trainer`, held-out bits/dim).
"""

from __future__ import annotations

import argparse
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
from ..machine import cpu_name


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
        # Frozen parameters (train ntc --encoder-only's decoder side) are copied for the same reason.
        params = {k for k, p in model.named_parameters() if p.requires_grad}
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


def lr_at(progress: float, step: int, args) -> float:
    """Linear warm-up over ``args.warmup`` steps, then a cosine from ``args.lr`` down to
    ``args.lr_final · args.lr`` over the run's progress (0 → 1)."""
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    return args.lr * (args.lr_final + (1 - args.lr_final) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


PATH_ARGS = ("out", "data_dir", "export_dir", "ntc", "init_from")


def resume_args(out: Path, overrides: Dict[str, Any]) -> argparse.Namespace:
    """The arguments of the run in ``out`` (its checkpoint's), with this session's non-None
    ``overrides`` on top; a session's own limits (``time_limit``, ``session_steps``) never carry over."""
    blob = torch.load(Path(out) / "checkpoint.pt", map_location="cpu", weights_only=False)
    saved = dict(blob["args"])
    saved.update(time_limit=None, session_steps=None)
    saved.update({k: v for k, v in overrides.items() if v is not None})
    saved["resume"] = True
    for k in PATH_ARGS:
        if saved.get(k) is not None:
            saved[k] = Path(saved[k])
    return argparse.Namespace(**saved)


PRECISIONS = ("fp32", "bf16")


def add_precision_arg(parser) -> None:
    parser.add_argument("--precision", choices=PRECISIONS, default=None,
                        help="fp32 (default; a resumed run keeps its own) or bf16: the training forward pass "
                             "runs under CPU autocast to bfloat16 with channels-last tensors (2.5x faster per NTC "
                             "step where the CPU has AMX; BENCHMARKS.md); held-out figures stay float32")


class TrainingLoop:
    """The one training loop of every trainer: Adam with warm-up and cosine LR over the run's progress,
    gradient clipping, EMA weights, periodic held-out evaluation (EMA weights) and checkpoints, and
    ``<out>/checkpoint.pt`` to resume from bit for bit (model, EMA, optimizer, step, wall time,
    data-sampler and torch RNG states, arguments, history), ``<out>/log.jsonl`` to follow it.

    A trainer sets ``args``, ``sampler``, ``heldout``, ``model`` (with ``config()``), ``opt`` and ``ema``
    (:meth:`_start` sets the rest) and provides :meth:`loss_step` (one batch's loss) and
    :meth:`heldout_figures` / :meth:`report` (what an evaluation measures and prints).

    The run stops at ``args.steps``, at progress 1 (``args.time_budget`` minutes of optimisation when
    given, which the LR schedule is planned over), after ``args.session_steps`` more steps, or after
    ``args.time_limit`` minutes of this session, whichever comes first.

    ``args.precision == "bf16"`` runs :meth:`loss_step` under CPU autocast to bfloat16 (convolutions and
    matrix products; the model keeps float32 master weights, Adam and the EMA stay float32) with the
    model in channels-last layout, which oneDNN's bfloat16 kernels need to be fast. Trainers cast what
    feeds a likelihood back to float32 (:meth:`HyperpriorModel.forward`); held-out figures are
    measured outside autocast, i.e. in the float32 arithmetic the codecs use.
    """

    def _start(self, args, sampler, heldout: Optional[torch.Tensor]) -> None:
        self.args = args
        self.out = Path(args.out)       # created when the run starts: a refused start writes nothing
        self.sampler, self.heldout = sampler, heldout
        self.step, self.elapsed, self.history = 0, 0.0, []
        torch.manual_seed(args.seed)

    # -- what a trainer provides -------------------------------------------------------------------
    def loss_step(self, generator: torch.Generator):
        """(scalar loss to minimise, extra float entries for the log) of one training batch."""
        raise NotImplementedError

    def heldout_figures(self) -> Dict[str, Any]:
        """The held-out measurements (the EMA weights are in ``model`` while this runs)."""
        raise NotImplementedError

    def report(self, record: Dict[str, Any]) -> None:
        pass

    def checkpoint_extra(self) -> Dict[str, Any]:
        return {}

    # -- schedule ----------------------------------------------------------------------------------
    def progress(self) -> float:
        p = self.step / self.args.steps
        budget = getattr(self.args, "time_budget", None)
        return max(p, self.elapsed / (budget * 60)) if budget else p

    # -- evaluation --------------------------------------------------------------------------------
    def evaluate_ema(self) -> Optional[Dict[str, Any]]:
        if self.heldout is None:
            return None
        live = {k: v.clone() for k, v in self.model.state_dict().items()}
        self.ema.copy_to(self.model)
        try:
            rec = {"step": self.step, "elapsed_s": round(self.elapsed, 1), **self.heldout_figures()}
        finally:
            self.model.load_state_dict(live)
        self.history.append(rec)
        self.log(rec)
        self.report(rec)
        return rec

    # -- the loop ----------------------------------------------------------------------------------
    def run(self) -> None:
        a = self.args
        self.out.mkdir(parents=True, exist_ok=True)
        self.model.train()
        bf16 = getattr(a, "precision", None) == "bf16"
        if bf16:
            self.model.to(memory_format=torch.channels_last)
        deadline = time.monotonic() + a.time_limit * 60 if getattr(a, "time_limit", None) else math.inf
        session = getattr(a, "session_steps", None)
        stop_at = min(a.steps, self.step + session) if session else a.steps
        last_ckpt = last_eval = time.monotonic()
        smooth = None
        gen = torch.Generator().manual_seed(a.seed + 1 + self.step)
        while self.step < stop_at and self.progress() < 1.0 and time.monotonic() < deadline:
            t0 = time.monotonic()
            lr = lr_at(self.progress(), self.step, a)
            for g in self.opt.param_groups:
                g["lr"] = lr * g.get("lr_scale", 1.0)       # a group may move faster (NTC's residual gates)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss, extras = self.loss_step(gen)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            gnorm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), a.grad_clip)
            if torch.isfinite(gnorm):       # a non-finite gradient skips the step rather than poison Adam
                self.opt.step()
                self.ema.update(self.model)
            self.step += 1
            self.elapsed += time.monotonic() - t0
            value = float(loss.detach())
            smooth = value if smooth is None else 0.98 * smooth + 0.02 * value
            if self.step % a.log_every == 0:
                self.log({"step": self.step, "elapsed_s": round(self.elapsed, 1), "loss": value,
                          "loss_smooth": smooth, "lr": lr, "grad_norm": float(gnorm), **extras})
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

    # -- checkpoints -------------------------------------------------------------------------------
    @property
    def ckpt_path(self) -> Path:
        return self.out / "checkpoint.pt"

    def checkpoint_args(self) -> Dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(self.args).items()}

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


class Trainer(TrainingLoop):
    """UQDM's and DiffC's diffusion models: the loss is the NELBO in bits per dimension."""

    def __init__(self, args, sampler, heldout: Optional[torch.Tensor]):
        self._start(args, sampler, heldout)
        self.model = make_model(args)
        if getattr(args, "init_from", None) and not getattr(args, "resume", False):
            from ..diffusion.io import load_model

            init_from(self.model, load_model(args.init_from)[0])
        self.opt = torch.optim.Adam(self.model.parameters(), lr=args.lr, betas=(0.9, 0.99), eps=1e-8)
        self.ema = EMA(self.model, args.ema)

    def loss_step(self, generator: torch.Generator):
        x = self.sampler.batch(self.args.batch)
        bpd = likelihood.nats_to_bpd(sum(self.model.loss(x).values()), x[0].numel()).mean()
        return bpd, {"gamma": [self.model.schedule.gamma_min, self.model.schedule.gamma_max]}

    def heldout_figures(self) -> Dict[str, Any]:
        return {"heldout_bpd": evaluate(self.model, self.heldout)}

    def report(self, record: Dict[str, Any]) -> None:
        print(f"step {record['step']}: held-out {record['heldout_bpd']['total']:.4f} bits/dim (EMA)",
              file=sys.stderr, flush=True)


def describe_machine() -> str:
    return f"{cpu_name()}; torch {torch.__version__}; python {platform.python_version()}"
