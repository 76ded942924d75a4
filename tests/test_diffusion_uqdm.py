"""UQDM quantities and the NELBO end terms against direct float64 computations."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from chansim.diffusion import gaussian as G  # noqa: E402
from chansim.diffusion import likelihood as L  # noqa: E402
from chansim.diffusion import uqdm as U  # noqa: E402


def _released_widths():
    """Δ_i = √12·β_i of the released grid (linear γ from 6.0 to −12.3, T = 4), written from the VDM
    closed forms with α² = sigmoid(−γ), σ² = sigmoid(γ): α²_{t|s} = α_t²/α_s², σ²_{t|s} = σ_t² − α²_{t|s}σ_s²,
    β² = σ²_{t|s}σ_s²/σ_t² (papers.md §1, §6). Returns [(γ_t, γ_s, Δ, α_s)]."""
    sig2 = lambda g: 1.0 / (1.0 + math.exp(-g))  # noqa: E731
    alp2 = lambda g: 1.0 / (1.0 + math.exp(g))  # noqa: E731
    gam = [6.0 - 18.3 * i / 4 for i in range(5)]
    out = []
    for g_t, g_s in zip(gam, gam[1:]):
        s2_ts = sig2(g_t) - alp2(g_t) / alp2(g_s) * sig2(g_s)
        beta2 = s2_ts * sig2(g_s) / sig2(g_t)
        out.append((g_t, g_s, math.sqrt(12.0 * beta2), math.sqrt(alp2(g_s))))
    return out


def test_delta_is_sqrt12_beta_from_the_closed_forms():
    for g_t, g_s, width, _ in _released_widths():
        assert math.isclose(float(U.delta(g_s, g_t)), width, rel_tol=1e-10), (g_t, g_s)


def test_released_widths_match_papers_in_pixel_levels():
    # papers.md §6 quotes the released per-step Δ "in 8-bit levels" as ≈ 899, 91, 9.3, 0.94. Those are
    # widths of the uncertainty about x, not about z: z_s = α_s x + σ_s ε, so a width Δ in z is Δ/α_s in
    # x, and x ∈ [−1, 1] spans 256 levels (128 per unit): 899.5, 91.3, 9.27, 0.941 — all four within
    # 0.5 %. The raw latent width Δ·128 is 396, 89.4, 9.27, 0.941: the old test's first width "394.5"
    # (Δ·127.5) is right as a latent width, and the discrepancy with 899 is the factor 1/α_s = 2.27 of
    # a step that ends at γ = 1.425 (α_s = 0.44), not an error in Δ; the second width is 1.7 % lower in
    # z than in x (α_s = 0.979), the last two agree (α_s ≈ 1).
    papers = [899.0, 91.0, 9.3, 0.94]
    widths = _released_widths()
    in_x = [w / a_s * 128.0 for _, _, w, a_s in widths]
    assert all(abs(got / want - 1) < 0.005 for got, want in zip(in_x, papers)), in_x
    in_z = [w * 128.0 for _, _, w, _ in widths]
    assert abs(in_z[0] - 396.05) < 0.01 and abs(in_z[0] / 899.0 - 1) > 0.5, in_z
    assert abs(in_z[1] / papers[1] - 1) > 0.01, in_z
    assert all(abs(got / want - 1) < 0.005 for got, want in zip(in_z[2:], papers[2:])), in_z
    # and the library's Δ in those units
    lib = [float(U.delta(g_s, g_t)) / a_s * 128.0 for g_t, g_s, _, a_s in widths]
    assert all(math.isclose(a, b, rel_tol=1e-10) for a, b in zip(lib, in_x))


@pytest.mark.parametrize("scale,width", [(0.3, 1.0), (2.0, 0.05), (0.01, 3.0), (1.0, 1.0)])
def test_log_bin_mass_matches_cdf_difference(scale, width):
    # Reference: the CDF difference in 60-digit arithmetic (in float64 it cancels to 0 or garbage).
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 60
    v = torch.linspace(-6, 6, 121, dtype=torch.float64) * max(scale, width)
    got = U.log_bin_mass(v, width, torch.tensor(scale, dtype=torch.float64))
    G_ = lambda y: 1 / (1 + mpmath.exp(-y))  # noqa: E731

    def ref_one(vi):
        a = (mpmath.mpf(float(vi)) + mpmath.mpf(width) / 2) / mpmath.mpf(scale)
        b = (mpmath.mpf(float(vi)) - mpmath.mpf(width) / 2) / mpmath.mpf(scale)
        # Right of the mode use survival functions, so neither difference is of two numbers near 1.
        return float(mpmath.log(G_(-b) - G_(-a) if vi > 0 else G_(a) - G_(b)))

    ref = [ref_one(vi) for vi in v]
    assert torch.allclose(got, torch.tensor(ref, dtype=torch.float64), rtol=1e-10, atol=1e-12)


def test_log_bin_mass_far_tail_is_linear_not_minus_inf():
    # For |v| ≫ s the mass is ≈ e^{−|v|/s}·(e^{h} − e^{−h}): the log must stay finite and exact.
    v = torch.tensor([200.0, -200.0], dtype=torch.float32)
    got = U.log_bin_mass(v, 1.0, torch.tensor(1.0))
    expect = -200.0 + math.log(math.exp(0.5) - math.exp(-0.5))
    assert torch.allclose(got, torch.full_like(got, expect), atol=1e-3)


def test_density_integrates_to_one_and_has_the_convolved_variance():
    mean, scale, width = 0.3, 0.4, 1.7
    z = torch.linspace(-25, 25, 200_001, dtype=torch.float64)
    p = U.log_density(z, torch.tensor(mean, dtype=torch.float64), torch.tensor(scale, dtype=torch.float64),
                      width).exp()
    dz = float(z[1] - z[0])
    assert math.isclose(float(p.sum() * dz), 1.0, abs_tol=1e-6)
    var = float(((z - mean) ** 2 * p).sum() * dz)
    assert math.isclose(var, scale ** 2 * math.pi ** 2 / 3 + width ** 2 / 12, rel_tol=1e-5)


def test_symbol_probabilities_sum_to_one_for_any_dither():
    k = torch.arange(-60, 61, dtype=torch.float64)
    for u in (-0.49, 0.0, 0.31):
        lp = U.symbol_log_prob(k, torch.tensor(u, dtype=torch.float64), 0.7, torch.tensor(1.3, dtype=torch.float64))
        assert math.isclose(float(lp.exp().sum()), 1.0, abs_tol=1e-12)


def test_dithered_quantisation_error_is_uniform_and_independent():
    """The deprecated diffusion.uqdm.dither_index / dither_reconstruct (the codec quantizes in the
    fused kernel now, next test) still simulate the channel: z ~ U(value − Δ/2, value + Δ/2) for
    any value, through chansim.testing.check_exact on n = 20,000 channels in one call (seed 0,
    dither from torch.Generator(seed)), α = 1e-3 family-wise: KS and χ² of the PIT, and the PIT's
    law given the value and given its position in the quantization cell (χ², 5 equal-count bins
    each); the reconstruction from the indices is bit-identical."""
    from chansim.testing import Uniform, check_exact

    with pytest.deprecated_call():
        dither_index = U.dither_index
    with pytest.deprecated_call():
        dither_reconstruct = U.dither_reconstruct
    g = torch.Generator().manual_seed(3)
    n, width = 20_000, 0.37
    value = torch.randn(n, generator=g, dtype=torch.float64) * 5
    mean = torch.randn(n, generator=g, dtype=torch.float64)

    def dither(seed):
        return torch.rand(n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) - 0.5

    def encode(seed):
        u = dither(seed)
        k = dither_index(value, mean, width, u)
        assert torch.equal(k, torch.round(k))
        return dither_reconstruct(k, mean, width, u).numpy(), k.to(torch.int64).numpy().tobytes()

    def decode(message, seed):
        k = torch.from_numpy(np.frombuffer(message, np.int64).astype(np.float64))
        return dither_reconstruct(k, mean, width, dither(seed)).numpy()

    v = value.numpy()
    assert float(np.abs(encode(0)[0] - v).max()) <= width / 2 * (1 + 1e-12)
    given = {"value": v, "position in the cell": ((v - mean.numpy()) / width) % 1.0}
    r = check_exact(encode, decode, Uniform.around(v, width), n=n, batched=True, given=given)
    assert r.n == n and len(r.given_pvalues) == 2


class _ClosedFormNet:
    """A stand-in UQDM network with a closed-form output: ε̂ = ½·tanh(z) (its raw output is
    ε̂ − z, the skip adds z back) and scale factor f = 1 (raw 0). Enough for the step's channel,
    which the network only shifts (μ_p) and scales (the entropy table)."""

    clip_denoised = True

    def net(self, z, gamma):
        return torch.cat([0.5 * torch.tanh(z) - z, torch.zeros_like(z)], 1)


@pytest.mark.parametrize("index", [1, 2])
def test_uqdm_codec_step_is_the_uniform_channel(index):
    """The UQDM codec's channel step (chansim.codecs.uqdm_step.encode → section bytes → decode,
    the fused float32 kernel and the rANS code) sends z_s ~ U(μ_Q − Δ/2, μ_Q + Δ/2) with
    μ_Q = a·z_t + b·x and Δ = √12·β written from the float64 closed forms
    (diffusion.gaussian.step_coefficients), independently of where (μ_Q − μ_p)/Δ falls in its
    cell (μ_p from the stand-in network's ε̂ in float64): chansim.testing.check_exact on the
    n = 12,288 elements of one 3 × 64 × 64 step in one call (seed 0), α = 1e-3 family-wise
    (KS, χ², χ² given the position in 5 bins); the decoder's z_s is bit-identical. Steps 1 and 2
    of the released grid (Δ = 0.699 and 0.0724 in latent units)."""
    from chansim.codecs import uqdm_step
    from chansim.diffusion.gaussian import step_coefficients
    from chansim.testing import Uniform, check_exact

    gammas = [6.0 - 18.3 * i / 4 for i in range(5)]
    step = uqdm_step.Step.make(gammas, index)
    c = step_coefficients(step.gamma_s, step.gamma_t)
    rng = np.random.default_rng(index)
    shape = (1, 3, 64, 64)
    x = rng.uniform(-1, 1, shape).astype(np.float32)
    z = (c.alpha_t * x + c.sigma_t * rng.standard_normal(shape)).astype(np.float32)
    model = _ClosedFormNet()
    zt, xt = torch.from_numpy(z), torch.from_numpy(x)

    def encode(seed):
        z_s, section = uqdm_step.encode(model, zt, xt, step, seed)
        return z_s.numpy().ravel(), section

    def decode(section, seed):
        return uqdm_step.decode(model, zt, section, step, seed)[0].numpy().ravel()

    z64, x64 = z.astype(np.float64).ravel(), x.astype(np.float64).ravel()
    width = math.sqrt(12.0) * c.beta
    mu_q = c.a * z64 + c.b * x64
    x_hat = np.clip((z64 - c.sigma_t * 0.5 * np.tanh(z64)) / c.alpha_t, -1.0, 1.0)
    position = ((mu_q - (c.a * z64 + c.b * x_hat)) / width) % 1.0
    r = check_exact(encode, decode, Uniform.around(mu_q, width), n=z.size, batched=True,
                    given={"position in the cell": position})
    assert r.n == 12_288 and abs(width / [0.6986, 0.07242][index - 1] - 1) < 1e-3, width
    assert np.abs(r.samples - mu_q).max() <= width / 2 * (1 + 1e-5)


def test_scale_index_table():
    from chansim.codecs import uqdm_step as Q

    tab = torch.from_numpy(Q.SCALE_TABLE)
    assert len(Q.SCALE_TABLE) == Q.SCALE_TABLE_LEVELS and len(Q.SCALE_BOUNDARIES) == Q.SCALE_TABLE_LEVELS - 1
    # Each table value maps to itself; values just inside a boundary map to the nearer level.
    assert torch.equal(Q.scale_index(tab, 1.0), torch.arange(64, dtype=torch.int32))
    b = torch.from_numpy(Q.SCALE_BOUNDARIES)
    assert torch.equal(Q.scale_index(b, 1.0), torch.arange(1, 64, dtype=torch.int32))
    assert torch.equal(Q.scale_index(torch.nextafter(b, torch.zeros_like(b)), 1.0), torch.arange(63, dtype=torch.int32))
    extremes = torch.tensor([0.0, 1e-9, 1e9, float("inf"), float("nan")])
    assert Q.scale_index(extremes, 1.0).tolist() == [0, 0, 63, 63, 0]
    # The index depends on s/Δ only.
    s = torch.tensor([0.02, 0.5, 3.0])
    assert torch.equal(Q.scale_index(s * 0.25, 0.25), Q.scale_index(s, 1.0))
    # The old home still resolves, with a warning, to the same objects (one release).
    with pytest.deprecated_call():
        assert U.SCALE_TABLE is Q.SCALE_TABLE
    with pytest.deprecated_call():
        assert U.scale_index is Q.scale_index


def test_scale_factor_starts_at_one():
    assert torch.allclose(U.scale_factor(torch.zeros(3)), torch.ones(3), atol=1e-7)


def test_pixel_maps_and_reconstruction_terms():
    k = torch.arange(256)
    x = L.to_unit(k)
    assert float(x[0]) == -1 + 1 / 256 and float(x[-1]) == 1 - 1 / 256
    assert torch.equal(L.to_pixels(x), k.to(torch.uint8))
    torch.manual_seed(0)
    x_raw = torch.randint(0, 256, (2, 3, 6, 6))
    x_raw[0, 0, 0, :2] = torch.tensor([0, 255])
    for g0 in (-12.3, -9.0, -4.0, 1.0):
        a, s = G.alpha_sigma(torch.tensor(g0))
        z0 = a * L.to_unit(x_raw) + s * torch.randn(x_raw.shape)
        lp = L.reconstruction_log_probs(z0, g0)
        assert torch.allclose(lp.exp().sum(-1), torch.ones(z0.shape), atol=1e-5)
        full = -lp.gather(-1, x_raw.long().unsqueeze(-1)).squeeze(-1).flatten(1).sum(1)
        assert torch.allclose(L.reconstruction_nll(z0, x_raw, g0), full, rtol=1e-5, atol=1e-4), g0


def test_prior_kl_matches_torch_distributions():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 4, 4, dtype=torch.float64) * 2 - 1
    g1 = torch.tensor(5.0, dtype=torch.float64)
    a, s = G.alpha_sigma(g1)
    q = torch.distributions.Normal(a * x, s.expand_as(x))
    p = torch.distributions.Normal(torch.zeros_like(x), torch.ones_like(x))
    ref = torch.distributions.kl_divergence(q, p).flatten(1).sum(1)
    assert torch.allclose(L.prior_kl(x, g1), ref, rtol=1e-10)
