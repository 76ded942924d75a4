"""Cost model of DiffC on the real pretrained models (which this machine cannot download or run).

Per DiffC step the encoder and the decoder each run the network once (twice with classifier-free
guidance) and one channel simulation on the latent. This script measures both parts:

1. **Network FLOPs** of the real architectures, counted by ``torch.utils.flop_counter`` on the
   *meta* device (no weights are allocated) from the published configs: SD-1.5, SD-2.1-base,
   SDXL-base, SD3-medium, FLUX.1-dev, at the models' native resolutions.
2. **This CPU's sustained FLOP rate** on the same network classes, measured by running
   reduced-width instances of them (random weights, float32, ``CODEC_THREADS`` threads).
3. **Channel seconds per step**: the DiffC channel step (``diffc_channel.encode_step`` and
   ``decode_step``, default preset) on a latent-sized vector whose KL is the step's typical KL.

CPU seconds per network call = FLOPs / measured rate; GPU seconds assume an A100 at 312 TFLOP/s
(bf16 dense) and 40 % utilisation — an assumption, stated in the output, not a measurement.

    python benchmarks/pretrained_cost.py            # prints a Markdown table, writes results/pretrained_cost.json
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from chansim.machine import cpu_name

GPU_PEAK, GPU_UTIL = 312e12, 0.40

# Published configs (only the keys that set the cost; the rest are diffusers' defaults).
SD15 = dict(sample_size=64, block_out_channels=(320, 640, 1280, 1280), cross_attention_dim=768, layers_per_block=2,
            attention_head_dim=8)
SD21 = dict(sample_size=64, block_out_channels=(320, 640, 1280, 1280), attention_head_dim=[5, 10, 20, 20],
            cross_attention_dim=1024, use_linear_projection=True, layers_per_block=2)
SDXL = dict(sample_size=128, block_out_channels=(320, 640, 1280), layers_per_block=2, cross_attention_dim=2048,
            transformer_layers_per_block=(1, 2, 10), attention_head_dim=[5, 10, 20], use_linear_projection=True,
            addition_embed_type="text_time", addition_time_embed_dim=256, projection_class_embeddings_input_dim=2816,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"))
SD3 = dict(sample_size=128, patch_size=2, in_channels=16, num_layers=24, attention_head_dim=64, num_attention_heads=24,
           joint_attention_dim=4096, caption_projection_dim=1536, pooled_projection_dim=2048, out_channels=16,
           pos_embed_max_size=192)
FLUX = dict(guidance_embeds=True)  # FluxTransformer2DModel's defaults are FLUX.1-dev's


def _unet_call(cls, cfg, latent, text_len, text_dim, pooled=None):
    import diffusers

    net = getattr(diffusers, cls)(**cfg)
    z = torch.randn(1, 4, latent, latent)
    kw = {}
    if pooled:
        kw["added_cond_kwargs"] = {"text_embeds": torch.randn(1, pooled), "time_ids": torch.zeros(1, 6)}
    return net, lambda: net(z, torch.tensor([500.0]), encoder_hidden_states=torch.randn(1, text_len, text_dim), **kw)


def _sd3_call(cfg, latent):
    import diffusers

    net = diffusers.SD3Transformer2DModel(**cfg)
    z = torch.randn(1, 16, latent, latent)
    return net, lambda: net(hidden_states=z, timestep=torch.tensor([500.0]), encoder_hidden_states=torch.randn(1, 333, 4096),
                            pooled_projections=torch.randn(1, 2048))


def _flux_call(cfg, latent):
    import diffusers

    net = diffusers.FluxTransformer2DModel(**cfg)
    n = (latent // 2) ** 2
    dim = cfg.get("joint_attention_dim", 4096)
    pooled = cfg.get("pooled_projection_dim", 768)
    return net, lambda: net(hidden_states=torch.randn(1, n, 4 * cfg.get("in_channels", 64) // 4),
                            timestep=torch.tensor([0.5]), guidance=torch.tensor([1.0]),
                            encoder_hidden_states=torch.randn(1, 512, dim), pooled_projections=torch.randn(1, pooled),
                            txt_ids=torch.zeros(512, 3), img_ids=torch.zeros(n, 3))


MODELS = {  # name: (builder on meta, image side in pixels, latent channels)
    "SD-1.5": (lambda: _unet_call("UNet2DConditionModel", SD15, 64, 77, 768), 512, 4),
    "SD-2.1-base": (lambda: _unet_call("UNet2DConditionModel", SD21, 64, 77, 1024), 512, 4),
    "SDXL-base": (lambda: _unet_call("UNet2DConditionModel", SDXL, 128, 77, 2048, 1280), 1024, 4),
    "SD3-medium": (lambda: _sd3_call(SD3, 128), 1024, 16),
    "FLUX.1-dev": (lambda: _flux_call(FLUX, 128), 1024, 16),
    "FLUX.1-dev @512": (lambda: _flux_call(FLUX, 64), 512, 16),
}


def count_flops(builder) -> tuple:
    with torch.device("meta"):
        net, call = builder()
        params = sum(p.numel() for p in net.parameters())
        with FlopCounterMode(display=False) as fc, torch.no_grad():
            call()
    return fc.get_total_flops(), params


def cpu_rate(threads: int) -> dict:
    """Sustained float32 FLOP/s of this CPU on reduced-width instances of the same classes."""
    torch.set_num_threads(threads)
    small = {
        "UNet2DConditionModel": lambda: _unet_call("UNet2DConditionModel", dict(SD21, block_out_channels=(64, 128, 256, 256),
                                                                                 attention_head_dim=[2, 4, 8, 8]),
                                                   32, 77, 1024),
        "FluxTransformer2DModel": lambda: _flux_call(dict(guidance_embeds=True, num_layers=2, num_single_layers=4,
                                                          attention_head_dim=64, num_attention_heads=8,
                                                          axes_dims_rope=(8, 28, 28)), 32),
    }
    out = {}
    for name, build in small.items():
        torch.manual_seed(0)
        net, call = build()
        net.eval()
        with FlopCounterMode(display=False) as fc, torch.no_grad():
            call()
        with torch.no_grad():
            call()
            best = math.inf
            for _ in range(3):
                t = time.perf_counter()
                call()
                best = min(best, time.perf_counter() - t)
        out[name] = fc.get_total_flops() / best
    return out


def channel_seconds(d: int, kl_bits: float, repeats: int = 3) -> tuple:
    """(encode, decode) seconds of one DiffC channel step (default preset) on d coordinates at a given KL."""
    from chansim.codecs.diffc_channel import PRESETS, DEFAULT_PRESET, decode_step, encode_step, permutation

    rng = np.random.default_rng(0)
    beta = 0.1
    m = rng.normal(size=d)
    m *= math.sqrt(2 * kl_bits * math.log(2)) / np.linalg.norm(m)
    mp = rng.normal(size=d)
    mq = mp + beta * m
    perm = permutation(7, d)
    cs = PRESETS[DEFAULT_PRESET]
    enc = dec = math.inf
    for _ in range(repeats):
        t = time.perf_counter()
        _, sec, _ = encode_step(mp, mq, beta, 7, 3, cs, perm)
        enc = min(enc, time.perf_counter() - t)
        t = time.perf_counter()
        decode_step(sec, mp, beta, 7, 3, cs, perm)
        dec = min(dec, time.perf_counter() - t)
    return enc, dec


def main() -> None:
    import chansim
    from chansim.diffusion.determinism import CODEC_THREADS

    chansim.set_num_threads(CODEC_THREADS)
    rates = cpu_rate(CODEC_THREADS)
    rows = []
    for name, (build, side, ch) in MODELS.items():
        flops, params = count_flops(build)
        rate = rates["FluxTransformer2DModel" if "FLUX" in name or "SD3" in name else "UNet2DConditionModel"]
        d = ch * (side // 8) ** 2
        # Typical step KL at the default schedule: ~0.05 bpp per step at the low-rate end (γ ≈ 2 … −2)
        kl = 0.05 * side * side
        enc, dec = channel_seconds(d, kl)
        rows.append(dict(model=name, image=f"{side}×{side}", params_B=params / 1e9, gflop=flops / 1e9, latent_dims=d,
                         cpu_s=flops / rate, gpu_s=flops / (GPU_PEAK * GPU_UTIL), step_kl_bits=kl,
                         channel_encode_s=enc, channel_decode_s=dec))
    meta = dict(date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), cpu=cpu_name(),
                threads=CODEC_THREADS, torch=torch.__version__, cpu_gflops={k: v / 1e9 for k, v in rates.items()},
                gpu_assumption=f"A100 bf16 {GPU_PEAK / 1e12:.0f} TFLOP/s × {GPU_UTIL:.0%} utilisation")
    out = Path(__file__).parent / "results" / "pretrained_cost.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    print(f"CPU rate ({CODEC_THREADS} threads, float32): " + ", ".join(f"{k} {v / 1e9:.0f} GFLOP/s" for k, v in rates.items()))
    print(f"GPU: {meta['gpu_assumption']} (assumed)\n")
    print("| model | image | params | GFLOP / network call | latent coords | CPU s / call | GPU s / call (assumed) "
          "| channel encode s | channel decode s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['model']} | {r['image']} | {r['params_B']:.2f} B | {r['gflop']:,.0f} | {r['latent_dims']:,} | "
              f"{r['cpu_s']:.1f} | {r['gpu_s']:.3f} | {r['channel_encode_s']:.3f} | {r['channel_decode_s']:.3f} |")


if __name__ == "__main__":
    main()
