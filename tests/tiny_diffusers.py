"""Tiny, randomly initialised diffusers pipelines, built offline.

Why: chansim's pretrained-model DiffC path (``DiffC.from_diffusers`` and the loader behind it) must be tested
without a model hub.  ``make_tiny_pipeline(family, path)`` writes a pipeline directory with ``save_pretrained``
(safetensors weights, random but fixed by ``seed``) that
``diffusers.DiffusionPipeline.from_pretrained(path, local_files_only=True)`` loads back; with
``dtype=torch.float16`` the weights are stored in half precision (load with ``torch_dtype=torch.float16``).

Each family uses the classes of a real checkpoint and sets the same config keys, with tiny sizes:

====== ================================ ==========================================================
family pipeline                         mirrors
====== ================================ ==========================================================
sd15   StableDiffusionPipeline          runwayml/stable-diffusion-v1-5 (PNDM, epsilon)
sd21v  StableDiffusionPipeline          stabilityai/stable-diffusion-2-1 (DDIM, v_prediction)
sdxl   StableDiffusionXLPipeline        stabilityai/stable-diffusion-xl-base-1.0
sd3    StableDiffusion3Pipeline         stabilityai/stable-diffusion-3-medium-diffusers
flux   FluxPipeline                     black-forest-labs/FLUX.1-dev (guidance_embeds=True)
unet2d DDPMPipeline                     google/ddpm-cifar10-32 (pixel space, 32x32)
ldm    LDMPipeline                      CompVis/ldm-celebahq-256, with SD's KL-f8 VAE for its VQ-f4 one
====== ================================ ==========================================================

Every latent family has a 4-level VAE (downsampling factor 8, as the real ones), so a 64x64 image gives 8x8
latents.  Sizes differ from the real models where they must: ``norm_num_groups`` 8 (channels are 8-32), one
layer per block, 2 text-encoder layers, a ~600-token CLIP BPE vocabulary and a ~200-piece T5 Unigram vocabulary
(no sentencepiece needed), SD3's ``pos_embed_max_size`` 32 (latents up to 64x64, i.e. 512 px images).  The "ldm"
directory has ``unet/``, ``vae/`` and ``scheduler/`` like an SD pipeline, plus ``vqvae`` -> ``vae`` (a symlink)
for ``LDMPipeline``.

``encode_prompt`` signatures (diffusers 0.42):

* sd15/sd21v: ``encode_prompt(prompt, device, num_images_per_prompt, do_classifier_free_guidance,
  negative_prompt=None, ...)`` -> ``(prompt_embeds, negative_prompt_embeds)``
* sdxl: ``encode_prompt(prompt, prompt_2=None, device=None, num_images_per_prompt=1,
  do_classifier_free_guidance=True, negative_prompt=None, ...)`` -> ``(prompt_embeds, negative_prompt_embeds,
  pooled_prompt_embeds, negative_pooled_prompt_embeds)``
* sd3: ``encode_prompt(prompt, prompt_2, prompt_3, device=None, num_images_per_prompt=1,
  do_classifier_free_guidance=True, ..., max_sequence_length=256)`` -> same four as sdxl (prompt_2/prompt_3 are
  required positionally; ``None`` means "use prompt")
* flux: ``encode_prompt(prompt, prompt_2=None, device=None, num_images_per_prompt=1, ...,
  max_sequence_length=512)`` -> ``(prompt_embeds, pooled_prompt_embeds, text_ids)`` (no negative; guidance is
  distilled)
"""

from __future__ import annotations

import json
import pathlib
import shutil
import string

import diffusers
import torch
import transformers
from tokenizers import Tokenizer, decoders, pre_tokenizers, processors
from tokenizers.models import Unigram

FAMILIES = ("sd15", "sd21v", "sdxl", "sd3", "flux", "unet2d", "ldm")

# Words given whole-word BPE merges / Unigram pieces, so that prompts are not all single characters.
_WORDS = ("a", "an", "the", "of", "in", "on", "and", "with", "photo", "picture", "painting", "cat", "dog",
          "astronaut", "horse", "riding", "portrait", "landscape", "city", "night", "red", "blue")


# ---------------------------------------------------------------------------------------------- tokenizers
def _byte_symbols() -> list[str]:
    """GPT-2/CLIP's printable stand-ins for the 256 bytes, in CLIP's vocabulary order."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), 256))
    extra = [b for b in range(256) if b not in bs]
    return [chr(b) for b in bs] + [chr(256 + i) for i in range(len(extra))]


def _clip_tokenizer(pad_token: str = "<|endoftext|>") -> transformers.CLIPTokenizer:
    base = _byte_symbols()
    vocab = base + [s + "</w>" for s in base]
    merges: list[tuple[str, str]] = []
    for word in _WORDS:
        parts = list(word[:-1]) + [word[-1] + "</w>"]
        while len(parts) > 1:
            pair = (parts[0], parts[1])
            if pair not in merges:
                merges.append(pair)
                vocab.append("".join(pair))
            parts = ["".join(pair)] + parts[2:]
    # Specials last, as in CLIP: <|endoftext|> is the largest id (legacy pooling takes the argmax id).
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    return transformers.CLIPTokenizer(vocab={t: i for i, t in enumerate(vocab)}, merges=merges,
                                      pad_token=pad_token, model_max_length=77)


def _write_bpe_files(tok: transformers.CLIPTokenizer, directory: pathlib.Path) -> None:
    """vocab.json + merges.txt next to tokenizer.json, as in the real checkpoints (transformers 4's slow
    CLIPTokenizer reads only these)."""
    model = json.loads(tok.backend_tokenizer.to_str())["model"]
    (directory / "vocab.json").write_text(json.dumps(model["vocab"], ensure_ascii=False))
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    (directory / "merges.txt").write_text("\n".join(["#version: 0.2", *merges]) + "\n")


def _t5_tokenizer() -> transformers.T5TokenizerFast:
    chars = string.ascii_letters + string.digits + string.punctuation
    pieces = ["▁" + c for c in chars] + list(chars) + ["▁" + w for w in _WORDS]
    # Unigram picks the segmentation with the best total score: equal scores -> fewest pieces (whole words).
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)] + [(p, -5.0) for p in pieces]
    tok = Tokenizer(Unigram(vocab, unk_id=2, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")])
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>",
                                                       special_tokens=[("</s>", 1)])
    # extra_ids=0: T5's 100 sentinel tokens are for span corruption, which a text encoder never sees.
    return transformers.T5TokenizerFast(tokenizer_object=tok, extra_ids=0, model_max_length=512)


# ------------------------------------------------------------------------------------------- text encoders
def _clip_text(cls, tok, hidden: int, *, act: str = "quick_gelu", projection_dim: int | None = None):
    cfg = transformers.CLIPTextConfig(
        vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=tok.model_max_length, hidden_act=act,
        projection_dim=projection_dim or hidden, layer_norm_eps=1e-5,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    return cls(cfg)


def _t5_encoder(tok, d_model: int) -> transformers.T5EncoderModel:
    cfg = transformers.T5Config(
        # google/t5-v1_1-xxl pads its 32100-token vocabulary to a multiple of 128 (32128); so does this one.
        vocab_size=-(-len(tok) // 128) * 128, d_model=d_model, d_kv=8, d_ff=d_model, num_layers=2,
        num_decoder_layers=2, num_heads=4, relative_attention_num_buckets=32, relative_attention_max_distance=128,
        dropout_rate=0.1, layer_norm_epsilon=1e-6, feed_forward_proj="gated-gelu", is_encoder_decoder=True,
        tie_word_embeddings=False, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
        decoder_start_token_id=tok.pad_token_id)
    return transformers.T5EncoderModel(cfg)


# ------------------------------------------------------------------------------------------- image models
def _vae(latent_channels: int = 4, scaling_factor: float = 0.18215, **kw) -> diffusers.AutoencoderKL:
    return diffusers.AutoencoderKL(
        in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(8, 16, 16, 16), layers_per_block=1,
        act_fn="silu", latent_channels=latent_channels, norm_num_groups=8, sample_size=64,
        scaling_factor=scaling_factor, **kw)


def _unet_cond(cross_attention_dim: int, **kw) -> diffusers.UNet2DConditionModel:
    cfg = dict(sample_size=8, in_channels=4, out_channels=4, center_input_sample=False, flip_sin_to_cos=True,
               freq_shift=0, down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
               up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), block_out_channels=(16, 32),
               layers_per_block=1, downsample_padding=1, mid_block_scale_factor=1, act_fn="silu",
               norm_num_groups=8, norm_eps=1e-5, cross_attention_dim=cross_attention_dim, attention_head_dim=2)
    return diffusers.UNet2DConditionModel(**{**cfg, **kw})


def _unet_uncond(channels: int, sample_size: int) -> diffusers.UNet2DModel:
    return diffusers.UNet2DModel(
        sample_size=sample_size, in_channels=channels, out_channels=channels, center_input_sample=False,
        time_embedding_type="positional", flip_sin_to_cos=False, freq_shift=1,
        down_block_types=("DownBlock2D", "AttnDownBlock2D"), up_block_types=("AttnUpBlock2D", "UpBlock2D"),
        block_out_channels=(16, 32), layers_per_block=1, mid_block_scale_factor=1, downsample_padding=0,
        act_fn="silu", attention_head_dim=None, norm_num_groups=8, norm_eps=1e-6, resnet_time_scale_shift="default")


_SD_BETAS = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")


# ---------------------------------------------------------------------------------------------- families
def _sd(v_prediction: bool) -> diffusers.StableDiffusionPipeline:
    tok = _clip_tokenizer(pad_token="!" if v_prediction else "<|endoftext|>")
    if v_prediction:  # SD-2.x: OpenCLIP-H text tower (gelu, projection 1024 -> 512), linear proj, head list
        text_encoder = _clip_text(transformers.CLIPTextModel, tok, 32, act="gelu", projection_dim=16)
        unet = _unet_cond(32, attention_head_dim=(2, 4), use_linear_projection=True, upcast_attention=True)
        scheduler = diffusers.DDIMScheduler(**_SD_BETAS, clip_sample=False, set_alpha_to_one=False,
                                            steps_offset=1, prediction_type="v_prediction")
    else:
        text_encoder = _clip_text(transformers.CLIPTextModel, tok, 32)
        unet = _unet_cond(32)
        scheduler = diffusers.PNDMScheduler(**_SD_BETAS, skip_prk_steps=True, set_alpha_to_one=False,
                                            steps_offset=1, prediction_type="epsilon")
    return diffusers.StableDiffusionPipeline(
        vae=_vae(), text_encoder=text_encoder, tokenizer=tok, unet=unet, scheduler=scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)


def _sdxl() -> diffusers.StableDiffusionXLPipeline:
    tok, tok_2 = _clip_tokenizer(), _clip_tokenizer(pad_token="!")
    text_encoder = _clip_text(transformers.CLIPTextModel, tok, 32)
    text_encoder_2 = _clip_text(transformers.CLIPTextModelWithProjection, tok_2, 48, act="gelu")
    time_dim = 8
    unet = _unet_cond(
        32 + 48, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), mid_block_type="UNetMidBlock2DCrossAttn",
        attention_head_dim=(2, 4), transformer_layers_per_block=(1, 2), use_linear_projection=True,
        addition_embed_type="text_time", addition_time_embed_dim=time_dim, addition_embed_type_num_heads=64,
        # pooled text_embeds of text_encoder_2 + 6 micro-conditioning numbers (sizes, crop, target) embedded
        projection_class_embeddings_input_dim=48 + 6 * time_dim)
    scheduler = diffusers.EulerDiscreteScheduler(
        **_SD_BETAS, prediction_type="epsilon", interpolation_type="linear", use_karras_sigmas=False,
        timestep_spacing="leading", steps_offset=1)
    return diffusers.StableDiffusionXLPipeline(
        vae=_vae(scaling_factor=0.13025, force_upcast=True), text_encoder=text_encoder,
        text_encoder_2=text_encoder_2, tokenizer=tok, tokenizer_2=tok_2, unet=unet, scheduler=scheduler,
        force_zeros_for_empty_prompt=True, add_watermarker=False)


def _flow_vae(scaling_factor: float, shift_factor: float) -> diffusers.AutoencoderKL:
    return _vae(16, scaling_factor, shift_factor=shift_factor, use_quant_conv=False, use_post_quant_conv=False,
                force_upcast=True, mid_block_add_attention=True)


def _sd3() -> diffusers.StableDiffusion3Pipeline:
    tok, tok_2, tok_3 = _clip_tokenizer(), _clip_tokenizer(pad_token="!"), _t5_tokenizer()
    text_encoder = _clip_text(transformers.CLIPTextModelWithProjection, tok, 32)
    text_encoder_2 = _clip_text(transformers.CLIPTextModelWithProjection, tok_2, 48, act="gelu")
    # The CLIP hidden states (32 + 48) are zero-padded to the T5 width and concatenated with T5's tokens.
    text_encoder_3 = _t5_encoder(tok_3, 96)
    transformer = diffusers.SD3Transformer2DModel(
        sample_size=8, patch_size=2, in_channels=16, out_channels=16, num_layers=2, attention_head_dim=8,
        num_attention_heads=4, joint_attention_dim=96, caption_projection_dim=32, pooled_projection_dim=32 + 48,
        pos_embed_max_size=32)
    scheduler = diffusers.FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=3.0)
    return diffusers.StableDiffusion3Pipeline(
        transformer=transformer, scheduler=scheduler, vae=_flow_vae(1.5305, 0.0609), text_encoder=text_encoder,
        tokenizer=tok, text_encoder_2=text_encoder_2, tokenizer_2=tok_2, text_encoder_3=text_encoder_3,
        tokenizer_3=tok_3)


def _flux() -> diffusers.FluxPipeline:
    tok, tok_2 = _clip_tokenizer(), _t5_tokenizer()
    text_encoder = _clip_text(transformers.CLIPTextModel, tok, 32)
    text_encoder_2 = _t5_encoder(tok_2, 64)
    transformer = diffusers.FluxTransformer2DModel(
        patch_size=1, in_channels=64, num_layers=1, num_single_layers=1, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=64, pooled_projection_dim=32, guidance_embeds=True,
        axes_dims_rope=(4, 6, 6))
    scheduler = diffusers.FlowMatchEulerDiscreteScheduler(
        num_train_timesteps=1000, shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
        base_image_seq_len=256, max_image_seq_len=4096)
    return diffusers.FluxPipeline(
        scheduler=scheduler, vae=_flow_vae(0.3611, 0.1159), text_encoder=text_encoder, tokenizer=tok,
        text_encoder_2=text_encoder_2, tokenizer_2=tok_2, transformer=transformer)


def _unet2d() -> diffusers.DDPMPipeline:
    scheduler = diffusers.DDPMScheduler(num_train_timesteps=1000, beta_start=0.0001, beta_end=0.02,
                                        beta_schedule="linear", variance_type="fixed_large", clip_sample=True)
    return diffusers.DDPMPipeline(unet=_unet_uncond(3, 32), scheduler=scheduler)


def _ldm() -> diffusers.LDMPipeline:
    scheduler = diffusers.DDIMScheduler(num_train_timesteps=1000, beta_start=0.0015, beta_end=0.0195,
                                        beta_schedule="scaled_linear", clip_sample=False)
    # LDMPipeline types its autoencoder as VQModel but only calls decode(), which AutoencoderKL has too.
    return diffusers.LDMPipeline(vqvae=_vae(), unet=_unet_uncond(4, 8), scheduler=scheduler)


_BUILDERS = {"sd15": lambda: _sd(False), "sd21v": lambda: _sd(True), "sdxl": _sdxl, "sd3": _sd3, "flux": _flux,
             "unet2d": _unet2d, "ldm": _ldm}


def make_tiny_pipeline(family: str, path, *, dtype=torch.float32, seed: int = 0) -> pathlib.Path:
    """Write a tiny random pipeline of ``family`` (one of ``FAMILIES``) to the directory ``path``."""
    if family not in _BUILDERS:
        raise ValueError(f"unknown family {family!r}; expected one of {FAMILIES}")
    path = pathlib.Path(path)
    with torch.random.fork_rng(devices=[]):  # leaves the caller's RNG stream alone
        torch.manual_seed(seed)
        pipe = _BUILDERS[family]()
    if dtype != torch.float32:  # cast after init, so both precisions hold the same (rounded) weights
        pipe.to(dtype)
    pipe.save_pretrained(path, safe_serialization=True)
    index_file = path / "model_index.json"
    index = json.loads(index_file.read_text())
    for name, entry in index.items():
        if entry == ["transformers", "CLIPTokenizer"]:
            _write_bpe_files(getattr(pipe, name), path / name)
        elif entry == ["transformers", "T5Tokenizer"]:
            # transformers 5 aliases T5TokenizerFast to T5Tokenizer; the real checkpoints name the fast class, which
            # transformers 4 also loads from tokenizer.json alone (its slow T5Tokenizer needs sentencepiece).
            index[name] = ["transformers", "T5TokenizerFast"]
    index_file.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    link = path / "vqvae"
    if family == "ldm" and not link.is_symlink():  # a rebuild into the same directory wrote through the link
        # chansim's loader reads vae/ (as in SD layouts), LDMPipeline reads vqvae/: one copy under both names.
        shutil.rmtree(path / "vae", ignore_errors=True)
        link.rename(path / "vae")
        link.symlink_to("vae", target_is_directory=True)
    return path


def _selfcheck() -> None:
    """Build, reload and run every family (a few seconds each); print sizes, timings and shapes."""
    import tempfile
    import time

    import numpy as np
    import safetensors

    expected = {"sd15": diffusers.StableDiffusionPipeline, "sd21v": diffusers.StableDiffusionPipeline,
                "sdxl": diffusers.StableDiffusionXLPipeline, "sd3": diffusers.StableDiffusion3Pipeline,
                "flux": diffusers.FluxPipeline, "unet2d": diffusers.DDPMPipeline, "ldm": diffusers.LDMPipeline}
    prompt_args = {"sd15": ("a photo", "cpu", 1, True), "sd21v": ("a photo", "cpu", 1, True),
                   "sdxl": ("a photo",), "sd3": ("a photo", None, None), "flux": ("a photo",)}
    for family in FAMILIES:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            path = make_tiny_pipeline(family, pathlib.Path(tmp) / family)
            t1 = time.perf_counter()
            pipe = diffusers.DiffusionPipeline.from_pretrained(path, local_files_only=True)
            t2 = time.perf_counter()
            size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.parent.is_symlink())
            assert type(pipe) is expected[family], type(pipe)
            assert not list(path.rglob("*.bin")), "weights must be safetensors"
            pipe.set_progress_bar_config(disable=True)
            gen = torch.Generator().manual_seed(0)
            if family in ("unet2d", "ldm"):
                images = pipe(batch_size=1, num_inference_steps=2, output_type="np", generator=gen).images
            else:
                images = pipe("a photo", height=64, width=64, num_inference_steps=2, output_type="np",
                              generator=gen).images
            side = 32 if family == "unet2d" else 64
            assert images.shape == (1, side, side, 3) and np.isfinite(images).all(), images.shape
            t3 = time.perf_counter()
            info = []
            if family in prompt_args:
                with torch.no_grad():
                    embeds = pipe.encode_prompt(*prompt_args[family])
                assert all(torch.isfinite(e).all() for e in embeds if e is not None)
                info.append("encode_prompt " + " ".join(str(tuple(e.shape)) for e in embeds))
            vae = getattr(pipe, "vae", None) or getattr(pipe, "vqvae", None)
            if vae is not None:
                with torch.no_grad():
                    info.append(f"latents {tuple(vae.encode(torch.zeros(1, 3, 64, 64)).latent_dist.mean.shape)}")
            if family == "ldm":
                diffusers.UNet2DModel.from_pretrained(path, subfolder="unet")
                diffusers.AutoencoderKL.from_pretrained(path, subfolder="vae")
                diffusers.DDIMScheduler.from_pretrained(path, subfolder="scheduler")
            half = make_tiny_pipeline(family, pathlib.Path(tmp) / "fp16", dtype=torch.float16)
            for f in half.rglob("*.safetensors"):
                with safetensors.safe_open(f, "pt") as h:
                    assert {h.get_slice(k).get_dtype() for k in h.keys()} == {"F16"}, f
            # torch_dtype, not diffusers 0.42's preferred dtype=, which older diffusers lack.  (T5 keeps its `wo`
            # projections in float32 on load: transformers' _keep_in_fp32_modules.)
            pipe16 = diffusers.DiffusionPipeline.from_pretrained(half, local_files_only=True,
                                                                 torch_dtype=torch.float16)
            assert pipe16.dtype == torch.float16
            print(f"{family:7s} build {t1 - t0:5.2f}s load {t2 - t1:5.2f}s run {t3 - t2:5.2f}s "
                  f"{size / 1e6:5.2f} MB  " + "  ".join(info), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        a, b, c = (make_tiny_pipeline("sd15", pathlib.Path(tmp) / str(i), seed=s) for i, s in enumerate((0, 0, 1)))
        weights = [(p / "unet" / "diffusion_pytorch_model.safetensors").read_bytes() for p in (a, b, c)]
        assert weights[0] == weights[1] != weights[2], "weights must be a function of the seed"
    print("ok")


if __name__ == "__main__":
    torch.set_num_threads(1)
    _selfcheck()
