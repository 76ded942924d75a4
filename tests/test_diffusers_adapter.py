"""diffusers UNet2DModel + scheduler as a chansim denoiser (tiny random models saved to a tmp dir; no downloads).

The conditional families (SD, SDXL, SD3, Flux) are tests/test_diffc_pretrained.py."""

import math

import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

from chansim.codecs import DiffC  # noqa: E402
from chansim.diffusion import ddim_step  # noqa: E402
from chansim.diffusion.pretrained import gammas_from_alphas_cumprod, load  # noqa: E402
from chansim.diffusion.gaussian import alpha_sigma  # noqa: E402


def _unet(in_channels=3, out_channels=3):
    torch.manual_seed(0)
    return diffusers.UNet2DModel(sample_size=16, in_channels=in_channels, out_channels=out_channels,
                                 layers_per_block=1, block_out_channels=(8, 16), norm_num_groups=4,
                                 down_block_types=("DownBlock2D", "DownBlock2D"),
                                 up_block_types=("UpBlock2D", "UpBlock2D"))


@pytest.fixture(scope="module", params=["epsilon", "v_prediction", "sample"])
def pipeline_dir(request, tmp_path_factory):
    d = tmp_path_factory.mktemp(f"pipe_{request.param}")
    sched = diffusers.DDIMScheduler(num_train_timesteps=50, beta_schedule="scaled_linear", clip_sample=False,
                                    set_alpha_to_one=False, prediction_type=request.param)
    diffusers.DDIMPipeline(unet=_unet(), scheduler=sched).save_pretrained(d)
    return d, sched, load(d)


def test_schedule_maps_alphas_cumprod(pipeline_dir):
    d, sched, den = pipeline_dir
    ac = sched.alphas_cumprod.double()
    g = den.schedule.table
    a, s = alpha_sigma(g)
    assert torch.allclose(a * a, ac, rtol=1e-12) and torch.allclose(s * s, 1 - ac, rtol=1e-9)
    # Timestep k sits at t = k/(N − 1) and timestep(γ_k) = k.
    for k in (0, 17, 49):
        assert math.isclose(float(den.schedule(torch.tensor(k / 49, dtype=torch.float64))), float(g[k]),
                            rel_tol=1e-12)
        assert math.isclose(float(den.timestep(g[k])), k, abs_tol=1e-9)


def test_ddim_step_matches_the_diffusers_scheduler(pipeline_dir):
    # chansim's probability-flow step z_s = α_s x̂ + σ_s ε̂ on the adapter must reproduce DDIMScheduler.step(η = 0).
    d, sched, den = pipeline_dir
    sched.set_timesteps(5)
    t, prev = int(sched.timesteps[1]), int(sched.timesteps[2])
    z = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    g = den.schedule.table
    with torch.no_grad():
        ref = sched.step(den.unet(z, t).sample, t, z, eta=0.0).prev_sample
        den.clip_denoised = False  # the reference scheduler does not clip
        try:
            ours = ddim_step(den, z, float(g[t]), float(g[prev]))
        finally:
            den.clip_denoised = True
    assert torch.allclose(ours, ref, atol=1e-5, rtol=1e-5)


def test_denoise_at_fractional_timesteps_and_clipping(pipeline_dir):
    _, _, den = pipeline_dir
    z = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    g_mid = 0.5 * float(den.schedule.table[10] + den.schedule.table[11])
    with torch.no_grad():
        x_hat, eps_hat = den.denoise(z, g_mid)
        raw = den.unet(z, den.timestep(torch.tensor(g_mid)).float().reshape(1)).sample
    assert 10 < float(den.timestep(g_mid)) < 11
    assert float(x_hat.abs().max()) <= 1.0
    a, s = alpha_sigma(torch.tensor(g_mid))
    assert torch.allclose(z, a * x_hat + s * eps_hat, atol=1e-5)
    with torch.no_grad():
        xu, eu = den.denoise(z, g_mid, clip=False)
    expect = {"epsilon": eu, "v_prediction": a * eu - s * xu, "sample": xu}[den.prediction_type]
    assert torch.allclose(raw, expect, atol=1e-5)


def test_bare_unet_directory_and_learned_variance_output(tmp_path):
    unet = _unet(out_channels=6)
    unet.save_pretrained(tmp_path)
    diffusers.DDPMScheduler(num_train_timesteps=30).save_pretrained(tmp_path)
    den = load(tmp_path)
    z = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        x_hat, eps_hat = den.denoise(z, float(den.schedule.table[5]), clip=False)
        raw = unet(z, 5).sample[:, :3]
    assert torch.allclose(eps_hat, raw, atol=1e-6)


def test_latent_diffusion_with_vae(tmp_path):
    torch.manual_seed(0)
    vae = diffusers.AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8,),
                                  norm_num_groups=4, down_block_types=("DownEncoderBlock2D",),
                                  up_block_types=("UpDecoderBlock2D",), scaling_factor=0.5)
    unet = _unet(in_channels=4, out_channels=4)
    sched = diffusers.DDIMScheduler(num_train_timesteps=20)
    for name, m in (("unet", unet), ("vae", vae), ("scheduler", sched)):
        m.save_pretrained(tmp_path / name)
    den = load(tmp_path)
    img = torch.rand(1, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        lat = den.encode(img)
        assert lat.shape == (1, 4, 16, 16)
        assert torch.allclose(lat, vae.encode(img).latent_dist.mean * 0.5)
        assert den.decode(lat).shape == img.shape
        x_hat, _ = den.denoise(lat, float(den.schedule.table[3]))
    assert not den.clip_denoised and x_hat.shape == lat.shape


def test_diffc_zero_shot_and_model_id(pipeline_dir, tmp_path):
    d, _, den = pipeline_dir
    if den.prediction_type != "epsilon":
        pytest.skip("one parameterisation suffices for the loader")
    codec = DiffC.from_diffusers(d)
    assert len(codec.model_id) == 64 and codec.schedule is codec.model.schedule
    assert codec.model_id == den.model_id()
    # The id names the stored files: the same files in half precision at run time keep it ...
    assert load(d, dtype=torch.float16).model_id() == den.model_id()
    # ... other weights change it.
    unet = diffusers.UNet2DModel.from_pretrained(d, subfolder="unet")
    with torch.no_grad():
        unet.conv_in.bias[0] += 1
    other = tmp_path / "other"
    diffusers.DDIMPipeline(unet=unet, scheduler=diffusers.DDIMScheduler.from_pretrained(d, subfolder="scheduler")
                           ).save_pretrained(other)
    assert load(other).model_id() != den.model_id()
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing")


def test_deprecated_adapter_module(pipeline_dir):
    d, _, den = pipeline_dir
    from chansim.diffusion.diffusers_adapter import DiffusersDenoiser

    with pytest.deprecated_call():
        assert DiffusersDenoiser.from_pretrained(d).model_id() == den.model_id()


def test_gammas_from_alphas_cumprod():
    ac = torch.tensor([0.999, 0.5, 1e-4], dtype=torch.float64)
    assert torch.allclose(gammas_from_alphas_cumprod(ac), torch.log((1 - ac) / ac))
