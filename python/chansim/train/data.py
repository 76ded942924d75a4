"""Training crops and held-out evaluation crops.

Training photos: every image under ``<shared>/data/train/<collection>/`` (BSDS500,
Sun-Hays80, Urban100), decoded once into memory (~450 MB). Crops are drawn with
probability proportional to each image's area, so every pixel is equally likely
regardless of which collection it came from, and flipped left-right half the time.
Kodak is evaluation-only: :func:`kodak_heldout` takes one fixed centre crop per image.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np
import torch

from ..data import shared_data_dir

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def _require_shared(sub: str, root: Optional[Path]) -> Path:
    root = Path(root) if root is not None else shared_data_dir()
    if root is None:
        raise FileNotFoundError("shared data directory not found: set CHANSIM_SHARED_DATA or place shared/data "
                                "beside the repository")
    d = root / sub
    if not d.is_dir():
        raise FileNotFoundError(f"{d} does not exist")
    return d


def crop_side(text: str) -> int:
    """argparse type of an NTC run's crop side: a positive multiple of 64 (the models' total stride)."""
    import argparse

    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer")
    if v <= 0 or v % 64:
        raise argparse.ArgumentTypeError(f"the crop side must be a positive multiple of 64, got {v}")
    return v


def centre_crop(image: np.ndarray, side: int) -> np.ndarray:
    """The centre ``side × side`` window of an HWC image (rounding the offsets down)."""
    if min(image.shape[:2]) < side:
        raise ValueError(f"a {image.shape[0]}×{image.shape[1]} image has no centre {side}×{side} crop")
    y, x = (image.shape[0] - side) // 2, (image.shape[1] - side) // 2
    return image[y:y + side, x:x + side]


def image_files(directory: Path) -> List[Path]:
    return sorted(p for p in Path(directory).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def training_collections(root: Optional[Path] = None, names: Optional[Sequence[str]] = None) -> dict:
    """{collection: its image files} under ``<shared>/train``: every collection, or those ``names``
    (a ValueError names an unknown one and the ones there are)."""
    train = _require_shared("train", root)
    found = {d.name: image_files(d) for d in sorted(train.iterdir()) if d.is_dir()}
    if names is None:
        return found
    if not names:
        raise ValueError(f"no training collection named; {train} has {sorted(found)}")
    unknown = [n for n in names if n not in found]
    if unknown:
        raise ValueError(f"unknown training collection(s) {unknown!r}; {train} has {sorted(found)}")
    return {n: found[n] for n in names}


def load_rgb(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


class CropSampler:
    """Random ``crop × crop`` patches with horizontal flips from a list of HWC uint8 images.

    The sampler's randomness is a NumPy ``Generator`` whose state goes into training
    checkpoints, so a resumed run draws the same crops it would have drawn.
    """

    def __init__(self, images: Sequence[np.ndarray], crop: int, seed: int = 0):
        self.images = [im for im in images if im.shape[0] >= crop and im.shape[1] >= crop]
        if not self.images:
            raise ValueError(f"no training image is at least {crop}×{crop}")
        area = np.array([im.shape[0] * im.shape[1] for im in self.images], dtype=np.float64)
        self.p = area / area.sum()
        self.crop = crop
        self.rng = np.random.default_rng(seed)

    @classmethod
    def from_shared(cls, crop: int, seed: int = 0, root: Optional[Path] = None, progress: bool = True,
                    collections: Optional[Sequence[str]] = None):
        """Crops of the training photos: every collection, or the named ``collections``."""
        if collections is None:
            files = image_files(_require_shared("train", root))
        else:
            files = [f for fs in training_collections(root, collections).values() for f in fs]
        if not files:
            raise FileNotFoundError("no training images found")
        it = files
        if progress:
            from tqdm import tqdm

            it = tqdm(files, desc="loading training photos", unit="img", leave=False)
        return cls([load_rgb(f) for f in it], crop, seed)

    def batch(self, n: int) -> torch.Tensor:
        """(n, 3, crop, crop) uint8."""
        c = self.crop
        out = np.empty((n, c, c, 3), dtype=np.uint8)
        idx = self.rng.choice(len(self.images), size=n, p=self.p)
        for j, i in enumerate(idx):
            im = self.images[i]
            y = self.rng.integers(0, im.shape[0] - c + 1)
            x = self.rng.integers(0, im.shape[1] - c + 1)
            patch = im[y:y + c, x:x + c]
            out[j] = patch[:, ::-1] if self.rng.random() < 0.5 else patch
        return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()

    def state(self):
        return self.rng.bit_generator.state

    def set_state(self, state) -> None:
        self.rng.bit_generator.state = state


def kodak_heldout(crop: int = 128, root: Optional[Path] = None) -> torch.Tensor:
    """One centre ``crop × crop`` patch of each Kodak image: (24, 3, crop, crop) uint8."""
    files = image_files(_require_shared("kodak", root))
    if not files:
        raise FileNotFoundError("no Kodak images found")
    crops = [centre_crop(load_rgb(f), crop) for f in files]
    return torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).contiguous()
