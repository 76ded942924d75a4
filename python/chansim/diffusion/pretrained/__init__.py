"""Pretrained diffusers models as chansim denoisers: Stable Diffusion 1.x/2.x, SDXL, SD3, Flux and
unconditional ``UNet2DModel`` pipelines, from a local directory (or a reachable hub id).

- :mod:`.loader` — :func:`load` (one entry point; family detection, content-hash identity).
- :mod:`.denoiser` — :class:`PretrainedDenoiser`: device/dtype placement, VAE, conditioning, guidance.
- :mod:`.unet` — ε/v/x-prediction UNets (ᾱ table → γ).
- :mod:`.flow` — rectified-flow transformers (t ↔ γ = 2·logit t, velocity → (x̂, ε̂)).
"""

from .denoiser import Conditioning, PretrainedDenoiser, describe_runtime, runtime_code
from .flow import FlowDenoiser, flow_gammas, flow_time, velocity_to_x_eps
from .loader import FAMILIES, detect_family, load
from .unet import UNetDenoiser, gammas_from_alphas_cumprod

__all__ = ["Conditioning", "FAMILIES", "FlowDenoiser", "PretrainedDenoiser", "UNetDenoiser", "describe_runtime",
           "detect_family", "flow_gammas", "flow_time", "gammas_from_alphas_cumprod", "load", "runtime_code",
           "velocity_to_x_eps"]
