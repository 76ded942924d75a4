"""One loader for every supported diffusers model: :func:`load`.

A source is a local directory in diffusers' ``save_pretrained`` layout or, when the user's
machine can reach the Hugging Face hub, a hub id (``"stabilityai/stable-diffusion-2-1-base"``),
which is first materialised in the local cache by ``huggingface_hub.snapshot_download`` so that
both kinds of source then take the same path. The family comes from ``model_index.json``:

    StableDiffusionPipeline → "sd" (1.x, 2.x; ε or v)    StableDiffusion3Pipeline → "sd3"
    StableDiffusionXLPipeline → "sdxl"                    FluxPipeline → "flux"

and any other directory with ``unet/`` (+ ``scheduler/``, optional ``vae/``), or a bare
``UNet2DModel`` directory with its ``scheduler_config.json``, is an unconditional "unet2d".

The model's identity (:attr:`PretrainedDenoiser.source_id`) is the SHA-256 of the files it was
loaded from — every component's config, weights (of the chosen ``variant``), tokenizer and the
scheduler — so it does not depend on the device or the dtype the network then runs in (a file
encoded in float16 on a GPU names the same model as its decoder in float32 on a CPU). Hashing
reads every weight byte once: about 1 s per GB.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Iterable, List, Optional, Union

import torch

from .denoiser import PretrainedDenoiser

#: model_index.json ``_class_name`` → family.
FAMILIES = {"StableDiffusionPipeline": "sd", "StableDiffusionXLPipeline": "sdxl",
            "StableDiffusion3Pipeline": "sd3", "FluxPipeline": "flux"}
#: Pipeline components a denoiser never uses (not loaded, not hashed).
_UNUSED = {"safety_checker", "feature_extractor", "image_encoder"}
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".pt", ".pth", ".msgpack", ".h5")


def resolve(source: Union[str, Path], local_files_only: bool = False) -> Path:
    """A local directory for ``source`` (a directory, or a hub id fetched into the cache)."""
    p = Path(source).expanduser()
    if p.is_dir():
        return p
    s = str(source)
    if p.exists() or s.count("/") != 1 or s.startswith((".", "/", "~")):
        raise FileNotFoundError(f"{source} is not a model directory")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(s, local_files_only=local_files_only))
    except Exception as e:  # offline, unknown id, gated model: one clear message
        raise FileNotFoundError(f"{source!r} is neither a local model directory nor a reachable hub model "
                                f"({type(e).__name__}: {e})") from None


def _variant_of(name: str) -> Optional[str]:
    # "diffusion_pytorch_model.fp16.safetensors" → "fp16"; shards "model-00001-of-00002.safetensors" → None
    parts = name.split(".")
    return parts[-2] if len(parts) >= 3 and parts[-1] in {s[1:] for s in _WEIGHT_SUFFIXES} else None


def _files(folder: Path, variant: Optional[str]) -> List[Path]:
    """The files ``from_pretrained`` reads in one component folder (configs, tokenizer, weights of
    ``variant``; safetensors preferred over other weight formats as diffusers and transformers do)."""
    files = sorted(f for f in folder.iterdir() if f.is_file())
    weights = [f for f in files if f.name.endswith(_WEIGHT_SUFFIXES) and _variant_of(f.name) == variant]
    if any(f.suffix == ".safetensors" for f in weights):
        weights = [f for f in weights if f.suffix == ".safetensors"]
    return [f for f in files if not f.name.endswith(_WEIGHT_SUFFIXES) and not f.name.startswith(".")] + weights


def files_digest(root: Path, parts: Iterable[Path]) -> str:
    """SHA-256 over (relative path, length, bytes) of ``parts``, in sorted order."""
    h = hashlib.sha256()
    for f in sorted(parts, key=lambda q: q.relative_to(root).as_posix()):
        h.update(f"{f.relative_to(root).as_posix()}|{f.stat().st_size}|".encode())
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def _components(index: dict) -> List[str]:
    return sorted(k for k, v in index.items()
                  if not k.startswith("_") and k not in _UNUSED and isinstance(v, list) and v[0] is not None)


def detect_family(root: Path) -> str:
    """"sd", "sdxl", "sd3", "flux" or "unet2d" for a model directory."""
    root = Path(root)
    index = root / "model_index.json"
    if index.is_file():
        name = json.loads(index.read_text()).get("_class_name", "")
        if name in FAMILIES:
            return FAMILIES[name]
    if (root / "unet").is_dir() or (root / "config.json").is_file():
        return "unet2d"
    raise FileNotFoundError(f"{root} holds no diffusers model (no model_index.json, unet/ or config.json)")


def load(source: Union[str, Path], *, device="cpu", dtype: torch.dtype = torch.float32,
         variant: Optional[str] = None, local_files_only: bool = False) -> PretrainedDenoiser:
    """The denoiser for a model directory or hub id, its networks on ``device`` in ``dtype``."""
    import diffusers

    if dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise ValueError(f"dtype must be float32, float16 or bfloat16, got {dtype}")
    device = torch.device(device)
    root = resolve(source, local_files_only)
    family = detect_family(root)
    if family == "unet2d":
        return _load_unet2d(root, device, dtype, variant)
    index = json.loads((root / "model_index.json").read_text())
    parts = [root / "model_index.json"] + [f for c in _components(index) for f in _files(root / c, variant)]
    source_id = files_digest(root, parts)
    extra = {k: None for k in _UNUSED if k in index}
    if family == "sd":
        extra["requires_safety_checker"] = False
    pipe = diffusers.DiffusionPipeline.from_pretrained(root, torch_dtype=dtype, variant=variant,
                                                       local_files_only=True, **extra)
    pipe.to(device)
    vae = pipe.vae.to(torch.float32).eval().requires_grad_(False)
    kw = dict(pipe=pipe, source_id=source_id, device=device, dtype=dtype)
    if family in ("sd3", "flux"):
        from .flow import FlowDenoiser

        den = FlowDenoiser(pipe.transformer.eval(), dict(pipe.scheduler.config), vae, family=family, **kw)
    else:
        from .unet import UNetDenoiser

        den = UNetDenoiser(pipe.unet.eval(), pipe.scheduler.alphas_cumprod,
                           pipe.scheduler.config.get("prediction_type", "epsilon"), vae, family=family, **kw)
    return den.requires_grad_(False)


def _load_unet2d(root: Path, device, dtype, variant) -> PretrainedDenoiser:
    import diffusers

    from .unet import UNetDenoiser

    pipeline = (root / "unet").is_dir()
    sched_file = root / "scheduler" / "scheduler_config.json" if pipeline else root / "scheduler_config.json"
    if not sched_file.is_file():
        raise FileNotFoundError(f"no scheduler config at {sched_file}")
    folders = [root / "unet", root / "scheduler"] if pipeline else [root]
    if pipeline and (root / "vae").is_dir():
        folders.append(root / "vae")
    parts = [f for d in folders for f in _files(d, variant)]
    sched_cfg = json.loads(sched_file.read_text())
    sched_cls = getattr(diffusers, sched_cfg.get("_class_name", "DDPMScheduler"), diffusers.DDPMScheduler)
    scheduler = sched_cls.from_config(sched_cfg)
    unet = diffusers.UNet2DModel.from_pretrained(root, subfolder="unet" if pipeline else None, variant=variant,
                                                 torch_dtype=dtype, local_files_only=True)
    vae = None
    if pipeline and (root / "vae").is_dir():
        vae = diffusers.AutoencoderKL.from_pretrained(root, subfolder="vae", variant=variant,
                                                      local_files_only=True).to(device, torch.float32).eval()
    den = UNetDenoiser(unet.to(device).eval(), scheduler.alphas_cumprod,
                       scheduler.config.get("prediction_type", "epsilon"), vae, family="unet2d",
                       source_id=files_digest(root, parts), device=device, dtype=dtype)
    return den.requires_grad_(False)
