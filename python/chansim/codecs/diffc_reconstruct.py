"""DiffC's reconstructions from the last received z_t (papers.md §3; survey Eq. 17).

- ``"mmse"``: x̂(z_t), the denoiser's posterior-mean estimate (lowest MSE, blurry at low rates).
- ``"flow"``: the probability-flow ODE (DDIM, η = 0) from γ_t to the model's γ_min in
  ``steps`` equal steps of γ, then x̂ there: a deterministic sharp reconstruction.
- ``"ancestral"``: ancestral sampling over the same grid with noise from Philox
  (:func:`.streams.diffc_ancestral` under the file's seed), then x̂: a posterior sample.
- ``"interp"``: λ·ancestral + (1 − λ)·mmse (Freirich et al. 2021).

The samplers are :mod:`chansim.diffusion.samplers`; this module only fixes the grid and
the noise so that the encoder and the decoder (and any two decoders) agree bit for bit.
In latent mode the result is decoded by the model's VAE before quantising to 8 bits.
"""

from __future__ import annotations

import numpy as np

from .. import prng
from . import streams

KINDS = ("flow", "mmse", "ancestral", "interp")


def recon_grid(gamma_t: float, gamma_end: float, steps: int) -> list:
    """γ_t = g_0 > g_1 > … > g_steps = gamma_end, equally spaced (float64)."""
    if not gamma_t > gamma_end:
        return [float(gamma_t)]
    return [float(gamma_t + (gamma_end - gamma_t) * k / steps) for k in range(steps + 1)]


def reconstruct(model, z, gamma_t: float, height: int, width: int, seed: int, kind: str = "flow", *,
                lam: float = 0.5, steps: int = 8, gamma_end: float = -12.0, denoised=None) -> np.ndarray:
    """uint8[height, width, 3] from z at γ_t. ``denoised`` = model.denoise(z, γ_t) if already computed."""
    return reconstruct_many(model, z, gamma_t, height, width, seed, (kind,), lam=lam, steps=steps,
                            gamma_end=gamma_end, denoised=denoised)[kind]


def reconstruct_many(model, z, gamma_t: float, height: int, width: int, seed: int, kinds=KINDS, *,
                     lam: float = 0.5, steps: int = 8, gamma_end: float = -12.0, denoised=None) -> dict:
    """{kind: uint8 image} for several kinds, sharing the MMSE estimate and the ancestral sample."""
    import torch

    from ..diffusion import samplers

    for kind in kinds:
        if kind not in KINDS:
            raise ValueError(f"reconstruction must be one of {KINDS}, got {kind!r}")
    x_mmse = (denoised if denoised is not None else model.denoise(z, gamma_t))[0]
    grid = recon_grid(gamma_t, gamma_end, steps)
    out = {}
    if "mmse" in kinds:
        out["mmse"] = x_mmse
    if "flow" in kinds:
        out["flow"] = samplers.sample(model, z, grid, method="flow") if len(grid) > 1 else x_mmse
    if "ancestral" in kinds or "interp" in kinds:
        n = z.numel()

        def noise(k, shape):
            eps = prng.normal(seed, streams.diffc_ancestral(k), 0, n)
            return torch.from_numpy(eps).reshape(shape).to(z.dtype)

        anc = samplers.sample(model, z, grid, method="ancestral", noise_fn=noise) if len(grid) > 1 else x_mmse
        if "ancestral" in kinds:
            out["ancestral"] = anc
        if "interp" in kinds:
            out["interp"] = samplers.interpolate(anc, x_mmse, float(lam))
    return {k: _to_image(model, v, height, width) for k, v in out.items()}


def _to_image(model, x, height: int, width: int) -> np.ndarray:
    from ..diffusion.likelihood import to_pixels

    if getattr(model, "vae", None) is not None:
        x = model.decode(x)
    pix = to_pixels(x)[0, :, :height, :width]
    return np.ascontiguousarray(pix.permute(1, 2, 0).numpy())
