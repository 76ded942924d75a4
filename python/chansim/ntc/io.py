"""NTC model files: config, weights and the hyper-latent frequency tables in one torch file.

``torch.save({"format": "chansim-ntc-model", "version", "config", "state_dict"})``, read
with ``weights_only=True``. The tables travel inside ``state_dict`` as int32 tensors
``z_offsets`` / ``z_freqs``, so the content hash (:func:`chansim.diffusion.io.model_id`,
the id files carry) covers everything a decoder depends on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Tuple, Union

import numpy as np
import torch

from ..diffusion.io import model_id, stored_state_dict
from .model import HyperpriorModel
from .tables import SCALE_MIN

FORMAT = "chansim-ntc-model"
VERSION = 1
TABLE_KEYS = ("z_offsets", "z_freqs")


def save_model(model: HyperpriorModel, path: Union[str, Path], dtype: torch.dtype = torch.float16) -> str:
    """Write weights (``dtype``) and tables computed from the *stored* weights; returns the model id."""
    sd = stored_state_dict(model, dtype)
    # Tabulate what ships: the density after rounding to the storage dtype.
    shipped = HyperpriorModel(**_kwargs(model.config()))
    shipped.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in sd.items()})
    offsets, freqs = shipped.tabulate()
    sd["z_offsets"] = torch.from_numpy(offsets)
    sd["z_freqs"] = torch.from_numpy(freqs)
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save({"format": FORMAT, "version": VERSION, "config": model.config(), "state_dict": sd}, tmp)
    tmp.replace(path)
    return model_id(model.config(), sd)


def _kwargs(cfg):
    return {"n": cfg["n"], "m": cfg["m"], "lambdas": cfg["lambdas"], "slices": cfg.get("slices", 1),
            "residual": bool(cfg.get("residual", False)), "scale_min": cfg.get("scale_min", SCALE_MIN),
            "hyper_n": cfg.get("hyper_n")}


def load_model(path: Union[str, Path]) -> Tuple[HyperpriorModel, Tuple[np.ndarray, np.ndarray], str]:
    """(model in eval mode, float32; (offsets, frequencies); model id)."""
    blob = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise ValueError(f"{path}: not a chansim NTC model file")
    if blob.get("version") != VERSION:
        raise ValueError(f"{path}: NTC model file version {blob.get('version')} (this chansim reads {VERSION})")
    cfg, sd = blob["config"], dict(blob["state_dict"])
    mid = model_id(cfg, sd)
    tables = tuple(sd.pop(k).numpy().astype(np.int32) for k in TABLE_KEYS)
    model = HyperpriorModel(**_kwargs(cfg))
    model.load_state_dict({k: v.to(torch.float32) if v.is_floating_point() else v for k, v in sd.items()})
    model.eval().requires_grad_(False)
    return model, tables, mid
