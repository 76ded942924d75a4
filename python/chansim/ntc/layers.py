"""GDN and the non-parametric factorized density ("entropy bottleneck")."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class _Magnitude(torch.autograd.Function):
    """|x| whose gradient at 0 is that of x (the one-sided derivative from above), not 0.

    torch's abs has gradient sign(x) = 0 at 0, so a parameter initialised at exactly 0 and read
    through abs never moves. GDN's off-diagonal γ start at 0; through a plain abs they stayed 0 for
    every step of training, which reduced GDN to a per-channel normalisation."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.abs()

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return torch.where(x < 0, -g, g)


class GDN(nn.Module):
    """Generalized divisive normalization (Ballé et al. 2016) and its inverse.

    ``y_i = x_i / sqrt(β_i + Σ_j γ_ij x_j²)`` (``inverse=True`` multiplies instead).
    β and γ are the magnitudes of their parameters (:class:`_Magnitude`), non-negative, and the
    zero-initialised off-diagonal γ — the cross-channel terms — learn from the first step.
    """

    def __init__(self, channels: int, inverse: bool = False):
        super().__init__()
        self.inverse = inverse
        self.beta = nn.Parameter(torch.ones(channels))
        self.gamma = nn.Parameter(0.1 * torch.eye(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        gamma = _Magnitude.apply(self.gamma).view(c, c, 1, 1)
        norm = F.conv2d(x * x, gamma, _Magnitude.apply(self.beta) + 1e-6)
        return x * torch.sqrt(norm) if self.inverse else x * torch.rsqrt(norm)


class FactorizedDensity(nn.Module):
    """A learned, per-channel univariate density (Ballé et al. 2018, appendix 6.1).

    The CDF of channel c is ``sigmoid(f_c(x))`` with ``f_c`` a small monotone network
    (filters 1-3-3-3-1, softplus weights, tanh gates), so any unimodal or multimodal
    shape can be learned. :meth:`cdf_logits` evaluates ``f_c`` on a tensor whose
    channel axis is dimension 1.
    """

    def __init__(self, channels: int, filters=(3, 3, 3), init_scale: float = 10.0):
        super().__init__()
        dims = (1,) + tuple(filters) + (1,)
        scale = init_scale ** (1 / (len(dims) - 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for i in range(len(dims) - 1):
            init = math.log(math.expm1(1 / scale / dims[i + 1]))
            self.matrices.append(nn.Parameter(torch.full((channels, dims[i + 1], dims[i]), init)))
            self.biases.append(nn.Parameter(torch.rand(channels, dims[i + 1], 1) - 0.5))
            if i < len(dims) - 2:
                self.factors.append(nn.Parameter(torch.zeros(channels, dims[i + 1], 1)))

    def cdf_logits(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        c = shape[1]
        v = x.transpose(0, 1).reshape(c, 1, -1)
        for i, (m, b) in enumerate(zip(self.matrices, self.biases)):
            v = torch.matmul(F.softplus(m), v) + b
            if i < len(self.factors):
                v = v + torch.tanh(self.factors[i]) * torch.tanh(v)
        return v.reshape((c, shape[0]) + tuple(shape[2:])).transpose(0, 1)

    def likelihood(self, x: torch.Tensor) -> torch.Tensor:
        """P(x − ½ < X ≤ x + ½) for each element (x on its quantization grid or noisy)."""
        lower = self.cdf_logits(x - 0.5)
        upper = self.cdf_logits(x + 0.5)
        # Evaluate on the side where the sigmoids are far from 1, for precision in the tails.
        sign = -torch.sign(lower + upper).detach()
        sign = torch.where(sign == 0, torch.ones_like(sign), sign)
        return (torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower)).abs()
