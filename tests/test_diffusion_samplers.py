"""Samplers against exact denoisers for data whose posterior mean is known in closed form."""

import math

import pytest

torch = pytest.importorskip("torch")

from chansim.diffusion import gaussian as G  # noqa: E402
from chansim.diffusion import samplers as S  # noqa: E402
from chansim.diffusion.schedules import LinearSchedule  # noqa: E402


class GaussianDataDenoiser:
    """Exact E[x | z_t] for x ~ N(0, v·I): x̂ = α v z / (α² v + σ²)."""

    def __init__(self, v: float):
        self.v = v
        self.schedule = LinearSchedule(-10.0, 8.0)

    def denoise(self, z, gamma):
        a, s = (t.to(z.dtype) for t in G.alpha_sigma(torch.as_tensor(gamma, dtype=torch.float64)))
        x_hat = a * self.v * z / (a * a * self.v + s * s)
        return x_hat, (z - a * x_hat) / s


class PointDenoiser:
    """Data = one known image c: x̂ = c."""

    def __init__(self, c):
        self.c = c
        self.schedule = LinearSchedule(-10.0, 8.0)

    def denoise(self, z, gamma):
        a, s = (t.to(z.dtype) for t in G.alpha_sigma(torch.as_tensor(gamma, dtype=torch.float64)))
        return self.c.expand_as(z), (z - a * self.c) / s


def _marginal_var(v, g):
    a, s = G.alpha_sigma(torch.tensor(g, dtype=torch.float64))
    return float(a * a * v + s * s)


def _chain_var(v, g_t, g_s, var_t):
    # z_s = (a + b k) z_t + β ε with x̂ = k z_t, k = α_t v / var_t.
    a, b, beta2 = (float(x) for x in G.posterior(torch.tensor(g_s, dtype=torch.float64),
                                                  torch.tensor(g_t, dtype=torch.float64)))
    at, _ = G.alpha_sigma(torch.tensor(g_t, dtype=torch.float64))
    k = float(at) * v / _marginal_var(v, g_t)
    return (a + b * k) ** 2 * var_t + beta2


def test_ancestral_steps_have_the_predicted_variance():
    # Coarse steps: p(z_s|z_t) = N(μ_Q(z_t, x̂), β²) ignores Var(x | z_t), so the chain's variance follows the
    # recursion in _chain_var, not the data marginal. n = 40 000; the sample variance has relative sd
    # sqrt(2/n) ≈ 0.7 %; tolerance 5 sd (false-alarm probability < 1e-6 per check).
    v, n = 0.25, 40_000
    model = GaussianDataDenoiser(v)
    gammas = [8.0, 3.0, -1.0, -4.0, -8.0]
    gen = torch.Generator().manual_seed(0)
    var = _marginal_var(v, gammas[0])
    z = torch.randn(1, 1, 200, 200, generator=gen, dtype=torch.float64) * math.sqrt(var)
    for g_t, g_s in zip(gammas, gammas[1:]):
        z = S.ancestral_step(model, z, g_t, g_s, torch.randn(z.shape, generator=gen, dtype=torch.float64))
        var = _chain_var(v, g_t, g_s, var)
        assert abs(float(z.var()) / var - 1) < 5 * math.sqrt(2 / n), (g_s, float(z.var()), var)


def test_fine_ancestral_sampling_reaches_the_data_marginal():
    # With many small steps the reverse model becomes exact: z_0 ~ N(0, α_0² v + σ_0²) (same tolerance as above;
    # the residual discretisation bias at 300 steps is < 0.3 %).
    v, n = 0.25, 40_000
    model = GaussianDataDenoiser(v)
    gammas = torch.linspace(8.0, -8.0, 300, dtype=torch.float64).tolist()
    gen = torch.Generator().manual_seed(1)
    z = torch.randn(1, 1, 200, 200, generator=gen, dtype=torch.float64) * math.sqrt(_marginal_var(v, 8.0))
    z = S.sample(model, z, gammas, method="ancestral", generator=gen, final="latent")
    assert abs(float(z.var()) / _marginal_var(v, -8.0) - 1) < 5 * math.sqrt(2 / n) + 3e-3


def test_sample_loop_matches_manual_steps_and_noise_fn():
    model = GaussianDataDenoiser(0.5)
    z = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    gammas = [5.0, 0.0, -5.0]
    noise = [torch.randn(z.shape, dtype=torch.float64) for _ in range(2)]
    out = S.sample(model, z, gammas, method="ancestral", noise_fn=lambda i, shape: noise[i], final="latent")
    manual = S.ancestral_step(model, S.ancestral_step(model, z, 5.0, 0.0, noise[0]), 0.0, -5.0, noise[1])
    assert torch.equal(out, manual)
    x = S.sample(model, z, gammas, method="flow")
    assert torch.equal(x, S.mmse(model, S.ddim_step(model, S.ddim_step(model, z, 5.0, 0.0), 0.0, -5.0), -5.0))
    with pytest.raises(ValueError):
        S.sample(model, z, [0.0, 1.0])
    with pytest.raises(ValueError):
        S.sample(model, z, gammas, method="euler")


def test_ddim_method_name_is_a_deprecated_alias_of_flow():
    model = GaussianDataDenoiser(0.5)
    z = torch.randn(1, 3, 4, 4, dtype=torch.float64)
    with pytest.deprecated_call():
        old = S.sample(model, z, [5.0, 0.0, -5.0], method="ddim")
    assert torch.equal(old, S.sample(model, z, [5.0, 0.0, -5.0], method="flow"))


def test_ddim_converges_to_the_probability_flow():
    # For Gaussian data the probability-flow ODE maps z_t to sqrt(var_s/var_t)·z_t; DDIM (η = 0) is its
    # first-order discretisation, so with a fine grid the scale must agree to < 0.5 %.
    v = 0.3
    model = GaussianDataDenoiser(v)
    z = torch.ones(1, 1, 1, 1, dtype=torch.float64)
    gammas = torch.linspace(8.0, -8.0, 400, dtype=torch.float64).tolist()
    out = S.sample(model, z, gammas, method="flow", final="latent")
    expect = math.sqrt(_marginal_var(v, -8.0) / _marginal_var(v, 8.0))
    assert abs(float(out) / expect - 1) < 5e-3


def test_ddim_is_exact_for_a_point_mass():
    c = torch.randn(1, 3, 4, 4, dtype=torch.float64)
    model = PointDenoiser(c)
    a1, s1 = G.alpha_sigma(torch.tensor(6.0, dtype=torch.float64))
    eps = torch.randn(1, 3, 4, 4, dtype=torch.float64)
    z = a1 * c + s1 * eps
    zs = S.ddim_step(model, z, 6.0, -2.0)
    a, s = G.alpha_sigma(torch.tensor(-2.0, dtype=torch.float64))
    assert torch.allclose(zs, a * c + s * eps, atol=1e-12)  # DDIM keeps ε fixed
    assert torch.allclose(S.sample(model, z, [6.0, 0.0, -6.0], method="flow"), c, atol=1e-12)


def test_uqdm_ancestral_step_distribution():
    class Fixed:
        def reverse(self, z, g_t, g_s):
            return torch.zeros_like(z), torch.full_like(z, 0.2), torch.tensor(0.9, dtype=z.dtype), None

    gen = torch.Generator().manual_seed(2)
    n = 100_000
    z = torch.zeros(n, dtype=torch.float64)
    u1 = torch.rand(n, generator=gen, dtype=torch.float64)
    u2 = torch.rand(n, generator=gen, dtype=torch.float64)
    out = S.uqdm_ancestral_step(Fixed(), z, 1.0, 0.0, u1, u2)
    var = 0.2 ** 2 * math.pi ** 2 / 3 + 0.9 ** 2 / 12
    assert abs(float(out.mean())) < 5 * math.sqrt(var / n)
    assert abs(float(out.var()) / var - 1) < 0.03


def test_interpolation_endpoints_and_range():
    a, b = torch.randn(5), torch.randn(5)
    assert torch.equal(S.interpolate(a, b, 1.0), a)
    assert torch.equal(S.interpolate(a, b, 0.0), b)
    assert torch.allclose(S.interpolate(a, b, 0.25), 0.25 * a + 0.75 * b)
    with pytest.raises(ValueError):
        S.interpolate(a, b, 1.5)
