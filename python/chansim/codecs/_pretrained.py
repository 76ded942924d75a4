"""Locating and loading the models shipped in ``chansim/models/``."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any, Dict, Optional, Tuple


def models_dir() -> Path:
    return Path(str(resources.files("chansim") / "models"))


def load_shipped(name: str, kind: str) -> Tuple[Any, str, Optional[Dict[str, Any]]]:
    """(model, model_id, card) for ``chansim/models/<name>.pt``; checks the model kind."""
    from ..diffusion.io import load_model

    path = models_dir() / f"{name}.pt"
    if not path.is_file():
        raise FileNotFoundError(f"no shipped model {name!r} (looked for {path})")
    model, mid = load_model(path)
    if model.kind != kind:
        raise ValueError(f"{path} holds a {model.kind!r} model, expected {kind!r}")
    card_path = path.with_suffix(".json")
    card = json.loads(card_path.read_text()) if card_path.is_file() else None
    return model, mid, card
