"""Rectified-flow transformers (Stable Diffusion 3, Flux) as variance-preserving Gaussian denoisers.

The flow path is x_t = (1 − t)·x + t·ε (t ∈ (0, 1), diffusers' σ). Dividing by
c(t) = √((1 − t)² + t²) gives z = x_t / c = α·x + σ·ε with α = (1 − t)/c, σ = t/c and
α² + σ² = 1: a variance-preserving path with

    γ = log(σ²/α²) = 2·log(t/(1 − t)),        t = sigmoid(γ/2).

The network predicts the velocity v = dx_t/dt = ε − x. Since x_t = (1 − t)·x + t·ε,

    x̂ = x_t − t·v,        ε̂ = x_t + (1 − t)·v        (x_t = c·z),

and a probability-flow (DDIM η = 0) step z_s = α_s x̂ + σ_s ε̂ is, multiplied by c(s),
x_s = (1 − s)x̂ + s ε̂ = x_t + (s − t)·v: exactly one Euler step of the flow ODE, which is what
``FlowMatchEulerDiscreteScheduler.step`` does (tested against it). DiffC therefore runs on
these models unchanged: every step it sends is a Gaussian step in z.

The schedule table holds γ at the scheduler's training σ values (after its static shift;
σ = 1 itself, γ = +∞, is left out), so z_T starts at the largest finite level the model was
trained on. Timestep conditioning: SD3's transformer takes 1000·t, Flux's takes t (it
multiplies by 1000 itself). Flux runs on 2×2-packed latent tokens with their position ids;
the diffusion itself stays on the unpacked (16, h, w) latents, since packing is a permutation.

Conditioning: the caption through the pipeline's ``encode_prompt``. SD3 supports classifier-free
guidance (two rows, the empty caption's embeddings as the unconditional one). Flux-dev is
guidance-distilled: its ``guidance`` setting is the value of the guidance embedding (one pass;
default 1.0, the least-guided prediction, closest to the data distribution the codec must
describe); a Flux model without a guidance embedding (schnell) takes classifier-free guidance.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ..schedules import TabulatedSchedule
from .denoiser import Conditioning, PretrainedDenoiser

#: Embedded guidance a guidance-distilled Flux receives when the file sets none.
FLUX_DEFAULT_GUIDANCE = 1.0


def flow_time(gamma: float) -> float:
    """t = sigmoid(γ/2): the flow time of VP noise level γ."""
    return 1.0 / (1.0 + math.exp(-0.5 * float(gamma)))


def flow_gammas(sigmas) -> torch.Tensor:
    """γ = 2·logit(σ) for flow times σ ∈ (0, 1), float64."""
    s = torch.as_tensor(sigmas, dtype=torch.float64)
    return 2.0 * (torch.log(s) - torch.log1p(-s))


def training_sigmas(scheduler_config: dict) -> torch.Tensor:
    """The flow scheduler's training σ grid below 1, increasing (float64), after its static shift."""
    n = int(scheduler_config.get("num_train_timesteps", 1000))
    s = torch.arange(1, n, dtype=torch.float64) / n
    shift = float(scheduler_config.get("shift", 1.0))
    if not scheduler_config.get("use_dynamic_shifting", False):
        s = shift * s / (1 + (shift - 1) * s)
    return s


def velocity_to_x_eps(v: torch.Tensor, z: torch.Tensor, gamma: float):
    """(x̂, ε̂) from the velocity v at VP latent z and level γ (coefficients in float64)."""
    t = flow_time(gamma)
    c = math.sqrt((1 - t) ** 2 + t * t)
    x_t = z * c
    return x_t - t * v, x_t + (1 - t) * v


class FlowDenoiser(PretrainedDenoiser):
    """``SD3Transformer2DModel`` or ``FluxTransformer2DModel`` (+ VAE, + text) as a chansim denoiser."""

    conditional = True

    def __init__(self, transformer, scheduler_config: dict, vae, *, family: str, pipe: Any = None,
                 source_id: str = "", device="cpu", dtype: torch.dtype = torch.float32):
        if family not in ("sd3", "flux"):
            raise ValueError(f"unknown flow family {family!r}")
        super().__init__(TabulatedSchedule(flow_gammas(training_sigmas(scheduler_config))), vae, pipe=pipe,
                         source_id=source_id, device=device, dtype=dtype)
        self.transformer, self.family = transformer, family
        self.distilled_guidance = bool(getattr(transformer.config, "guidance_embeds", False))

    def network_stride(self) -> int:
        return int(getattr(self.transformer.config, "patch_size", 2) or 2) if self.family == "sd3" else 2

    def _true_cfg(self, cond: Conditioning) -> bool:
        return cond.guidance is not None and not self.distilled_guidance

    def _embed(self, cond: Conditioning) -> Any:
        pipe = self._pipe
        if self.family == "sd3":
            pos, neg, pooled, neg_pooled = pipe.encode_prompt(cond.caption, None, None, device=self.device,
                                                              num_images_per_prompt=1, do_classifier_free_guidance=True)
            if not cond.caption:
                pos, pooled = neg, neg_pooled
            if self._true_cfg(cond):
                pos, pooled = torch.cat([neg, pos]), torch.cat([neg_pooled, pooled])
            return {"encoder_hidden_states": pos.to(self.dtype), "pooled_projections": pooled.to(self.dtype)}
        pos, pooled, text_ids = pipe.encode_prompt(cond.caption, None, device=self.device, num_images_per_prompt=1)
        if self._true_cfg(cond):
            neg, neg_pooled, _ = pipe.encode_prompt("", None, device=self.device, num_images_per_prompt=1)
            pos, pooled = torch.cat([neg, pos]), torch.cat([neg_pooled, pooled])
        emb = {"encoder_hidden_states": pos.to(self.dtype), "pooled_projections": pooled.to(self.dtype),
               "txt_ids": text_ids.to(self.dtype)}
        if self.distilled_guidance:
            g = FLUX_DEFAULT_GUIDANCE if cond.guidance is None else cond.guidance
            emb["guidance"] = torch.tensor([g], dtype=torch.float32, device=self.device)
        return emb

    def _predict(self, z: torch.Tensor, gamma: float, embedding: dict) -> torch.Tensor:
        t = flow_time(gamma)
        x_t = z * math.sqrt((1 - t) ** 2 + t * t)  # the network reads the flow path's x_t = c(t)·z
        cond = self.conditioning
        rows = 2 if self._true_cfg(cond) else 1
        zz = x_t.repeat(rows, 1, 1, 1) if rows > 1 else x_t
        b = zz.shape[0]
        hidden = embedding["encoder_hidden_states"].repeat_interleave(z.shape[0], 0)
        pooled = embedding["pooled_projections"].repeat_interleave(z.shape[0], 0)
        if self.family == "sd3":
            ts = torch.full((b,), 1000.0 * t, dtype=torch.float32, device=z.device)
            out = self.transformer(hidden_states=zz, timestep=ts, encoder_hidden_states=hidden,
                                   pooled_projections=pooled, return_dict=False)[0]
        else:
            _, c, h, w = zz.shape
            packed = zz.view(b, c, h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3, 5).reshape(b, (h // 2) * (w // 2), 4 * c)
            ids = torch.zeros(h // 2, w // 2, 3, dtype=self.dtype, device=z.device)
            ids[..., 1] += torch.arange(h // 2, device=z.device, dtype=self.dtype)[:, None]
            ids[..., 2] += torch.arange(w // 2, device=z.device, dtype=self.dtype)[None, :]
            kwargs = {"guidance": embedding["guidance"].expand(b)} if "guidance" in embedding else {}
            ts = torch.full((b,), t, dtype=torch.float32, device=z.device)
            v = self.transformer(hidden_states=packed, timestep=ts, encoder_hidden_states=hidden,
                                 pooled_projections=pooled, txt_ids=embedding["txt_ids"],
                                 img_ids=ids.reshape(-1, 3), return_dict=False, **kwargs)[0]
            out = v.view(b, h // 2, w // 2, c, 2, 2).permute(0, 3, 1, 4, 2, 5).reshape(b, c, h, w)
        return self.guide(out, cond.guidance if rows > 1 else None)

    def _to_x_eps(self, out: torch.Tensor, z: torch.Tensor, gamma: float):
        return velocity_to_x_eps(out, z, gamma)
