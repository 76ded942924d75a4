"""One UQDM step, all of it: the format's constants, the step math and the bytes on the wire.

Everything that decides a UQDM step's bits lives here (docs/format.md §8): the entropy-table
scale grid (:data:`SCALE_TABLE`, :data:`SCALE_BOUNDARIES`), the float32 coefficient vector
the fused kernel reads (:func:`coefficients`), the network call (:func:`network`), the
partial-step mask (:func:`partial_mask`), the rANS coding of the indices, the section checksum
and the decoder-side draws (:func:`fill_in`, :func:`ancestral_step`). What it uses from below:
the model's density (:mod:`chansim.diffusion.uqdm`: Δ, the logistic scale, the bin mass), the
float64 step coefficients (:func:`chansim.diffusion.gaussian.step_coefficients`), the dither of
:mod:`chansim.dq`, the streams of :mod:`.streams`, and the fused per-element kernel
(:mod:`chansim.kernels.diffusion_steps`): it is the one float32 implementation of the §3 rule
k = rint((μ_Q − μ_p)/Δ + u), z_s = μ_p + Δ(k − u) (round half to even), with a Triton twin
that matches it bit for bit. (``chansim.dq`` computes the same rule in float64; UQDM's bytes
are defined by the float32 operations, so the kernel is what both ends call.)

The sender runs the network at z_t, the kernel turns its output into μ_p, the scale index and
k, and the indices go to the rANS coder in one native call under logistic ⋆ uniform
(docs/format.md §2.6) with

    mean = 0, width = 1, offset = u, scale = SCALE_TABLE[index]

i.e. in units of Δ: the table depends on the dither and the table index only, never on a
float network output or on Δ itself. The receiver rebuilds the same index, decodes k and
z_s = μ_p + Δ(k − u). A section is ``CRC32(z_s as float32 little-endian) ‖ rANS stream``:
if the receiver's network output differs from the sender's (another CPU, another
library), its z_s differs and it raises :class:`~chansim.errors.FormatError` instead of
drifting into a wrong image.
"""

from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from .. import dq, prng, rans
from ..diffusion.gaussian import StepCoefficients, step_coefficients
from ..diffusion.uqdm import LOGISTIC_STD_TO_SCALE, scale_factor
from ..diffusion.samplers import uqdm_ancestral_step
from ..errors import FormatError
from ..kernels import diffusion_steps as K
from . import streams

# ---- the entropy-table scale grid (a format constant, pinned in tests/test_codec_uqdm.py) -------

# Scales in units of Δ (ŝ = s/Δ) snap to this grid for entropy coding: 64 log-spaced
# values over [1/64, 64] (ratio 2^(12/63) ≈ 1.14 per level, so a snapped scale is
# within 7 % of the true one and costs < 0.003 nats per symbol). Below 1/64 the
# bin holds the mass to within 1e−27; above 64 the symbol is ~8 bits of near-flat mass.
SCALE_TABLE_LEVELS = 64
SCALE_TABLE_MIN = 1.0 / 64.0
SCALE_TABLE_MAX = 64.0
_table64 = np.exp(np.linspace(np.log(SCALE_TABLE_MIN), np.log(SCALE_TABLE_MAX), SCALE_TABLE_LEVELS))
#: The 64 entropy-table scales in units of Δ (float32).
SCALE_TABLE = _table64.astype(np.float32)
#: Boundaries between neighbouring levels (geometric midpoints, float32): index = #{b_j ≤ ŝ}.
SCALE_BOUNDARIES = np.sqrt(_table64[:-1] * _table64[1:]).astype(np.float32)
#: Entropy-table scales as the coder reads them (float64 of the float32 grid).
SCALES = SCALE_TABLE.astype(np.float64)
#: Partial steps send the pixels whose 8×8 Bayer rank is below m (of FRACTION_UNITS = 64).
FRACTION_UNITS = 64


def scale_index(scale: torch.Tensor, width) -> torch.Tensor:
    """Index into :data:`SCALE_TABLE` of ŝ = s/Δ: the number of boundaries ≤ ŝ (int32).

    Comparisons only (no log), so every backend gives the same index for the same
    float32 ŝ; ŝ below the table maps to 0, above it to 63, NaN to 0. (The fused kernel
    computes the same index from f·c/Δ in float32.)
    """
    s_hat = (scale / width).contiguous()
    return K.scale_index_ref(s_hat, scale_boundaries(s_hat.device))


def scale_boundaries(device=None) -> torch.Tensor:
    """:data:`SCALE_BOUNDARIES` as the float32 tensor the kernel reads."""
    return torch.from_numpy(SCALE_BOUNDARIES).to(device)


def coefficients(c: StepCoefficients, device=None) -> torch.Tensor:
    """The kernel's float32 vector [α_t, σ_t, a, b, Δ, σ_{t|s}·√3/π], each rounded once from float64."""
    return torch.tensor([c.alpha_t, c.sigma_t, c.a, c.b, math.sqrt(12.0) * c.beta,
                         c.sigma_ts * LOGISTIC_STD_TO_SCALE], dtype=torch.float32, device=device)


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
        return cls(index, g_t, g_s, coefficients(step_coefficients(g_s, g_t)), int(fraction))

    @property
    def partial(self) -> bool:
        return self.fraction < FRACTION_UNITS


#: z_T ~ N(0, I) from common randomness (the one definition for both codecs).
initial_latent = streams.initial_latent


def dither(seed: int, step: int, shape):
    """(u as float64 NumPy, u as float32 tensor) for a step: ``chansim.dq``'s dither of stream
    :func:`.streams.dither`; both exact (u has 24 significant bits)."""
    n = int(np.prod(shape))
    u = dq.dither(seed, streams.dither(step), 0, n)
    return u, torch.from_numpy(u.astype(np.float32)).reshape(shape)


def network(model, z: torch.Tensor, gamma) -> tuple:
    """(ε̂, f) at latent z — raw ε̂ (network output plus the z skip) and the scale factor f,
    unclipped, as the kernel expects. The U-Net runs on a channels-last input (oneDNN's faster
    convolutions on CPU, ~20 % here; the codec also keeps its weights in that layout), results
    back in the standard layout. Both sides run this same call, so they agree bit for bit; the
    layout is not part of the format (another layout gives other bits, which the section
    checksum reports)."""
    z_cl = z.contiguous(memory_format=torch.channels_last)
    out = model.net(z_cl, torch.as_tensor(gamma, dtype=z.dtype))
    c = z.shape[1]
    eps = out[:, :c] + z_cl
    f = scale_factor(out[:, c:])
    return eps.contiguous(), f.contiguous()


def checksum(z: torch.Tensor) -> int:
    return zlib.crc32(z.contiguous().numpy().astype("<f4", copy=False).tobytes())


def fill_in(mu_p: torch.Tensor, scale: torch.Tensor, step: Step, seed: int) -> torch.Tensor:
    """A draw from the model's p(z_s | z_t) = logistic(μ_p, s) ⋆ U(±Δ/2), element by element, with
    common randomness (:func:`.streams.uqdm_fill_in`: uniforms v₀, v₁ of this step):
    μ_p + s·logit(v₀) + Δ(v₁ − ½).

    ``scale`` is the network's own logistic scale s = f·σ_{t|s}·√3/π (float32 ``f·c`` of the
    kernel's coefficients), the scale :func:`ancestral_step` uses for the later steps — not the
    entropy table's snapped value (within 6.8 % of it), which only the coder needs.
    """
    n = mu_p.numel()
    ul, uu = (torch.from_numpy(prng.uniform(seed, streams.uqdm_fill_in(step.index, part), 0, n))
              .reshape(mu_p.shape) for part in (0, 1))
    width = step.coefs[4]
    return mu_p + scale * torch.logit(ul) + width * (uu - 0.5)


def network_scale(f: torch.Tensor, step: Step) -> torch.Tensor:
    """The logistic scale s = f·c of the model's reverse step (float32; c = σ_{t|s}·√3/π)."""
    return f * step.coefs[5]


def ancestral_step(model, z: torch.Tensor, gamma_t: float, gamma_s: float, seed: int, k: int) -> torch.Tensor:
    """The decoder's ancestral step on grid step ``k`` after the file's steps: an exact draw from
    p(z_s | z_t) (:func:`chansim.diffusion.samplers.uqdm_ancestral_step`) with the uniforms of
    :func:`.streams.uqdm_ancestral`."""
    n = z.numel()
    ul, uu = (torch.from_numpy(prng.uniform(seed, streams.uqdm_ancestral(k, part), 0, n)).reshape(z.shape)
              for part in (0, 1))
    return uqdm_ancestral_step(model, z, gamma_t, gamma_s, ul, uu)


def _select(a: np.ndarray, mask: Optional[torch.Tensor]) -> np.ndarray:
    return a.reshape(-1) if mask is None else a.reshape(-1)[mask.numpy().reshape(-1)]


@dataclass
class Sent:
    """What the sender's step computes: indices, table indices, dither, μ_p, the whole-step z_s
    and the network's scale factor f."""

    k: torch.Tensor
    idx: torch.Tensor
    u: np.ndarray
    mu_p: torch.Tensor
    z_s: torch.Tensor
    f: Optional[torch.Tensor] = None


def run(model, z: torch.Tensor, x: torch.Tensor, step: Step, seed: int) -> Sent:
    """The sender's network call and fused step math for step ``step`` at latent ``z``."""
    u64, u = dither(seed, step.index, z.shape)
    eps, f = network(model, z, step.gamma_t)
    _, mu_p, k, idx, z_s = K.uqdm_encode(z, eps, f, x, u, step.coefs, scale_boundaries(), model.clip_denoised)
    return Sent(k, idx, u64, mu_p, z_s, f)


def section(sent: Sent, fraction: int = FRACTION_UNITS):
    """(z_s, section bytes) of a step sent for ``fraction``/64 of its pixels.

    A partial step codes the masked elements only; the others hold μ_p, the prior mean (see
    :func:`decode` for the sample the receiver draws there for ``"ancestral"``)."""
    mask = partial_mask(sent.z_s.shape, fraction)
    enc = rans.Encoder()
    enc.encode_logistic_dithered(_select(sent.k.numpy(), mask), 0.0, SCALES[_select(sent.idx.numpy(), mask)], 1.0,
                                _select(sent.u, mask))
    z_s = sent.z_s if mask is None else torch.where(mask, sent.z_s, sent.mu_p)
    return z_s, struct.pack("<I", checksum(z_s)) + enc.finish()


def sample_of(sent: Sent, step: Step, seed: int) -> torch.Tensor:
    """The receiver's ``z_sample`` (:func:`decode`) computed by the sender from its own step."""
    mask = partial_mask(sent.z_s.shape, step.fraction)
    if mask is None:
        return sent.z_s
    return torch.where(mask, sent.z_s, fill_in(sent.mu_p, network_scale(sent.f, step), step, seed))


def encode(model, z: torch.Tensor, x: torch.Tensor, step: Step, seed: int):
    """(z_s, section bytes) for the sender: :func:`run` then :func:`section`."""
    return section(run(model, z, x, step, seed), step.fraction)


def decode(model, z: torch.Tensor, section: bytes, step: Step, seed: int):
    """(z_s, z_sample) for the receiver; FormatError if the section does not reproduce the sender's z_s.

    After a partial step, z_s holds μ_p where nothing was sent (the better input for the
    denoiser) and z_sample a draw from the model's p(z_s | z_t) there instead (:func:`fill_in`,
    with the network's own scale), so z_sample is a sample of the model's reverse process
    given what was sent; after a whole step both are the same tensor."""
    if len(section) < 4:
        raise FormatError(f"UQDM step {step.index}: section of {len(section)} bytes is too short")
    u64, u = dither(seed, step.index, z.shape)
    eps, f = network(model, z, step.gamma_t)
    bounds, clip = scale_boundaries(), model.clip_denoised
    # The index depends on f alone; decode k with it, then rebuild z_s from k.
    k = torch.zeros(z.shape, dtype=torch.int32)
    _, mu_p, idx, _ = K.uqdm_decode(z, eps, f, k, u, step.coefs, bounds, clip)
    mask = partial_mask(z.shape, step.fraction)
    dec = rans.Decoder(section[4:])
    sent = u64.size if mask is None else int(mask.sum())
    if dec.num_symbols != sent:
        raise FormatError(f"UQDM step {step.index}: {dec.num_symbols} coded symbols, expected {sent}")
    ks = torch.from_numpy(dec.decode_logistic_dithered(0.0, SCALES[_select(idx.numpy(), mask)], 1.0,
                                                      _select(u64, mask)))
    if mask is None:
        k = ks.reshape(z.shape)
    else:
        k[mask] = ks
    _, _, _, z_s = K.uqdm_decode(z, eps, f, k, u, step.coefs, bounds, clip)
    z_sample = z_s
    if mask is not None:
        z_sample = torch.where(mask, z_s, fill_in(mu_p, network_scale(f, step), step, seed))
        z_s = torch.where(mask, z_s, mu_p)
    if struct.unpack("<I", section[:4])[0] != checksum(z_s):
        raise FormatError(
            f"UQDM step {step.index}: checksum of the reconstructed latent does not match the sender's — "
            "this machine's network output differs from the encoder's (different weights, library or CPU "
            "kernels), so decoding cannot continue")
    return z_s, z_sample
