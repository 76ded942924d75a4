"""Lossless UQDM: the pixels coded exactly under the discretized p(x | z_0) after the last step.

p(x = level | z_0) is :func:`chansim.diffusion.likelihood.reconstruction_log_probs`: a
softmax over the 256 levels of −½ SNR_0 (z_0/α_0 − x_level)². It depends on z_0 only
through w = z_0/α_0, i.e. on the nearest level c and the offset d = position − c ∈ [−½, ½]
(in levels). The coder uses d quantized to 1/64 of a level, so the probabilities come
from a fixed table of 65 rows × (2J + 1) offsets around c, built once per model from that
same function (float64) and rounded to 2^−40; each element's row is its table row with the
levels outside 0…255 removed and renormalised near the ends. All pixels then go to the rANS categorical
family in one call (per-symbol rows, docs/format.md §2.7); a pixel outside c ± J takes the
escape. The section is ``CRC32(pixels) ‖ rANS stream``, pixels as uint8 in C, H, W order,
so a receiver whose table differs reports it instead of returning wrong pixels.
"""

from __future__ import annotations

import math
import struct
import zlib

import numpy as np
import torch

from .. import rans
from ..diffusion.likelihood import VOCAB, reconstruction_log_probs
from ..errors import FormatError

ROWS_PER_LEVEL = 64
QUANTUM = 2.0 ** -40


def _geometry(gamma_0: float):
    """(α_0, half-width J): J covers > 12 standard deviations of the level noise."""
    g = torch.tensor(float(gamma_0), dtype=torch.float64)
    alpha0 = float(torch.sigmoid(-g).sqrt())
    sigma_levels = (VOCAB / 2.0) * math.exp(0.5 * float(gamma_0))  # σ_0/α_0 in levels
    return alpha0, int(min(VOCAB // 2 - 1, math.ceil(12.0 * sigma_levels) + 2))


def table(gamma_0: float) -> np.ndarray:
    """float64 [2·ROWS_PER_LEVEL/2 + 1, 2J + 1]: p(c + j | position c + r/64) for r = −32…32, j = −J…J."""
    alpha0, J = _geometry(gamma_0)
    half = ROWS_PER_LEVEL // 2
    centre = VOCAB // 2
    pos = centre + torch.arange(-half, half + 1, dtype=torch.float64) / ROWS_PER_LEVEL
    z0 = alpha0 * (2.0 * ((pos + 0.5) / VOCAB) - 1.0)
    lp = reconstruction_log_probs(z0, torch.tensor(float(gamma_0), dtype=torch.float64))
    p = lp[:, centre - J:centre + J + 1].exp().numpy()
    return np.rint(p / QUANTUM) * QUANTUM


def _rows(z0: np.ndarray, gamma_0: float, tab: np.ndarray):
    """(nearest level c, per-element probability rows) for flat float32 z_0."""
    alpha0, J = _geometry(gamma_0)
    pos = (z0.astype(np.float64) / alpha0 + 1.0) * (VOCAB / 2.0) - 0.5
    pos = np.nan_to_num(pos, nan=0.0, posinf=VOCAB - 1.0, neginf=0.0)
    c = np.clip(np.rint(pos), 0, VOCAB - 1)
    half = ROWS_PER_LEVEL // 2
    r = np.clip(np.rint((pos - c) * ROWS_PER_LEVEL), -half, half).astype(np.int64) + half
    rows = tab[r]
    c = c.astype(np.int64)
    # Rows within J of the ends lose the levels outside 0…255 and are renormalised; the others
    # are table rows as they are (the categorical family divides by the row sum itself).
    edge = np.flatnonzero((c < J) | (c > VOCAB - 1 - J))
    if edge.size:
        sub = rows[edge]
        levels = c[edge, None] + np.arange(-J, J + 1)
        sub[(levels < 0) | (levels >= VOCAB)] = 0.0
        rows[edge] = sub / sub.sum(axis=1, keepdims=True)
    return c, J, rows


def encode(pixels: np.ndarray, z0: torch.Tensor, gamma_0: float, tab: np.ndarray) -> bytes:
    """Section for uint8 ``pixels`` (C, H, W order, same element order as ``z0``)."""
    flat = np.ascontiguousarray(pixels, dtype=np.uint8).reshape(-1)
    c, J, rows = _rows(z0.numpy().reshape(-1), gamma_0, tab)
    enc = rans.Encoder()
    enc.encode_categorical((flat.astype(np.int64) - c + J).astype(np.int32), rows)
    return struct.pack("<I", zlib.crc32(flat.tobytes())) + enc.finish()


def decode(section: bytes, z0: torch.Tensor, gamma_0: float, tab: np.ndarray) -> np.ndarray:
    """The uint8 pixels (flat, C, H, W order); FormatError if they do not match the sender's checksum."""
    if len(section) < 4:
        raise FormatError(f"UQDM lossless section of {len(section)} bytes is too short")
    c, J, rows = _rows(z0.numpy().reshape(-1), gamma_0, tab)
    dec = rans.Decoder(section[4:])
    if dec.num_symbols != c.size:
        raise FormatError(f"UQDM lossless section codes {dec.num_symbols} pixels for {c.size}")
    v = dec.decode_categorical(rows).astype(np.int64) + c - J
    if v.min(initial=0) < 0 or v.max(initial=0) >= VOCAB:
        raise FormatError("UQDM lossless section decodes to values outside 0…255")
    pixels = v.astype(np.uint8)
    if struct.unpack("<I", section[:4])[0] != zlib.crc32(pixels.tobytes()):
        raise FormatError("UQDM lossless section: decoded pixels fail the sender's checksum "
                          "(this machine's p(x | z_0) tables differ from the encoder's)")
    return pixels
