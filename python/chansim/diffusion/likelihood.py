"""The two ends of the diffusion NELBO: the prior term at t = 1 and the discretised
reconstruction term p(x | z_0) at t = 0 (VDM §3.3), plus the pixel ↔ [−1, 1] maps.

8-bit pixel k ∈ {0..255} sits at the bin centre x = 2(k + ½)/256 − 1, so the
256 bins tile [−1, 1] exactly and x never reaches ±1.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

VOCAB = 256


def to_unit(x_raw: torch.Tensor) -> torch.Tensor:
    """uint8 / integer pixels → bin centres in (−1, 1), float32."""
    return 2.0 * ((x_raw.to(torch.float32) + 0.5) / VOCAB) - 1.0


def to_pixels(x: torch.Tensor) -> torch.Tensor:
    """Nearest 8-bit level of x ∈ [−1, 1] (values outside are clamped), as uint8."""
    k = torch.floor((x.to(torch.float32) + 1.0) * (VOCAB / 2.0))
    return k.clamp_(0, VOCAB - 1).to(torch.uint8)


def prior_kl(x: torch.Tensor, gamma_1) -> torch.Tensor:
    """KL(q(z_1 | x) ‖ N(0, I)) per example in nats; q(z_1|x) = N(α_1 x, σ_1²)."""
    g = torch.as_tensor(gamma_1, dtype=x.dtype)
    a2, s2 = torch.sigmoid(-g), torch.sigmoid(g)
    kl = 0.5 * (s2 + a2 * x.square() - 1.0 - F.logsigmoid(g))
    return kl.flatten(1).sum(1)


def reconstruction_log_probs(z_0: torch.Tensor, gamma_0) -> torch.Tensor:
    """log p(x = k | z_0) for every level k: shape (*z_0.shape, 256).

    Logits −½ SNR_0 (z_0/α_0 − x_k)² normalised over the 256 levels (the Gaussian
    approximation of q(z_0 | x) restricted to the data's support).
    """
    g = torch.as_tensor(gamma_0, dtype=z_0.dtype)
    z = (z_0 / torch.sigmoid(-g).sqrt()).unsqueeze(-1)
    levels = to_unit(torch.arange(VOCAB, device=z_0.device)).to(z_0.dtype)
    return torch.log_softmax(-0.5 * torch.exp(-g) * (z - levels).square(), dim=-1)


def reconstruction_nll(z_0: torch.Tensor, x_raw: torch.Tensor, gamma_0) -> torch.Tensor:
    """−log p(x_raw | z_0) per example in nats (same distribution as :func:`reconstruction_log_probs`).

    The normaliser is summed over the levels within ~10 standard deviations of
    z_0/α_0 only: the rest carry < e^−50 of the mass, and the full 256-way softmax
    dominated the cost of a training step. The numerator is always exact.
    """
    g = torch.as_tensor(gamma_0, dtype=z_0.dtype)
    snr0 = torch.exp(-g)
    w = z_0 / torch.sigmoid(-g).sqrt()
    x = to_unit(x_raw).to(z_0.dtype)
    numer = -0.5 * snr0 * (w - x).square()
    half = int(math.ceil(math.sqrt(100.0 / float(snr0.detach())) * VOCAB / 2.0)) + 1
    if 2 * half + 1 >= VOCAB:
        lp = reconstruction_log_probs(z_0, gamma_0)
        return -lp.gather(-1, x_raw.long().unsqueeze(-1)).squeeze(-1).flatten(1).sum(1)
    centre = torch.floor((w.detach() + 1.0) * (VOCAB / 2.0)).clamp(0, VOCAB - 1).long()
    k = centre.unsqueeze(-1) + torch.arange(-half, half + 1, device=z_0.device)
    levels = 2.0 * ((k.to(z_0.dtype) + 0.5) / VOCAB) - 1.0
    logits = -0.5 * snr0 * (w.unsqueeze(-1) - levels).square()
    logits = logits.masked_fill((k < 0) | (k >= VOCAB), float("-inf"))
    return (torch.logsumexp(logits, dim=-1) - numer).flatten(1).sum(1)


def nats_to_bpd(nats: torch.Tensor, dims_per_example: int) -> torch.Tensor:
    """Nats per example → bits per dimension."""
    return nats / (dims_per_example * math.log(2.0))
