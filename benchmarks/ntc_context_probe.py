"""How much a spatial (checkerboard) context could add to an NTC model's entropy model.

A checkerboard context (He et al. 2021) codes each latent slice in two parallel passes: its *anchors*
((row + column) even on the latent grid) under the model's own (μ', σ'), then the rest under (μ', σ')
corrected from the anchors' ŷ' − μ' around them. :class:`CheckerboardContext` here is that correction
(a 5×5 and two 3×3 convolutions per slice, the last at zero). chansim's codec does not carry it: on the
shipped model it is worth about 0.01 dB for 1.06 M parameters, more than the 10 MB budget has room for
(BENCHMARKS.md "A checkerboard context"; the codec, format and ``train ntc --checkerboard`` of that
measurement are commit c0c0d0e).

Two measurements on a trained model (default: the shipped ``ntc_default``), everything but the
probe's own nets frozen:

1. **Spatial statistics** of the normalized latent residuals v = (y' − μ')/σ' under the model's own
   (μ', σ') (hyperprior + channel context), on the Kodak centre crops at qualities 2, 4, 6, 8, 10:
   the correlation of v, and of |v|, between horizontal and vertical neighbours, pooled and per
   channel. A neighbour's v can only sharpen a Gaussian's mean by −½·log₂(1 − ρ²) bits per latent,
   and |v|'s correlation is what a context could learn about σ'.
2. **Rate-only fit** of a :class:`CheckerboardContext` per slice (zero start) to the frozen model's latents: Adam on each crop's relative change of total bits
   (every quality counts alike), on a pool of precomputed training crops (random quality each, fresh
   universal-quantization noise at every step); every 500 steps the total rate (ŷ' and ẑ bits) of
   the held-out crops with and without it. The transforms do not adapt to the context here, so this
   is what the context finds in latents trained without one (a joint run may find more).

Run: python benchmarks/ntc_context_probe.py [--model PATH] [--steps 3000] [--lr 2e-4] [--pool 300]
(one thread; BENCHMARKS.md "A checkerboard context").
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from torch import nn

from chansim.ntc.io import load_model
from chansim.ntc.model import HyperpriorModel, _LowerBound, gaussian_cell_bits
from chansim.train.data import CropSampler
from chansim.train.ntc import kodak_eval_crops

QUALITIES = (2, 4, 6, 8, 10)


def anchors(height: int, width: int) -> torch.Tensor:
    """(1, 1, height, width) 1 at the anchors ((row + column) even), 0 at the rest."""
    return ((torch.arange(height)[:, None] + torch.arange(width)[None, :]) % 2 == 0).float()[None, None]


class CheckerboardContext(nn.Module):
    """(μ', σ') of one slice with its non-anchor positions corrected from (μ', σ') and the slice's
    anchors' ŷ' − μ' (0 at the rest); the anchors keep theirs. The last convolution starts at zero."""

    def __init__(self, width: int, hidden: int = 64):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3 * width, hidden, 5, padding=2), nn.LeakyReLU(),
                                 nn.Conv2d(hidden, hidden, 3, padding=1), nn.LeakyReLU(),
                                 nn.Conv2d(hidden, 2 * width, 3, padding=1))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, mean, scale, y_hat):
        anchor = anchors(*mean.shape[-2:])
        d_mean, d_scale = self.net(torch.cat([mean, scale, (y_hat - mean) * anchor], 1)).chunk(2, 1)
        return mean + d_mean * (1 - anchor), scale + d_scale * (1 - anchor)


def neighbour_statistics(model: HyperpriorModel, x: torch.Tensor) -> list:
    rows = []
    for quality in QUALITIES:
        q = torch.full((len(x),), quality - 1)
        with torch.no_grad():
            y = model.analysis(x, q)
            z_hat = torch.round(model.hyper_analysis(y, q))
            mean, scale = model.entropy_parameters(z_hat, y + torch.rand(y.shape) - 0.5, q)
            v = (y - mean) / scale.clamp_min(model.scale_min)
        corr = lambda a, b: float(torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1])  # noqa: E731
        per_channel = np.array([corr(v[:, c, :, :-1], v[:, c, :, 1:]) for c in range(v.shape[1])])
        rows.append({"quality": quality, "rho_h": corr(v[..., :-1], v[..., 1:]),
                     "rho_v": corr(v[..., :-1, :], v[..., 1:, :]),
                     "abs_rho_h": corr(v[..., :-1].abs(), v[..., 1:].abs()),
                     "channel_abs_rho_mean": float(np.nanmean(np.abs(per_channel))),
                     "channel_abs_rho_max": float(np.nanmax(np.abs(per_channel)))})
    return rows


class Probe:
    """The frozen model with a zero-started checkerboard context per slice, whose nets alone are trained."""

    def __init__(self, source: HyperpriorModel, lr: float):
        self.model = source.eval().requires_grad_(False)
        self.spatial = nn.ModuleList(CheckerboardContext(source.m // source.slices) for _ in range(source.slices))
        self.opt = torch.optim.Adam(self.spatial.parameters(), lr=lr)

    def latents(self, x: torch.Tensor, q: torch.Tensor):
        """(y', ẑ', bits of ẑ') of a batch (no gradient: the model is frozen)."""
        m = self.model
        with torch.no_grad():
            y = m.analysis(x, q)
            z_hat = torch.round(m.hyper_analysis(y, q))
            bits_z = -torch.log2(m.z_density.likelihood(z_hat).clamp_min(1e-9)).sum((1, 2, 3))
        return y, z_hat, bits_z

    def bits(self, y, z_hat, q, generator=None):
        """Per-crop bits of ŷ' = y' + u without and with the checkerboard context."""
        m = self.model
        with torch.no_grad():
            y_hat = (y + torch.rand(y.shape, generator=generator) - 0.5) * m.coded(q)
            mean_h, scale_h = m.hyper_synthesis(z_hat, q)
            channel = [m.slice_parameters(i, mean_h, scale_h, y_hat[:, :m.slice_bounds(i).start])
                       for i in range(m.slices)]
        plain = spatial = 0
        for i, (mean, scale) in enumerate(channel):
            sl = m.slice_bounds(i)
            coded = m.coded(q)[:, sl]
            plain = plain + (gaussian_cell_bits(y_hat[:, sl] - mean, scale.clamp_min(m.scale_min)) * coded).sum((1, 2, 3))
            mean, scale = self.spatial[i](mean, scale, y_hat[:, sl])
            scale = _LowerBound.apply(scale, m.scale_min)
            spatial = spatial + (gaussian_cell_bits(y_hat[:, sl] - mean, scale) * coded).sum((1, 2, 3))
        return plain, spatial

    def heldout(self, x: torch.Tensor) -> list:
        gen = torch.Generator().manual_seed(1)
        rows = []
        for quality in QUALITIES:
            q = torch.full((len(x),), quality - 1)
            y, z_hat, bits_z = self.latents(x, q)
            with torch.no_grad():
                plain, spatial = self.bits(y, z_hat, q, gen)
            base = float(plain.sum() + bits_z.sum())
            pixels = x.shape[0] * x.shape[2] * x.shape[3]
            rows.append({"quality": quality, "bpp": base / pixels,
                         "rate_change_pct": 100 * float(spatial.sum() - plain.sum()) / base})
        return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="NTC model file (default: the shipped ntc_default)")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--pool", type=int, default=300, help="batches of 4 training crops (256²) precomputed")
    ap.add_argument("--eval-every", type=int, default=500)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    np.random.seed(0)
    if args.model is None:
        from chansim.codecs._pretrained import models_dir
        args.model = models_dir() / "ntc_default.pt"
    source = load_model(args.model)[0]
    kodak = kodak_eval_crops(crop=256)
    kodak = kodak.float() / 255.0 if kodak.dtype == torch.uint8 else kodak
    for row in neighbour_statistics(source, kodak[::2]):
        print("neighbours", {k: round(v, 3) for k, v in row.items()}, flush=True)
    probe = Probe(source, args.lr)
    held = kodak[::3]
    print("held-out", probe.heldout(held), flush=True)
    sampler = CropSampler.from_shared(256, seed=3, progress=False)
    pool = []
    for _ in range(args.pool):
        q = torch.randint(0, source.num_qualities, (4,))
        pool.append((*probe.latents(sampler.batch(4).float() / 255.0, q), q))
    t0 = time.time()
    for step in range(1, args.steps + 1):
        y, z_hat, bits_z, q = pool[np.random.randint(len(pool))]
        plain, spatial = probe.bits(y, z_hat, q)
        loss = ((spatial - plain.detach()) / (plain.detach() + bits_z)).mean()
        probe.opt.zero_grad()
        loss.backward()
        probe.opt.step()
        if step % args.eval_every == 0:
            rows = probe.heldout(held)
            print(f"step {step} ({time.time() - t0:.0f} s):",
                  ", ".join(f"q{r['quality']} {r['bpp']:.4f} bpp {r['rate_change_pct']:+.2f} %" for r in rows), flush=True)


if __name__ == "__main__":
    main()
