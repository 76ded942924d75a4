"""Reverse-process samplers and reconstructions (papers.md §1–2).

They take any *denoiser*: an object with ``denoise(z, gamma) -> (x̂, ε̂)``
(:class:`~chansim.diffusion.models.GaussianDiffusion`, :class:`~chansim.diffusion.models.UQDMModel`,
:class:`~chansim.diffusion.diffusers_adapter.DiffusersDenoiser`). Step grids are
given as γ values, decreasing from the current noise level to the target one.
Noise is drawn from a ``torch.Generator`` or passed in, so codecs can feed
common randomness instead.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch

from .gaussian import alpha_sigma, posterior


def _g(v):
    # Step coefficients in float64, rounded once to the tensor dtype at use.
    return torch.as_tensor(v, dtype=torch.float64)


def mmse(model, z_t: torch.Tensor, gamma_t) -> torch.Tensor:
    """The MMSE estimate x̂(z_t) = E[x | z_t] (as learned)."""
    return model.denoise(z_t, gamma_t)[0]


def ancestral_step(model, z_t: torch.Tensor, gamma_t, gamma_s, noise: torch.Tensor) -> torch.Tensor:
    """One draw from p(z_s | z_t) = N(μ_Q(z_t, x̂), β²) given standard normal ``noise``."""
    x_hat, _ = model.denoise(z_t, gamma_t)
    a, b, beta2 = posterior(_g(gamma_s), _g(gamma_t))
    return (a.to(z_t.dtype) * z_t + b.to(z_t.dtype) * x_hat) + beta2.sqrt().to(z_t.dtype) * noise


def ddim_step(model, z_t: torch.Tensor, gamma_t, gamma_s) -> torch.Tensor:
    """Probability-flow / DDIM (η = 0) step: z_s = α_s x̂ + σ_s ε̂."""
    x_hat, eps_hat = model.denoise(z_t, gamma_t)
    a_s, s_s = alpha_sigma(_g(gamma_s))
    return a_s.to(z_t.dtype) * x_hat + s_s.to(z_t.dtype) * eps_hat


def uqdm_ancestral_step(model, z_t: torch.Tensor, gamma_t, gamma_s, u_logistic: torch.Tensor,
                        u_uniform: torch.Tensor) -> torch.Tensor:
    """One draw from UQDM's p(z_s | z_t) = logistic(μ_p, s) ⋆ U(±Δ/2) given two U(0, 1) arrays."""
    mu_p, scale, width, _ = model.reverse(z_t, gamma_t, gamma_s)
    return mu_p + scale * torch.logit(u_logistic) + width * (u_uniform - 0.5)


def flow2_step(model, z_t: torch.Tensor, gamma_t, gamma_s, x_prev: Optional[torch.Tensor], h_prev: Optional[float]):
    """One DPM-Solver++(2M) step of the probability-flow ODE (Lu et al. 2022, data prediction, multistep):
    with λ = −γ/2 and h = λ_s − λ_t, z_s = (σ_s/σ_t) z_t − α_s (e^(−h) − 1) D, where D = x̂_t on the first
    step and (1 + 1/(2r)) x̂_t − 1/(2r) x̂_prev after it, r = h_prev/h. Returns (z_s, x̂_t, h): one network
    evaluation per step, second order in h. On Gaussian data with the exact denoiser, 15 steps equally
    spaced in γ keep the output variance within 4 % for data scales 0.05 … 4, where 15 DDIM steps lose
    26 % and 15 ancestral steps 42 % (each sampler's output is linear in its noise there, so its
    variance follows a scalar recursion; tests/test_ntc_generative.py writes out this one's)."""
    x_hat, _ = model.denoise(z_t, gamma_t)
    g_t, g_s = _g(gamma_t), _g(gamma_s)
    s_t = alpha_sigma(g_t)[1]
    a_s, s_s = alpha_sigma(g_s)
    h = float((g_t - g_s) / 2)
    d = x_hat
    if x_prev is not None:
        r = h_prev / h
        d = (1 + 1 / (2 * r)) * x_hat - (1 / (2 * r)) * x_prev
    z_s = (s_s / s_t).to(z_t.dtype) * z_t - (a_s * torch.expm1(torch.tensor(-h, dtype=torch.float64))).to(z_t.dtype) * d
    return z_s, x_hat, h


#: The methods of :func:`sample`; ``"ddim"`` is a deprecated alias of ``"flow"``.
METHODS = ("ancestral", "flow", "flow2")


@torch.no_grad()
def sample(model, z_t: torch.Tensor, gammas: Sequence[float], method: str = "ancestral",
           generator: Optional[torch.Generator] = None,
           noise_fn: Optional[Callable[[int, torch.Size], torch.Tensor]] = None,
           final: str = "mmse") -> torch.Tensor:
    """Run the reverse process from z_t through the γ grid ``gammas`` (gammas[0] is z_t's level).

    ``method`` is ``"ancestral"`` (noise from ``noise_fn(step, shape)`` or ``generator``),
    ``"flow"`` (the probability-flow ODE by DDIM η = 0 steps, deterministic; ``"ddim"``
    is accepted for one release with a DeprecationWarning) or ``"flow2"`` (the same ODE by
    DPM-Solver++(2M) steps, :func:`flow2_step`: as cheap, second order). ``final="mmse"`` returns x̂ at
    the last grid level; ``final="latent"`` returns the last z.
    """
    gammas = [float(g) for g in gammas]
    if any(b >= a for a, b in zip(gammas, gammas[1:])):
        raise ValueError("gammas must decrease strictly (from noisy to clean)")
    if method == "ddim":
        import warnings

        warnings.warn('sample(method="ddim") is deprecated: use method="flow"', DeprecationWarning, stacklevel=2)
        method = "flow"
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    z = z_t
    x_prev, h_prev = None, None
    for i, (g_t, g_s) in enumerate(zip(gammas, gammas[1:])):
        if method == "flow2":
            z, x_prev, h_prev = flow2_step(model, z, g_t, g_s, x_prev, h_prev)
        elif method == "flow":
            z = ddim_step(model, z, g_t, g_s)
        else:
            eps = noise_fn(i, z.shape) if noise_fn is not None else torch.randn(
                z.shape, generator=generator, dtype=z.dtype, device=z.device)
            z = ancestral_step(model, z, g_t, g_s, eps)
    if final == "latent":
        return z
    if final != "mmse":
        raise ValueError("final must be 'mmse' or 'latent'")
    return mmse(model, z, gammas[-1])


def interpolate(x_realistic: torch.Tensor, x_mmse: torch.Tensor, lam: float) -> torch.Tensor:
    """X̂_λ = λ X̂_realistic + (1 − λ) X̂_MMSE (Freirich et al. 2021; survey Eq. 17).

    λ = 1 is perfect realism (≈ 2× the MMSE distortion), λ = 0 minimum distortion.
    """
    if not 0.0 <= lam <= 1.0:
        raise ValueError("lambda must lie in [0, 1]")
    return lam * x_realistic + (1.0 - lam) * x_mmse
