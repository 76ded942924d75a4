"""Synthetic test images shared by the codec tests (importable: tests/ is on sys.path under pytest).

- :func:`disc_image`: smooth gradients, a red disc and mild noise — structure a model can predict,
  edges it cannot (the DiffC channel tests).
- :func:`pattern_image`: a deterministic modular pattern with no randomness (the pretrained-model
  and latent-mode round trips, where only bit agreement matters).
"""

import numpy as np


def disc_image(h=32, w=48, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.stack([40 + 3 * xx, 60 + 4 * yy, 128 + 60 * np.sin(xx / 5.0)], axis=-1)
    img[(yy - h / 2) ** 2 + (xx - w / 3) ** 2 < (h / 4) ** 2] = (220, 40, 30)
    img += rng.normal(0, 4, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def pattern_image(h=64, w=64):
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([(4 * xx) % 256, (6 * yy) % 256, (xx * yy) % 256], -1).astype(np.uint8)
