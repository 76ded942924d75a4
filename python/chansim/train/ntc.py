"""Training of the NTC hyperprior (:class:`chansim.ntc.HyperpriorModel`) on CPU.

One run trains every quality: each crop in a batch draws a quality uniformly and
is weighted by its own λ. The learning rate follows a warm-up and a cosine decay
over the run's *progress*, the larger of steps done / planned and wall time used /
``--time-limit``, so a run cut short by its time budget still ends at a low rate.

Held-out numbers (EMA weights): the 24 Kodak images' centre 256×256 crops at every
quality — bits per pixel from the model's own code lengths (z rounded, y through
the universal quantizer's noise law, i.e. the codec's expected size without the
header) and PSNR — with Pillow's JPEG and WebP on the same crops and the
Bjøntegaard deltas against them, one line per evaluation in ``<out>/log.jsonl``.
"""

from __future__ import annotations

import io
import math
import sys
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from ..evaluation import bd_psnr
from ..ntc.model import BLOCK_MODULES, ENCODER_CONFIG, QUALITY_LAMBDAS, HyperpriorModel, encoder_only
from ..ntc.tables import SCALE_MIN, check_scale_min
from .data import crop_side
from .loop import EMA, TrainingLoop, add_precision_arg, resume_args
from .qualities import QualityLaw, balance_power, balanced, loss_weights, quality_weights

EVAL_CROP = 256


def kodak_eval_crops(root: Optional[Path] = None, crop: int = EVAL_CROP) -> torch.Tensor:
    from .data import kodak_heldout

    return kodak_heldout(crop=crop, root=root)


def _codec_curve(images: np.ndarray, fmt: str, qualities) -> List[tuple]:
    from PIL import Image

    out = []
    for q in qualities:
        bpp, psnr = [], []
        for im in images:
            buf = io.BytesIO()
            Image.fromarray(im).save(buf, format=fmt, quality=q, **({"optimize": True} if fmt == "JPEG" else {}))
            with Image.open(io.BytesIO(buf.getvalue())) as d:
                rec = np.asarray(d.convert("RGB"))
            bpp.append(8 * len(buf.getvalue()) / (im.shape[0] * im.shape[1]))
            mse = np.mean((rec.astype(np.float64) - im) ** 2)
            psnr.append(10 * np.log10(255.0 ** 2 / mse))
        out.append((float(np.mean(bpp)), float(np.mean(psnr))))
    return out


def baseline_curves(images: torch.Tensor) -> Dict[str, List[tuple]]:
    ims = images.permute(0, 2, 3, 1).numpy()
    return {"JPEG": _codec_curve(ims, "JPEG", range(5, 100, 5)),
            "WebP": _codec_curve(ims, "WEBP", range(5, 100, 5))}


@torch.no_grad()
def evaluate(model: HyperpriorModel, images: torch.Tensor, seed: int = 0, batch: int = 8) -> List[dict]:
    """(bpp, psnr) per quality, means over the images (fixed noise seed)."""
    was = model.training
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for q in range(model.num_qualities):
        bits, mse = [], []
        for i in range(0, images.shape[0], batch):
            x = images[i:i + batch].float() / 255.0
            qq = torch.full((x.shape[0],), q, dtype=torch.long)
            out = model(x, qq, generator=gen)
            bits.append(out["bits_y"] + out["bits_z"])
            rec = (out["x_hat"].clamp(0, 1) * 255).round()
            mse.append(((rec - x * 255) ** 2).mean((1, 2, 3)))
        b, m = torch.cat(bits), torch.cat(mse)
        px = images.shape[2] * images.shape[3]
        rows.append({"quality": q + 1, "bpp": float((b / px).mean()),
                     "psnr": float((10 * torch.log10(255.0 ** 2 / m)).mean())})
    model.train(was)
    return rows


#: Training crops ``--loss-weights balanced`` measures each quality's mean loss on (at the run's start).
BALANCE_CROPS = 16


@torch.no_grad()
def quality_losses(model: HyperpriorModel, x: torch.Tensor, seed: int = 0, batch: int = 4) -> List[float]:
    """Each quality's mean Lagrangian λ·MSE + bpp over the crops ``x`` (the training pass's noise, a fixed
    seed, float32 — what :func:`chansim.train.qualities.balanced` weighs by). The model has no layer
    that behaves differently in training, so its mode is left as it is."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for qi in range(model.num_qualities):
        total = 0.0
        for i in range(0, x.shape[0], batch):
            part = x[i:i + batch]
            q = torch.full((part.shape[0],), qi, dtype=torch.int64)
            total += float(model.loss(part, q, generator=g)["rd"].sum())
        out.append(total / x.shape[0])
    return out


def ladder(args) -> tuple:
    """The run's λ ladder (runs from before ``--lambdas`` existed used :data:`QUALITY_LAMBDAS`)."""
    lam = args.get("lambdas") if isinstance(args, dict) else getattr(args, "lambdas", None)
    return tuple(lam) if lam else QUALITY_LAMBDAS


def _source_settings(path: Path) -> Dict:
    """The run arguments of a checkpoint, or the config of an exported NTC model file."""
    blob = torch.load(path, map_location="cpu", weights_only=False)
    if isinstance(blob, dict) and "args" in blob:
        return dict(blob["args"])
    if isinstance(blob, dict) and isinstance(blob.get("config"), dict) and "lambdas" in blob["config"]:
        return dict(blob["config"])
    raise ValueError(f"{path}: neither an NTC model file nor an NTC run checkpoint")


def _exported_model_id(path: Path) -> Optional[str]:
    """The model id of an exported NTC model file; None for a run checkpoint (told by its content, not its
    file name: a checkpoint copied aside keeps being one)."""
    from ..ntc.io import load_model

    blob = torch.load(path, map_location="cpu", weights_only=False)
    if isinstance(blob, dict) and "args" in blob:
        return None
    return load_model(path)[2]


SOURCE_CARD_KEYS = ("name", "steps", "total_steps_all_runs", "heldout_bd_psnr_db")
"""The entries of an exported source's card that a run's card repeats under ``initialised_from``."""


def source_lineage(path: Path) -> Dict:
    """What an ``--init-from`` run starts from, recorded in its arguments when it starts (the file at
    that path may be replaced later, as a shipped model is): an exported model's id and its card's
    :data:`SOURCE_CARD_KEYS`; a run checkpoint's step and the source *its* run recorded, so the card of
    a warm restart from a checkpoint counts every run before it (``total_steps_all_runs``). A checkpoint
    written before runs recorded their source has no ``total_steps_all_runs`` (None: unknown)."""
    from ..ntc.io import load_model
    from .export import _source_summary

    path = Path(path)
    blob = torch.load(path, map_location="cpu", weights_only=False)
    if isinstance(blob, dict) and "args" in blob:
        prior = blob["args"].get("source_lineage")
        known = prior is not None or not blob["args"].get("init_from")
        return {"file": path.name, "model_id": None, "what": "a run checkpoint (its EMA weights)",
                "steps": int(blob["step"]),
                "total_steps_all_runs": int(blob["step"]) + steps_before(prior) if known else None,
                "initialised_from": prior}
    # Not a checkpoint (told by the content just read): an exported model file, which names its id.
    return _source_summary({"init_from": path, "init_from_id": load_model(path)[2]}, keys=SOURCE_CARD_KEYS)


def steps_before(source: Optional[Dict]) -> int:
    """Training steps behind a run's recorded source: its lineage total, else its own steps (0 without one)."""
    return (source or {}).get("total_steps_all_runs") or (source or {}).get("steps") or 0


ARCHITECTURE_DEFAULTS = {"n": 96, "m": 128, "slices": 1, "residual": False, "blocks": 0, "synthesis_blocks": None,
                         "quality_slices": None}
"""A fresh run's architecture where its flags are not given (``--hyper-n`` defaults to ``--n``,
``--scale-min`` to :data:`SCALE_MIN`, ``--lambdas`` to :data:`QUALITY_LAMBDAS`)."""


def source_config(path: Path) -> Dict:
    """What ``--init-from`` continues for every flag not given: the source's architecture (n, m,
    slices, residual, blocks, synthesis_blocks and n_analysis — None when the synthesis' blocks are
    ``blocks`` at each place or the analysis transform is N wide, so they follow a new ``--blocks`` or
    ``--n`` — and hyper_n), σ' floor and λ ladder, from an exported NTC model file's config or a run
    checkpoint's arguments (older runs without a key get the value they were trained with)."""
    s = _source_settings(path)
    return {"n": int(s.get("n", ARCHITECTURE_DEFAULTS["n"])), "m": int(s.get("m", ARCHITECTURE_DEFAULTS["m"])),
            "slices": int(s.get("slices") or 1), "residual": bool(s.get("residual", False)),
            "blocks": int(s.get("blocks") or 0),
            "synthesis_blocks": tuple(int(c) for c in s["synthesis_blocks"]) if s.get("synthesis_blocks") else None,
            "hyper_n": int(s.get("hyper_n") or s.get("n", ARCHITECTURE_DEFAULTS["n"])),
            "n_analysis": int(s["n_analysis"]) if s.get("n_analysis") else None,
            "quality_slices": tuple(int(c) for c in s["quality_slices"]) if s.get("quality_slices") else None,
            "scale_min": float(s.get("scale_min") or SCALE_MIN), "lambdas": tuple(float(v) for v in ladder(s))}


GAIN_TABLES = ("gain", "inv_gain", "hgain", "inv_hgain")
#: Per-quality tables that are not log-gains: the latent residual's gates (O(1) weights per quality and
#: channel). A new ladder interpolates them in log λ like the gains, but holds them at the end rows beyond
#: the old ladder — nothing says a gate keeps its trend past the last λ it was trained at.
GATE_TABLES = ("residual.weight",)


def regrid_gains(table: torch.Tensor, old: Sequence[float], new: Sequence[float], extend: bool = True) -> torch.Tensor:
    """Rows of a log-gain table for a new λ ladder: piecewise-linear in log λ through the old rows,
    extended linearly beyond them with the slope of the nearest two (log-gains are close to linear in
    log λ, step ∝ λ^(−½)), so a warm restart can change the ladder without relearning the gains.
    ``extend=False`` holds the first and last rows beyond the old ladder instead (:data:`GATE_TABLES`)."""
    lo, ln = torch.log(torch.tensor(old, dtype=torch.float64)), torch.log(torch.tensor(new, dtype=torch.float64))
    t = table.double()
    rows = []
    for v in ln:
        i = int(torch.searchsorted(lo, v).clamp(1, len(lo) - 1))
        w = (v - lo[i - 1]) / (lo[i] - lo[i - 1])
        if not extend:
            w = w.clamp(0.0, 1.0)
        rows.append((1 - w) * t[i - 1] + w * t[i])     # exact at the old λ (w = 0 or 1)
    return torch.stack(rows).to(table.dtype)


def _nearest_rows(table: torch.Tensor, old: Sequence[float], new: Sequence[float]) -> torch.Tensor:
    lo = torch.log(torch.tensor(old, dtype=torch.float64))
    idx = [int(torch.argmin((lo - math.log(v)).abs())) for v in new]
    return table[idx].clone()


def _init_state(path: Path, lambdas: Sequence[float], param_names: Sequence[str]) -> Dict:
    """Where a new run (fresh step count and LR schedule) starts: an exported model file gives the
    network only (the optimizer state is rebuilt); a run's ``checkpoint.pt`` gives its EMA weights and
    Adam moments, so a warm restart does not pay Adam's re-estimation of second moments.
    A source without a channel-wise context starts a context model with zero corrections (it codes as
    the source did); the optimizer is then rebuilt, its moments being keyed by parameter position.

    When ``lambdas`` differs from the source's ladder (other values or another count), the gain tables and
    the latent residual's gates are regridded (:func:`regrid_gains`) and their Adam moments are taken from
    the nearest old row."""
    blob = torch.load(path, map_location="cpu", weights_only=False)
    if isinstance(blob, dict) and "ema" in blob and "opt" in blob:
        if blob.get("config", {}).get("kind") != "ntc":
            raise ValueError(f"{path} is not an NTC run checkpoint")
        state = dict(blob["ema"]["shadow"])
        old = blob["args"].get("lambdas") or QUALITY_LAMBDAS
        opt = blob["opt"]
    else:
        from ..ntc.io import load_model

        model = load_model(path)[0]
        state, old, opt = dict(model.state_dict()), model.lambdas, None
    old, lambdas = tuple(float(v) for v in old), tuple(float(v) for v in lambdas)
    if old != lambdas:
        tables = [name for name in GAIN_TABLES + GATE_TABLES if name in state]
        for name in tables:
            state[name] = regrid_gains(state[name], old, lambdas, extend=name in GAIN_TABLES)
        if opt is not None:
            # Adam keys its state by parameter position (optimizer_order).
            opt = {"state": dict(opt["state"]), "param_groups": opt["param_groups"]}
            pos = {k: i for i, k in enumerate(param_names)}
            for name in (t for t in tables if pos[t] in opt["state"]):
                st = dict(opt["state"][pos[name]])
                for key in ("exp_avg", "exp_avg_sq"):
                    st[key] = _nearest_rows(st[key], old, lambdas)
                opt["state"][pos[name]] = st
    return {"model": state, **({"opt": opt} if opt is not None else {})}


#: Modules that start at zero (an identity start), so a warm restart may add them to a model without them.
ZERO_START = ("context", "residual", "g_a_blocks", "g_s_blocks")


def add_on_unit(name: str) -> Optional[str]:
    """The zero-started unit (:data:`ZERO_START`) state-dict entry ``name`` belongs to, None outside them:
    the whole channel context or latent residual, or one bottleneck block (``g_s_blocks.<place>.<index>``),
    so a block may be appended to a place that has some."""
    parts = name.split(".")
    if parts[0] not in ZERO_START:
        return None
    return ".".join(parts[:3]) if parts[0].endswith("_blocks") else parts[0]


def model_from_args(args: Dict) -> HyperpriorModel:
    """The untrained model a run's arguments describe (runs from before --slices / --residual have neither)."""
    return HyperpriorModel(args["n"], args["m"], ladder(args), args.get("slices", 1), bool(args.get("residual")),
                           args.get("scale_min") or SCALE_MIN, args.get("hyper_n"), args.get("n_analysis"),
                           int(args.get("blocks") or 0), args.get("synthesis_blocks"), args.get("quality_slices"))


#: What :func:`widen_state` may grow: the image transforms (their N channels) and, with the latent
#: width M, every tensor with an M axis — the hyper transforms' latent side, the gain tables and the
#: latent residual. The hyper-latents (``hyper_n``: z, its density and gains) never change.
WIDENABLE = ("g_a", "g_s", "h_a", "h_s", "gain", "inv_gain", "residual")
#: Tensors whose M axis is a concatenation of equal blocks, as (axis, blocks): the hyper-synthesis
#: outputs [μ' | σ'], the latent residual reads [ŷ' − μ' | log σ' | δ]. A widened block keeps the
#: source's channels at its head.
BLOCKED = {"h_s.4.weight": (0, 2), "h_s.4.bias": (0, 2), "residual.net.0.weight": (1, 3)}
#: Tensors that produce a latent or its (μ', σ'): their new outputs start at exactly 0, so a new latent
#: channel is 0, predicted at mean 0 with σ' at the floor, and costs only that floor's few hundredths
#: of a bit (a universally quantized latent is never free) until training gives it a use. That exact start
#: is a saddle (the synthesis reads a 0 latent with 0 weights; only the dither moves either side): a
#: 115-minute run from M = 128 to 192 left most new latents at the floor (BENCHMARKS.md).
NEW_OUTPUTS_ZERO = ("g_a.6.weight", "g_a.6.bias", "h_s.4.weight", "h_s.4.bias")
#: With ``start`` > 0 (``train ntc --widen-start``), the analysis rows that compute a new latent start at
#: ``start`` × their fresh initialisation instead of 0, so the new latent carries the image from the first
#: step and the synthesis' weights that read it — still 0, so the start reconstructs as the source —
#: get the distortion's gradient: no saddle. (Until 2026-12-07 those weights also started at ``start`` ×
#: fresh: random weights add the new latents to the reconstruction as noise, which the distortion then
#: shrinks — from M = 128 to 192 at 0.1 the new latents' values fell to a hundredth of a cell over 115
#: minutes, and in 2026-12-07's first gated run their mean |y'| fell −14 % per 200 steps; BENCHMARKS.md.)
SADDLE_BREAK = ("g_a.6.weight",)


def _old_positions(src_size: int, size: int, blocks: int = 1) -> torch.Tensor:
    """Where the source's ``src_size`` entries of an axis go in the widened ``size``: the head of each block."""
    if src_size % blocks or size % blocks:
        raise ValueError(f"an axis of {src_size} → {size} entries is not {blocks} equal blocks")
    step, width = size // blocks, src_size // blocks
    return torch.cat([torch.arange(b * step, b * step + width) for b in range(blocks)])


def _slice_width(state: Dict[str, torch.Tensor], m: int) -> Optional[int]:
    slices = len({k.split(".")[1] for k in state if k.startswith("context.")})
    return m // slices if slices else None


def widen_state(source: Dict[str, torch.Tensor], model: HyperpriorModel, start: float = 0.0) -> Dict[str, torch.Tensor]:
    """``model``'s state with ``source`` (a narrower model's: fewer transform channels N and/or latent
    channels M) embedded so that ``model`` computes exactly what the source did (net2net-style widening,
    Chen et al. 2016):

    * a weight from a new input channel to an old output channel is 0, so old channels never see new
      ones (for GDN's γ_ij, j is the input; a transposed convolution's weight is (in, out, k, k));
    * every other new entry keeps ``model``'s fresh initialisation — new channels compute something
      from the start and learn as soon as the next layer's zero weights from them move; GDN's new β
      are 1 and its new γ 0.1·I, so new channels never divide an old one;
    * new latent channels (M) are the exception (:data:`NEW_OUTPUTS_ZERO`): they start at 0 with
      mean 0 and σ' at the floor, and form new channel-context slices *after* the source's (the slice
      width must stay the source's), so the old slices' conditionals are unchanged; their gains start
      at the mean of the old channels' per quality. The source codes the same old latents with the
      same (μ', σ') and the reconstruction is the same; the new latents each cost the floor's few
      hundredths of a bit.

    The hyper-latents (``hyper_n``) must keep the source's width.

    ``start`` > 0 gives up that exactness where it is a saddle (:data:`SADDLE_BREAK`): the new latents
    start at ``start`` × what fresh analysis rows compute, so the synthesis' (zero) weights that read them
    get a gradient from the first step while the reconstruction stays the source's (their (μ', σ') start
    at 0 and the floor here; the trainer then scales the new latents to ``start`` × the old ones' size
    with σ' there, :func:`start_new_latents`)."""
    if not 0.0 <= start <= 1.0:
        raise ValueError(f"the widened latents' start must be in [0, 1], got {start}")
    m_src = source["g_a.6.bias"].shape[0]
    if model.m != m_src and model.context is not None:
        width = _slice_width(source, m_src)
        if width != model.m // model.slices:
            raise ValueError(f"the widened latents must keep the source's slice width {width or m_src} "
                             f"(M = {model.m} in {model.slices} slices is {model.m // model.slices})")
    out = {}
    modules = dict(model.named_modules())
    for name, fresh in model.state_dict().items():
        if name not in source:
            # a zero-started add-on the source lacks (ZERO_START), or a new slice's context after the source's
            if name.startswith("context.") and model.m != m_src:
                out[name] = fresh.clone()
            continue
        src = source[name]
        if src.shape == fresh.shape:
            out[name] = src.clone()
            continue
        owner = name.rpartition(".")[0]
        if name.split(".")[0] not in WIDENABLE or src.dim() != fresh.dim() or \
                any(a > b for a, b in zip(src.shape, fresh.shape)):
            raise ValueError(f"{name}: the source's {tuple(src.shape)} cannot be widened to {tuple(fresh.shape)} "
                             f"(only the image transforms' N and the latents' M may grow)")
        axis, blocks = BLOCKED.get(name, (None, 1))
        old = [_old_positions(a, b, blocks if d == axis else 1) for d, (a, b) in enumerate(zip(src.shape, fresh.shape))]
        t = torch.zeros_like(fresh) if name in NEW_OUTPUTS_ZERO else fresh.clone()
        if name in ("gain", "inv_gain"):
            t[:] = src.mean(1, keepdim=True).to(t.dtype)   # rows are qualities: new channels at the mean gain
        t[torch.meshgrid(*old, indexing="ij")] = src.to(t.dtype)
        module = modules.get(owner)
        if t.dim() >= 2 and module is not None and module is not model:
            transposed = isinstance(module, nn.ConvTranspose2d)
            d_in, d_out = (0, 1) if transposed else (1, 0)
            new_in = torch.ones(t.shape[d_in], dtype=torch.bool)
            new_in[old[d_in]] = False
            index = [torch.arange(k) for k in t.shape]
            index[d_out], index[d_in] = old[d_out], new_in.nonzero()[:, 0]
            t[torch.meshgrid(*index, indexing="ij")] = 0
        if start > 0 and model.m != m_src and name in SADDLE_BREAK:
            # Axis 0 is the latents' in both (the analysis conv's outputs, the synthesis deconv's inputs).
            new_latent = torch.ones(t.shape[0], dtype=torch.bool)
            new_latent[old[0]] = False
            t[new_latent] = start * fresh[new_latent]
        out[name] = t
    return out


#: Crops of the first training batch on which ``--widen-start`` measures the latents (start_new_latents).
WIDEN_CALIBRATION_CROPS = 4


def start_new_latents(model: HyperpriorModel, m_src: int, x: torch.Tensor, start: float) -> torch.Tensor:
    """Give the latents a widening added (channels ``m_src`` … M − 1, ``--widen-start`` = ``start`` > 0)
    ``start`` × the old latents' size, measured on the images ``x`` at the middle quality of those that
    code them (``quality_slices``): each new latent's analysis row (weight and bias) is scaled so its RMS
    is ``start`` × the old latents' median RMS, and its σ' (the hyper-synthesis' bias; its weights are 0)
    starts at that RMS. The synthesis still reads them with weight 0 (:data:`SADDLE_BREAK`), so the
    reconstruction is the source's. Returns the RMS.

    Fresh analysis rows give latents of a few hundredths of a cell (mean |y'| 0.09 against the old 1.56 at
    quality 10 from M = 128 to 192 at ``--widen-start 0.5``): buried in the ±½ quantization noise, the
    synthesis can hardly learn what they carry. And at the σ' floor a latent that leaves its cell is
    priced like a far outlier, up to ~30 bits each (BENCHMARKS.md)."""
    coded = [q for q in range(model.num_qualities) if model.coded_channels(q) > m_src]
    q = torch.full((x.shape[0],), coded[len(coded) // 2], dtype=torch.long)
    rms = model.analysis(x, q).pow(2).mean((0, 2, 3)).sqrt()
    target = start * rms[:m_src].quantile(0.5)
    c = target / rms[m_src:].clamp_min(1e-12)
    model.g_a[6].weight[m_src:] *= c[:, None, None, None].to(model.g_a[6].weight.dtype)
    model.g_a[6].bias[m_src:] *= c.to(model.g_a[6].bias.dtype)
    model.h_s[4].bias[model.m + m_src:] = target.to(model.h_s[4].bias.dtype)
    return target


def hold_new_latents(model: HyperpriorModel, m_src: int, holding: Callable[[], bool]) -> None:
    """While ``holding()``, the encoder side of the latents a widening added (channels ``m_src`` … M − 1:
    their analysis rows, weight and bias, and their gain columns) gets zero gradient, so it keeps what it
    computes while the decoder side — the synthesis weights that read the new latents, their (μ', σ') —
    learns to use them (``train ntc --widen-warmup``).

    A new latent starts without a use, and the rate term's gradient on its analysis row is consistent
    from the first step; Adam takes full-size steps on any consistent gradient however small, so down-
    weighting the new latents' bits does not slow it: with the bits' weight rising from 0 over 3,000 steps
    the new latents' mean |y'| at quality 10 still fell from the old ones' size to 0.39 in 889 steps, as
    fast as without (BENCHMARKS.md). Held, they stay what they are until the synthesis reads them."""
    def masked(grad: torch.Tensor, axis: int) -> torch.Tensor:
        if not holding():
            return grad
        grad = grad.clone()
        grad.narrow(axis, m_src, grad.shape[axis] - m_src).zero_()
        return grad

    for param, axis in ((model.g_a[6].weight, 0), (model.g_a[6].bias, 0), (model.gain, 1)):
        param.register_hook(lambda grad, axis=axis: masked(grad, axis))


#: Learning-rate multiple of the latent residual's gates w_q: they start at 0 and their useful values
#: are O(1), which Adam at the transforms' rate (≈ lr per step) would take ~10⁴ steps to reach.
GATE_LR_SCALE = 20.0


def _is_block(name: str) -> bool:
    return name.startswith(BLOCK_MODULES)


def optimizer_order(model: HyperpriorModel) -> List[str]:
    """Parameter names in Adam's order (its state is keyed by position): the transforms' bottleneck
    blocks after the rest, the residual gates last. Only trained parameters are in it (``--encoder-only``
    freezes the decoder side)."""
    names = [name for name, p in model.named_parameters() if p.requires_grad]
    rest = [n for n in names if n != "residual.weight" and not _is_block(n)]
    return rest + [n for n in names if _is_block(n)] + [n for n in names if n == "residual.weight"]


def param_groups(model: HyperpriorModel, lr: float, blocks_lr_scale: float = 1.0) -> List[Dict]:
    """Adam's groups: every weight at the run's rate, the bottleneck blocks (if any) at ``blocks_lr_scale``
    times it, the residual gates at ``GATE_LR_SCALE`` times it."""
    params = dict(model.named_parameters())
    names = optimizer_order(model)
    groups = [{"params": [params[n] for n in names if n != "residual.weight" and not _is_block(n)]}]
    if any(_is_block(n) for n in names):
        groups.append({"params": [params[n] for n in names if _is_block(n)], "lr": lr * blocks_lr_scale,
                       "lr_scale": blocks_lr_scale})
    if "residual.weight" in names:
        groups.append({"params": [params["residual.weight"]], "lr": lr * GATE_LR_SCALE, "lr_scale": GATE_LR_SCALE})
    return groups


class NTCTrainer(TrainingLoop):
    """The NTC hyperprior: each crop of a batch draws a quality and is weighted by its λ (and by its quality's
    loss weight, ``--loss-weights``)."""

    def __init__(self, args, sampler, heldout: Optional[torch.Tensor]):
        # Before _start writes anything (so a wrong count is refused first). Runs from before
        # --quality-weights / --loss-weights have none: uniform, every crop weighing 1.
        given = getattr(args, "loss_weights", None)
        power = balance_power(given)        # None: explicit weights or none
        self.qualities = QualityLaw(getattr(args, "quality_weights", None), len(ladder(vars(args))), "the λ ladder",
                                    given if power is None else None)
        self._start(args, sampler, heldout)
        self.model = model_from_args(vars(args))
        if getattr(args, "encoder_only", False):
            # The decoder side stays the source's bit for bit (so does the model id, chansim.ntc.io.decoder_id);
            # gradients still flow through it to the encoder, but its weights get none.
            for name, p in self.model.named_parameters():
                p.requires_grad_(encoder_only(name))
        if getattr(args, "init_from", None) and not getattr(args, "resume", False):
            start = _init_state(Path(args.init_from), self.model.lambdas, optimizer_order(self.model))
            if any(k in start["model"] and start["model"][k].shape != v.shape
                   for k, v in self.model.state_dict().items()):
                m_src = start["model"]["g_a.6.bias"].shape[0]
                try:
                    start = {"model": widen_state(start["model"], self.model,    # new shapes: Adam starts afresh
                                                  getattr(args, "widen_start", 0.0))}
                except ValueError as e:
                    raise ValueError(f"{args.init_from} does not fit this model: {e}") from None
                if m_src < self.model.m:
                    args.widened_from = m_src                   # the warm-up's new channels (resumes keep it)
                    if getattr(args, "widen_start", 0.0):
                        self.model.load_state_dict(start["model"], strict=False)
                        with torch.no_grad():
                            start_new_latents(self.model, m_src,
                                              sampler.batch(WIDEN_CALIBRATION_CROPS).float() / 255.0, args.widen_start)
                        now = self.model.state_dict()
                        start["model"] = {k: now[k].clone() for k in start["model"]}
            try:
                missing, unexpected = self.model.load_state_dict(start["model"], strict=False)
            except RuntimeError as e:           # a weight of another shape (--n, --m)
                raise ValueError(f"{args.init_from} does not fit this model: {e}") from None
            # Only whole zero-started add-ons may be new: the model then codes exactly as its source at step 0.
            units = {add_on_unit(k) for k in missing}
            whole = {k for k in self.model.state_dict() if add_on_unit(k) in units}
            if unexpected or None in units or set(missing) != whole:
                raise ValueError(f"{args.init_from} does not fit this model (missing {missing[:3]}, "
                                 f"unexpected {unexpected[:3]}); only a whole channel-wise context, latent "
                                 "residual or bottleneck block (its three convolutions) may be new")
            if missing or getattr(args, "encoder_only", False):     # Adam's positions differ: rebuild it
                start.pop("opt", None)
        else:
            start = {}
        self.opt = torch.optim.Adam(param_groups(self.model, args.lr, getattr(args, "blocks_lr_scale", 1.0)),
                                    lr=args.lr)
        if "opt" in start:
            self.opt.load_state_dict(start["opt"])
        if power is not None:       # measured once on the starting weights; resumes read the numbers
            args.loss_weights_spec = given                          # the card names how they were measured
            args.loss_weights = balanced(quality_losses(self.model, sampler.batch(BALANCE_CROPS).float() / 255.0),
                                         power)
            self.qualities = QualityLaw(self.qualities.weights, self.qualities.count, "the λ ladder", args.loss_weights)
        self.ema = EMA(self.model, args.ema)
        self.baselines = baseline_curves(heldout) if heldout is not None else None
        if getattr(args, "widen_warmup", 0) and getattr(args, "widened_from", None) is not None:
            hold_new_latents(self.model, args.widened_from, lambda: self.step < args.widen_warmup)

    def checkpoint_extra(self) -> Dict:
        return {"baselines": self.baselines}

    def loss_step(self, generator: torch.Generator):
        x = self.sampler.batch(self.args.batch).float() / 255.0
        q = self.qualities.draw(x.shape[0], generator)
        terms = self.model.loss(x, q, self.qualities.loss_weight(q))
        return terms["loss"], {"bpp": float(terms["bpp"].mean())}

    def heldout_figures(self) -> Dict:
        rows = evaluate(self.model, self.heldout)
        rec = {"heldout": rows}
        for name, curve in self.baselines.items():
            rec[f"bd_psnr_vs_{name}"] = bd_psnr([c[0] for c in curve], [c[1] for c in curve],
                                                [r["bpp"] for r in rows], [r["psnr"] for r in rows])
        return rec

    def report(self, rec: dict) -> None:
        pts = " ".join(f"{r['bpp']:.3f}/{r['psnr']:.2f}" for r in rec["heldout"])
        print(f"step {rec['step']}: held-out bpp/PSNR {pts}; BD-PSNR vs JPEG {rec['bd_psnr_vs_JPEG']}, "
              f"vs WebP {rec['bd_psnr_vs_WebP']}", file=sys.stderr, flush=True)


def _lambda_list(text: str) -> tuple:
    import argparse

    try:
        vals = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--lambdas: {text!r} is not a comma-separated list of numbers")
    if len(vals) < 2 or any(not (v > 0 and math.isfinite(v)) for v in vals) or list(vals) != sorted(set(vals)):
        raise argparse.ArgumentTypeError(f"--lambdas: need ≥ 2 distinct positive values in increasing order, got {text!r}")
    return vals


def _checked(text: str, parse, ok, what: str):
    """argparse type: ``parse(text)`` when it parses and passes ``ok``, else an error naming ``what``."""
    import argparse

    try:
        v = parse(text)
    except ValueError:
        v = None
    if v is None or not ok(v):
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
    return v


def _fraction(text: str) -> float:
    return _checked(text, float, lambda v: 0.0 <= v <= 1.0, "a number in [0, 1]")


def _block_count(text: str) -> int:
    return _checked(text, int, lambda v: 0 <= v <= 8, "an integer in 0 … 8")


def _synthesis_blocks(text: str) -> Tuple[int, int]:
    def parse(t):
        counts = tuple(int(c) for c in t.split(","))
        return counts if len(counts) == 2 else None
    return _checked(text, parse, lambda v: all(0 <= c <= 8 for c in v), "two integers in 0 … 8, e.g. 1,2")


def _slice_counts(text: str) -> Tuple[int, ...]:
    return _checked(text, lambda t: tuple(int(c) for c in t.split(",")), lambda v: len(v) > 0 and min(v) >= 1,
                    "comma-separated positive integers, one per quality, e.g. 8,8,8,8,8,8,12,12,12,12")


def _lr_scale(text: str) -> float:
    return _checked(text, float, lambda v: v > 0 and math.isfinite(v), "a positive number")


def _scale_min(text: str) -> float:
    import argparse
    from fractions import Fraction

    try:
        return check_scale_min(float(Fraction(text.strip())))     # "0.02" or "1/64"
    except (ValueError, ZeroDivisionError) as e:
        raise argparse.ArgumentTypeError(f"--scale-min: {e}") from None


def add_parser(sub) -> None:
    import argparse

    p = sub.add_parser("ntc", help="train the NTC hyperprior (all qualities in one run)")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--steps", type=int, default=30000)
    p.add_argument("--time-budget", type=float, default=None,
                   help="minutes of optimisation the LR schedule is planned for (cosine over whichever ends first)")
    p.add_argument("--time-limit", type=float, default=None, help="stop this session after this many minutes")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--crop", type=crop_side, default=128, help="crop side (a multiple of 64, the model's stride)")
    p.add_argument("--n", type=int, default=None,
                   help="channels N of the image transforms (default: the --init-from source's, else 96); larger "
                        "than the source's widens it "
                        "exactly (new channels start disconnected from the old ones, so the run starts at the "
                        "source's figures; chansim.train.ntc.widen_state)")
    p.add_argument("--m", type=int, default=None,
                   help="latent channels M (default: the --init-from source's, else 128); larger than the source's "
                        "widens the latents exactly: the "
                        "new channels start at 0 (each costs the σ floor's few hundredths of a bit) and form new "
                        "channel-context slices after the source's, so --slices must keep the source's slice width")
    p.add_argument("--n-analysis", type=int, default=None,
                   help="channels of the analysis transform alone (it runs only at the encoder, so its width "
                        "costs encode time, never decode time; default: the --init-from source's, else --n); "
                        "larger than the source's widens it exactly")
    p.add_argument("--widen-start", type=_fraction, default=0.0,
                   help="with --m above the source's: start the new latents at this fraction of the old ones' RMS "
                        "on the first batch, with σ' there (start_new_latents), instead of exactly 0 (an exact start "
                        "is a saddle the new latents barely leave; 0 … 1, default 0 = exact); the synthesis reads them "
                        "with weight 0 at first either way, so the run starts at the source's reconstruction")
    p.add_argument("--widen-warmup", type=int, default=0,
                   help="with --m above the source's: for this many steps the new latents' encoder side (their "
                        "analysis rows and gains) is held while the synthesis learns to read them (hold_new_latents; "
                        "default 0: no hold)")
    p.add_argument("--hyper-n", type=int, default=None,
                   help="width of the hyper transforms (channels of z; default: the --init-from source's, else "
                        "--n)")
    p.add_argument("--slices", type=int, default=None,
                   help="latent slices of the channel-wise context (1 = none; must divide --m; default: the "
                        "--init-from source's, else 1)")
    p.add_argument("--residual", action=argparse.BooleanOptionalAction, default=None,
                   help="estimate y' from ŷ' and the entropy model before the synthesis transform "
                        "(closed-form posterior mean + learned residual; chansim.ntc.model.LatentResidual; "
                        "default: the --init-from source's, else off)")
    p.add_argument("--blocks", type=_block_count, default=None,
                   help="residual bottleneck blocks after each GDN at 1/4 and 1/8 resolution in both image transforms "
                        "(chansim.ntc.model.Bottleneck; default: the --init-from source's, else 0); a source without "
                        "them gets them at an identity start (the run begins at the source's figures)")
    p.add_argument("--synthesis-blocks", type=_synthesis_blocks, default=None,
                   help="the synthesis' own block counts at 1/8 and 1/4 resolution, e.g. 1,2 (default: the "
                        "--init-from source's, else --blocks at each); a block appended to a place starts as the "
                        "identity, so a trained model deepens one block at a time")
    p.add_argument("--quality-slices", type=_slice_counts, default=None,
                   help="latent slices each quality codes, lowest quality first (non-decreasing, at most --slices; "
                        "default: the --init-from source's, else all at every quality): with --m above the source's, "
                        "the new latents are coded only from the first quality that counts their slices, so the "
                        "qualities below neither pay for them nor push them to zero (chansim.ntc.model)")
    p.add_argument("--blocks-lr-scale", type=_lr_scale, default=1.0,
                   help="learning-rate multiple of the bottleneck blocks (new blocks on a trained model learn "
                        "from zero while the rest continues at a low rate)")
    p.add_argument("--scale-min", type=_scale_min, default=None,
                   help=f"floor of the latents' σ' in [1/64, 1] (a lower floor makes the latents that carry "
                        f"nothing cheaper under universal quantization; default: the --init-from source's, "
                        f"else {SCALE_MIN}); a new floor starts a new model id")
    p.add_argument("--encoder-only", action="store_true",
                   help="train only the encoder side (analysis transforms and their gains, "
                        "chansim.ntc.model.encoder_only) of the --init-from source against its fixed decoder: "
                        "the model id (a hash of what decoders read) and any generative decoder bound to it "
                        "stay valid; combine with a wider --n-analysis")
    p.add_argument("--quality-weights", type=quality_weights, default=None,
                   help="comma-separated relative frequencies of qualities 1, 2, … among the training crops (one per "
                        "λ of the ladder; default: uniform), e.g. 1,1,1,1,1,1,1,2,2,2 to spend 46 %% of the crops "
                        "on the top three rates (uniform: 30 %%)")
    p.add_argument("--loss-weights", type=loss_weights, default=None,
                   help="comma-separated weights of each quality's loss (lowest quality first), or 'balanced': "
                        f"w_q = mean(L) / L_q from each quality's mean loss L_q on {BALANCE_CROPS} training crops "
                        "through the starting model, so every quality's relative change of loss counts the same "
                        "(a plain sum lets the top rates, whose λ·MSE + bpp is tens of times the lowest's, steer "
                        "the shared transforms; chansim.train.qualities), or 'balanced:α' (0 < α < 1 part of the "
                        "way: w_q ∝ L_q^-α, the sum of the weighted losses kept); default: every crop weighs 1")
    p.add_argument("--lr", type=float, default=4e-4)
    p.add_argument("--lr-final", type=float, default=0.03)
    p.add_argument("--warmup", type=int, default=300)
    p.add_argument("--grad-clip", type=float, default=1.0)
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    add_precision_arg(p)
    p.add_argument("--checkpoint-minutes", type=float, default=3.0)
    p.add_argument("--eval-minutes", type=float, default=12.0)
    p.add_argument("--log-every", type=int, default=20)
    p.add_argument("--data-dir", type=Path, default=None)
    p.add_argument("--eval-crop", type=crop_side, default=EVAL_CROP, help="side of the held-out Kodak centre crops")
    p.add_argument("--lambdas", type=_lambda_list, default=None,
                   help="comma-separated λ ladder, lowest rate first (one quality each; default: the "
                        "--init-from source's, else " + ",".join(map(str, QUALITY_LAMBDAS)) + ")")
    p.add_argument("--collections", type=lambda t: [c.strip() for c in t.split(",") if c.strip()], default=None,
                   help="comma-separated training collections (folders of <shared>/train; default: all), "
                        "e.g. sunhays80,urban100")
    p.add_argument("--init-from", type=Path, default=None,
                   help="start a new schedule from an exported NTC model file (e.g. python/chansim/models/ntc_default.pt) "
                        "or from a run's checkpoint.pt (its EMA weights and optimizer moments); every architecture "
                        "flag not given (--n, --m, --n-analysis, --slices, --residual, --blocks, --hyper-n, --scale-min, "
                        "--lambdas) "
                        "continues the source's")


def main(args) -> int:
    from .data import CropSampler

    torch.set_num_threads(args.threads)
    if args.resume:
        args = resume_args(args.out, {k: getattr(args, k)
                                      for k in ("steps", "time_budget", "time_limit", "threads", "precision")})
    else:
        # Before any data is read or file written, as argparse refuses its own arguments.
        try:
            source = source_config(args.init_from) if args.init_from else {}
        except Exception as e:          # missing, unreadable, truncated or not an NTC source: one line, no traceback
            print(f"error: --init-from: {e}", file=sys.stderr)
            raise SystemExit(2)
        for k, v in {**ARCHITECTURE_DEFAULTS, **source}.items():    # unset flags continue the source
            if getattr(args, k, None) is None:
                setattr(args, k, v)
        if args.slices < 1 or args.m % args.slices:
            print(f"error: --slices must be a positive divisor of --m = {args.m}, got {args.slices}", file=sys.stderr)
            raise SystemExit(2)
        if args.encoder_only and not source:
            print("error: --encoder-only trains the encoder against a fixed decoder, so it needs --init-from",
                  file=sys.stderr)
            raise SystemExit(2)
        decoder_side = {k: v for k, v in source.items() if k not in ENCODER_CONFIG}    # what a decoder reads
        if args.encoder_only and any(getattr(args, k) != v for k, v in decoder_side.items()):
            print("error: --encoder-only keeps the source's decoder, so only --n-analysis may differ from it "
                  f"(source {', '.join(f'{k}={v}' for k, v in decoder_side.items())})", file=sys.stderr)
            raise SystemExit(2)
        args.source_lineage = source_lineage(args.init_from) if args.init_from else None
        if args.widen_warmup < 0 or (args.widen_warmup and not (source and args.m > source["m"])):
            print("error: --widen-warmup is a non-negative step count and applies only with --init-from and an --m "
                  f"above the source's ({source.get('m', 'no source')})", file=sys.stderr)
            raise SystemExit(2)
        if args.widen_start and not (source and args.m > source["m"]):
            print("error: --widen-start applies only with --init-from and an --m above the source's "
                  f"({source.get('m', 'no source')})", file=sys.stderr)
            raise SystemExit(2)
    try:
        sampler = CropSampler.from_shared(args.crop, seed=args.seed, root=args.data_dir, progress=False,
                                          collections=getattr(args, "collections", None))   # older runs: all
    except ValueError as e:             # an unknown collection, or none with an image as large as the crop
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2)
    heldout = kodak_eval_crops(args.data_dir, getattr(args, "eval_crop", EVAL_CROP))   # runs from before --eval-crop
    try:
        trainer = NTCTrainer(args, sampler, heldout)
        if args.encoder_only and not args.resume:
            args.decoder_id = encoder_only_id(trainer.model, args.init_from)
    except ValueError as e:             # an --init-from source this model cannot start from (its shapes, slices)
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2)
    if args.resume:
        trainer.load_checkpoint()
        print(f"resumed at step {trainer.step} ({trainer.elapsed / 60:.1f} min)", file=sys.stderr)
    trainer.run()
    return 0


def encoder_only_id(model: HyperpriorModel, source: Path) -> str:
    """The model id an ``--encoder-only`` run keeps: its export's (the first storage that fits,
    :func:`chansim.ntc.io.fitting_file`), which must be an exported source's own. A wider analysis
    transform can push the file past the size budget, and the storage that then fits stores decoder
    kernels in int8 — another decoder: refused here, before the run, rather than at its export."""
    from ..ntc.io import SIZE_BUDGET, fitting_file

    storage, _, mid = fitting_file(model)
    source = Path(source)
    if _exported_model_id(source) not in (None, mid):
        raise ValueError(f"--encoder-only: this model's file (storage {storage!r}, the first within "
                         f"{SIZE_BUDGET / 1e6:g} MB) would store the decoder otherwise than {source} does, so it "
                         "would not keep the source's model id; use a narrower --n-analysis")
    return mid


def is_ntc_run(run_dir: Path) -> bool:
    """Whether ``run_dir/checkpoint.pt`` holds an NTC run (its config kind)."""
    blob = torch.load(Path(run_dir) / "checkpoint.pt", map_location="cpu", weights_only=False)
    return blob.get("config", {}).get("kind") == "ntc"


def _blocks_summary(model: HyperpriorModel) -> str:
    """The card's words for the image transforms' bottleneck blocks ("" without any)."""
    if not model.blocks and not any(model.synthesis_blocks):
        return ""
    where = "(He 2022), "
    if model.synthesis_blocks == (model.blocks,) * 2:
        return (f"{model.blocks} residual bottleneck block(s) after each (inverse) GDN at 1/4 and 1/8 resolution in "
                "both image transforms " + where)
    b8, b4 = model.synthesis_blocks
    return (f"residual bottleneck blocks after the analysis' GDNs at 1/4 and 1/8 resolution ({model.blocks} each) "
            f"and the synthesis' inverse GDNs at 1/8 ({b8}) and 1/4 ({b4}) " + where)


def export(run_dir: Path, dest: Path, name: str, command: str = "", data_dir: Optional[Path] = None) -> Path:
    """Write ``dest/name.pt`` (the first of :data:`chansim.ntc.io.STORAGES` — float16, int8 kernels
    outside the image transforms, int8 kernels — within :data:`chansim.ntc.io.SIZE_BUDGET`; +
    hyper-latent tables) and its card ``name.json`` / ``.md``.

    The card's held-out numbers are measured on the *stored* weights, through the model's
    own code lengths on the Kodak crops (the figures the training log tracked); the
    full-image Kodak R-D of real files is in BENCHMARKS.md.
    """
    import datetime as _dt

    from ..diffusion.io import file_sha256, write_card
    from ..ntc.io import fitting_file, load_model, write_model_file
    from .data import training_collections
    from .export import _source_summary
    from .loop import describe_machine

    run_dir, dest = Path(run_dir), Path(dest)
    blob = torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=False)
    args = blob["args"]
    model = model_from_args(args)
    model.load_state_dict(blob["ema"]["shadow"])
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / f"{name}.pt"
    storage, file, mid = fitting_file(model)      # the first that fits: int8 kernels halve their bytes
    if args.get("encoder_only") and mid != args.get("decoder_id"):
        raise ValueError(f"{run_dir} trained the encoder alone, but its export (storage {storage!r}) would have "
                         f"model id {mid[:16]}…, not the source's {str(args.get('decoder_id'))[:16]}…")
    write_model_file(file, path)
    shipped, _, _ = load_model(path)
    heldout = kodak_eval_crops(data_dir, args.get("eval_crop", EVAL_CROP))
    rows = evaluate(shipped, heldout)
    base = blob.get("baselines") or baseline_curves(heldout)
    bd = {f"vs_{k}": bd_psnr([c[0] for c in v], [c[1] for c in v], [r["bpp"] for r in rows],
                             [r["psnr"] for r in rows]) for k, v in base.items()}
    source = args.get("source_lineage")
    if source is None and args.get("init_from"):
        # A run from before runs recorded their source: read it now (a model file names its model id; a
        # run checkpoint, a warm restart, has none).
        src = Path(args["init_from"])
        src_id = _exported_model_id(src) if src.is_file() else None
        source = _source_summary({"init_from": src, "init_from_id": src_id}, keys=SOURCE_CARD_KEYS)
    counts = {}
    try:
        counts = {k: len(v) for k, v in training_collections(data_dir, args.get("collections")).items()}
    except FileNotFoundError:
        pass
    card = {
        "name": name,
        "summary": "Mean-scale hyperprior (Ballé 2018 / Minnen 2018) with GDN transforms, "
                   + (f"a channel-wise context over {model.slices} latent slices (Minnen & Singh 2020), "
                      if model.slices > 1 else "")
                   + ("a latent residual (the cell's posterior mean under the entropy model plus a learned "
                      "correction, before the synthesis transform), " if model.residual is not None else "")
                   + _blocks_summary(model)
                   + (f"latent slices per quality {list(model.quality_slices)} (a quality codes only its first "
                      "slices; slimmable widths, Yang 2021), " if "quality_slices" in model.config() else "")
                   + f"gain units for {model.num_qualities} qualities (Cui 2021) and universally quantized latents, "
                   "for chansim's NTC codec.",
        "status": "complete" if blob["step"] >= args["steps"] or blob["elapsed"] >= 60 * (args.get("time_budget") or 1e9)
        else f"partial: stopped at step {blob['step']} (resume with --resume)",
        "model_id": mid,
        "file": path.name,
        "file_sha256": file_sha256(path),
        "size_bytes": path.stat().st_size,
        "storage_dtype": {"float16": "float16 (tables int32)",
                          "mixed": "int8 kernels with a float32 scale per slice of their first axis in the "
                                   "hyper transforms, channel context and residual"
                                   + (" and the image transforms' bottleneck blocks" if model.blocks or any(model.synthesis_blocks) else "")
                                   + "; float16 elsewhere, the image transforms' convolutions and GDNs included "
                                   "(tables int32)",
                          "int8": "int8 convolution kernels with a float32 scale per slice of their first axis; "
                                  "float16 elsewhere (tables int32)"}[storage],
        "parameters": sum(p.numel() for p in model.parameters()),
        "config": model.config(),
        "training_data": {"source": "shared/data/train (random crops, horizontal flips; area-weighted image choice)",
                          "images_per_collection": counts, "crop": args["crop"], "batch": args["batch"],
                          "quality_sampling": QualityLaw(args.get("quality_weights"), model.num_qualities, "",
                                                         args.get("loss_weights")).describe()
                          + (f" (--loss-weights {args['loss_weights_spec']}, measured on {BALANCE_CROPS} training "
                             "crops through the starting model)" if args.get("loss_weights_spec") else "")},
        "steps": blob["step"],
        "total_steps_all_runs": blob["step"] + steps_before(source),
        "initialised_from": source,
        "optimizer": {"adam_lr": args["lr"], "warmup": args["warmup"], "lr_final_fraction": args["lr_final"],
                      "schedule": "cosine over max(steps/planned, time/time_budget)",
                      "time_budget_min": args.get("time_budget"), "grad_clip": args["grad_clip"],
                      "ema_decay": args["ema"], "precision": args.get("precision") or "fp32",
                      "trained": "the encoder side alone (g_a, h_a, gain, hgain); every tensor a decoder reads is "
                                 "the source's" if args.get("encoder_only") else "every tensor"},
        "wall_time_s": round(blob["elapsed"], 1),
        "wall_time_note": "seconds inside optimisation steps on 2 threads of a 2-core machine shared with "
                          "development work; evaluations excluded",
        "machine": describe_machine(),
        "heldout": f"Kodak, centre {heldout.shape[-1]}×{heldout.shape[-1]} crop of each of the 24 images; bpp = the model's code length "
                   "(ẑ rounded, ŷ with the universal quantizer's noise, fixed seed), PSNR of the rounded "
                   "reconstruction; JPEG / WebP (Pillow, quality 5…95) on the same crops",
        "heldout_rd": [{k: round(v, 4) for k, v in r.items()} for r in rows],
        "heldout_bd_psnr_db": {k: None if v is None else round(v, 3) for k, v in bd.items()},
        "training_curve": [{"step": h["step"], "elapsed_s": h["elapsed_s"],
                            "bd_psnr_vs_JPEG": h.get("bd_psnr_vs_JPEG") and round(h["bd_psnr_vs_JPEG"], 3),
                            "bd_psnr_vs_WebP": h.get("bd_psnr_vs_WebP") and round(h["bd_psnr_vs_WebP"], 3),
                            "rd": [(round(r["bpp"], 4), round(r["psnr"], 3)) for r in h["heldout"]]}
                           for h in blob["history"]],
        "command": command,
        "exported": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    write_card(card, dest / f"{name}.json")
    return path
