"""ε-, v- and x-prediction UNets: ``UNet2DModel`` (unconditional, pixel or latent), Stable Diffusion
1.x/2.x and SDXL (``UNet2DConditionModel``).

Mapping to chansim's variance-preserving notation: the scheduler's ``alphas_cumprod`` ᾱ_k is α²
at timestep k, so γ_k = log((1 − ᾱ_k)/ᾱ_k) (a :class:`~chansim.diffusion.schedules.TabulatedSchedule`,
entry k at t = k/(N − 1)). The network is conditioned on the fractional timestep whose γ
matches (the sinusoidal embedding accepts non-integers), and diffusers' x_t = √ᾱ x + √(1 − ᾱ) ε
*is* chansim's z, so no rescaling is involved. Models that also predict a variance (2× output
channels) use the first half.

Conditioning (SD, SDXL): the caption's text embeddings from the pipeline's own ``encode_prompt``;
the empty caption and the unconditional half of classifier-free guidance are the pipeline's
negative embeddings for no negative prompt (zeros for SDXL's ``force_zeros_for_empty_prompt``).
SDXL's ``add_time_ids`` are (H, W, 0, 0, H, W) of the padded image, as the pipeline builds them
for an uncropped image generated at its own size.
"""

from __future__ import annotations

from typing import Any, Optional

import torch

from ..gaussian import Parameterisation
from ..schedules import TabulatedSchedule
from .denoiser import Conditioning, PretrainedDenoiser

_PREDICTION = {"epsilon": Parameterisation.EPS, "v_prediction": Parameterisation.V, "sample": Parameterisation.X}


def gammas_from_alphas_cumprod(alphas_cumprod) -> torch.Tensor:
    """γ_k = log((1 − ᾱ_k)/ᾱ_k) = −logit(ᾱ_k), float64."""
    a = torch.as_tensor(alphas_cumprod, dtype=torch.float64)
    return torch.log1p(-a) - torch.log(a)


class UNetDenoiser(PretrainedDenoiser):
    """A diffusers UNet + its scheduler's ᾱ table (+ VAE, + text conditioning) as a chansim denoiser."""

    def __init__(self, unet, alphas_cumprod, prediction_type: str = "epsilon", vae=None, *, family: str = "unet2d",
                 pipe: Any = None, source_id: str = "", device="cpu", dtype: torch.dtype = torch.float32):
        if prediction_type not in _PREDICTION:
            raise ValueError(f"unsupported prediction_type {prediction_type!r}; known: {sorted(_PREDICTION)}")
        super().__init__(TabulatedSchedule(gammas_from_alphas_cumprod(alphas_cumprod)), vae, pipe=pipe,
                         source_id=source_id, device=device, dtype=dtype)
        self.unet, self.family = unet, family
        self.conditional = family in ("sd", "sdxl")
        self.prediction_type = prediction_type
        self.parameterisation = _PREDICTION[prediction_type]

    def config(self):
        return {**super().config(), "prediction_type": self.prediction_type}

    def network_stride(self) -> int:
        return 2 ** max(0, len(self.unet.config.down_block_types) - 1)

    def timestep(self, gamma) -> torch.Tensor:
        """The (fractional) diffusers timestep whose γ equals ``gamma`` (float64)."""
        return self.schedule.index(gamma)

    def _embed(self, cond: Conditioning) -> Any:
        if not self.conditional:
            return None
        pipe, cfg = self._pipe, cond.guidance is not None
        if self.family == "sdxl":
            pos, neg, pooled, neg_pooled = pipe.encode_prompt(cond.caption, device=self.device,
                                                              num_images_per_prompt=1, do_classifier_free_guidance=True)
            if not cond.caption:
                pos, pooled = neg, neg_pooled  # the empty caption is the unconditional model
            hidden = torch.cat([neg, pos]) if cfg else pos
            pooled = torch.cat([neg_pooled, pooled]) if cfg else pooled
            return {"encoder_hidden_states": hidden.to(self.dtype), "text_embeds": pooled.to(self.dtype)}
        pos, neg = pipe.encode_prompt(cond.caption, self.device, 1, True)
        if not cond.caption:
            pos = neg
        return {"encoder_hidden_states": (torch.cat([neg, pos]) if cfg else pos).to(self.dtype)}

    def _predict(self, z: torch.Tensor, gamma: float, embedding: Optional[dict]) -> torch.Tensor:
        k = self.timestep(gamma).to(torch.float32).reshape(1)
        if embedding is None:
            out = self.unet(z, k.expand(z.shape[0])).sample
        else:
            guidance = self.conditioning.guidance
            rows = 2 if guidance is not None else 1
            zz = z.repeat(rows, 1, 1, 1) if rows > 1 else z
            hidden = embedding["encoder_hidden_states"].repeat_interleave(z.shape[0], 0)
            kwargs = {}
            if self.family == "sdxl":
                h, w = z.shape[-2] * self.vae_factor, z.shape[-1] * self.vae_factor
                ids = torch.tensor([[h, w, 0, 0, h, w]], dtype=self.dtype, device=z.device)
                kwargs["added_cond_kwargs"] = {
                    "text_embeds": embedding["text_embeds"].repeat_interleave(z.shape[0], 0),
                    "time_ids": ids.expand(zz.shape[0], -1)}
            out = self.guide(self.unet(zz, k.expand(zz.shape[0]), encoder_hidden_states=hidden, **kwargs).sample,
                             guidance)
        if out.shape[1] == 2 * z.shape[1]:
            out = out[:, : z.shape[1]]
        return out

    def _to_x_eps(self, out: torch.Tensor, z: torch.Tensor, gamma: float):
        return self.parameterisation.to_x_eps(out, z, torch.tensor(gamma, dtype=torch.float64))
