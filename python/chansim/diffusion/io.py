"""Model files: weights + config in one torch file, a content hash, and the model card.

A model file is ``torch.save({"format", "version", "config", "state_dict"})``,
loaded with ``weights_only=True`` (no pickled code runs). Weights may be stored
as float16 to fit the package budget; they are always computed in float32.

:func:`model_id` hashes the *content* (config JSON and every tensor's name, dtype,
shape and bytes, in sorted order), so re-saving the same weights keeps the id a
codec writes into its container, and any change of weights or config changes it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Dict, Tuple, Union

import torch

from .models import build_model

FORMAT = "chansim-diffusion-model"
VERSION = 1


def model_id(config: Dict[str, Any], state_dict: Dict[str, torch.Tensor]) -> str:
    """SHA-256 (hex) of the config and the stored tensors."""
    h = hashlib.sha256()
    h.update(json.dumps(config, sort_keys=True, separators=(",", ":")).encode())
    for name in sorted(state_dict):
        t = state_dict[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def file_sha256(path: Union[str, Path]) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def stored_state_dict(model: torch.nn.Module, dtype: torch.dtype = torch.float32) -> Dict[str, torch.Tensor]:
    """The state dict as it will be stored: floating tensors cast to ``dtype``."""
    return {k: (v.detach().cpu().to(dtype) if v.is_floating_point() else v.detach().cpu()).contiguous()
            for k, v in model.state_dict().items()}


def save_model(model: torch.nn.Module, path: Union[str, Path], dtype: torch.dtype = torch.float32) -> str:
    """Write ``model`` to ``path``; returns its :func:`model_id`."""
    sd = stored_state_dict(model, dtype)
    cfg = model.config()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save({"format": FORMAT, "version": VERSION, "config": cfg, "state_dict": sd}, tmp)
    tmp.replace(path)
    return model_id(cfg, sd)


def load_model(path: Union[str, Path]) -> Tuple[torch.nn.Module, str]:
    """(model in eval mode, float32, on CPU; its model id) from a file written by :func:`save_model`."""
    blob = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise ValueError(f"{path}: not a chansim diffusion model file")
    if blob.get("version") != VERSION:
        raise ValueError(f"{path}: model file version {blob.get('version')} (this chansim reads {VERSION})")
    cfg, sd = blob["config"], blob["state_dict"]
    model = build_model(cfg)
    model.load_state_dict({k: v.to(torch.float32) if v.is_floating_point() else v for k, v in sd.items()})
    model.eval().requires_grad_(False)
    return model, model_id(cfg, sd)


def write_card(card: Dict[str, Any], path: Union[str, Path]) -> None:
    """Write the card as JSON (``path``) and as Markdown beside it (same stem, ``.md``)."""
    path = Path(path)
    path.write_text(json.dumps(card, indent=2, sort_keys=False) + "\n")
    lines = [f"# {card.get('name', path.stem)}", ""]
    if card.get("summary"):
        lines += [card["summary"], ""]
    lines += ["| field | value |", "|---|---|"]
    for k, v in card.items():
        if k in ("name", "summary"):
            continue
        if isinstance(v, (dict, list)):
            v = "`" + json.dumps(v, separators=(", ", ": ")) + "`"
        lines.append(f"| {k} | {v} |")
    path.with_suffix(".md").write_text("\n".join(lines) + "\n")
