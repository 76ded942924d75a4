"""Image arrays in and out of the codecs: validation, padding to the network stride.

``psnr`` and ``bpp`` are re-exported from :mod:`chansim.metrics`, where they live.
"""

from __future__ import annotations

import numpy as np

from ..metrics import bpp, psnr  # noqa: F401  (one PSNR and bpp for the whole project)

MIN_SIDE = 16


def check_image(image) -> np.ndarray:
    """A C-contiguous uint8[H, W, 3] with H, W ≥ 16, or a ValueError naming what is wrong."""
    if not isinstance(image, np.ndarray):
        raise ValueError(f"image must be a NumPy uint8 array of shape (H, W, 3), got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"image must have dtype uint8, got {image.dtype}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must have shape (H, W, 3), got {image.shape}")
    h, w = image.shape[:2]
    if h < MIN_SIDE or w < MIN_SIDE:
        raise ValueError(f"image sides must be at least {MIN_SIDE} pixels, got {w}×{h} (width×height)")
    return np.ascontiguousarray(image)


def pad_to_multiple(image: np.ndarray, multiple: int) -> np.ndarray:
    """Replicate-pad the bottom and right edges so both sides are multiples of ``multiple``.

    The padded pixels are coded like any others (the decoder crops them away), and edge
    replication keeps them cheap: they repeat the image's own border.
    """
    h, w = image.shape[:2]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return image
    return np.pad(image, ((0, ph), (0, pw), (0, 0)), mode="edge")


def to_batch(image: np.ndarray):
    """uint8[H, W, 3] → int64 tensor [1, 3, H, W] of raw pixel values (what the models take)."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).unsqueeze(0).to(torch.int64)


def from_batch(x_raw, height: int, width: int) -> np.ndarray:
    """Tensor [1, 3, H', W'] of pixel values 0…255 → uint8[height, width, 3] (cropping the padding)."""
    arr = x_raw[0, :, :height, :width].detach().cpu().numpy()
    return np.ascontiguousarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8).transpose(1, 2, 0))


def to_gray(image: np.ndarray) -> np.ndarray:
    """uint8[H, W, 3] → uint8[H, W]: the rounded mean of the three channels (exact: the mean's
    fractional part is 0, ⅓ or ⅔, never ½). What a grayscale source decodes to: a codec that
    coded R = G = B may reconstruct the channels slightly apart, and their mean is the best
    one-channel estimate."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an image of shape (H, W, 3), got {image.shape}")
    return ((image.astype(np.uint16).sum(axis=2) + 1) // 3).astype(np.uint8)
