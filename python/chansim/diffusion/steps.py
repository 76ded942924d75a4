"""Per-step quantities of the DiffC and UQDM codecs from network outputs, fused.

Thin layer over :mod:`chansim.kernels.diffusion_steps`: it packs a step's float64
coefficients (:func:`~chansim.diffusion.gaussian.step_coefficients`) into the
float32 vector the kernels read and runs the network. The arithmetic itself lives
in the kernel module (a Triton kernel and its PyTorch reference, bit-identical);
``backend="auto"`` picks Triton only for CUDA tensors.
"""

from __future__ import annotations

import math

import torch

from ..kernels import diffusion_steps as K
from .gaussian import StepCoefficients, step_coefficients
from .uqdm import LOGISTIC_STD_TO_SCALE, SCALE_BOUNDARIES, scale_factor


def diffc_coefficients(c: StepCoefficients, device=None) -> torch.Tensor:
    """[α_t, σ_t, a, b, β] as float32 (each rounded once from float64)."""
    return torch.tensor([c.alpha_t, c.sigma_t, c.a, c.b, c.beta], dtype=torch.float32, device=device)


def uqdm_coefficients(c: StepCoefficients, device=None) -> torch.Tensor:
    """[α_t, σ_t, a, b, Δ, σ_{t|s}·√3/π] as float32 (each rounded once from float64)."""
    return torch.tensor([c.alpha_t, c.sigma_t, c.a, c.b, math.sqrt(12.0) * c.beta,
                         c.sigma_ts * LOGISTIC_STD_TO_SCALE], dtype=torch.float32, device=device)


def scale_boundaries(device=None) -> torch.Tensor:
    return torch.from_numpy(SCALE_BOUNDARIES).to(device)


def _net(model, z_t, gamma_t):
    """Raw ε̂ (with the z skip) and, for UQDM, the scale factor f — unclipped, as the kernels expect."""
    out = model.net(z_t, torch.as_tensor(gamma_t, dtype=z_t.dtype))
    c = z_t.shape[1]
    eps = out[:, :c] + z_t
    f = scale_factor(out[:, c:]) if out.shape[1] > c else None
    return eps, f


@torch.no_grad()
def diffc_encode_step(model, z_t, x, gamma_t, gamma_s, clip: bool = False, backend: str = "auto"):
    """Sender side of DiffC step t → s: (x̂, μ_p, μ_q, m, per-coordinate KL in nats)."""
    eps, _ = _net(model, z_t, gamma_t)
    coefs = diffc_coefficients(step_coefficients(gamma_s, gamma_t), z_t.device)
    return K.diffc_encode(z_t, eps, x, coefs, clip, backend)


@torch.no_grad()
def diffc_decode_step(model, z_t, xi, gamma_t, gamma_s, clip: bool = False, backend: str = "auto"):
    """Receiver side: (x̂, μ_p, z_s = μ_p + β ξ)."""
    eps, _ = _net(model, z_t, gamma_t)
    coefs = diffc_coefficients(step_coefficients(gamma_s, gamma_t), z_t.device)
    return K.diffc_decode(z_t, eps, xi, coefs, clip, backend)


@torch.no_grad()
def uqdm_encode_step(model, z_t, x, u, gamma_t, gamma_s, backend: str = "auto"):
    """Sender side of UQDM step t → s: (x̂, μ_p, k, scale index, z_s); ``u`` is the dither in (−½, ½)."""
    eps, f = _net(model, z_t, gamma_t)
    coefs = uqdm_coefficients(step_coefficients(gamma_s, gamma_t), z_t.device)
    return K.uqdm_encode(z_t, eps, f, x, u, coefs, scale_boundaries(z_t.device), model.clip_denoised, backend)


@torch.no_grad()
def uqdm_decode_step(model, z_t, k, u, gamma_t, gamma_s, backend: str = "auto"):
    """Receiver side: (x̂, μ_p, scale index, z_s) from the received indices k."""
    eps, f = _net(model, z_t, gamma_t)
    coefs = uqdm_coefficients(step_coefficients(gamma_s, gamma_t), z_t.device)
    return K.uqdm_decode(z_t, eps, f, k, u, coefs, scale_boundaries(z_t.device), model.clip_denoised, backend)
