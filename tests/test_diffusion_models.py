"""The U-Net denoiser, the two trainable models, model files and content hashes (tiny nets, no training)."""

import math

import pytest

torch = pytest.importorskip("torch")

from chansim.diffusion import io as mio  # noqa: E402
from chansim.diffusion import likelihood as L  # noqa: E402
from chansim.diffusion import uqdm as U  # noqa: E402
from chansim.diffusion.gaussian import alpha_sigma, posterior  # noqa: E402
from chansim.diffusion.models import GaussianDiffusion, UQDMModel, build_model  # noqa: E402
from chansim.diffusion.schedules import LearnedLinearSchedule, LinearSchedule  # noqa: E402
from chansim.diffusion.unet import UNet  # noqa: E402


def _perturbed(module, seed=0, scale=0.05):
    # Zero-initialised output layers would make many checks vacuous: give every weight some signal.
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=g) * scale)
    return module


def tiny_net(out=3, attention=False):
    return _perturbed(UNet(out_channels=out, widths=(8, 16), attention=attention, groups=4))


@pytest.mark.parametrize("h,w", [(16, 16), (17, 31), (5, 3), (1, 1), (40, 24)])
@pytest.mark.parametrize("attention", [False, True])
def test_unet_any_size(h, w, attention):
    net = tiny_net(6, attention).eval()
    z = torch.randn(2, 3, h, w)
    with torch.no_grad():
        out = net(z, torch.tensor([-3.0, 1.0]))
    assert out.shape == (2, 6, h, w) and torch.isfinite(out).all()


def test_unet_crop_is_exactly_the_padded_run():
    # Internally: replicate-pad to the stride, run, crop. Doing that by hand must give the same bits.
    net = tiny_net().eval()
    z = torch.randn(1, 3, 13, 21)
    with torch.no_grad():
        out = net(z, -2.0)
        padded = torch.nn.functional.pad(z, (0, 24 - 21, 0, 16 - 13), mode="replicate")
        ref = net(padded, -2.0)[:, :, :13, :21]
    assert net.stride == 4 and torch.equal(out, ref)


def test_unet_conditioning_scalar_vs_per_example_and_sensitivity():
    net = tiny_net().eval()
    z = torch.randn(3, 3, 16, 16)
    with torch.no_grad():
        a = net(z, torch.tensor(-4.0))
        b = net(z, torch.full((3,), -4.0))
        c = net(z, torch.tensor(2.0))
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    with pytest.raises(ValueError):
        net(z, torch.zeros(2))
    with pytest.raises(ValueError):
        net(torch.randn(1, 4, 8, 8), 0.0)


def test_default_architecture_size():
    from chansim.diffusion import default_diffc, default_uqdm

    for m in (default_uqdm(), default_diffc()):
        n = sum(p.numel() for p in m.parameters())
        assert 1.5e6 < n < 2.5e6  # ≤ 5 MB as float16
        assert m.net.stride == 16


def test_zero_initialised_net_gives_identity_like_denoiser():
    # ε̂ = net + z with a zero output layer: x̂ = z(1 − σ)/α, i.e. ≈ z/α at low noise.
    m = GaussianDiffusion(UNet(widths=(8, 16), groups=4), LinearSchedule(-13.3, 5.0)).eval()
    z = torch.randn(1, 3, 8, 8)
    g = torch.tensor(-10.0)
    with torch.no_grad():
        x_hat, eps_hat = m.denoise(z, g)
    a, s = alpha_sigma(g)
    assert torch.allclose(eps_hat, z) and torch.allclose(x_hat, z * (1 - s) / a, rtol=1e-6)


def test_gaussian_loss_terms_and_gradients():
    m = GaussianDiffusion(tiny_net(), LearnedLinearSchedule(-13.3, 5.0))
    x_raw = torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8)
    terms = m.loss(x_raw, generator=torch.Generator().manual_seed(0), time_samples=3)
    assert set(terms) == {"prior", "diffusion", "reconstruction"}
    for v in terms.values():
        assert v.shape == (2,) and torch.isfinite(v).all() and bool((v >= 0).all())
    sum(t.sum() for t in terms.values()).backward()
    assert m.schedule.w.grad is not None and m.schedule.b.grad is not None
    assert all(p.grad is not None for p in m.net.parameters())


class ExactGaussianNet(torch.nn.Module):
    """ε̂ − z for data x ~ N(0, v·I) (GaussianDiffusion adds z back): ε̂ = σ z / (α² v + σ²)."""

    def __init__(self, v):
        super().__init__()
        self.v = v

    def forward(self, z, gamma):
        g = torch.as_tensor(gamma, dtype=z.dtype).reshape(-1, 1, 1, 1)
        a, s = alpha_sigma(g)
        return s * z / (a * a * self.v + s * s) - z


def test_vdm_diffusion_term_with_exact_denoiser_equals_the_mutual_information_gap():
    # I-MMSE: with the exact denoiser, ½ ∫ γ' E‖ε − ε̂‖² dt = Σ_dims ½ log((1 + v·SNR_max)/(1 + v·SNR_min)),
    # i.e. I(X; Z_0) − I(X; Z_1). Monte Carlo over x, t, ε (seeded); tolerance 5 standard errors.
    v, g_min, g_max = 0.2, -9.0, 5.0
    m = GaussianDiffusion(ExactGaussianNet(v), LinearSchedule(g_min, g_max))
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(256, 1, 4, 4, generator=gen, dtype=torch.float64) * math.sqrt(v)
    with torch.no_grad():
        est = m.diffusion_term(x, generator=gen, time_samples=8)
    exact = 16 * 0.5 * math.log((1 + v * math.exp(-g_min)) / (1 + v * math.exp(-g_max)))
    se = float(est.std()) / math.sqrt(est.numel())
    assert abs(float(est.mean()) - exact) < 5 * se, (float(est.mean()), exact, se)


def test_uqdm_loss_terms_match_manual_computation():
    m = UQDMModel(tiny_net(6), LearnedLinearSchedule(-12.3, 6.0, fix_gamma_max=True), steps=3).eval()
    x_raw = torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8)
    with torch.no_grad():
        terms = m.loss(x_raw, generator=torch.Generator().manual_seed(5))
        # Replay with the same generator by hand.
        gen = torch.Generator().manual_seed(5)
        x = L.to_unit(x_raw)
        g = m.schedule(m.times().float())
        a1, s1 = alpha_sigma(g[0])
        z = a1 * x + s1 * torch.randn(x.shape, generator=gen)
        for i in range(3):
            mu_p, scale, width, _ = m.reverse(z, g[i], g[i + 1])
            a, b, beta2 = posterior(g[i + 1], g[i])
            assert torch.allclose(width, math.sqrt(12) * beta2.sqrt())
            z = a * z + b * x + width * (torch.rand(x.shape, generator=gen) - 0.5)
            manual = -U.log_bin_mass(z - mu_p, width, scale).flatten(1).sum(1)
            assert torch.allclose(terms[f"step{i}"], manual)
        assert torch.allclose(terms["reconstruction"], L.reconstruction_nll(z, x_raw, g[-1]))
    assert list(terms) == ["prior", "step0", "step1", "step2", "reconstruction"]


def test_uqdm_gradients_reach_the_schedule():
    m = UQDMModel(tiny_net(6), LearnedLinearSchedule(-12.3, 6.0, fix_gamma_max=True), steps=2)
    terms = m.loss(torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8))
    sum(t.sum() for t in terms.values()).backward()
    assert m.schedule.w.grad is not None and torch.isfinite(m.schedule.w.grad)


def test_uqdm_rejects_a_net_without_scale_outputs():
    with pytest.raises(ValueError):
        UQDMModel(tiny_net(3), LinearSchedule(-12.3, 6.0))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_model_file_round_trip_and_content_hash(tmp_path, dtype):
    m = UQDMModel(tiny_net(6), LearnedLinearSchedule(-12.3, 6.0, fix_gamma_max=True), steps=4).eval()
    mid = mio.save_model(m, tmp_path / "m.pt", dtype)
    m2, mid2 = mio.load_model(tmp_path / "m.pt")
    assert mid == mid2 and len(mid) == 64
    ref = m if dtype == torch.float32 else build_model(m.config())
    if dtype == torch.float16:
        ref.load_state_dict({k: v.half().float() for k, v in m.state_dict().items()})
    z = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(ref.net(z, -1.0), m2.net(z, -1.0))
    # Re-saving keeps the id; changing one weight or the config changes it.
    assert mio.save_model(m2, tmp_path / "again.pt", dtype) == mid
    with torch.no_grad():
        m2.net.conv_in.bias[0] += 1.0
    assert mio.save_model(m2, tmp_path / "changed.pt", dtype) != mid
    m3 = build_model(m.config())
    m3.load_state_dict(m.state_dict())
    m3.steps = 5
    assert mio.save_model(m3, tmp_path / "t5.pt", dtype) != mio.save_model(m, tmp_path / "t4.pt", dtype)


def test_load_model_rejects_foreign_files(tmp_path):
    torch.save({"hello": 1}, tmp_path / "x.pt")
    with pytest.raises(ValueError):
        mio.load_model(tmp_path / "x.pt")
    torch.save({"format": mio.FORMAT, "version": 99, "config": {}, "state_dict": {}}, tmp_path / "y.pt")
    with pytest.raises(ValueError, match="version"):
        mio.load_model(tmp_path / "y.pt")


def test_core_import_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, chansim; assert 'torch' not in sys.modules, 'chansim imported torch'"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
