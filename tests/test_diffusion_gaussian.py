"""Schedules and Gaussian diffusion quantities against first-principles float64 computations."""

import math

import pytest

torch = pytest.importorskip("torch")

from chansim.diffusion import gaussian as G  # noqa: E402
from chansim.diffusion.schedules import (CosineSchedule, LearnedLinearSchedule, LinearSchedule,  # noqa: E402
                                         TabulatedSchedule, schedule_from_config)

SCHEDULES = [
    lambda: LinearSchedule(-13.3, 5.0),
    lambda: LearnedLinearSchedule(-12.3, 6.0, fix_gamma_max=True),
    lambda: LearnedLinearSchedule(-10.0, 4.0),
    lambda: CosineSchedule(-13.3, 5.0),
    lambda: TabulatedSchedule(torch.linspace(-9.0, 7.0, 50) + 0.3 * torch.sin(torch.linspace(0, 3, 50))),
]


@pytest.mark.parametrize("make", SCHEDULES)
def test_schedule_endpoints_monotone_and_config_round_trip(make):
    s = make()
    t = torch.linspace(0, 1, 257, dtype=torch.float64)
    with torch.no_grad():
        g = s(t)
        assert bool((g[1:] > g[:-1]).all()), "γ must increase in t"
        assert math.isclose(float(g[0]), s.gamma_min, abs_tol=1e-6)
        assert math.isclose(float(g[-1]), s.gamma_max, abs_tol=1e-6)
        s2 = schedule_from_config(s.config())
        s2.load_state_dict(s.state_dict())
        assert torch.allclose(s2(t), g, atol=1e-6, rtol=0)


@pytest.mark.parametrize("make", SCHEDULES)
def test_dgamma_dt_matches_central_differences(make):
    s = make()
    t = torch.tensor([0.013, 0.25, 0.5, 0.77, 0.99], dtype=torch.float64)
    h = 1e-6
    with torch.no_grad():
        fd = (s(t + h).double() - s(t - h).double()) / (2 * h)
        assert torch.allclose(s.dgamma_dt(t).double(), fd, rtol=1e-4, atol=1e-3)


def test_cosine_schedule_is_cosine_in_the_middle():
    # Unclipped ends: α_t = cos(πt/2) exactly; the clipped one must be close away from the ends.
    s = CosineSchedule(-30.0, 30.0)
    t = torch.tensor([0.2, 0.5, 0.8], dtype=torch.float64)
    a, _ = G.alpha_sigma(s(t))
    assert torch.allclose(a, torch.cos(math.pi * t / 2), atol=1e-6)


def test_tabulated_index_inverts_the_table():
    table = torch.linspace(-9.0, 7.0, 11, dtype=torch.float64) ** 1
    s = TabulatedSchedule(table)
    for k in (0.0, 3.0, 4.25, 10.0):
        g = s(torch.tensor(k / 10, dtype=torch.float64))
        assert math.isclose(float(s.index(g)), k, abs_tol=1e-9)
    assert float(s.index(-100.0)) == 0.0 and float(s.index(100.0)) == 10.0


def test_variance_preserving_and_snr():
    g = torch.linspace(-15, 15, 61, dtype=torch.float64)
    a, s = G.alpha_sigma(g)
    assert torch.allclose(a * a + s * s, torch.ones_like(g), atol=1e-15)
    assert torch.allclose(G.snr(g), a * a / (s * s), rtol=1e-12)


@pytest.mark.parametrize("gs,gt", [(-13.3, -12.0), (-5.0, 2.0), (0.5, 6.0), (-12.3, -7.725)])
def test_transition_composes_marginals(gs, gt):
    # q(z_t|x) must equal q(z_s|x) pushed through q(z_t|z_s): α_t = α_{t|s} α_s, σ_t² = α_{t|s}² σ_s² + σ²_{t|s}.
    a_s, s_s = G.alpha_sigma(gs)
    a_t, s_t = G.alpha_sigma(gt)
    a_ts, s2_ts = G.transition(gs, gt)
    assert math.isclose(float(a_ts * a_s), float(a_t), rel_tol=1e-12)
    assert math.isclose(float(a_ts ** 2 * s_s ** 2 + s2_ts), float(s_t ** 2), rel_tol=1e-12)


@pytest.mark.parametrize("gs,gt", [(-13.3, -12.0), (-5.0, 2.0), (0.5, 6.0)])
def test_posterior_is_bayes_rule(gs, gt):
    # Posterior of z_s given z_t and x by completing the square: prior N(α_s x, σ_s²), likelihood N(z_t; α_{t|s} z_s, σ²_{t|s}).
    a_s, s_s = (float(v) for v in G.alpha_sigma(gs))
    a_ts, s2_ts = (float(v) for v in G.transition(gs, gt))
    prec = 1 / s_s ** 2 + a_ts ** 2 / s2_ts
    var = 1 / prec
    # mean = var (α_s x / σ_s² + α_{t|s} z_t / σ²_{t|s}) → coefficients of z_t and x.
    a_ref, b_ref = var * a_ts / s2_ts, var * a_s / s_s ** 2
    a, b, beta2 = (float(v) for v in G.posterior(gs, gt))
    assert math.isclose(a, a_ref, rel_tol=1e-9)
    assert math.isclose(b, b_ref, rel_tol=1e-9)
    assert math.isclose(beta2, var, rel_tol=1e-9)


def test_kl_step_equals_gaussian_kl():
    torch.manual_seed(0)
    gs, gt = -6.0, -2.0
    x, x_hat, z = (torch.randn(2, 3, 4, 4, dtype=torch.float64) for _ in range(3))
    a, b, beta2 = G.posterior(gs, gt)
    mu_q, mu_p = a * z + b * x, a * z + b * x_hat
    kl_ref = ((mu_q - mu_p) ** 2 / (2 * beta2)).flatten(1).sum(1)  # equal variances
    assert torch.allclose(G.kl_step(x, x_hat, gs, gt), kl_ref, rtol=1e-10)
    per = G.kl_step(x, x_hat, gs, gt, dims=())
    assert per.shape == x.shape and torch.allclose(per.flatten(1).sum(1), kl_ref, rtol=1e-10)


def test_parameterisations_round_trip():
    torch.manual_seed(1)
    x, eps = torch.randn(3, 3, 5, 5, dtype=torch.float64), torch.randn(3, 3, 5, 5, dtype=torch.float64)
    g = torch.tensor(-1.7, dtype=torch.float64)
    a, s = G.alpha_sigma(g)
    z = a * x + s * eps
    for p in G.Parameterisation:
        target = p.target(x, eps, g)
        xh, eh = p.to_x_eps(target, z, g)
        assert torch.allclose(xh, x, atol=1e-10) and torch.allclose(eh, eps, atol=1e-10), p


@pytest.mark.parametrize("gs,gt", [(-7.725, -3.15), (1.425, 6.0), (-12.3, -7.725), (-0.5, 0.0), (-3.0, -2.999)])
def test_step_coefficients_match_the_vdm_closed_forms_and_reject_wrong_order(gs, gt):
    # VDM posterior q(z_s | z_t, x) written here from its closed forms (α² = sigmoid(−γ), σ² = sigmoid(γ)):
    # α_{t|s} = α_t/α_s, σ²_{t|s} = σ_t² − α²_{t|s}σ_s², mean = α_{t|s}σ_s²/σ_t² z_t + α_s σ²_{t|s}/σ_t² x,
    # variance = σ²_{t|s}σ_s²/σ_t². In float64 the direct difference σ²_{t|s} loses ~|log ε| digits
    # when γ_s ≈ γ_t, hence a relative tolerance of 1e−9 (the library uses expm1 forms).
    sig2 = 1.0 / (1.0 + math.exp(-gs)), 1.0 / (1.0 + math.exp(-gt))
    alp2 = 1.0 / (1.0 + math.exp(gs)), 1.0 / (1.0 + math.exp(gt))
    a_ts = math.sqrt(alp2[1] / alp2[0])
    s2_ts = sig2[1] - a_ts ** 2 * sig2[0]
    a_ref = a_ts * sig2[0] / sig2[1]
    b_ref = math.sqrt(alp2[0]) * s2_ts / sig2[1]
    beta_ref = math.sqrt(s2_ts * sig2[0] / sig2[1])
    c = G.step_coefficients(gs, gt)
    tol = 1e-9 if gt - gs > 0.1 else 1e-6
    for got, want in ((c.a, a_ref), (c.b, b_ref), (c.beta, beta_ref), (c.alpha_s, math.sqrt(alp2[0])),
                      (c.sigma_s, math.sqrt(sig2[0])), (c.alpha_t, math.sqrt(alp2[1])), (c.sigma_t, math.sqrt(sig2[1])),
                      (c.sigma_ts, math.sqrt(s2_ts))):
        assert math.isclose(got, want, rel_tol=tol), (got, want)
    assert math.isclose(c.delta, math.sqrt(12) * beta_ref, rel_tol=tol)
    assert math.isclose(c.snr_diff, math.exp(-gs) - math.exp(-gt), rel_tol=1e-12)
    # posterior() is the same law as step_coefficients (both checked against the closed forms above)
    a, b, beta2 = G.posterior(torch.tensor(gs, dtype=torch.float64), torch.tensor(gt, dtype=torch.float64))
    assert math.isclose(float(a), a_ref, rel_tol=tol) and math.isclose(float(beta2), beta_ref ** 2, rel_tol=tol)


def test_step_coefficients_reject_wrong_order():
    with pytest.raises(ValueError):
        G.step_coefficients(-3.0, -4.0)
