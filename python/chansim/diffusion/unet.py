"""A small fully convolutional U-Net denoiser with noise-level conditioning.

Design constraints (issue 5): one forward pass on a 768×512 RGB image in about a
second on two CPU cores, any image size, ≤ 5 MB of weights. Hence:

- a 2×2 pixel-unshuffle stem, so every convolution runs at half resolution or less
  (a pixel-shuffle head restores full resolution);
- Fourier features of the input (VDM): sin/cos of 2^k·2π·z let the net see the
  fine, sub-quantisation-level structure that dominates the likelihood at low noise;
- conditioning on γ (not on t), so the same weights serve any schedule or step grid
  a codec picks;
- GroupNorm + SiLU residual blocks; self-attention only at the lowest resolution
  and off by default (it is quadratic in the number of positions).

Inputs are padded (replicate) to a multiple of :attr:`UNet.stride` and the output
is cropped back, so any H, W ≥ 1 works.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Sequence

import torch
import torch.nn.functional as F
from torch import nn


def _zero(module: nn.Module) -> nn.Module:
    # Zero-initialised last layers make every residual branch start as the identity.
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


def timestep_embedding(c: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal embedding of a conditioning scalar c ∈ [0, 1] per batch element."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=c.device) / half)
    arg = (1000.0 * c.float())[:, None] * freqs[None, :]
    return torch.cat([torch.sin(arg), torch.cos(arg)], dim=1)


class Conv1x1(nn.Conv2d):
    """A 1×1 convolution whose result does not depend on the thread count.

    PyTorch sends an unstrided 1×1 float32 convolution with batch < 16 to oneDNN
    when several threads are available and to an im2col/GEMM path on one thread;
    the two round differently, so the same input gave different bits at 1 and 2
    threads. Padding the kernel with zeros to 1×3 (exactly the same sum) keeps it
    on the oneDNN path always. Same parameters and state-dict keys as ``nn.Conv2d``.
    """

    def __init__(self, c_in: int, c_out: int):
        super().__init__(c_in, c_out, 1)

    def forward(self, x):
        return F.conv2d(x, F.pad(self.weight, (1, 1)), self.bias, padding=(0, 1))


class ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, emb_dim: int, groups: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(min(groups, c_in), c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = _zero(nn.Linear(emb_dim, c_out))
        self.norm2 = nn.GroupNorm(min(groups, c_out), c_out)
        self.conv2 = _zero(nn.Conv2d(c_out, c_out, 3, padding=1))
        self.skip = Conv1x1(c_in, c_out) if c_in != c_out else nn.Identity()

    def forward(self, x, emb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb(emb)[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class Attention(nn.Module):
    """Single-head self-attention over all positions (used only at the lowest resolution)."""

    def __init__(self, c: int, groups: int):
        super().__init__()
        self.norm = nn.GroupNorm(min(groups, c), c)
        self.qkv = Conv1x1(c, 3 * c)
        self.out = _zero(Conv1x1(c, c))

    def forward(self, x):
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, c, h * w).unbind(1)
        a = torch.softmax(torch.einsum("bci,bcj->bij", q, k) / math.sqrt(c), dim=-1)
        return x + self.out(torch.einsum("bij,bcj->bci", a, v).reshape(b, c, h, w))


class UNet(nn.Module):
    """Noise-conditional U-Net: ``forward(z, gamma) -> out`` with out of shape (B, out_channels, H, W).

    Args:
        in_channels: image channels.
        out_channels: output channels (3 for ε; 6 for UQDM's ε and per-coordinate scale).
        widths: channels per resolution level; level 0 runs at half resolution, each
            further level halves it again.
        blocks: residual blocks per level on the way down (the way up has one more).
        attention: self-attention in the bottleneck.
        fourier: exponents k of the Fourier features sin/cos(2^k·2π·z); () disables them.
        gamma_range: γ values mapped to conditioning 0 and 1 (values outside still work).
        groups: GroupNorm groups.
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, widths: Sequence[int] = (32, 64, 96),
                 blocks: int = 1, attention: bool = False, fourier: Sequence[int] = (5, 6),
                 gamma_range: Sequence[float] = (-13.3, 5.0), groups: int = 8):
        super().__init__()
        self._config = dict(in_channels=in_channels, out_channels=out_channels, widths=list(widths), blocks=blocks,
                            attention=attention, fourier=list(fourier), gamma_range=list(gamma_range), groups=groups)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.register_buffer("fourier_freqs", (2.0 ** torch.tensor(list(fourier), dtype=torch.float32)) * 2 * math.pi,
                             persistent=False)
        self.gamma_range = (float(gamma_range[0]), float(gamma_range[1]))
        widths = list(widths)
        self.stride = 2 * 2 ** (len(widths) - 1)
        w0 = widths[0]
        emb_dim = 4 * w0
        self.emb = nn.Sequential(nn.Linear(w0, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim), nn.SiLU())
        self.emb_in = w0
        stem_in = in_channels * (1 + 2 * len(fourier)) * 4
        self.conv_in = nn.Conv2d(stem_in, w0, 3, padding=1)

        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        skips = [w0]
        c = w0
        for i, w in enumerate(widths):
            level = nn.ModuleList()
            for _ in range(blocks):
                level.append(ResBlock(c, w, emb_dim, groups))
                c = w
                skips.append(c)
            self.down.append(level)
            if i + 1 < len(widths):
                self.downsample.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
                skips.append(c)
        self.mid1 = ResBlock(c, c, emb_dim, groups)
        self.mid_attn = Attention(c, groups) if attention else None
        self.mid2 = ResBlock(c, c, emb_dim, groups)

        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for i, w in reversed(list(enumerate(widths))):
            level = nn.ModuleList()
            for _ in range(blocks + 1):
                level.append(ResBlock(c + skips.pop(), w, emb_dim, groups))
                c = w
            self.up.append(level)
            if i > 0:
                self.upsample.append(nn.Conv2d(c, c, 3, padding=1))
        self.norm_out = nn.GroupNorm(min(groups, c), c)
        self.conv_out = _zero(nn.Conv2d(c, out_channels * 4, 3, padding=1))

    def config(self) -> Dict[str, Any]:
        return dict(self._config)

    def _condition(self, gamma: torch.Tensor, batch: int) -> torch.Tensor:
        g = torch.as_tensor(gamma, dtype=torch.float32).reshape(-1)
        if g.numel() == 1:
            g = g.expand(batch)
        if g.numel() != batch:
            raise ValueError(f"gamma has {g.numel()} values for a batch of {batch}")
        lo, hi = self.gamma_range
        return self.emb(timestep_embedding((g - lo) / (hi - lo), self.emb_in))

    def forward(self, z: torch.Tensor, gamma) -> torch.Tensor:
        if z.dim() != 4 or z.shape[1] != self.in_channels:
            raise ValueError(f"expected (B, {self.in_channels}, H, W), got {tuple(z.shape)}")
        B, _, H, W = z.shape
        emb = self._condition(gamma if isinstance(gamma, torch.Tensor) else torch.tensor(gamma), B).to(z.dtype)
        ph, pw = (-H) % self.stride, (-W) % self.stride
        h = F.pad(z, (0, pw, 0, ph), mode="replicate") if ph or pw else z
        if self.fourier_freqs.numel():
            f = (h.unsqueeze(1) * self.fourier_freqs.to(h.dtype)[None, :, None, None, None]).flatten(1, 2)
            h = torch.cat([h, torch.sin(f), torch.cos(f)], dim=1)
        h = self.conv_in(F.pixel_unshuffle(h, 2))
        hs = [h]
        for i, level in enumerate(self.down):
            for block in level:
                h = block(h, emb)
                hs.append(h)
            if i < len(self.downsample):
                h = self.downsample[i](h)
                hs.append(h)
        h = self.mid1(h, emb)
        if self.mid_attn is not None:
            h = self.mid_attn(h)
        h = self.mid2(h, emb)
        for j, level in enumerate(self.up):
            for block in level:
                h = block(torch.cat([h, hs.pop()], dim=1), emb)
            if j < len(self.upsample):
                h = self.upsample[j](F.interpolate(h, scale_factor=2.0, mode="nearest"))
        h = F.pixel_shuffle(self.conv_out(F.silu(self.norm_out(h))), 2)
        return h[:, :, :H, :W]
