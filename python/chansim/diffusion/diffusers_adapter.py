"""A diffusers model as a chansim denoiser, for zero-shot DiffC on a user's model.

``DiffusersDenoiser.from_pretrained(path)`` reads a *local* directory (never the
network) in the layout ``save_pretrained`` writes: a pipeline directory with
``unet/`` and ``scheduler/`` (and optionally ``vae/`` for latent diffusion), or a
bare ``UNet2DModel`` directory with its ``scheduler_config.json`` beside it.

Mapping to chansim's variance-preserving notation: the scheduler's
``alphas_cumprod`` ᾱ_k is α² at timestep k, so γ_k = log((1 − ᾱ_k)/ᾱ_k) and
timestep k sits at t = k/(N − 1) of a :class:`~chansim.diffusion.schedules.TabulatedSchedule`.
``denoise(z, γ)`` conditions the UNet on the fractional timestep whose γ matches
(the sinusoidal timestep embedding accepts non-integers) and converts the
scheduler's ``prediction_type`` (``epsilon``, ``v_prediction`` or ``sample``) to (x̂, ε̂).
Models that also predict a variance (2× output channels) use the first half.

Bit-stability: diffusers networks contain plain 1×1 convolutions, whose CPU result
depends on the thread count; run codecs inside
:func:`chansim.diffusion.determinism.deterministic_inference`, which pins it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Union

import torch
from torch import nn

from .gaussian import Parameterisation
from .io import model_id as _content_id
from .schedules import TabulatedSchedule

_PREDICTION = {"epsilon": Parameterisation.EPS, "v_prediction": Parameterisation.V, "sample": Parameterisation.X}


def gammas_from_alphas_cumprod(alphas_cumprod) -> torch.Tensor:
    """γ_k = log((1 − ᾱ_k)/ᾱ_k) = −logit(ᾱ_k), float64."""
    a = torch.as_tensor(alphas_cumprod, dtype=torch.float64)
    return torch.log1p(-a) - torch.log(a)


class DiffusersDenoiser(nn.Module):
    """``schedule`` + ``denoise(z, gamma) -> (x̂, ε̂)`` around a diffusers ``UNet2DModel``.

    With a VAE, the diffusion runs on latents: :meth:`encode` maps images in
    [−1, 1] to scaled latents (the posterior mean × ``scaling_factor``) and
    :meth:`decode` maps latents back.
    """

    kind = "diffusers"

    def __init__(self, unet: nn.Module, alphas_cumprod, prediction_type: str = "epsilon",
                 vae: Optional[nn.Module] = None, scaling_factor: Optional[float] = None):
        super().__init__()
        if prediction_type not in _PREDICTION:
            raise ValueError(f"unsupported prediction_type {prediction_type!r}; known: {sorted(_PREDICTION)}")
        self.unet, self.vae = unet, vae
        self.schedule = TabulatedSchedule(gammas_from_alphas_cumprod(alphas_cumprod))
        self.prediction_type = prediction_type
        self.parameterisation = _PREDICTION[prediction_type]
        self.scaling_factor = float(scaling_factor if scaling_factor is not None
                                    else getattr(getattr(vae, "config", None), "scaling_factor", 1.0) or 1.0)
        self.clip_denoised = vae is None  # pixel models live in [−1, 1]; latents do not

    @classmethod
    def from_pretrained(cls, path: Union[str, Path]) -> "DiffusersDenoiser":
        import diffusers

        path = Path(path)
        if not path.is_dir():
            raise FileNotFoundError(f"{path} is not a directory (only local models are loaded)")
        pipeline = (path / "unet").is_dir()
        unet = diffusers.UNet2DModel.from_pretrained(path, subfolder="unet" if pipeline else None,
                                                     local_files_only=True)
        sched_file = path / "scheduler" / "scheduler_config.json" if pipeline else path / "scheduler_config.json"
        if not sched_file.is_file():
            raise FileNotFoundError(f"no scheduler config at {sched_file}")
        sched_cfg = json.loads(sched_file.read_text())
        sched_cls = getattr(diffusers, sched_cfg.get("_class_name", "DDPMScheduler"))
        scheduler = sched_cls.from_config(sched_cfg)
        vae = None
        if pipeline and (path / "vae").is_dir():
            vae = diffusers.AutoencoderKL.from_pretrained(path, subfolder="vae", local_files_only=True).eval()
        den = cls(unet.eval(), scheduler.alphas_cumprod, scheduler.config.get("prediction_type", "epsilon"), vae)
        return den.requires_grad_(False)

    def model_id(self) -> str:
        """Content hash of the network weights (+ VAE) and the schedule table."""
        cfg = {"kind": self.kind, "prediction_type": self.prediction_type, "schedule": self.schedule.config(),
               "scaling_factor": self.scaling_factor}
        return _content_id(cfg, self.state_dict())

    def timestep(self, gamma) -> torch.Tensor:
        """The (fractional) diffusers timestep whose γ equals ``gamma``."""
        return self.schedule.index(gamma)

    def denoise(self, z: torch.Tensor, gamma, clip: Optional[bool] = None):
        g = torch.as_tensor(gamma, dtype=torch.float64)
        k = self.timestep(g).to(z.dtype).reshape(-1)
        if k.numel() == 1:
            k = k.expand(z.shape[0])
        out = self.unet(z, k).sample
        if out.shape[1] == 2 * z.shape[1]:
            out = out[:, : z.shape[1]]
        gz = g.reshape(-1, 1, 1, 1) if g.dim() else g
        x_hat, eps_hat = self.parameterisation.to_x_eps(out, z, gz)
        if self.clip_denoised if clip is None else clip:
            from .gaussian import eps_from_x

            x_hat = x_hat.clamp(-1.0, 1.0)
            eps_hat = eps_from_x(z, x_hat, gz)
        return x_hat, eps_hat

    def encode(self, image: torch.Tensor) -> torch.Tensor:
        """Images in [−1, 1] → the space the diffusion runs in (latents × scaling factor, or the image itself)."""
        if self.vae is None:
            return image
        return self.vae.encode(image).latent_dist.mean * self.scaling_factor

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        if self.vae is None:
            return latents
        return self.vae.decode(latents / self.scaling_factor).sample
