"""What every pretrained diffusers model looks like to chansim: a conditioned Gaussian denoiser.

:class:`PretrainedDenoiser` holds the network, the optional VAE and the text conditioning,
and exposes the denoiser interface the codecs and samplers use::

    den.schedule                         # γ table of the model's training noise levels
    den.denoise(z, gamma) -> (x̂, ε̂)      # z in chansim's variance-preserving space
    den.encode(image) / den.decode(z)    # images in [−1, 1] ↔ that space (VAE in latent mode)
    den.condition(caption, guidance)     # what the next denoise calls are conditioned on

The codec's arithmetic (channel simulation, step coefficients) stays on the CPU in float32;
only the network runs on ``device`` in ``dtype``: :meth:`denoise` moves z there and the
prediction back. Decoding with another device or dtype than the encoder therefore moves only
the prior mean μ_p by the network's rounding, never the Philox candidates or the entropy
coder's state, and degrades the image gracefully instead of desynchronising.

Subclasses (:mod:`.unet`, :mod:`.flow`) implement :meth:`_predict` (the network's raw
prediction for a batch, conditional and unconditional rows) and :meth:`_to_x_eps`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

import torch
from torch import nn

#: Runtime codes recorded in a DiffC file (which device type and dtype ran the encoder's network).
DEVICE_CODES = {"cpu": 0, "cuda": 1, "mps": 2}
DTYPE_CODES = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2}


def runtime_code(device: torch.device, dtype: torch.dtype) -> int:
    """One byte: device type in the high nibble, dtype in the low one (15 = other)."""
    return (DEVICE_CODES.get(torch.device(device).type, 15) << 4) | DTYPE_CODES.get(dtype, 15)


def describe_runtime(code: int) -> str:
    dev = {v: k for k, v in DEVICE_CODES.items()}.get(code >> 4, "other")
    dt = {v: str(k).replace("torch.", "") for k, v in DTYPE_CODES.items()}.get(code & 15, "other")
    return f"{dev}/{dt}"


@dataclass(frozen=True)
class Conditioning:
    """What the network is conditioned on, all part of the message: the caption (UTF-8, stored in
    the file) and the guidance scale (None = the model's plain prediction).

    For classifier-free guidance the prediction is u + w·(c − u) with c the caption's and u the
    empty caption's prediction; for a guidance-distilled Flux model w is the value its guidance
    embedding receives instead (one network pass)."""

    caption: str = ""
    guidance: Optional[float] = None

    def __post_init__(self):
        if not isinstance(self.caption, str):
            raise TypeError("caption must be a str")
        if self.guidance is not None and not (0.0 <= float(self.guidance) <= 100.0):
            raise ValueError(f"guidance must lie in [0, 100], got {self.guidance}")


class PretrainedDenoiser(nn.Module):
    """Base of the diffusers-backed denoisers (see the module docstring).

    Attributes:
        family: ``"unet2d"``, ``"sd"``, ``"sdxl"``, ``"sd3"`` or ``"flux"``.
        schedule: :class:`~chansim.diffusion.schedules.TabulatedSchedule` of the training γ values.
        vae: the ``AutoencoderKL`` (latent mode) or None (pixel mode); runs in float32 because
            SDXL's VAE overflows in float16 and the VAE is a small part of the cost.
        source_id: SHA-256 of the loaded files (weights, configs, tokenizers, scheduler), independent of
            the device and dtype they run in; :meth:`model_id` is built from it.
        clip_denoised: whether x̂ is clipped to [−1, 1] (pixel models only).
    """

    kind = "diffusers"
    family = "?"
    #: Whether the network reads a text conditioning (captions and guidance allowed).
    conditional = False

    def __init__(self, schedule: nn.Module, vae: Optional[nn.Module] = None, *, pipe: Any = None,
                 source_id: str = "", device="cpu", dtype: torch.dtype = torch.float32):
        super().__init__()
        self.schedule, self.vae, self.source_id = schedule, vae, source_id
        self._pipe = pipe  # kept for its encode_prompt (text encoders, tokenizers); not a submodule
        cfg = getattr(vae, "config", None)
        self.scaling_factor = float(getattr(cfg, "scaling_factor", None) or 1.0)
        self.shift_factor = float(getattr(cfg, "shift_factor", None) or 0.0)
        self.vae_factor = 2 ** (len(cfg.block_out_channels) - 1) if cfg is not None else 1
        self.clip_denoised = vae is None
        self.device, self.dtype = torch.device(device), dtype
        self._conditioning = Conditioning()
        self._cache: Dict[Conditioning, Any] = {}

    # ---- identity and runtime ------------------------------------------------------------

    def config(self) -> Dict[str, Any]:
        return {"kind": self.kind, "family": self.family, "schedule": self.schedule.config(),
                "scaling_factor": self.scaling_factor, "shift_factor": self.shift_factor}

    def model_id(self) -> str:
        """SHA-256 of :meth:`config` and the loaded files' digest (same on every device and dtype)."""
        import hashlib
        import json

        h = hashlib.sha256(json.dumps(self.config(), sort_keys=True).encode())
        h.update(self.source_id.encode())
        return h.hexdigest()

    @property
    def runtime(self) -> int:
        """:func:`runtime_code` of the network's device and dtype."""
        return runtime_code(self.device, self.dtype)

    # ---- geometry ------------------------------------------------------------------------

    def pad_multiple(self) -> int:
        """Image sizes are padded to a multiple of this (VAE factor × the network's own stride)."""
        return self.vae_factor * self.network_stride()

    def network_stride(self) -> int:
        raise NotImplementedError

    def space_shape(self, height: int, width: int) -> Tuple[int, ...]:
        """Shape of x in diffusion space for a padded ``height × width`` image."""
        if self.vae is None:
            return (1, 3, height, width)
        f = self.vae_factor
        return (1, int(self.vae.config.latent_channels), height // f, width // f)

    # ---- conditioning --------------------------------------------------------------------

    def condition(self, caption: str = "", guidance: Optional[float] = None) -> "PretrainedDenoiser":
        """Condition the following :meth:`denoise` calls (embeddings are computed once and cached)."""
        cond = Conditioning(caption, None if guidance is None else float(guidance))
        if not self.conditional and (cond.caption or cond.guidance is not None):
            raise ValueError(f"this {self.family} model is unconditional: no caption or guidance")
        if cond not in self._cache:
            if len(self._cache) >= 4:
                self._cache.pop(next(iter(self._cache)))
            with torch.inference_mode():
                self._cache[cond] = self._embed(cond)
        self._conditioning = cond
        return self

    @property
    def conditioning(self) -> Conditioning:
        return self._conditioning

    def _embed(self, cond: Conditioning) -> Any:
        """The network's conditioning inputs for ``cond`` (on device, in dtype)."""
        return None

    # ---- the denoiser --------------------------------------------------------------------

    def denoise(self, z: torch.Tensor, gamma, clip: Optional[bool] = None):
        """(x̂, ε̂) at noise level γ (a float), both float32 on z's device (the CPU in the codecs)."""
        if torch.as_tensor(gamma).numel() != 1:
            raise ValueError("pretrained denoisers take one γ per call")
        g = float(gamma)
        if self.conditioning not in self._cache:
            self.condition(self.conditioning.caption, self.conditioning.guidance)
        out = self._predict(z.to(self.device, self.dtype), g, self._cache[self.conditioning])
        x_hat, eps_hat = self._to_x_eps(out.to(z.device, torch.float32), z.to(torch.float32), g)
        if self.clip_denoised if clip is None else clip:
            from ..gaussian import eps_from_x

            x_hat = x_hat.clamp(-1.0, 1.0)
            eps_hat = eps_from_x(z.to(torch.float32), x_hat, torch.tensor(g, dtype=torch.float64))
        return x_hat, eps_hat

    def _predict(self, z: torch.Tensor, gamma: float, embedding: Any) -> torch.Tensor:
        raise NotImplementedError

    def _to_x_eps(self, out: torch.Tensor, z: torch.Tensor, gamma: float):
        raise NotImplementedError

    @staticmethod
    def guide(out: torch.Tensor, guidance: Optional[float]) -> torch.Tensor:
        """Classifier-free guidance on a batch [unconditional; conditional]: u + w·(c − u)."""
        if guidance is None:
            return out
        u, c = out.chunk(2)
        return u + guidance * (c - u)

    # ---- the VAE -------------------------------------------------------------------------

    def encode(self, image: torch.Tensor) -> torch.Tensor:
        """Images in [−1, 1] → diffusion space: (posterior mean − shift) × scaling factor (or the image)."""
        if self.vae is None:
            return image
        lat = self.vae.encode(image.to(self.device, torch.float32)).latent_dist.mean
        return ((lat - self.shift_factor) * self.scaling_factor).to(image.device, torch.float32)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        if self.vae is None:
            return latents
        lat = latents.to(self.device, torch.float32) / self.scaling_factor + self.shift_factor
        return self.vae.decode(lat).sample.to(latents.device, torch.float32)
