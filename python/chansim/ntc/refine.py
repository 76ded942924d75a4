"""Encoder-side latent refinement: closing the amortization gap of the analysis transform.

The analysis transform is one amortized guess of the latents that minimise the rate–distortion
loss; for any one image, gradient descent on the latents themselves does better (Campos et al.
2019; Yang, Bamler & Mandt 2020). The decoder is untouched — the file format and decoding are
exactly as without refinement — so it is purely an encoder effort knob.

With universal quantization the relaxation used for the gradient is not an approximation of the
test-time channel but the channel itself: ``ŷ' − y' ~ U(−½, ½)`` independently of ``y'``, so
the objective minimised here,

    E_u[ λ·255²·MSE(g_s(y' + u), x) + bits_y(y' + u | μ(ẑ'), σ(ẑ')) + bits_z(z' + u_z) ] / pixels,

is, for the latents, the expected loss of the file the codec will write (the hyper-latents are
rounded for the decoder, seen through a straight-through estimator as in training, and priced
with the training-time noise relaxation). The distortion is measured on the image's own pixels,
not on the edge padding.

The descent runs in the analysis transform's own units — the latents divided by the quality's
gains (y' = g ⊙ w) — because Adam moves every coordinate by about its step size whatever the
gradient, and the gained latents of quality 1 are ≈ 130 times smaller than those of quality 10: one
step size in gained units is far too large at low qualities (measured on three training photos, 30
steps at 0.01 … 0.1 in gained units: R-D loss +22 … +224 % at quality 2) and too small at high
ones; in the transform's units one step size suits every quality and channel. Adam with a
cosine-decayed step size; the noise comes from a torch generator seeded by the file's seed, the
transforms run in bfloat16 (the entropy model's (μ, σ) and the losses in float32; 2× faster on this
AMD EPYC with native bfloat16, R-D loss within 0.1 % of float32's on kodim01 at qualities 5 and
10), and the whole run happens inside the codec's
:func:`~chansim.diffusion.determinism.deterministic_inference` thread pin, so the same seed gives
the same file on one machine.

The objective is a one-sample noisy estimate, so its last iterate is not guaranteed to beat the
transform's guess on *this* file's dither, nor to be the best of the descent's iterates. Given the
file's dither (``dither``), the start and :data:`CHECKS` iterates along the descent (the last
included) are quantized exactly as the codec will quantize them (:func:`realized_loss`) and the
best is returned — refinement never makes the estimate worse. The estimate leaves out the grid
snapping of (μ, σ), the 8-bit rounding of the picture and the coder's bytes, which on a small image
can outweigh the gain, so the codec then compares the two real files and writes the better
(``NTC._better_file``): a refined file is never worse than the unrefined one.

Why the descent stays on the noise: descending on the file's own dithered lattice instead —
straight-through rounding, or stochastic Gumbel annealing (Yang et al. 2020) from the start or after
the noisy descent — did worse at 30 and 100 steps, the budgets an encoder can afford (measurements
in BENCHMARKS.md, "Encoder-side latent refinement").
"""

from __future__ import annotations

import math
from typing import Optional, Tuple

import torch

from .model import HyperpriorModel, _LowerBound, gaussian_cell_bits

#: Adam step size of the latents in the analysis transform's units (the latents over the quality's
#: gains) at the start of the cosine schedule. Chosen on three training photos (BSDS500 157055,
#: Urban100 img_031, Sun–Hays img_037, 384×512 at most; 30 steps; qualities 2 / 5 / 8 / 10): R-D loss
#: −0.8 … −1.9 / −0.2 … −2.6 / −2.0 … −4.6 / −5.4 … −8.0 % for step sizes 0.03 … 0.1, flat between
#: 0.03 and 0.05; never Kodak, on which the codec is evaluated.
LEARNING_RATE = 0.04

#: With the file's dither given, the realized loss is checked after every ⌈steps / CHECKS⌉-th step
#: and the best checked iterate (the start included) is returned. The descent minimises a one-sample
#: noisy estimate, so its last iterate may overshoot: on a 96×80 crop at quality 5 (λ 0.0023) the
#: last iterate of 25 steps at the default step size was +0.3 % worse than the start while the
#: step size 0.02 gave −2.3 % — which step size wins changes with the seed. The checks cost four
#: more float32 forward passes of the entropy model and synthesis than checking the last iterate
#: alone (no backward pass; a descent step runs one forward and one backward in bfloat16).
CHECKS = 5


def _slice_lattice(model: HyperpriorModel, z_hat: torch.Tensor, y: torch.Tensor, q: torch.Tensor,
                   dither: torch.Tensor):
    """(ŷ', μ', σ') of the latents y' quantized as the codec quantizes them: slice by slice, each
    slice's (μ', σ') from ẑ' and the earlier slices' ŷ', then ŷ' = μ' + round(y' − μ' + u) − u."""
    mean_h, scale_h = model.hyper_synthesis(z_hat, q)
    parts, means, scales = [], [], []
    for i in range(model.slices):
        sl = model.slice_bounds(i)
        earlier = torch.cat(parts, 1) if parts else y[:, :0]
        m_i, s_i = model.slice_parameters(i, mean_h, scale_h, earlier)
        parts.append(m_i + torch.round(y[:, sl] - m_i + dither[:, sl]) - dither[:, sl])
        means.append(m_i)
        scales.append(s_i)
    # the slices this quality does not code: (0, 0, 1), as the codec holds them
    return model.uncoded_filled(torch.cat(parts, 1), torch.cat(means, 1),
                                torch.cat(scales, 1).clamp_min(model.scale_min), q)


@torch.no_grad()
def realized_loss(model: HyperpriorModel, x: torch.Tensor, q: torch.Tensor, y: torch.Tensor, z: torch.Tensor,
                  dither: torch.Tensor, height: int, width: int) -> float:
    """The R-D loss λ·255²·MSE + bits per pixel of the file the codec writes for the gained latents
    (``y``, ``z``) with this dither (float32, before the (μ, σ) grid snap and the 8-bit rounding): ẑ'
    rounded and priced by the hyper-latents' density, ŷ' on the dithered lattice and priced by its
    Gaussian ⋆ uniform cell."""
    z_hat = torch.round(z)
    bits_z = -torch.log2(model.z_density.likelihood(z_hat).clamp_min(1e-9)).sum()
    y_hat, mean, scale = _slice_lattice(model, z_hat, y, q, dither)
    bits_y = (gaussian_cell_bits(y_hat - mean, scale) * model.coded(q)).sum()
    x_hat = model.synthesis(y_hat, q, mean, scale)[..., :height, :width]
    mse = ((x_hat - x[..., :height, :width]) ** 2).mean() * 255.0 ** 2
    return float(model.lambdas[int(q[0])] * mse + (bits_y + bits_z) / (height * width))


def refine_latents(model: HyperpriorModel, x: torch.Tensor, q: torch.Tensor, y: torch.Tensor, z: torch.Tensor,
                   steps: int, *, seed: int, height: int, width: int, lr: Optional[float] = None,
                   z_range: Optional[Tuple[torch.Tensor, torch.Tensor]] = None,
                   dither: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """Refined gained latents ``(y', z')`` (float32, detached) of the padded image ``x`` (1, 3, H', W')
    in [0, 1], starting from the analysis transform's ``y'`` and ``z'``; ``height`` × ``width`` is the
    image inside the padding. ``steps`` = 0 returns the inputs; ``lr``: the step size in the analysis
    transform's units (default :data:`LEARNING_RATE`).

    ``z_range`` = per-channel (lowest, highest) integer of the hyper-latent tables: each step projects
    z' into it. Outside, the coder escapes the value at a cost the objective does not see (its density
    is floored at 10⁻⁹), so the descent would otherwise walk z' out of the table for free.

    ``dither`` = the file's dither of the latents (shape of ``y``): the :func:`realized_loss` of the
    start and of every ⌈steps / :data:`CHECKS`⌉-th iterate (the last included) is computed and the best
    is returned (ties keep the earlier, so a descent that never beats the start returns it)."""
    if steps < 0:
        raise ValueError(f"refinement steps must be ≥ 0, got {steps}")
    if steps == 0:
        return y, z
    lr = LEARNING_RATE if lr is None else lr
    lam = model.lambdas[int(q[0])]
    gen = torch.Generator().manual_seed(int(seed) & ((1 << 63) - 1))
    pixels = height * width
    best = None           # (realized loss, y', z') of the best checked iterate, the start included
    if dither is not None:
        best = (realized_loss(model, x, q, y, z, dither, height, width), y, z)
        check_every = max(1, math.ceil(steps / CHECKS))
    with torch.inference_mode(False), torch.enable_grad():
        with torch.no_grad():     # outside inference mode, so autograd may record products with them
            g_y, g_z = model._rows(model.gain, q).clone(), model._rows(model.hgain, q).clone()
            coded = model.coded(q)          # the latents this quality codes (the others stay 0)
            target = x[..., :height, :width].clone()
            w_y, w_z = y.clone() / g_y, z.clone() / g_z
        w_y.requires_grad_(True)
        w_z.requires_grad_(True)
        opt = torch.optim.Adam([w_y, w_z], lr=lr)
        for i in range(steps):
            for group in opt.param_groups:
                group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * i / steps))
            yg, zg = w_y * g_y, w_z * g_z
            z_noisy = zg + torch.rand(zg.shape, generator=gen) - 0.5
            bits_z = -torch.log2(model.z_density.likelihood(z_noisy).clamp_min(1e-9)).sum()
            z_hat = zg + (torch.round(zg) - zg).detach()
            y_noisy = (yg + torch.rand(yg.shape, generator=gen) - 0.5) * coded
            with torch.autocast("cpu", dtype=torch.bfloat16):
                mean, scale = (t.float() for t in model.entropy_parameters(z_hat, y_noisy, q))
                scale = _LowerBound.apply(scale, model.scale_min)
                y_in, mean_in, scale_in = model.uncoded_filled(y_noisy, mean, scale, q)
                x_hat = model.synthesis(y_in, q, mean_in, scale_in)[..., :height, :width].float()
            bits_y = (gaussian_cell_bits(y_noisy - mean, scale) * coded).sum()
            mse = ((x_hat - target) ** 2).mean() * 255.0 ** 2
            loss = lam * mse + (bits_y + bits_z) / pixels
            gy, gz = torch.autograd.grad(loss, [w_y, w_z])     # latents only: the model's .grad stays untouched
            w_y.grad, w_z.grad = gy, gz
            opt.step()
            if z_range is not None:
                with torch.no_grad():
                    w_z.copy_(torch.maximum(torch.minimum(w_z * g_z, z_range[1]), z_range[0]) / g_z)
            if best is not None and ((i + 1) % check_every == 0 or i + 1 == steps):
                y_i, z_i = _current(w_y, g_y, w_z, g_z, z_range)
                loss_i = realized_loss(model, x, q, y_i, z_i, dither, height, width)
                if loss_i < best[0]:          # ties keep the earlier iterate (the start first)
                    best = (loss_i, y_i, z_i)
        if best is not None:
            return best[1], best[2]
        return _current(w_y, g_y, w_z, g_z, z_range)


def _current(w_y, g_y, w_z, g_z, z_range):
    """The gained latents (y', z') of the descent's current iterate, z' inside its tables."""
    y_r, z_r = (w_y * g_y).detach(), (w_z * g_z).detach()     # fresh products: no copy needed
    if z_range is not None:     # the division and product may leave z' an ulp outside its table
        z_r = torch.maximum(torch.minimum(z_r, z_range[1]), z_range[0])
    return y_r, z_r
