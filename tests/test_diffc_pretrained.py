"""DiffC on pretrained diffusers models: SD-1.5, SD-2.1 (v), SDXL, SD3, Flux, pixel and latent UNet2DModel.

Every family is a tiny random model of the real classes and config keys (tests/tiny_diffusers.py),
saved with ``save_pretrained`` and loaded through ``DiffC.from_diffusers`` — the path a user with
real weights takes. References are independent of chansim's code:
- the flow reconstruction equals diffusers' own pipeline (DDIM η = 0 for the UNets,
  ``FlowMatchEulerDiscreteScheduler`` for SD3/Flux) run from the same latent, timesteps and caption;
- each step's reported KL equals ½(SNR_s − SNR_t)·‖x − x̂‖²/ln 2 computed here from the model's outputs.
"""

import math
import struct
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")
pytest.importorskip("transformers")

from chansim import FormatError  # noqa: E402
from chansim.codecs import DiffC, container  # noqa: E402
from chansim.diffusion import samplers  # noqa: E402
from chansim.diffusion.likelihood import to_unit  # noqa: E402

from tiny_diffusers import make_tiny_pipeline  # noqa: E402

CONDITIONAL = ("sd15", "sd21v", "sdxl", "sd3", "flux")
ALL = CONDITIONAL + ("unet2d", "ldm")


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    cache = {}

    def get(family, dtype=torch.float32):
        key = (family, dtype)
        if key not in cache:
            cache[key] = make_tiny_pipeline(family, tmp_path_factory.mktemp(f"{family}_{str(dtype)[6:]}"), dtype=dtype)
        return cache[key]

    return get


@pytest.fixture(scope="module")
def codecs(model_dirs):
    cache = {}

    def get(family, **kw):
        key = (family, tuple(sorted(kw.items())))
        if key not in cache:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cache[key] = DiffC.from_diffusers(model_dirs(family), recon_steps=2, **kw)
        return cache[key]

    return get


from images import pattern_image as _image  # noqa: E402


@pytest.mark.parametrize("family", ALL)
def test_roundtrip_prefixes_and_progressive(codecs, family):
    codec = codecs(family, **({"prompt": "a photo of a red cat"} if family in CONDITIONAL else {}))
    img = _image()
    q_hi = min(4, codec.qualities[-1])
    evs = codec.evaluate(img, [2, q_hi], reconstructions=("flow", "mmse"), seed=5)
    for ev in evs:
        assert ev.data == codec.compress(img, ev.quality, seed=5)
        assert container.truncate(evs[-1].data, ev.quality) == ev.data
        for kind in ("flow", "mmse"):
            out = codec.decompress(ev.data, kind)
            assert out.shape == (64, 64, 3) and np.array_equal(out, ev.images[kind]), (family, ev.quality, kind)
    prog = list(codec.decompress_progressive(evs[-1].data, "mmse"))
    assert len(prog) == q_hi + 1 and np.array_equal(prog[-1][1], evs[-1].images["mmse"])
    assert [b for b, _ in prog] == sorted(b for b, _ in prog)


@pytest.mark.parametrize("family", ALL)
def test_step_kl_is_the_closed_form(codecs, family):
    codec = codecs(family)
    img = _image()
    ev = codec.evaluate(img, [3], reconstructions=())[0]
    x = codec.model.encode(to_unit(torch.from_numpy(img).permute(2, 0, 1)[None]))
    points = list(codec.trajectory(ev.data))
    for step, (i, z, g_t, (x_hat, _)) in zip(ev.info["steps"], points):
        g_s = codec.grid()[i + 1]
        snr_gap = math.exp(-g_s) - math.exp(-g_t)
        kl = 0.5 * snr_gap * float((x.double() - x_hat.double()).square().sum()) / math.log(2)
        assert step["kl_bits"] == pytest.approx(kl, rel=1e-4), (family, i)


def _unet_reference(family, d, caption, guidance, z, timesteps):
    """diffusers' own pipeline (DDIM η = 0) from latent z at timesteps[0]; returns its final latent."""
    pipe = diffusers.DiffusionPipeline.from_pretrained(d, local_files_only=True)
    pipe.scheduler = diffusers.DDIMScheduler.from_config(pipe.scheduler.config, set_alpha_to_one=True,
                                                         clip_sample=False, timestep_spacing="leading",
                                                         steps_offset=0)
    pipe.set_progress_bar_config(disable=True)
    pipe.scheduler.set_timesteps(len(timesteps))
    assert [int(t) for t in pipe.scheduler.timesteps] == timesteps
    return pipe(caption, height=64, width=64, num_inference_steps=len(timesteps), latents=z.clone(),
                guidance_scale=guidance or 1.0, eta=0.0, output_type="latent").images


@pytest.mark.parametrize("family,guidance", [("sd15", None), ("sd21v", None), ("sdxl", None), ("sd15", 3.0),
                                             ("sdxl", 2.5)])
def test_flow_reconstruction_equals_diffusers_ddim(codecs, model_dirs, family, guidance):
    caption = "a photo of a dog"
    codec = codecs(family, prompt=caption, **({"guidance": guidance} if guidance else {}))
    den = codec.model.condition(caption, guidance)
    timesteps = [750, 500, 250, 0]
    grid = [float(den.schedule.table[t]) for t in timesteps]
    z = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        ours = samplers.sample(den, z, grid, method="flow")
    ref = _unet_reference(family, model_dirs(family), caption, guidance, z, timesteps)
    assert torch.allclose(ours, ref.float(), atol=2e-5, rtol=1e-4), float((ours - ref).abs().max())


@pytest.mark.parametrize("family,guidance", [("sd3", None), ("flux", None), ("sd3", 3.0), ("flux", 3.5)])
def test_flow_reconstruction_equals_diffusers_flow_match_euler(codecs, model_dirs, family, guidance):
    from chansim.diffusion.pretrained import flow_gammas

    caption = "a painting of a horse"
    codec = codecs(family, prompt=caption, **({"guidance": guidance} if guidance else {}))
    den = codec.model.condition(caption, guidance)
    sigmas = [0.9, 0.7, 0.45, 0.2]
    grid = [float(g) for g in flow_gammas(sigmas)]
    z = torch.randn(1, 16, 8, 8, generator=torch.Generator().manual_seed(4))
    with torch.inference_mode():
        ours = samplers.sample(den, z, grid, method="flow")
    pipe = diffusers.DiffusionPipeline.from_pretrained(model_dirs(family), local_files_only=True)
    # shift 1 and no dynamic shifting: the scheduler then runs exactly the σ values given
    pipe.scheduler = diffusers.FlowMatchEulerDiscreteScheduler.from_config(pipe.scheduler.config, shift=1.0,
                                                                           use_dynamic_shifting=False)
    pipe.set_progress_bar_config(disable=True)
    x_t = z * math.sqrt((1 - sigmas[0]) ** 2 + sigmas[0] ** 2)  # VP z → the flow path's x_t
    kw = dict(height=64, width=64, sigmas=sigmas, num_inference_steps=len(sigmas), output_type="latent")
    if family == "flux":
        packed = x_t.view(1, 16, 4, 2, 4, 2).permute(0, 2, 4, 1, 3, 5).reshape(1, 16, 64)
        out = pipe(caption, latents=packed, guidance_scale=guidance if guidance else 1.0, **kw).images
        ref = out.view(1, 4, 4, 16, 2, 2).permute(0, 3, 1, 4, 2, 5).reshape(1, 16, 8, 8)
    else:
        ref = pipe(caption, latents=x_t, guidance_scale=guidance or 1.0, **kw).images
    assert torch.allclose(ours, ref.float(), atol=5e-5, rtol=1e-4), float((ours - ref).abs().max())


def test_flow_math_closed_form():
    """t = sigmoid(γ/2), x_t = c·z, and (x̂, ε̂) from v = ε − x recover x and ε exactly."""
    from chansim.diffusion.gaussian import alpha_sigma
    from chansim.diffusion.pretrained import flow_gammas, flow_time, velocity_to_x_eps

    g = torch.Generator().manual_seed(0)
    x, eps = torch.randn(3, 5, generator=g, dtype=torch.float64), torch.randn(3, 5, generator=g, dtype=torch.float64)
    for t in (0.05, 0.3, 0.5, 0.93):
        gamma = float(flow_gammas([t])[0])
        assert gamma == pytest.approx(2 * math.log(t / (1 - t))) and flow_time(gamma) == pytest.approx(t)
        x_t = (1 - t) * x + t * eps
        a, s = alpha_sigma(torch.tensor(gamma, dtype=torch.float64))
        c = math.sqrt((1 - t) ** 2 + t ** 2)
        assert torch.allclose(x_t / c, a * x + s * eps)  # the scaled flow path is variance preserving
        x_hat, e_hat = velocity_to_x_eps(eps - x, x_t / c, gamma)
        assert torch.allclose(x_hat, x) and torch.allclose(e_hat, eps)


def test_caption_and_guidance_travel_in_the_file(codecs):
    img = _image()
    enc = codecs("sd15", prompt="a photo of a red cat", guidance=2.0)
    plain = codecs("sd15")
    ev = enc.evaluate(img, [3], seed=1)[0]
    # the decoder holds no prompt: it reads caption and guidance from the file
    assert np.array_equal(plain.decompress(ev.data), ev.images["flow"])
    c = container.unpack(ev.data)
    assert c.settings.endswith(b"a photo of a red cat") and struct.pack("<f", 2.0) in c.settings
    bare = plain.compress(img, 3, seed=1)
    # caption + float32 guidance are in the file's settings, so the rate counts them
    assert len(c.settings) - len(container.unpack(bare).settings) == len("a photo of a red cat") + 4
    assert not np.array_equal(plain.decompress(bare), ev.images["flow"])  # the caption changes p


def test_wrong_model_caption_and_corruption_raise_format_error(codecs):
    img = _image()
    codec = codecs("sd15", prompt="a cat")
    data = codec.compress(img, 2, seed=2)
    with pytest.raises(FormatError, match="model mismatch"):
        codecs("sd21v").decompress(data)
    for cut in (1, 10, len(data) // 2, len(data) - 1):
        with pytest.raises(FormatError):
            codec.decompress(data[:cut])
    c = container.unpack(data)

    def repack(settings):
        return container.Container(c.codec, c.model_tag, c.height, c.width, c.seed, settings, c.sections).pack()

    with pytest.raises(FormatError, match="UTF-8"):
        codec.decompress(repack(c.settings[:-1] + b"\xff"))
    with pytest.raises(FormatError, match="caption"):
        codec.decompress(repack(c.settings[:-1]))
    # an unconditional model's file cannot carry a caption
    ldm = codecs("ldm")
    d2 = container.unpack(ldm.compress(img, 2, seed=2))
    with pytest.raises(FormatError, match="unconditional"):
        ldm.decompress(container.Container(d2.codec, d2.model_tag, d2.height, d2.width, d2.seed,
                                           d2.settings[:-1] + b"\x01x", d2.sections).pack())
    with pytest.raises(ValueError, match="unconditional"):
        DiffC(ldm.model, ldm.model_id, prompt="a cat")
    with pytest.raises(ValueError, match="guidance"):
        DiffC(codec.model, codec.model_id, guidance=-1)


def test_half_precision_weights_and_other_runtime_decode(model_dirs, codecs):
    """float16 files load; a file decodes (with a warning, in sync) on another dtype than its encoder's."""
    half = DiffC.from_diffusers(model_dirs("sd15", torch.float16), recon_steps=2, prompt="a cat")
    img = _image()
    ev = half.evaluate(img, [3], reconstructions=("mmse",), seed=3)[0]
    assert np.array_equal(half.decompress(ev.data, "mmse"), ev.images["mmse"])
    other = DiffC.from_diffusers(model_dirs("sd15", torch.float16), recon_steps=2, dtype="bfloat16")
    assert other.model_id == half.model_id
    with pytest.warns(RuntimeWarning, match="cpu/float32.*cpu/bfloat16"):
        out = other.decompress(ev.data, "mmse")
    assert out.shape == img.shape


def test_loader_families_and_errors(model_dirs, tmp_path):
    from chansim.diffusion.pretrained import detect_family, load

    expect = {"sd15": "sd", "sd21v": "sd", "sdxl": "sdxl", "sd3": "sd3", "flux": "flux", "unet2d": "unet2d",
              "ldm": "unet2d"}
    for fam, want in expect.items():
        assert detect_family(model_dirs(fam)) == want
    with pytest.raises(FileNotFoundError, match="not a model directory|neither"):
        load(tmp_path / "nothing")
    with pytest.raises(FileNotFoundError, match="no diffusers model"):
        load(tmp_path)
    with pytest.raises(FileNotFoundError, match="neither a local model directory nor a reachable hub"):
        load("nobody/no-such-model", local_files_only=True)
    with pytest.raises(ValueError, match="dtype"):
        load(model_dirs("sd15"), dtype=torch.int8)


def test_decoder_with_perturbed_network_stays_in_sync(codecs):
    """A decoder whose network outputs carry a 1e-6 relative perturbation (another device's
    rounding) reads the same indices and candidates: the image moves by rounding, not by desync."""
    from chansim.metrics import psnr

    codec = codecs("sd15", prompt="a cat")
    img = _image()
    data = codec.compress(img, 4, seed=6)
    exact = codec.decompress(data, "mmse")

    class Perturbed:
        def __init__(self, inner):
            self.inner, self.gen = inner, torch.Generator().manual_seed(0)

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def denoise(self, z, gamma, clip=None):
            return tuple(t * (1 + 1e-6 * torch.randn(t.shape, generator=self.gen)) for t in self.inner.denoise(z, gamma, clip))

    out = DiffC(Perturbed(codec.model), codec.model_id, recon_steps=2).decompress(data, "mmse")
    assert psnr(exact, out) > 45  # at most a few pixels off by one level; a desync would be ≈ 10 dB


def test_bits_per_step_rows_and_cli(codecs, model_dirs, tmp_path, capsys):
    from PIL import Image

    from chansim.cli import main
    from chansim.codecs.step_report import COLUMNS, bits_per_step

    codec = codecs("flux", prompt="a photo")
    rows = bits_per_step(codec, _image(), 3, seed=2)
    ev = codec.evaluate(_image(), [3], reconstructions=(), seed=2)[0]
    assert [r["step"] for r in rows] == [0, 1, 2] and all(set(k for k, _ in COLUMNS) <= set(r) for r in rows)
    assert sum(r["bits"] for r in rows) == sum(8 * len(s) for s in container.unpack(ev.data).sections)
    assert all(r["bits_per_kl"] == pytest.approx(r["bits"] / r["kl_bits"]) for r in rows)
    Image.fromarray(_image()).save(tmp_path / "x.png")
    assert main(["bench", "--bits-per-step", str(tmp_path / "x.png"), "--model", str(model_dirs("flux")),
                 "--quality", "2", "--prompt", "a photo"]) == 0
    out = capsys.readouterr().out
    assert "γ_t" in out and "bits/KL" in out and "total" in out
    assert main(["bench", "--bits-per-step", str(tmp_path / "x.png"), "--codec", "ntc"]) == 2
    assert "no diffusion steps" in capsys.readouterr().err
    # bad arguments: one line naming the problem, exit 2, no traceback
    for argv, msg in ((["--model", str(tmp_path / "nowhere")], "not a model directory"),
                      (["--prompt", "a cat"], "need --model"),
                      (["--codec", "uqdm", "--model", str(model_dirs("flux"))], "is for --codec diffc")):
        assert main(["bench", "--bits-per-step", str(tmp_path / "x.png"), *argv]) == 2
        err = capsys.readouterr().err
        assert msg in err and "Traceback" not in err, err
