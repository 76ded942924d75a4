"""The UQDM codec (Yang, Will & Mandt 2025): progressive coding by universal quantization.

For now this holds the model and its step grid; compression is built on top of it
(dithered quantization per step, entropy-coded against the logistic ⋆ uniform prior).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from ._pretrained import load_shipped

DEFAULT_MODEL = "uqdm_default"


class UQDM:
    """A UQDM model with its schedule and identity.

    Attributes:
        model: :class:`chansim.diffusion.UQDMModel` (float32, eval mode, CPU).
        schedule: the model's γ(t).
        steps: number of diffusion steps T.
        model_id: SHA-256 hex of the weights + config.
        card: the model card (dict) for shipped models, else None.
    """

    codec_id = "uqdm"

    def __init__(self, model, model_id: str, card: Optional[Dict[str, Any]] = None):
        if getattr(model, "kind", None) != "uqdm":
            raise TypeError("UQDM needs a chansim.diffusion.UQDMModel")
        self.model, self.model_id, self.card = model, model_id, card
        self.schedule = model.schedule
        self.steps = model.steps

    @classmethod
    def pretrained(cls, name: str = DEFAULT_MODEL) -> "UQDM":
        """The model shipped in the package (no network access)."""
        return cls(*load_shipped(name, "uqdm"))

    def gammas(self) -> List[float]:
        """γ(t_i) for t_i = 1 − i/T, i = 0..T, as float64 Python floats (the values both sides use)."""
        return [float(g) for g in self.model.gammas().detach()]

    def __repr__(self) -> str:
        return f"UQDM(steps={self.steps}, model_id={self.model_id[:16]}…)"
