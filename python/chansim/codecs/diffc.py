"""The DiffC codec (Theis et al. 2022; Vonderfecht & Liu 2025): Gaussian diffusion steps sent by channel simulation.

For now this holds the denoiser and its schedule; compression is built on top of it.
Any denoiser with ``schedule`` and ``denoise(z, gamma)`` works, including a user's
diffusers model through :class:`chansim.diffusion.diffusers_adapter.DiffusersDenoiser`.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from ._pretrained import load_shipped

DEFAULT_MODEL = "diffc_default"


class DiffC:
    """A Gaussian diffusion denoiser with its schedule and identity.

    Attributes:
        model: the denoiser (:class:`chansim.diffusion.GaussianDiffusion` for the shipped model).
        schedule: γ(t) of the model.
        model_id: SHA-256 hex of the weights + config.
        card: the model card (dict) for shipped models, else None.
    """

    codec_id = "diffc"

    def __init__(self, model, model_id: str, card: Optional[Dict[str, Any]] = None):
        if not (hasattr(model, "denoise") and hasattr(model, "schedule")):
            raise TypeError("DiffC needs a denoiser with .schedule and .denoise(z, gamma)")
        self.model, self.model_id, self.card = model, model_id, card
        self.schedule = model.schedule

    @classmethod
    def pretrained(cls, name: str = DEFAULT_MODEL) -> "DiffC":
        """The model shipped in the package (no network access)."""
        return cls(*load_shipped(name, "gaussian"))

    @classmethod
    def from_diffusers(cls, path) -> "DiffC":
        """Zero-shot DiffC on a diffusers model saved in a local directory."""
        from ..diffusion.diffusers_adapter import DiffusersDenoiser

        den = DiffusersDenoiser.from_pretrained(path)
        return cls(den, den.model_id())

    def __repr__(self) -> str:
        return f"DiffC(model_id={self.model_id[:16]}…)"
