"""Diffusion-based generative image codecs (need PyTorch).

``UQDM.pretrained()`` and ``DiffC.pretrained()`` load the default models shipped
inside the package (``chansim/models/``), offline. Each codec object holds its
model, the model's noise schedule and ``model_id`` (the SHA-256 content hash of the
weights and config, see :func:`chansim.diffusion.io.model_id`).
"""

from .diffc import DiffC
from .uqdm import UQDM

__all__ = ["DiffC", "UQDM"]
