"""NTC model files: config, weights and the hyper-latent frequency tables in one torch file.

``torch.save({"format": "chansim-ntc-model", "version", "config", "state_dict"})``, read
with ``weights_only=True``. The tables travel inside ``state_dict`` as int32 tensors
``z_offsets`` / ``z_freqs``, so the model id files carry (:func:`decoder_id`) covers everything a
decoder depends on — and only that: the encoder's tensors (the analysis transforms and their gains,
:func:`chansim.ntc.model.encoder_only`) and the analysis width are left out, so an encoder trained
anew against the same decoder (``train ntc --encoder-only``) keeps the id, the files already written
and the generative decoder bound to it.

Weights are stored as float16 (version 1), or (version 2) with convolution kernels as int8 and one
float32 scale per slice of their first axis, ``name`` (int8) and ``name.scale`` (float32): the
weight is int8 · scale, one float32 product, the same on every machine — what the model id hashes
is what every decoder computes with. ``storage="int8"`` stores every kernel so, ``"mixed"`` all but
the image transforms' (:data:`MIXED_FLOAT16`); the rest (biases, GDN, gains, the factorized density)
stays float16. int8 halves a kernel's bytes, so a model with more parameters fits the same budget
(:data:`SIZE_BUDGET`); the export takes the first of :data:`STORAGES` that fits.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Dict, Tuple, Union

import numpy as np
import torch

from ..diffusion.io import model_id, stored_state_dict
from .model import ENCODER_CONFIG, HyperpriorModel, encoder_only
from .tables import SCALE_MIN

FORMAT = "chansim-ntc-model"
VERSION = 1                     # float16 weights
VERSION_INT8 = 2                # int8 convolution kernels with float32 scales
VERSIONS = (VERSION, VERSION_INT8)
TABLE_KEYS = ("z_offsets", "z_freqs")
STORAGES = ("float16", "mixed", "int8")       # most bytes first
SCALE_SUFFIX = ".scale"
#: Kernels ``"mixed"`` storage keeps float16: the image transforms. That is where int8 costs R-D
#: performance — on the held-out Kodak crops (BD-PSNR vs WebP) a float M = 128 run lost 0.157 dB with
#: every kernel int8, 0.043 with g_a float16, 0.004 with g_a and g_s float16; on an M = 192 run int8
#: in g_a alone lost 0.101 dB, in g_s 0.012, in each of the hyper transforms, context and residual
#: ≤ 0.001 (BENCHMARKS.md, NTC codec): the entropy model's networks take int8 at no measurable cost.
#: The image transforms' bottleneck blocks (``g_a_blocks``, ``g_s_blocks``: residual corrections
#: added on top of a trained transform) are not in it: they take int8 with the entropy model's networks.
MIXED_FLOAT16 = ("g_a.", "g_s.")
#: Bytes a shipped NTC model may take (the issue's ≤ 10 MB for a codec's models).
SIZE_BUDGET = 10 * 1000 * 1000


def quantize_int8(w: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """(q int8, scale float32 per slice of axis 0) with q · scale ≈ w: symmetric, scale = max|w| / 127
    per slice (1 for an all-zero slice), q = rint(w / scale) in float64, |q| ≤ 127."""
    w64 = w.detach().cpu().double()
    peak = w64.abs().reshape(w64.shape[0], -1).amax(1)
    scale = torch.where(peak > 0, peak / 127.0, torch.ones_like(peak)).float()
    shape = (-1,) + (1,) * (w64.dim() - 1)
    q = torch.round(w64 / scale.double().view(shape)).clamp_(-127, 127).to(torch.int8)
    return q.contiguous(), scale.contiguous()


def dequantize(sd: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """The float32 state dict a stored one stands for: int8 kernels times their scales (one float32
    product each), other floating tensors widened to float32 (exact), ``*.scale`` entries consumed."""
    out = {}
    for k, v in sd.items():
        if k.endswith(SCALE_SUFFIX) and k[:-len(SCALE_SUFFIX)] in sd:
            continue
        if v.dtype == torch.int8:
            scale = sd.get(k + SCALE_SUFFIX)
            if scale is None or scale.dtype != torch.float32 or scale.shape != (v.shape[0],):
                raise ValueError(f"int8 weight {k} has no float32 scale per slice of its first axis")
            out[k] = v.to(torch.float32) * scale.view((-1,) + (1,) * (v.dim() - 1))
        else:
            out[k] = v.to(torch.float32) if v.is_floating_point() else v
    return out


def stored_weights(model: HyperpriorModel, storage: str = "float16") -> Dict[str, torch.Tensor]:
    """The weights as a model file stores them (``storage``: see the module's docstring)."""
    if storage not in STORAGES:
        raise ValueError(f"storage must be one of {STORAGES}, got {storage!r}")
    sd = stored_state_dict(model, torch.float16)
    if storage != "float16":
        full, keep = model.state_dict(), MIXED_FLOAT16 if storage == "mixed" else ()
        for k in [k for k, v in full.items() if v.is_floating_point() and v.dim() == 4 and not k.startswith(keep)]:
            sd[k], sd[k + SCALE_SUFFIX] = quantize_int8(full[k])
    return sd


def model_file(model: HyperpriorModel, storage: str = "float16") -> Tuple[Dict, str]:
    """(what :func:`save_model` writes, its model id): weights (``storage``) and tables computed from the
    *stored* weights."""
    sd = stored_weights(model, storage)
    # Tabulate what ships: the density after rounding to the storage format.
    shipped = HyperpriorModel(**_kwargs(model.config()))
    shipped.load_state_dict(dequantize(sd))
    offsets, freqs = shipped.tabulate()
    sd["z_offsets"] = torch.from_numpy(offsets)
    sd["z_freqs"] = torch.from_numpy(freqs)
    version = VERSION if storage == "float16" else VERSION_INT8
    return ({"format": FORMAT, "version": version, "config": model.config(), "state_dict": sd},
            decoder_id(model.config(), sd))


def fitting_file(model: HyperpriorModel) -> Tuple[str, Dict, str]:
    """(storage, file, model id) of the first of :data:`STORAGES` whose file fits :data:`SIZE_BUDGET`
    (the last if none does)."""
    for storage in STORAGES:
        blob, mid = model_file(model, storage)
        buf = io.BytesIO()
        torch.save(blob, buf)
        if buf.tell() <= SIZE_BUDGET:
            break
    return storage, blob, mid


def write_model_file(blob: Dict, path: Union[str, Path]) -> None:
    """Write a :func:`model_file` blob atomically."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(blob, tmp)
    tmp.replace(path)


def save_model(model: HyperpriorModel, path: Union[str, Path], storage: str = "float16") -> str:
    """Write weights (``storage``) and tables computed from the *stored* weights; returns the model id."""
    blob, mid = model_file(model, storage)
    write_model_file(blob, path)
    return mid


def decoder_id(config: Dict, state_dict: Dict[str, torch.Tensor]) -> str:
    """The NTC model id: :func:`chansim.diffusion.io.model_id` of the config and stored tensors a decoder
    reads (entropy model, tables, synthesis), i.e. without :data:`chansim.ntc.model.ENCODER_CONFIG` and the tensors for
    which :func:`chansim.ntc.model.encoder_only` holds. Two models with one id decode every file alike."""
    return model_id({k: v for k, v in config.items() if k not in ENCODER_CONFIG},
                    {k: v for k, v in state_dict.items() if not encoder_only(k)})


def _kwargs(cfg):
    return {"n": cfg["n"], "m": cfg["m"], "lambdas": cfg["lambdas"], "slices": cfg.get("slices", 1),
            "residual": bool(cfg.get("residual", False)), "scale_min": cfg.get("scale_min", SCALE_MIN),
            "hyper_n": cfg.get("hyper_n"), "n_analysis": cfg.get("n_analysis"), "blocks": cfg.get("blocks", 0),
            "synthesis_blocks": cfg.get("synthesis_blocks"), "quality_slices": cfg.get("quality_slices")}


def load_model(path: Union[str, Path]) -> Tuple[HyperpriorModel, Tuple[np.ndarray, np.ndarray], str]:
    """(model in eval mode, float32; (offsets, frequencies); model id)."""
    blob = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise ValueError(f"{path}: not a chansim NTC model file")
    if blob.get("version") not in VERSIONS:
        raise ValueError(f"{path}: NTC model file version {blob.get('version')} (this chansim reads "
                         f"{', '.join(map(str, VERSIONS))})")
    cfg, sd = blob["config"], dict(blob["state_dict"])
    mid = decoder_id(cfg, sd)
    tables = tuple(sd.pop(k).numpy().astype(np.int32) for k in TABLE_KEYS)
    model = HyperpriorModel(**_kwargs(cfg))
    model.load_state_dict(dequantize(sd))
    model.eval().requires_grad_(False)
    return model, tables, mid
