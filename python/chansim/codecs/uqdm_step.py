"""One UQDM step on the wire: z_s sent by dithered quantization against p(z_s | z_t).

The sender runs the network at z_t, the fused kernel turns its output into μ_p, the
scale index and k = rint((μ_Q − μ_p)/Δ + u), and the indices go to the rANS coder in one
native call under logistic ⋆ uniform (docs/format.md §2.6) with

    mean = 0, width = 1, offset = u, scale = SCALE_TABLE[index]

i.e. in units of Δ: the table depends on the dither and the table index only, never on a
float network output or on Δ itself. The receiver rebuilds the same index, decodes k and
z_s = μ_p + Δ(k − u). A section is ``CRC32(z_s as float32 little-endian) ‖ rANS stream``:
if the receiver's network output differs from the sender's (another CPU, another
library), its z_s differs and it raises :class:`~chansim.errors.FormatError` instead of
drifting into a wrong image.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from .. import dq, prng, rans
from ..diffusion import steps as S
from ..diffusion.gaussian import step_coefficients
from ..diffusion.uqdm import SCALE_TABLE
from ..errors import FormatError
from ..kernels import diffusion_steps as K

#: Entropy-table scales in units of Δ, as the coder reads them (float64 of the float32 grid).
SCALES = SCALE_TABLE.astype(np.float64)
#: Partial steps send the pixels whose 8×8 Bayer rank is below m (of FRACTION_UNITS = 64).
FRACTION_UNITS = 64


def bayer8() -> np.ndarray:
    """The 8×8 ordered-dither (Bayer) ranks 0…63: every prefix of ranks is spread evenly over the tile."""
    b = np.zeros((1, 1), dtype=np.int64)
    while b.shape[0] < 8:
        b = np.block([[4 * b, 4 * b + 2], [4 * b + 3, 4 * b + 1]])
    return b


def partial_mask(shape, m: int) -> Optional[torch.Tensor]:
    """Bool mask of the elements a step with fraction m/64 sends (all channels of a pixel alike); None = all."""
    if not 1 <= m <= FRACTION_UNITS:
        raise ValueError(f"fraction must be in 1…{FRACTION_UNITS}, got {m}")
    if m == FRACTION_UNITS:
        return None
    _, c, h, w = shape
    ranks = np.tile(bayer8(), ((h + 7) // 8, (w + 7) // 8))[:h, :w]
    return torch.from_numpy(np.broadcast_to(ranks < m, (1, c, h, w)).copy())


@dataclass
class Step:
    """Step i: t = t_i → s = t_{i+1} on the model's grid; ``fraction`` (of 64) of the pixels sent."""

    index: int
    gamma_t: float
    gamma_s: float
    coefs: torch.Tensor  # float32 [α_t, σ_t, a, b, Δ, c] of chansim.kernels.diffusion_steps
    fraction: int = FRACTION_UNITS

    @classmethod
    def make(cls, gammas, index: int, fraction: int = FRACTION_UNITS) -> "Step":
        g_t, g_s = float(gammas[index]), float(gammas[index + 1])
        return cls(index, g_t, g_s, S.uqdm_coefficients(step_coefficients(g_s, g_t)), int(fraction))

    @property
    def partial(self) -> bool:
        return self.fraction < FRACTION_UNITS


def initial_latent(seed: int, shape) -> torch.Tensor:
    """z_T ~ N(0, I) from common randomness (purpose ``diffusion_init``): costs no bits."""
    n = int(np.prod(shape))
    return torch.from_numpy(prng.normal(seed, prng.stream_id("diffusion_init", 0, 0), 0, n)).reshape(shape)


def dither(seed: int, step: int, shape):
    """(u as float64 NumPy, u as float32 tensor) for a step; both exact (u has 24 significant bits)."""
    n = int(np.prod(shape))
    u = dq.dither(seed, prng.stream_id("dither", step, 0), 0, n)
    return u, torch.from_numpy(u.astype(np.float32)).reshape(shape)


def network(model, z: torch.Tensor, gamma) -> tuple:
    """(ε̂, f) at latent z: the U-Net run on a channels-last input (oneDNN's faster convolutions
    on CPU, ~20 % here; the codec also keeps its weights in that layout), results back in the
    standard layout. Both sides run this same call, so
    they agree bit for bit; the layout is not part of the format (another layout gives other
    bits, which the section checksum reports)."""
    eps, f = S._net(model, z.contiguous(memory_format=torch.channels_last), gamma)
    return eps.contiguous(), f.contiguous()


def checksum(z: torch.Tensor) -> int:
    return zlib.crc32(z.contiguous().numpy().astype("<f4", copy=False).tobytes())


def _from_prior(mu_p: torch.Tensor, idx: torch.Tensor, step: Step, seed: int) -> torch.Tensor:
    """A draw from p(z_s | z_t) = logistic(μ_p, s) ⋆ U(±Δ/2) with common randomness (purpose
    ``ancestral``, this step, chunks 0 and 1), s the table scale both sides hold."""
    n = mu_p.numel()
    ul, uu = (torch.from_numpy(prng.uniform(seed, prng.stream_id("ancestral", step.index, chunk), 0, n))
              .reshape(mu_p.shape) for chunk in (0, 1))
    width = step.coefs[4]
    scale = torch.from_numpy(SCALE_TABLE)[idx.long()] * width
    return mu_p + scale * torch.logit(ul) + width * (uu - 0.5)


def _select(a: np.ndarray, mask: Optional[torch.Tensor]) -> np.ndarray:
    return a.reshape(-1) if mask is None else a.reshape(-1)[mask.numpy().reshape(-1)]


@dataclass
class Sent:
    """What the sender's step computes: indices, table indices, dither, μ_p and the whole-step z_s."""

    k: torch.Tensor
    idx: torch.Tensor
    u: np.ndarray
    mu_p: torch.Tensor
    z_s: torch.Tensor


def run(model, z: torch.Tensor, x: torch.Tensor, step: Step, seed: int) -> Sent:
    """The sender's network call and fused step math for step ``step`` at latent ``z``."""
    u64, u = dither(seed, step.index, z.shape)
    eps, f = network(model, z, step.gamma_t)
    _, mu_p, k, idx, z_s = K.uqdm_encode(z, eps, f, x, u, step.coefs, S.scale_boundaries(), model.clip_denoised)
    return Sent(k, idx, u64, mu_p, z_s)


def section(sent: Sent, fraction: int = FRACTION_UNITS):
    """(z_s, section bytes) of a step sent for ``fraction``/64 of its pixels.

    A partial step codes the masked elements only; the others hold μ_p, the prior mean (see
    :func:`decode` for the exact-sample alternative the receiver can draw)."""
    mask = partial_mask(sent.z_s.shape, fraction)
    enc = rans.Encoder()
    enc.encode_logistic_uniform(_select(sent.k.numpy(), mask), 0.0, SCALES[_select(sent.idx.numpy(), mask)], 1.0,
                                _select(sent.u, mask))
    z_s = sent.z_s if mask is None else torch.where(mask, sent.z_s, sent.mu_p)
    return z_s, struct.pack("<I", checksum(z_s)) + enc.finish()


def encode(model, z: torch.Tensor, x: torch.Tensor, step: Step, seed: int):
    """(z_s, section bytes) for the sender: :func:`run` then :func:`section`."""
    return section(run(model, z, x, step, seed), step.fraction)


def decode(model, z: torch.Tensor, section: bytes, step: Step, seed: int):
    """(z_s, z_sample) for the receiver; FormatError if the section does not reproduce the sender's z_s.

    After a partial step, z_s holds μ_p where nothing was sent (the better input for the
    denoiser) and z_sample a draw from p there instead, so z_sample is an exact sample of the
    model's reverse process given what was sent; after a whole step both are the same tensor."""
    if len(section) < 4:
        raise FormatError(f"UQDM step {step.index}: section of {len(section)} bytes is too short")
    u64, u = dither(seed, step.index, z.shape)
    eps, f = network(model, z, step.gamma_t)
    bounds, clip = S.scale_boundaries(), model.clip_denoised
    # The index depends on f alone; decode k with it, then rebuild z_s from k.
    k = torch.zeros(z.shape, dtype=torch.int32)
    _, mu_p, idx, _ = K.uqdm_decode(z, eps, f, k, u, step.coefs, bounds, clip)
    mask = partial_mask(z.shape, step.fraction)
    dec = rans.Decoder(section[4:])
    sent = u64.size if mask is None else int(mask.sum())
    if dec.num_symbols != sent:
        raise FormatError(f"UQDM step {step.index}: {dec.num_symbols} coded symbols, expected {sent}")
    ks = torch.from_numpy(dec.decode_logistic_uniform(0.0, SCALES[_select(idx.numpy(), mask)], 1.0,
                                                      _select(u64, mask)))
    if mask is None:
        k = ks.reshape(z.shape)
    else:
        k[mask] = ks
    _, _, _, z_s = K.uqdm_decode(z, eps, f, k, u, step.coefs, bounds, clip)
    z_sample = z_s
    if mask is not None:
        z_sample = torch.where(mask, z_s, _from_prior(mu_p, idx, step, seed))
        z_s = torch.where(mask, z_s, mu_p)
    if struct.unpack("<I", section[:4])[0] != checksum(z_s):
        raise FormatError(
            f"UQDM step {step.index}: checksum of the reconstructed latent does not match the sender's — "
            "this machine's network output differs from the encoder's (different weights, library or CPU "
            "kernels), so decoding cannot continue")
    return z_s, z_sample
