"""Image quality metrics used by the evaluation tools: PSNR, MS-SSIM and the high-frequency energy ratio.

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

The high-frequency energy ratio (:func:`hf_energy_ratio`) is a weight-free realism figure:
how much fine detail a reconstruction keeps (or invents) relative to the photo, 1.0 = as much.
Its definition is in the function's docstring.
"""

from __future__ import annotations

import numpy as np

__all__ = ["HF_MIN_SIDE", "MS_SSIM_MIN_SIDE", "MS_SSIM_WEIGHTS", "bpp", "hf_energy_ratio", "ms_ssim", "psnr",
           "ssim"]

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
_WIN = 11
_SIGMA = 1.5
_K1, _K2 = 0.01, 0.03
#: Smallest side for which every one of the five scales still holds a full window.
MS_SSIM_MIN_SIDE = _WIN * 2 ** (len(MS_SSIM_WEIGHTS) - 1)
#: Smallest side for :func:`hf_energy_ratio`: below it the band above a quarter of the sampling
#: rate holds only a handful of frequency bins (four at 16 pixels), too few to average.
HF_MIN_SIDE = 16


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


def _hf_energy(x: np.ndarray, cutoff: float):
    """(energy above ``cutoff`` cycles/pixel, energy below Nyquist) of x[C, H, W] (float64),
    each summed over channels."""
    h, w = x.shape[1:]
    x = x - x.mean(axis=(1, 2), keepdims=True)
    # The DFT treats the image as one period of a periodic signal, so the jump between opposite
    # edges would act as a sharp edge and add spurious high-frequency energy (to both images, but
    # by an amount set by their borders, not their detail). The Hann window tapers the edges to 0.
    window = np.outer(np.hanning(h), np.hanning(w))
    power = (np.abs(np.fft.fft2(x * window)) ** 2).sum(axis=0)
    f = np.hypot(*np.meshgrid(np.fft.fftfreq(h), np.fft.fftfreq(w), indexing="ij"))
    # Rings one frequency step of the shorter side wide (the coarser of the two grid spacings,
    # so no ring below Nyquist is empty); rings reaching past Nyquist (the corners) are left out.
    step = 1.0 / min(h, w)
    ring = np.floor(f / step).astype(np.int64)
    n_rings = min(h, w) // 2
    inside = ring < n_rings
    counts = np.bincount(ring[inside], minlength=n_rings)
    sums = np.bincount(ring[inside], weights=power[inside], minlength=n_rings)
    radial = sums / np.maximum(counts, 1)  # the radially averaged power spectrum
    band = (np.arange(n_rings) * step >= cutoff - 1e-12) & (counts > 0)
    return float(radial[band].sum() * step), float(radial[counts > 0].sum() * step)


def hf_energy(image, cutoff: float = 0.25) -> float:
    """The band energy :func:`hf_energy_ratio` divides: the radially averaged power spectrum of the
    mean-removed, Hann-windowed image integrated over cutoff ≤ f < 0.5 cycles/pixel, summed over
    channels. Sums of it over a set of images give a set's ratio that flat images cannot dominate."""
    x, _ = _as_float(image, image)
    if min(x.shape[1:]) < HF_MIN_SIDE:
        raise ValueError(f"the high-frequency energy needs both sides ≥ {HF_MIN_SIDE} pixels")
    if not 0.0 < cutoff < 0.5:
        raise ValueError(f"cutoff must lie in (0, 0.5) cycles/pixel (0.5 is Nyquist), got {cutoff}")
    return _hf_energy(x, cutoff)[0]


def hf_energy_ratio(reconstruction, original, cutoff: float = 0.25) -> float:
    """High-frequency energy of ``reconstruction`` over that of ``original`` (1.0 = as much fine detail).

    For each image and channel: subtract the channel mean, multiply by a 2-D Hann window (without
    it the DFT's periodic boundary turns the image's edges into a discontinuity that adds
    spurious high-frequency energy), take |FFT|², average it over rings of radial frequency
    f = √(fx² + fy²) (cycles/pixel; rings one frequency step of the shorter side wide) and
    integrate that radial average over cutoff ≤ f < 0.5 (the Nyquist frequency; the spectrum's
    corners beyond it are left out). The default cutoff 0.25 cycles/pixel is a quarter of the
    sampling rate. The band energies of all channels are summed, and the ratio is taken of the
    sums: reconstruction over original. Averaging over images is the caller's (``chansim eval``
    reports the per-image ratio and its mean).

    Below 1: the reconstruction lost fine detail (blur, a smooth MMSE decode); above 1: it has
    more than the photo (noise, ringing, invented texture). Not a fidelity measure: white noise
    of the right power scores 1.0.

    Images are (H, W) or (H, W, C), uint8 (any real dtype is accepted and used as is), both
    sides ≥ :data:`HF_MIN_SIDE` (16). Raises ValueError for a shape mismatch, a smaller image,
    a cutoff outside (0, 0.5), or an original with no energy in the band (e.g. a flat image),
    where the ratio is undefined.
    """
    a, b = _as_float(reconstruction, original)
    h, w = a.shape[1:]
    if min(h, w) < HF_MIN_SIDE:
        raise ValueError(f"the high-frequency energy ratio needs both sides ≥ {HF_MIN_SIDE} pixels, "
                         f"got {w}×{h} (width×height)")
    if not 0.0 < cutoff < 0.5:
        raise ValueError(f"cutoff must lie in (0, 0.5) cycles/pixel (0.5 is Nyquist), got {cutoff}")
    ref, ref_all = _hf_energy(b, cutoff)
    # Relative to the image's whole spectrum: a flat original's band "energy" is FFT rounding
    # (~1e-32 of it), not detail.
    if not ref > 1e-20 * ref_all:
        raise ValueError(f"the original has no energy above {cutoff} cycles/pixel (a flat or very smooth image): "
                         f"the high-frequency energy ratio is undefined")
    return _hf_energy(a, cutoff)[0] / ref
