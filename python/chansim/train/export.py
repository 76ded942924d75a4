"""Turn a run's checkpoint into a shipped model: EMA weights + model card.

Weights are stored as float32 when they fit the 5 MB package budget and as
float16 otherwise; the card's held-out bits/dim are measured on the *stored*
weights (after any float16 rounding), so the number describes what ships.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
from pathlib import Path
from typing import Optional

import torch

from ..diffusion.io import file_sha256, save_model, stored_state_dict, write_card
from .data import training_collections
from .loop import describe_machine, evaluate_per_image, make_model

SIZE_BUDGET = 5 * 1024 * 1024

_SUMMARIES = {
    "uqdm": "Universally quantized diffusion model (UQDM, Yang, Will & Mandt 2025) for chansim's UQDM codec: "
            "T uniform-noise steps, logistic reverse densities with a learned per-coordinate scale.",
    "gaussian": "Gaussian diffusion model (VDM continuous-time loss, ε-prediction) for chansim's DiffC codec.",
}


def _source_summary(args, keys=("name", "steps", "wall_time_s", "heldout_bits_per_dim")) -> Optional[dict]:
    """What a run initialised from (its card's steps and wall time count towards this model's training);
    ``keys``: the source card's entries to repeat."""
    if not args.get("init_from"):
        return None
    src = Path(args["init_from"])
    out = {"file": src.name, "model_id": args.get("init_from_id")}
    card = src.with_suffix(".json")
    if card.is_file():
        c = json.loads(card.read_text())
        out.update({k: c.get(k) for k in keys})
    return out


def export(run_dir: Path, dest: Path, name: str, heldout: Optional[torch.Tensor], command: str = "") -> Path:
    """Write ``dest/name.pt`` and its card ``dest/name.json`` / ``.md`` from ``run_dir/checkpoint.pt``."""
    run_dir, dest = Path(run_dir), Path(dest)
    blob = torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=False)
    args = blob["args"]
    # Rebuild from the run's arguments, so the config records the initial schedule, not a snapshot of learned values.
    model = make_model(argparse.Namespace(**args))
    model.load_state_dict(blob["ema"]["shadow"])
    model.eval()
    n_params = sum(p.numel() for p in model.parameters())
    dtype = torch.float32 if 4 * n_params + 64_000 <= SIZE_BUDGET else torch.float16
    # Evaluate exactly what ships: round through the storage dtype first.
    model.load_state_dict({k: v.to(torch.float32) if v.is_floating_point() else v
                           for k, v in stored_state_dict(model, dtype).items()})
    path = dest / f"{name}.pt"
    mid = save_model(model, path, dtype)
    per_image = evaluate_per_image(model, heldout) if heldout is not None else None
    res = {k: float(v.mean()) for k, v in per_image.items()} if per_image is not None else None
    done = blob["step"] >= args["steps"]
    counts = {}
    try:
        counts = {name: len(files) for name, files in training_collections(args.get("data_dir")).items()}
    except FileNotFoundError:
        pass
    card = {
        "name": name,
        "summary": _SUMMARIES[model.kind],
        "status": "complete" if done else f"partial: stopped at step {blob['step']} of {args['steps']} planned "
                                          f"(resume with --resume to continue)",
        "model_id": mid,
        "file": path.name,
        "file_sha256": file_sha256(path),
        "size_bytes": path.stat().st_size,
        "storage_dtype": str(dtype).replace("torch.", ""),
        "parameters": n_params,
        "config": model.config(),
        "training_data": {"source": "shared/data/train (random crops, horizontal flips; area-weighted image choice)",
                          "images_per_collection": counts, "crop": args["crop"]},
        "heldout": "Kodak (evaluation only): one centre 128×128 crop of each of the 24 images; "
                   "NELBO with fixed noise seed 0, EMA weights as stored",
        "heldout_bits_per_dim": None if res is None else {k: round(v, 5) for k, v in res.items()},
        "heldout_bits_per_dim_per_image": None if per_image is None else [round(float(v), 5)
                                                                          for v in per_image["total"]],
        "initialised_from": _source_summary(args),
        "steps": blob["step"],
        "planned_steps": args["steps"],
        "batch": args["batch"],
        "optimizer": {"adam_lr": args["lr"], "warmup": args["warmup"], "lr_final_fraction": args["lr_final"],
                      "grad_clip": args["grad_clip"], "ema_decay": args["ema"]},
        "wall_time_s": round(blob["elapsed"], 1),
        "wall_time_note": "seconds inside optimisation steps on the given number of threads (a machine shared "
                          "with other jobs); data loading and held-out evaluations excluded",
        "threads": args["threads"],
        "machine": describe_machine(),
        "eval_history": [{"step": h["step"], "elapsed_s": h["elapsed_s"],
                          "heldout_bpd": round(h["heldout_bpd"]["total"], 5)} for h in blob["history"]],
        "command": command,
        "exported": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    write_card(card, dest / f"{name}.json")
    return path
