"""Noise schedules γ(t) = −log SNR(t) on t ∈ [0, 1] (VDM notation, papers.md §1).

A schedule is an ``nn.Module`` whose ``forward(t)`` returns γ(t), increasing in t.
Variance preserving: α_t² = sigmoid(−γ_t), σ_t² = sigmoid(γ_t). Every schedule
round-trips through :meth:`config` / :func:`schedule_from_config`, so shipped
weights carry their schedule and the learned parameters live in the state dict.
"""

from __future__ import annotations

import math
from typing import Any, Dict

import torch
from torch import nn


class Schedule(nn.Module):
    """Base class: ``gamma(t)``; ``gamma_min`` = γ(0), ``gamma_max`` = γ(1) (floats, current values)."""

    kind: str = ""

    def forward(self, t: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def gamma(self, t) -> torch.Tensor:
        return self(torch.as_tensor(t, dtype=self._dtype()))

    def dgamma_dt(self, t: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """dγ/dt, the weight of the continuous-time VDM loss."""
        raise NotImplementedError

    def _dtype(self) -> torch.dtype:
        for p in self.parameters():
            return p.dtype
        return torch.float32

    @property
    def gamma_min(self) -> float:
        with torch.no_grad():
            return float(self.gamma(0.0))

    @property
    def gamma_max(self) -> float:
        with torch.no_grad():
            return float(self.gamma(1.0))

    def config(self) -> Dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError


class LinearSchedule(Schedule):
    """Fixed linear γ(t) = γ_min + (γ_max − γ_min) t."""

    kind = "linear"

    def __init__(self, gamma_min: float = -13.3, gamma_max: float = 5.0):
        super().__init__()
        if not gamma_max > gamma_min:
            raise ValueError("gamma_max must exceed gamma_min (SNR decreases in t)")
        self.register_buffer("g0", torch.tensor(float(gamma_min)))
        self.register_buffer("g1", torch.tensor(float(gamma_max)))

    def forward(self, t):
        return self.g0 + (self.g1 - self.g0) * t

    def dgamma_dt(self, t):
        return (self.g1 - self.g0).expand_as(torch.as_tensor(t))

    def config(self):
        return {"kind": self.kind, "gamma_min": float(self.g0), "gamma_max": float(self.g1)}


class LearnedLinearSchedule(Schedule):
    """Linear γ with learned endpoints (VDM's learned-linear; UQDM's released models).

    With ``fix_gamma_max`` only the slope is learned and γ(1) stays put, so the prior
    term cannot be traded away; the slope enters through |w| so γ stays increasing.
    """

    kind = "learned_linear"

    def __init__(self, gamma_min: float = -13.3, gamma_max: float = 5.0, fix_gamma_max: bool = False):
        super().__init__()
        if not gamma_max > gamma_min:
            raise ValueError("gamma_max must exceed gamma_min (SNR decreases in t)")
        self._init = (float(gamma_min), float(gamma_max))
        self.fix_gamma_max = bool(fix_gamma_max)
        self.w = nn.Parameter(torch.tensor(float(gamma_max - gamma_min)))
        if self.fix_gamma_max:
            self.register_buffer("g1", torch.tensor(float(gamma_max)))
        else:
            self.b = nn.Parameter(torch.tensor(float(gamma_min)))

    def forward(self, t):
        w = self.w.abs()
        if self.fix_gamma_max:
            return self.g1 + w * (t - 1.0)
        return self.b + w * t

    def dgamma_dt(self, t):
        return self.w.abs().expand_as(torch.as_tensor(t))

    def config(self):
        # Initial values only: the learned ones are in the state dict, and a config that
        # changed with them would change the model id of identical weights after rounding.
        return {"kind": self.kind, "gamma_min": self._init[0], "gamma_max": self._init[1],
                "fix_gamma_max": self.fix_gamma_max}


class CosineSchedule(Schedule):
    """Cosine schedule (α_t ≈ cos(πt/2)) clipped to [γ_min, γ_max].

    γ(t) = 2 log tan(a t + b), with b, a chosen so γ(0) = γ_min and γ(1) = γ_max
    (the shifted form of Hoogeboom et al. 2023; plain cosine is γ_min → −∞, γ_max → ∞).
    """

    kind = "cosine"

    def __init__(self, gamma_min: float = -13.3, gamma_max: float = 5.0):
        super().__init__()
        if not gamma_max > gamma_min:
            raise ValueError("gamma_max must exceed gamma_min (SNR decreases in t)")
        b = math.atan(math.exp(gamma_min / 2))
        a = math.atan(math.exp(gamma_max / 2)) - b
        self.register_buffer("a", torch.tensor(a, dtype=torch.float64))
        self.register_buffer("b", torch.tensor(b, dtype=torch.float64))
        self._g = (float(gamma_min), float(gamma_max))

    def forward(self, t):
        t = torch.as_tensor(t)
        out_dtype = t.dtype if t.is_floating_point() else torch.float32
        # float64 inside: tan near 0 loses relative precision in float32 at γ ≈ −13.
        g = 2.0 * torch.log(torch.tan(self.a * t.to(torch.float64) + self.b))
        return g.to(out_dtype)

    def dgamma_dt(self, t):
        t = torch.as_tensor(t)
        out_dtype = t.dtype if t.is_floating_point() else torch.float32
        # d/dt 2 log tan(at + b) = 4a / sin(2(at + b)).
        return (4.0 * self.a / torch.sin(2.0 * (self.a * t.to(torch.float64) + self.b))).to(out_dtype)

    def config(self):
        return {"kind": self.kind, "gamma_min": self._g[0], "gamma_max": self._g[1]}


class TabulatedSchedule(Schedule):
    """γ given at N equally spaced times (a discrete-time model's table), linear in between.

    Table entry k sits at t = k/(N − 1); the diffusers adapter builds one from a
    scheduler's ``alphas_cumprod`` (γ_k = log((1 − ᾱ_k)/ᾱ_k)). :meth:`index` maps a γ
    back to the fractional table index, which is what a discrete-time network is
    conditioned on.
    """

    kind = "tabulated"

    def __init__(self, gammas):
        super().__init__()
        g = torch.as_tensor(gammas, dtype=torch.float64).reshape(-1)
        if g.numel() < 2 or not bool((g[1:] > g[:-1]).all()):
            raise ValueError("a tabulated schedule needs at least two strictly increasing γ values")
        self.register_buffer("table", g)

    def _pos(self, t):
        t = torch.as_tensor(t)
        tau = t.to(torch.float64).clamp(0.0, 1.0) * (self.table.numel() - 1)
        k = tau.floor().clamp(max=self.table.numel() - 2).long()
        return t, tau - k, k

    def forward(self, t):
        t, frac, k = self._pos(t)
        g = self.table[k] + frac * (self.table[k + 1] - self.table[k])
        return g.to(t.dtype if t.is_floating_point() else torch.float32)

    def dgamma_dt(self, t):
        t, _, k = self._pos(t)
        d = (self.table[k + 1] - self.table[k]) * (self.table.numel() - 1)
        return d.to(t.dtype if t.is_floating_point() else torch.float32)

    def index(self, gamma) -> torch.Tensor:
        """Fractional table index of γ (float64), clamped to [0, N − 1]."""
        g = torch.as_tensor(gamma, dtype=torch.float64).clamp(float(self.table[0]), float(self.table[-1]))
        k = (torch.searchsorted(self.table, g.reshape(-1), right=True) - 1).clamp(0, self.table.numel() - 2)
        lo, hi = self.table[k], self.table[k + 1]
        return (k.to(torch.float64) + (g.reshape(-1) - lo) / (hi - lo)).reshape(g.shape)

    def config(self):
        return {"kind": self.kind, "gammas": [float(v) for v in self.table]}


_KINDS = {c.kind: c for c in (LinearSchedule, LearnedLinearSchedule, CosineSchedule, TabulatedSchedule)}


def schedule_from_config(cfg: Dict[str, Any]) -> Schedule:
    """Rebuild a schedule from :meth:`Schedule.config` (learned values come from the state dict)."""
    cfg = dict(cfg)
    kind = cfg.pop("kind")
    if kind not in _KINDS:
        raise ValueError(f"unknown schedule kind {kind!r}; known: {sorted(_KINDS)}")
    return _KINDS[kind](**cfg)
