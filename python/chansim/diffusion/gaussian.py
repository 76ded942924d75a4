"""Gaussian diffusion quantities in terms of γ = −log SNR (papers.md §1).

Every function takes γ values (tensors or floats, broadcastable) and works in the
dtype it is given; callers that need step coefficients to agree between a sender
and a receiver compute them once in float64 (:func:`step_coefficients`) and cast.
Formulas are written through ``sigmoid``/``expm1``/``softplus`` so they stay
accurate at the ends of the schedule (γ ≈ −13, where 1 − α² ≈ 2e−6).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import torch
import torch.nn.functional as F


def _t(x, like=None):
    if isinstance(x, torch.Tensor):
        return x
    dtype = like.dtype if isinstance(like, torch.Tensor) and like.is_floating_point() else torch.float64
    return torch.tensor(float(x), dtype=dtype)


def alpha_sigma(gamma):
    """(α, σ) with α² = sigmoid(−γ), σ² = sigmoid(γ)."""
    g = _t(gamma)
    return torch.sigmoid(-g).sqrt(), torch.sigmoid(g).sqrt()


def snr(gamma):
    """SNR = α²/σ² = exp(−γ)."""
    return torch.exp(-_t(gamma))


def transition(gamma_s, gamma_t):
    """q(z_t | z_s) for s < t: (α_{t|s}, σ²_{t|s}) with α_{t|s} = α_t/α_s, σ²_{t|s} = σ_t² − α²_{t|s} σ_s².

    σ²_{t|s} = −expm1(softplus(γ_s) − softplus(γ_t)) avoids the cancellation of the
    direct difference (VDM appendix).
    """
    gs, gt = _t(gamma_s), _t(gamma_t, gamma_s)
    alpha_ts = torch.exp(0.5 * (F.logsigmoid(-gt) - F.logsigmoid(-gs)))
    sigma2_ts = -torch.expm1(F.softplus(gs) - F.softplus(gt))
    return alpha_ts, sigma2_ts


def posterior(gamma_s, gamma_t):
    """Coefficients of q(z_s | z_t, x) = N(a z_t + b x, β²) for s < t.

    a = α_{t|s} σ_s²/σ_t², b = α_s σ²_{t|s}/σ_t², β² = σ²_{t|s} σ_s²/σ_t².
    With r = σ²_{t|s}/σ_t² = −expm1(γ_s − γ_t): a = (α_s/α_t)(1 − r), b = α_s r, β² = σ_s² r.
    Returns (a, b, β²).
    """
    gs, gt = _t(gamma_s), _t(gamma_t, gamma_s)
    r = -torch.expm1(gs - gt)
    alpha_s, sigma_s = alpha_sigma(gs)
    alpha_t, _ = alpha_sigma(gt)
    return alpha_s / alpha_t * (1.0 - r), alpha_s * r, sigma_s * sigma_s * r


def posterior_mean(z_t, x, gamma_s, gamma_t):
    """μ_Q(z_t, x) of q(z_s | z_t, x)."""
    a, b, _ = posterior(gamma_s, gamma_t)
    return a.to(z_t.dtype) * z_t + b.to(z_t.dtype) * x


def x_from_eps(z, eps, gamma):
    """x̂ = (z − σ ε̂)/α."""
    a, s = alpha_sigma(gamma)
    return (z - s.to(z.dtype) * eps) / a.to(z.dtype)


def eps_from_x(z, x, gamma):
    """ε = (z − α x)/σ."""
    a, s = alpha_sigma(gamma)
    return (z - a.to(z.dtype) * x) / s.to(z.dtype)


def v_from_x_eps(x, eps, gamma):
    """v = α ε − σ x (Salimans & Ho 2022)."""
    a, s = alpha_sigma(gamma)
    return a.to(x.dtype) * eps - s.to(x.dtype) * x


def x_eps_from_v(z, v, gamma):
    """x = α z − σ v, ε = σ z + α v (α² + σ² = 1)."""
    a, s = alpha_sigma(gamma)
    a, s = a.to(z.dtype), s.to(z.dtype)
    return a * z - s * v, s * z + a * v


class Parameterisation(str, Enum):
    """What the network predicts. All three give the same reverse model; they differ in loss weighting."""

    EPS = "eps"
    X = "x"
    V = "v"

    def to_x_eps(self, out, z, gamma):
        """(x̂, ε̂) from the network output ``out`` at noisy ``z`` and noise level γ."""
        if self is Parameterisation.EPS:
            return x_from_eps(z, out, gamma), out
        if self is Parameterisation.X:
            return out, eps_from_x(z, out, gamma)
        return x_eps_from_v(z, out, gamma)

    def target(self, x, eps, gamma):
        """The regression target for this parameterisation."""
        if self is Parameterisation.EPS:
            return eps
        if self is Parameterisation.X:
            return x
        return v_from_x_eps(x, eps, gamma)


def kl_step(x, x_hat, gamma_s, gamma_t, dims=None):
    """KL(q(z_s|z_t,x) ‖ p(z_s|z_t)) = ½ (SNR(s) − SNR(t)) ‖x − x̂‖² in nats.

    Summed over ``dims`` (default: every dimension but the first); pass ``dims=()``
    for the per-coordinate KL. SNR(s) − SNR(t) = exp(−γ_s)·(−expm1(γ_s − γ_t)).
    """
    gs, gt = _t(gamma_s), _t(gamma_t, gamma_s)
    w = 0.5 * torch.exp(-gs) * (-torch.expm1(gs - gt))
    d = (x - x_hat).square() * w.to(x.dtype)
    if dims is None:
        dims = tuple(range(1, d.dim()))
    return d.sum(dim=dims) if dims else d


@dataclass(frozen=True)
class StepCoefficients:
    """Scalar coefficients of one reverse step t → s, computed in float64.

    Sender and receiver must use identical float32 values; both obtain them here
    from the same float64 γ pair, then round once to float32.
    """

    gamma_s: float
    gamma_t: float
    alpha_s: float
    sigma_s: float
    alpha_t: float
    sigma_t: float
    a: float  # μ_Q = a z_t + b x
    b: float
    beta: float  # posterior std
    snr_diff: float  # SNR(s) − SNR(t)
    sigma_ts: float  # forward-kernel std σ_{t|s}

    @property
    def delta(self) -> float:
        """UQDM's uniform width Δ = √12 β."""
        return 12.0 ** 0.5 * self.beta


def step_coefficients(gamma_s, gamma_t) -> StepCoefficients:
    gs = torch.tensor(float(gamma_s), dtype=torch.float64)
    gt = torch.tensor(float(gamma_t), dtype=torch.float64)
    if not gt > gs:
        raise ValueError(f"a reverse step needs gamma_t > gamma_s, got t: {float(gt)}, s: {float(gs)}")
    a_s, s_s = alpha_sigma(gs)
    a_t, s_t = alpha_sigma(gt)
    a, b, beta2 = posterior(gs, gt)
    sd = torch.exp(-gs) * (-torch.expm1(gs - gt))
    _, s2ts = transition(gs, gt)
    return StepCoefficients(float(gs), float(gt), float(a_s), float(s_s), float(a_t), float(s_t),
                            float(a), float(b), float(beta2.sqrt()), float(sd), float(s2ts.sqrt()))
