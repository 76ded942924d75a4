"""Image quality metrics used by the evaluation tools: PSNR and MS-SSIM.

MS-SSIM follows Wang, Simoncelli & Bovik (2003) as the neural-compression literature
computes it (the TensorFlow / ``pytorch_msssim`` convention): an 11×11 Gaussian window
with σ = 1.5 applied "valid" (no padding), K1 = 0.01, K2 = 0.03, five scales with
weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333), 2×2 average pooling between scales,
contrast-structure terms clamped at 0 before the weighted product, and RGB images scored
per channel and averaged. An odd row or column is dropped before pooling (the original
MATLAB code's decimation; implementations differ here, all agree on sides that are
multiples of 16, such as Kodak's 768×512). Every scale must hold a full window, so both
sides must be at least 11·2⁴ = 176 pixels; smaller images raise ValueError rather than
get a silently different metric.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MS_SSIM_MIN_SIDE", "MS_SSIM_WEIGHTS", "bpp", "ms_ssim", "psnr", "ssim"]

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
_WIN = 11
_SIGMA = 1.5
_K1, _K2 = 0.01, 0.03
#: Smallest side for which every one of the five scales still holds a full window.
MS_SSIM_MIN_SIDE = _WIN * 2 ** (len(MS_SSIM_WEIGHTS) - 1)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB between two uint8 images (peak 255); inf when they are equal."""
    mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10.0 * np.log10(255.0 ** 2 / mse))


def bpp(data: bytes, height: int, width: int) -> float:
    """Bits per pixel of a file: its whole size, header and checksum included."""
    return 8.0 * len(data) / (height * width)


def _gauss() -> np.ndarray:
    x = np.arange(_WIN, dtype=np.float64) - (_WIN - 1) / 2
    g = np.exp(-(x ** 2) / (2 * _SIGMA ** 2))
    return g / g.sum()


def _filter(x: np.ndarray) -> np.ndarray:
    """Separable valid Gaussian filter over the two trailing axes of x[..., H, W]."""
    g = _gauss()
    h, w = x.shape[-2] - _WIN + 1, x.shape[-1] - _WIN + 1
    v = g[0] * x[..., :h, :]
    for k in range(1, _WIN):
        v += g[k] * x[..., k:k + h, :]
    out = g[0] * v[..., :w]
    for k in range(1, _WIN):
        out += g[k] * v[..., k:k + w]
    return out


def _ssim_terms(x: np.ndarray, y: np.ndarray, data_range: float):
    """Per-channel mean SSIM and mean contrast-structure term of x, y[C, H, W], each shape [C]."""
    c1, c2 = (_K1 * data_range) ** 2, (_K2 * data_range) ** 2
    # One filtering pass over the five moment images stacked on a leading axis.
    mx, my, exx, eyy, exy = _filter(np.stack([x, y, x * x, y * y, x * y]))
    sxx, syy, sxy = exx - mx * mx, eyy - my * my, exy - mx * my
    cs = (2 * sxy + c2) / (sxx + syy + c2)
    lum = (2 * mx * my + c1) / (mx * mx + my * my + c1)
    return (lum * cs).mean(axis=(1, 2)), cs.mean(axis=(1, 2))


def _as_float(a, b):
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    if a.ndim == 2:
        a, b = a[..., None], b[..., None]
    if a.ndim != 3:
        raise ValueError(f"images must be (H, W) or (H, W, C), got shape {a.shape}")
    # Channels first, so the filter's shifted slices run along contiguous rows.
    return (np.ascontiguousarray(np.moveaxis(a, -1, 0), dtype=np.float64),
            np.ascontiguousarray(np.moveaxis(b, -1, 0), dtype=np.float64))


def ssim(a, b, data_range: float = 255.0) -> float:
    """Single-scale SSIM (Gaussian window, valid filtering), averaged over channels."""
    x, y = _as_float(a, b)
    if min(x.shape[1:]) < _WIN:
        raise ValueError(f"SSIM needs both sides ≥ {_WIN} pixels, got {x.shape[2]}×{x.shape[1]} (width×height)")
    return float(_ssim_terms(x, y, data_range)[0].mean())


def ms_ssim(a, b, data_range: float = 255.0) -> float:
    """Five-scale MS-SSIM of two images (uint8 RGB by default: ``data_range`` 255).

    Raises ValueError for images with a side below :data:`MS_SSIM_MIN_SIDE` (176).
    """
    x, y = _as_float(a, b)
    h, w = x.shape[1:]
    if min(h, w) < MS_SSIM_MIN_SIDE:
        raise ValueError(f"MS-SSIM (5 scales, 11×11 window) needs both sides ≥ {MS_SSIM_MIN_SIDE} pixels, "
                         f"got {w}×{h} (width×height)")
    weights = np.asarray(MS_SSIM_WEIGHTS)
    factors = []
    for level in range(len(weights)):
        s, cs = _ssim_terms(x, y, data_range)
        if level == len(weights) - 1:
            factors.append(np.maximum(s, 0.0))
        else:
            factors.append(np.maximum(cs, 0.0))
            # 2×2 average pooling; an odd trailing row/column is dropped (floor), as in avg_pool2d.
            hh, ww = (x.shape[1] // 2) * 2, (x.shape[2] // 2) * 2
            x = x[:, :hh, :ww].reshape(-1, hh // 2, 2, ww // 2, 2).mean(axis=(2, 4))
            y = y[:, :hh, :ww].reshape(-1, hh // 2, 2, ww // 2, 2).mean(axis=(2, 4))
    per_channel = np.prod(np.stack(factors) ** weights[:, None], axis=0)
    return float(per_channel.mean())
