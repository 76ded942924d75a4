"""The two trainable diffusion models: a Gaussian one for DiffC and UQDM.

Both expose the denoiser interface the samplers and codecs use::

    model.schedule                     # γ(t)
    model.denoise(z, gamma) -> (x̂, ε̂)

and a ``loss(x_raw)`` returning the NELBO terms in nats per example (their sum is
the code length an ideal coder would reach; divided by the dimension and ln 2 it
is bits per dimension).
"""

from __future__ import annotations

from typing import Any, Dict, Optional

import torch
from torch import nn

from . import likelihood, uqdm
from .gaussian import Parameterisation, alpha_sigma, eps_from_x, posterior
from .schedules import LearnedLinearSchedule, LinearSchedule, Schedule, schedule_from_config
from .temperature import TEMPERATURE_MAX
from .unet import UNet


class GaussianDiffusion(nn.Module):
    """Gaussian diffusion with a U-Net denoiser, trained with the continuous-time VDM loss.

    For ε-prediction the network output is added to z (ε̂ = net + z): at high noise
    ε ≈ z, and at low noise that makes x̂ ≈ z/α from the first step, so a
    zero-initialised network starts near the right answer at both ends.
    """

    kind = "gaussian"

    def __init__(self, net: UNet, schedule: Schedule, parameterisation: str = "eps", clip_denoised: bool = False,
                 cond_channels: int = 0):
        super().__init__()
        if cond_channels and net.in_channels != net.out_channels + int(cond_channels):
            raise ValueError(f"the net takes {net.in_channels} channels: z's {net.out_channels} plus "
                             f"cond_channels = {cond_channels} must add up to it")
        self.net, self.schedule = net, schedule
        self.parameterisation = Parameterisation(parameterisation)
        self.clip_denoised = bool(clip_denoised)
        self.cond_channels = int(cond_channels)

    def config(self) -> Dict[str, Any]:
        cfg = {"kind": self.kind, "net": self.net.config(), "schedule": self.schedule.config(),
               "parameterisation": self.parameterisation.value, "clip_denoised": self.clip_denoised}
        if self.cond_channels:   # only when used: the ids of unconditional models stay what they were
            cfg["cond_channels"] = self.cond_channels
        return cfg

    def denoise(self, z: torch.Tensor, gamma, clip: Optional[bool] = None, cond: Optional[torch.Tensor] = None):
        """(x̂, ε̂) at noise level γ (scalar or one per batch element); ``cond`` (B or 1, cond_channels, H, W)
        is concatenated to z's channels for a conditional model."""
        gamma = torch.as_tensor(gamma, dtype=z.dtype)
        out = self._net_output(z, gamma, cond)
        g = gamma.reshape(-1, 1, 1, 1) if gamma.dim() else gamma
        x_hat, eps_hat = self.parameterisation.to_x_eps(out, z, g)
        if self.clip_denoised if clip is None else clip:
            x_hat = x_hat.clamp(-1.0, 1.0)
            eps_hat = eps_from_x(z, x_hat, g)
        return x_hat, eps_hat

    def _net_output(self, z: torch.Tensor, gamma: torch.Tensor, cond: Optional[torch.Tensor]) -> torch.Tensor:
        """The network's output in the parameterisation's terms (ε-nets predict ε − z: + z here), the
        conditioning (B or 1, cond_channels, H, W) concatenated to z's channels for a conditional model."""
        if (cond is None) != (self.cond_channels == 0):
            raise ValueError(f"this model takes {self.cond_channels} conditioning channels; cond is "
                             f"{'missing' if cond is None else 'given'}")
        z_in = z if cond is None else torch.cat([z, cond.to(z.dtype).expand(z.shape[0], -1, -1, -1)], dim=1)
        out = self.net(z_in, gamma)
        return out + z if self.parameterisation is Parameterisation.EPS else out

    def bind(self, cond: torch.Tensor) -> "Conditioned":
        """This model with its conditioning fixed: a denoiser the samplers can run (``denoise(z, γ)``)."""
        return Conditioned(self, cond)

    def denoising_loss(self, x: torch.Tensor, cond: Optional[torch.Tensor] = None,
                       generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Per-example mean squared error of the parameterisation's target (ε, x or v) at t ~ U(0, 1)
        (stratified over the batch): the "simple" loss of Ho et al. 2020 / Salimans & Ho 2022, for a
        model that is sampled from but never codes with its likelihood."""
        B = x.shape[0]
        u0 = torch.rand((), generator=generator)
        t = torch.remainder(u0 + torch.arange(B) / B, 1.0).to(x.dtype)
        g = self.schedule(t).view(-1, 1, 1, 1)
        eps = torch.randn(x.shape, generator=generator, dtype=x.dtype)
        a, s = alpha_sigma(g)
        z = a.to(x.dtype) * x + s.to(x.dtype) * eps
        out = self._net_output(z, g.reshape(-1), cond)
        target = self.parameterisation.target(x, eps, g)
        return (out - target).square().flatten(1).mean(1)

    def diffusion_term(self, x: torch.Tensor, generator: Optional[torch.Generator] = None,
                       time_samples: int = 1) -> torch.Tensor:
        """½ ∫ γ'(t) E‖ε − ε̂(z_t)‖² dt per example (nats), Monte Carlo over t and ε; x in data space."""
        B, n = x.shape[0], int(time_samples)
        dev = x.device
        xr = x.repeat_interleave(n, dim=0) if n > 1 else x
        u0 = torch.rand((), generator=generator, device=dev)
        t = torch.remainder(u0 + torch.arange(B * n, device=dev) / (B * n), 1.0)
        if n > 1:  # spread each example's t values over [0, 1), not only the batch's
            t = t.view(n, B).t().reshape(-1)
        g_t = self.schedule(t)
        eps = torch.randn(xr.shape, generator=generator, device=dev)
        a_t, s_t = alpha_sigma(g_t.view(-1, 1, 1, 1))
        z_t = a_t * xr + s_t * eps
        _, eps_hat = self.denoise(z_t, g_t, clip=False)
        diffusion = 0.5 * self.schedule.dgamma_dt(t) * (eps - eps_hat).square().flatten(1).sum(1)
        return diffusion.view(B, n).mean(1)

    def loss(self, x_raw: torch.Tensor, generator: Optional[torch.Generator] = None,
             time_samples: int = 1) -> Dict[str, torch.Tensor]:
        """VDM NELBO terms (nats per example): prior, diffusion (continuous time), reconstruction.

        The diffusion term is a Monte Carlo estimate over ``time_samples`` values of t
        per example, drawn with VDM's low-discrepancy sampler (t_i = (u + i/n) mod 1
        over the whole batch), which lowers the variance of the mean without biasing it.
        """
        x = likelihood.to_unit(x_raw)
        dev = x.device
        diffusion = self.diffusion_term(x, generator, time_samples)
        g0, g1 = self.schedule(torch.zeros((), device=dev)), self.schedule(torch.ones((), device=dev))
        a0, s0 = alpha_sigma(g0)
        z_0 = a0 * x + s0 * torch.randn(x.shape, generator=generator, device=dev)
        return {"prior": likelihood.prior_kl(x, g1), "diffusion": diffusion,
                "reconstruction": likelihood.reconstruction_nll(z_0, x_raw, g0)}


class Conditioned:
    """A conditional :class:`GaussianDiffusion` with its conditioning bound (see :meth:`GaussianDiffusion.bind`)."""

    def __init__(self, model: GaussianDiffusion, cond: torch.Tensor):
        self.model, self.cond, self.schedule = model, cond, model.schedule

    def denoise(self, z: torch.Tensor, gamma, clip: Optional[bool] = None):
        return self.model.denoise(z, gamma, clip, cond=self.cond)


class ResidualDiffusion(GaussianDiffusion):
    """p(x − x_base | x_base, q): a generative decoder on top of a base reconstruction (HFD's design,
    Hoogeboom et al. 2023), for a codec with qualities q = 0 … Q − 1 (0-based).

    The diffusion runs on the residual r = (x − x_base)/s_q (images in [0, 1]; s_q the residual's RMS at
    quality q, measured once when training starts) and sees ``condition(x_base, q)`` = [2·x_base − 1,
    a constant plane 2q/(Q − 1) − 1]. ``base_model`` is the id of the codec model whose reconstructions
    it was trained on; ``sample_steps`` ODE steps plus one final x̂ make the network evaluations of
    :meth:`sample`. ``temperatures`` (one per quality, in (0, :data:`TEMPERATURE_MAX`]) scale the
    sampler's starting noise: a perfect model needs none (τ = 1). An imperfect one errs either way —
    it leaves noise its denoiser failed to remove, or its ODE draws come out smoother than the photos
    (the denoiser's blur) — and a temperature calibrated on training images
    (:func:`chansim.train.ntc_decoder.calibrate_temperatures`) corrects the amount of fine detail;
    an encoder that holds the original may send its own τ instead (``sample(..., temperature=τ)``).
    """

    kind = "residual"

    def __init__(self, net: UNet, schedule: Schedule, residual_scales, base_model: str, sample_steps: int = 15,
                 parameterisation: str = "v", clip_denoised: bool = False, cond_channels: int = 4,
                 temperatures=None):
        super().__init__(net, schedule, parameterisation, clip_denoised, cond_channels)
        scales = [float(v) for v in residual_scales]
        if not scales or any(not v > 0 for v in scales):
            raise ValueError("residual_scales must be positive, one per quality")
        temps = [1.0] * len(scales) if temperatures is None else [float(v) for v in temperatures]
        if len(temps) != len(scales) or any(not 0 < v <= TEMPERATURE_MAX for v in temps):
            raise ValueError(f"temperatures must lie in (0, {TEMPERATURE_MAX:g}], one per quality")
        self.temperatures = temps
        if cond_channels != net.out_channels + 1:
            raise ValueError("a residual model is conditioned on the base image and a quality plane")
        if int(sample_steps) < 1:
            raise ValueError("sample_steps must be ≥ 1")
        self.register_buffer("residual_scales", torch.tensor(scales, dtype=torch.float32), persistent=False)
        self.base_model, self.sample_steps = str(base_model), int(sample_steps)

    def config(self) -> Dict[str, Any]:
        cfg = super().config()
        cfg.update(residual_scales=[float(v) for v in self.residual_scales], base_model=self.base_model,
                   sample_steps=self.sample_steps, temperatures=list(self.temperatures))
        return cfg

    @property
    def num_qualities(self) -> int:
        return int(self.residual_scales.numel())

    def _scale(self, q: torch.Tensor) -> torch.Tensor:
        return self.residual_scales[q].view(-1, 1, 1, 1)

    def condition(self, base: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        k = max(self.num_qualities - 1, 1)
        plane = (2.0 * q.to(base.dtype) / k - 1.0).view(-1, 1, 1, 1).expand(-1, 1, *base.shape[2:])
        return torch.cat([2.0 * base - 1.0, plane], dim=1)

    def loss(self, x: torch.Tensor, base: torch.Tensor, q: torch.Tensor,
             generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Mean denoising loss of the scaled residual, x and base (B, 3, H, W) in [0, 1], q (B,) int64."""
        r = (x - base) / self._scale(q).to(x.dtype)
        return self.denoising_loss(r, self.condition(base, q), generator).mean()

    def sampling_gammas(self) -> list:
        """``sample_steps`` + 1 values of γ, equally spaced from γ(1) down to γ(0) (float64), decreasing."""
        g1, g0 = self.schedule.gamma_max, self.schedule.gamma_min
        return [g1 + (g0 - g1) * k / self.sample_steps for k in range(self.sample_steps + 1)]

    def sample(self, base: torch.Tensor, q: int, initial: torch.Tensor,
               temperature: Optional[float] = None) -> torch.Tensor:
        """A draw x = base + s_q·r of p(x | base, q) in [0, 1] (unclamped): the probability-flow ODE
        from r_1 = τ·``initial`` (``initial`` standard normal, base's shape; τ = ``temperature`` or, when
        None, τ_q the quality's calibrated sampling temperature, 1 for a perfect model) by DPM-Solver++(2M) steps
        (:func:`chansim.diffusion.samplers.flow2_step`) on :meth:`sampling_gammas`, then x̂ at γ(0);
        ``sample_steps`` + 1 network evaluations. Equal steps in γ make the sampler's error the same
        for every residual scale (a Gaussian of scale s is one of scale 1 shifted by 2 log s in γ)."""
        from .samplers import sample

        qq = torch.full((base.shape[0],), int(q), dtype=torch.long)      # one quality for the whole batch
        tau = self.temperatures[int(q)] if temperature is None else float(temperature)
        if not 0 < tau <= TEMPERATURE_MAX:
            raise ValueError(f"temperature must lie in (0, {TEMPERATURE_MAX:g}], got {temperature!r}")
        r_1 = initial.to(base.dtype) * tau
        r = sample(self.bind(self.condition(base, qq)), r_1, self.sampling_gammas(), method="flow2")
        return base + r * self._scale(qq).to(base.dtype)


class UQDMModel(nn.Module):
    """Universally quantized diffusion model with T uniform steps (papers.md §6).

    The network predicts ε (plus z, as above) and a per-coordinate raw scale; the
    reverse step t → s is logistic(μ_p, f·σ_{t|s}·√3/π) ⋆ U(±Δ/2) with μ_p = μ_Q(z_t, x̂).
    Step i goes from t_i = 1 − i/T to s_i = 1 − (i + 1)/T.
    """

    kind = "uqdm"

    def __init__(self, net: UNet, schedule: Schedule, steps: int = 4, clip_denoised: bool = True):
        super().__init__()
        if net.out_channels != 2 * net.in_channels:
            raise ValueError("a UQDM net outputs ε and a raw scale per channel (out_channels = 2 × in_channels)")
        if steps < 1:
            raise ValueError("UQDM needs at least one step")
        self.net, self.schedule, self.steps = net, schedule, int(steps)
        self.clip_denoised = bool(clip_denoised)

    def config(self) -> Dict[str, Any]:
        return {"kind": self.kind, "net": self.net.config(), "schedule": self.schedule.config(),
                "steps": self.steps, "clip_denoised": self.clip_denoised}

    def times(self) -> torch.Tensor:
        """t_0 = 1 > t_1 > … > t_T = 0 (float64)."""
        return torch.linspace(1.0, 0.0, self.steps + 1, dtype=torch.float64)

    def gammas(self) -> torch.Tensor:
        """γ(t_i) for the step grid, float64 (one value per time, T + 1 values)."""
        return self.schedule(self.times().to(self._pdtype())).to(torch.float64)

    def _pdtype(self):
        return next(self.parameters()).dtype

    def predict(self, z_t: torch.Tensor, gamma_t, clip: Optional[bool] = None):
        """(x̂, ε̂, f): denoised estimate, noise estimate and the positive scale factor."""
        gamma_t = torch.as_tensor(gamma_t, dtype=z_t.dtype)
        out = self.net(z_t, gamma_t)
        c = z_t.shape[1]
        eps_hat, raw = out[:, :c] + z_t, out[:, c:]
        g = gamma_t.reshape(-1, 1, 1, 1) if gamma_t.dim() else gamma_t
        a, s = alpha_sigma(g)
        x_hat = (z_t - s.to(z_t.dtype) * eps_hat) / a.to(z_t.dtype)
        if self.clip_denoised if clip is None else clip:
            x_hat = x_hat.clamp(-1.0, 1.0)
            eps_hat = eps_from_x(z_t, x_hat, g)
        return x_hat, eps_hat, uqdm.scale_factor(raw)

    def denoise(self, z: torch.Tensor, gamma, clip: Optional[bool] = None):
        x_hat, eps_hat, _ = self.predict(z, gamma, clip)
        return x_hat, eps_hat

    def reverse(self, z_t: torch.Tensor, gamma_t, gamma_s):
        """Parameters of p(z_s | z_t): (μ_p, logistic scale s, Δ, x̂)."""
        x_hat, _, f = self.predict(z_t, gamma_t)
        a, b, _ = posterior(gamma_s, gamma_t)
        mu_p = a.to(z_t.dtype) * z_t + b.to(z_t.dtype) * x_hat
        return mu_p, uqdm.logistic_scale(f, gamma_s, gamma_t), uqdm.delta(gamma_s, gamma_t).to(z_t.dtype), x_hat

    def loss(self, x_raw: torch.Tensor, generator: Optional[torch.Generator] = None) -> Dict[str, torch.Tensor]:
        """Full NELBO in nats per example: prior + Σ_i step_i + reconstruction (T network evaluations).

        Step i's term is −log P(bin of z_s) under p, with z_s ~ q drawn by
        reparameterisation (z_s = μ_Q + Δ(u − ½)) so gradients reach the schedule
        and every earlier step; its expectation is KL(q ‖ p) = the DQ code length.
        """
        x = likelihood.to_unit(x_raw)
        dev = x.device
        g = self.schedule(self.times().to(device=dev, dtype=x.dtype))
        a1, s1 = alpha_sigma(g[0])
        z = a1 * x + s1 * torch.randn(x.shape, generator=generator, device=dev)
        terms = {"prior": likelihood.prior_kl(x, g[0])}
        for i in range(self.steps):
            g_t, g_s = g[i], g[i + 1]
            mu_p, scale, width, _ = self.reverse(z, g_t, g_s)
            a, b, _ = posterior(g_s, g_t)
            mu_q = a * z + b * x
            z = mu_q + width * (torch.rand(x.shape, generator=generator, device=dev) - 0.5)
            terms[f"step{i}"] = -uqdm.log_bin_mass(z - mu_p, width, scale).flatten(1).sum(1)
        terms["reconstruction"] = likelihood.reconstruction_nll(z, x_raw, g[-1])
        return terms


def build_model(config: Dict[str, Any]) -> nn.Module:
    """A model from :meth:`config` (weights are loaded separately)."""
    cfg = dict(config)
    kind = cfg.pop("kind")
    net = UNet(**cfg.pop("net"))
    schedule = schedule_from_config(cfg.pop("schedule"))
    if kind == GaussianDiffusion.kind:
        return GaussianDiffusion(net, schedule, **cfg)
    if kind == UQDMModel.kind:
        return UQDMModel(net, schedule, **cfg)
    if kind == ResidualDiffusion.kind:
        return ResidualDiffusion(net, schedule, **cfg)
    raise ValueError(f"unknown model kind {kind!r}")


def default_uqdm(steps: int = 4, widths=(32, 48, 64, 96)) -> UQDMModel:
    """UQDM as released: learned-linear γ from −12.3 to 6.0 with γ(1) fixed, T = 4."""
    sched = LearnedLinearSchedule(-12.3, 6.0, fix_gamma_max=True)
    return UQDMModel(UNet(out_channels=6, widths=widths, gamma_range=(-12.3, 6.0)), sched, steps=steps)


def default_residual(residual_scales, base_model: str, widths=(32, 48, 64, 96), sample_steps: int = 15,
                     gamma_range=(-10.0, 8.0)) -> ResidualDiffusion:
    """The NTC generative decoder's model: fixed linear γ over ``gamma_range`` — t ~ U(0, 1) in training
    then weights every log-SNR equally, as the sampler's equal γ steps use them (the residual is scaled to
    unit RMS, so γ(1) = 8 leaves α ≈ 0.02 of it in z_1 and sampling may start from N(0, I)) —
    v-prediction (well conditioned at both ends), no Fourier features (the residual has no 8-bit lattice
    for them to resolve)."""
    net = UNet(in_channels=7, out_channels=3, widths=widths, fourier=(), gamma_range=gamma_range)
    return ResidualDiffusion(net, LinearSchedule(*gamma_range), residual_scales, base_model, sample_steps)


def default_diffc(widths=(32, 48, 64, 96)) -> GaussianDiffusion:
    """DiffC's Gaussian model: learned-linear γ (VDM's −13.3 … 5.0), ε-prediction."""
    sched = LearnedLinearSchedule(-13.3, 5.0)
    return GaussianDiffusion(UNet(out_channels=3, widths=widths, gamma_range=(-13.3, 5.0)), sched)
