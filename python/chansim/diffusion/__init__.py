"""Diffusion models for chansim's generative codecs (needs PyTorch; the core library does not).

Modules, one job each:

- :mod:`.schedules` — γ(t) = −log SNR: fixed linear, learned linear, cosine.
- :mod:`.gaussian` — α/σ, SNR, transitions, the posterior q(z_s | z_t, x), ε/x/v
  conversions, the per-step KL, float64 step coefficients.
- :mod:`.uqdm` — UQDM's Δ = √12·β, the logistic ⋆ uniform density and its bin mass
  (the codec's tables and wire format live in :mod:`chansim.codecs.uqdm_step`).
- :mod:`.likelihood` — prior KL and discretised reconstruction terms, pixel maps.
- :mod:`.samplers` — ancestral, probability flow (``"flow"``, DDIM η = 0), MMSE, λ-interpolation.
- :mod:`.unet` — the denoiser network; :mod:`.models` — the trainable models.
- :mod:`.steps` — deprecated: the per-step codec math moved to :mod:`chansim.codecs`.
- :mod:`.io` — model files, content hash, cards; :mod:`.determinism` — bit-stable inference.
- :mod:`.pretrained` — pretrained diffusers models (SD 1.x/2.x, SDXL, SD3, Flux, ``UNet2DModel``)
  as chansim denoisers, one loader; :mod:`.diffusers_adapter` is its deprecated old name.
"""

from .gaussian import (Parameterisation, StepCoefficients, alpha_sigma, eps_from_x, kl_step, posterior,
                       posterior_mean, snr, step_coefficients, transition, v_from_x_eps, x_eps_from_v, x_from_eps)
from .io import load_model, model_id, save_model
from .models import GaussianDiffusion, UQDMModel, build_model, default_diffc, default_uqdm
from .samplers import ancestral_step, ddim_step, interpolate, mmse, sample, uqdm_ancestral_step
from .schedules import CosineSchedule, LearnedLinearSchedule, LinearSchedule, Schedule, schedule_from_config
from .unet import UNet

__all__ = [
    "CosineSchedule", "GaussianDiffusion", "LearnedLinearSchedule", "LinearSchedule", "Parameterisation",
    "Schedule", "StepCoefficients", "UNet", "UQDMModel", "alpha_sigma", "ancestral_step", "build_model",
    "ddim_step", "default_diffc", "default_uqdm", "eps_from_x", "interpolate", "kl_step", "load_model", "mmse",
    "model_id", "posterior", "posterior_mean", "sample", "save_model", "schedule_from_config", "snr",
    "step_coefficients", "transition", "uqdm_ancestral_step", "v_from_x_eps", "x_eps_from_v", "x_from_eps",
]
