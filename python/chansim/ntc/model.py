"""The mean-scale hyperprior with gain units and universally quantized latents.

Shapes (``N`` transform channels, ``M`` latent channels; images padded to a multiple of 64)::

    x (B,3,H,W) ─g_a→ y (B,M,H/16,W/16) ─·gain_q→ y' ─UQ→ ŷ' ─·inv_gain_q→ g_s → x̂
                                          y' ─h_a→ z ─·hgain_q→ z' ─round→ ẑ' ─·inv_hgain_q→ h_s → (μ', σ')

* ``y'`` is quantized with step 1 and a dither ``u ~ U(−½, ½)``: ``ŷ' = μ̂ + rint(y' − μ̂ + u) − u``,
  so ``ŷ' − y' ~ U(−½, ½)`` independently of ``y'``; training replaces this by the same
  additive noise. Its coding density is ``N(μ̂, σ̂²) ⋆ U(−½, ½)``, i.e. the probability
  of the cell, :func:`gaussian_cell_bits`.
* ``z'`` is rounded (no dither) and coded with a learned per-channel
  :class:`~chansim.ntc.layers.FactorizedDensity` whose integer tables ship with the model.
* Quality ``q`` (0-based) selects one row of each gain table (Cui et al. 2021); all
  qualities share the transforms, so one training run serves every rate.
* ``slices`` > 1 adds a channel-wise context (Minnen & Singh 2020): the M latent channels are
  cut into ``slices`` equal groups, and group i's (μ', σ') are the hyperprior's plus a
  correction :class:`SliceContext` computes from the hyperprior's (μ', σ') of the group and the
  ŷ' of groups 0 … i−1. Decoding stays parallel over space (the context is earlier *channels*,
  never earlier pixels), with ``slices`` small sequential steps at 1/16 resolution. The
  corrections start at zero, so a context model initialised from a model without one codes
  exactly as it did. Universal quantization makes training keep its one parallel pass:
  ŷ' = y' + u whatever the means, so every slice's context is known before any (μ', σ').
* ``residual`` adds a latent estimate in front of the synthesis transform
  (:class:`LatentResidual`): the decoder knows more about y' than ŷ' — y' lies in the cell
  ŷ' ± ½ and the entropy model gives its prior N(μ', σ'²) — so g_s receives
  ŷ' + w_q ⊙ (E[y' | cell] − ŷ') + ½ tanh(r), the closed-form posterior mean
  (:func:`cell_posterior_mean`) weighted per quality and channel, plus a learned residual in the
  spirit of Minnen & Singh's latent residual prediction. It changes only what is reconstructed,
  never what is coded (the context sees the plain ŷ'), and starts at zero like the context.
* ``blocks`` > 0 deepens both image transforms: after each GDN at 1/4 and 1/8 resolution (analysis)
  and each inverse GDN at 1/8 and 1/4 (synthesis) come ``blocks`` residual bottleneck blocks
  (:class:`Bottleneck`, as in He et al. 2022's ELIC). Their last convolution starts at zero, so a
  deepened model computes exactly what its source did — and, unlike widening with zero weights on
  both sides, that start is no saddle: the zero layer's gradient is the product of the loss's and
  the block's nonzero hidden features. ``synthesis_blocks`` = (b₈, b₄) gives the synthesis its own
  counts at its two places (1/8, then 1/4 resolution) — the decoder's blocks carry most of what
  blocks gain (BENCHMARKS.md) — and a block appended to a place starts as the identity too, so a
  trained model can be deepened one block at a time.
* ``quality_slices`` gives each quality the number of latent slices it codes (slimmable widths, Yang
  et al. 2021): quality q codes slices 0 … quality_slices[q] − 1 and never the rest, whose ŷ' are 0
  (with μ' = 0 and σ' = 1 wherever the latent residual reads them) on both sides. A latent costs
  bits under universal quantization even when it carries nothing (σ' at its floor: a few hundredths
  of a bit each), and a low rate needs few dimensions; a high rate needs more than M = 128 give it —
  the synthesis of the shipped M = 128 model reaches 31.5 dB on a 256² crop of kodim01 from latents
  optimized for squared error alone (BENCHMARKS.md), about what a 128-of-768 block PCA keeps. So latent channels
  added for the top rates (``train ntc --m … --quality-slices …``) are not paid for, and not pushed
  to zero by the rate term, at the qualities that do not use them.
"""

from __future__ import annotations

import copy
import math
from typing import Any, Dict, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .layers import GDN, FactorizedDensity
from .tables import SCALE_MIN, check_scale_min

# λ of each quality (distortion weight on MSE of 0..255 pixels), CompressAI's ladder.
QUALITY_LAMBDAS = (0.0018, 0.0035, 0.0067, 0.0130, 0.0250, 0.0483, 0.0932, 0.1800)
PAD = 64             # total downsampling of the hyper-latents


#: The tensors only the encoder reads (the analysis transforms and their gains): a decoder never needs
#: them, so the model id leaves them out (:func:`chansim.ntc.io.decoder_id`) and ``train ntc
#: --encoder-only`` trains them alone against a fixed decoder side.
ENCODER_MODULES = ("g_a.", "g_a_blocks.", "h_a.")
ENCODER_TABLES = ("gain", "hgain")
#: Config keys only the encoder reads (the analysis transform's width).
ENCODER_CONFIG = ("n_analysis",)


def encoder_only(name: str) -> bool:
    """Whether state-dict entry ``name`` is read by the encoder alone (int8 scales included)."""
    return name in ENCODER_TABLES or name.startswith(ENCODER_MODULES)


def _conv(cin, cout, k=5, s=2):
    return nn.Conv2d(cin, cout, k, stride=s, padding=k // 2)


def _deconv(cin, cout, k=5, s=2):
    return nn.ConvTranspose2d(cin, cout, k, stride=s, padding=k // 2, output_padding=s - 1)


def gaussian_cell_bits(v: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """−log₂ P(cell) for ``v = ŷ' − μ`` under N(0, scale²) ⋆ U(−½, ½), elementwise.

    Uses the upper tail on |v| (erfc), which keeps precision where the CDFs are near 1.
    """
    a = v.abs()
    inv = 1.0 / (scale * math.sqrt(2.0))
    p = 0.5 * (torch.erfc((a - 0.5) * inv) - torch.erfc((a + 0.5) * inv))
    return -torch.log2(p.clamp_min(1e-9))


def cell_posterior_mean(v: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """E[t | t ∈ [v − ½, v + ½]] for t ~ N(0, scale²), elementwise: the mean of the prior truncated to
    the quantization cell around ``v = ŷ' − μ``, i.e. E[y' − μ | ŷ'].

    With α, β the cell's ends over ``scale`` on the side of |v|, the mean is
    scale·(φ(α) − φ(β)) / (Φ(β) − Φ(α)); a cell in the tail (α ≥ 0) uses the scaled complementary
    error function, erfcx, so it stays exact where both Φ are 1 to working precision.
    """
    a = v.abs()
    lo, hi = (a - 0.5) / scale, (a + 0.5) / scale
    shrink = -torch.expm1(-0.5 * (hi - lo) * (hi + lo))          # 1 − φ(β)/φ(α)
    # cell in the tail: φ(α)(1 − φ(β)/φ(α)) / (½ e^{−α²/2}(erfcx(α/√2) − φ(β)/φ(α)·erfcx(β/√2)))
    lo_t = lo.clamp_min(0.0)
    keep = 1.0 - shrink
    tail = shrink * math.sqrt(2.0 / math.pi) / (
        torch.special.erfcx(lo_t / math.sqrt(2.0)) - keep * torch.special.erfcx(hi / math.sqrt(2.0)))
    # cell across the mean (α < 0 < β): no cancellation in Φ(β) − Φ(α)
    lo_n = lo.clamp_max(0.0)
    phi_lo = torch.exp(-0.5 * lo_n * lo_n) / math.sqrt(2.0 * math.pi)
    across = phi_lo * shrink / (torch.special.ndtr(hi) - torch.special.ndtr(lo_n))
    return torch.sign(v) * scale * torch.where(lo >= 0, tail, across)


class _LowerBound(torch.autograd.Function):
    """max(x, bound) whose gradient still flows where it pushes x upwards (Ballé's trick)."""

    @staticmethod
    def forward(ctx, x, bound: float):
        ctx.save_for_backward(x)
        ctx.bound = bound
        return x.clamp_min(bound)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        pass_through = (x >= ctx.bound) | (g < 0)
        return g * pass_through, None


class SliceContext(nn.Module):
    """(μ', σ') of one latent slice: the hyperprior's plus a correction from them and the earlier slices' ŷ'.

    Three 3×3 convolutions at the latents' resolution; the last starts at zero (an identity start)."""

    def __init__(self, width: int, context: int, hidden: int = 64):
        super().__init__()
        self.width, self.context = width, context
        self.net = nn.Sequential(_conv(2 * width + context, hidden, 3, 1), nn.LeakyReLU(inplace=True),
                                 _conv(hidden, hidden, 3, 1), nn.LeakyReLU(inplace=True),
                                 _conv(hidden, 2 * width, 3, 1))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, mean: torch.Tensor, scale: torch.Tensor, earlier: torch.Tensor):
        d_mean, d_scale = self.net(torch.cat([mean, scale, earlier], dim=1)).chunk(2, dim=1)
        return mean + d_mean, scale + d_scale


class LatentResidual(nn.Module):
    """What the synthesis transform receives instead of ŷ': ŷ' + w_q ⊙ δ + ½ tanh(r), where
    δ = E[y' | cell] − ŷ' under the entropy model's N(μ', σ'²) (:func:`cell_posterior_mean`), w_q a
    weight per quality and channel, and r three 3×3 convolutions of (ŷ' − μ', log σ', δ).

    Both terms start at zero (an identity start, as :class:`SliceContext`)."""

    def __init__(self, m: int, qualities: int, hidden: int = 64):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(qualities, m))
        self.net = nn.Sequential(_conv(3 * m, hidden, 3, 1), nn.LeakyReLU(inplace=True),
                                 _conv(hidden, hidden, 3, 1), nn.LeakyReLU(inplace=True),
                                 _conv(hidden, m, 3, 1))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, y_hat: torch.Tensor, mean: torch.Tensor, scale: torch.Tensor, q: torch.Tensor):
        # δ in the inputs' precision (the codec's float64), the network in the weights'.
        v = y_hat - mean
        delta = (cell_posterior_mean(v, scale) - v).to(self.weight.dtype)
        v, log_scale, y_hat = v.to(delta.dtype), scale.log().to(delta.dtype), y_hat.to(delta.dtype)
        r = self.net(torch.cat([v, log_scale, delta], dim=1)).to(delta.dtype)   # bf16 under autocast
        return y_hat + self.weight[q][:, :, None, None] * delta + 0.5 * torch.tanh(r)


class Bottleneck(nn.Module):
    """x + W₃ ρ(W₂ ρ(W₁ x)): 1×1 to half the channels, 3×3, 1×1 back (ρ = leaky ReLU); W₃ starts at zero."""

    def __init__(self, channels: int):
        super().__init__()
        hidden = max(channels // 2, 1)
        self.net = nn.Sequential(_conv(channels, hidden, 1, 1), nn.LeakyReLU(inplace=True),
                                 _conv(hidden, hidden, 3, 1), nn.LeakyReLU(inplace=True),
                                 _conv(hidden, channels, 1, 1))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


#: Where the bottleneck blocks sit, one group per entry: after these layers of g_a (its GDNs at 1/4 and
#: 1/8 resolution) and of g_s (its inverse GDNs at 1/8 and 1/4).
ANALYSIS_BLOCKS_AFTER = (3, 5)
SYNTHESIS_BLOCKS_AFTER = (1, 3)
#: State-dict prefixes of the blocks (the analysis', then the synthesis').
BLOCK_MODULES = ("g_a_blocks.", "g_s_blocks.")


def _blocks(channels: int, counts: Sequence[int]) -> Optional[nn.ModuleList]:
    """One group of ``counts[j]`` blocks per place j (None without any, so a model without blocks keeps
    its state dict)."""
    if not any(counts):
        return None
    return nn.ModuleList(nn.Sequential(*(Bottleneck(channels) for _ in range(c))) for c in counts)


def _quality_slices(value, qualities: int, slices: int) -> Tuple[int, ...]:
    """Slices coded per quality: all of them unless given; given, one count per quality in 1 … slices,
    never fewer at a higher quality (a higher rate never drops a dimension a lower one codes)."""
    if value is None:
        return (slices,) * qualities
    counts = tuple(value)
    if len(counts) != qualities or any(isinstance(c, bool) or int(c) != c or not 1 <= c <= slices for c in counts) \
            or any(a > b for a, b in zip(counts, counts[1:])):
        raise ValueError(f"quality_slices must be {qualities} non-decreasing counts in 1 … {slices} (one per quality), "
                         f"got {value}")
    return tuple(int(c) for c in counts)


def _block_counts(value, what: str) -> Tuple[int, ...]:
    counts = tuple(value)
    if len(counts) != 2 or any(isinstance(c, bool) or int(c) != c or c < 0 for c in counts):
        raise ValueError(f"{what} must be two non-negative integers (blocks at 1/8 and 1/4 resolution), got {value}")
    return tuple(int(c) for c in counts)


def _run(layers: nn.Sequential, blocks: Optional[nn.ModuleList], x: torch.Tensor, after: Sequence[int]) -> torch.Tensor:
    """``layers`` applied in order, with group j of ``blocks`` after layer ``after[j]``."""
    for i, layer in enumerate(layers):
        x = layer(x)
        if blocks is not None and i in after:
            x = blocks[after.index(i)](x)
    return x


class HyperpriorModel(nn.Module):
    kind = "ntc"

    def __init__(self, n: int = 96, m: int = 128, lambdas: Sequence[float] = QUALITY_LAMBDAS, slices: int = 1,
                 residual: bool = False, scale_min: float = SCALE_MIN, hyper_n: Optional[int] = None,
                 n_analysis: Optional[int] = None, blocks: int = 0,
                 synthesis_blocks: Optional[Sequence[int]] = None,
                 quality_slices: Optional[Sequence[int]] = None):
        super().__init__()
        self.scale_min = check_scale_min(scale_min)       # floor of σ' (the latent's step is 1)
        if slices < 1 or m % slices:
            raise ValueError(f"slices must be a positive divisor of m = {m}, got {slices}")
        hyper_n = n if hyper_n is None else int(hyper_n)
        n_a = n if n_analysis is None else int(n_analysis)
        if n < 1 or m < 1 or hyper_n < 1 or n_a < 1:
            raise ValueError(f"n, m, hyper_n and n_analysis must be positive, got {n}, {m}, {hyper_n}, {n_a}")
        if int(blocks) != blocks or blocks < 0:
            raise ValueError(f"blocks must be a non-negative integer, got {blocks}")
        self.blocks = int(blocks)
        # The synthesis' counts per place (1/8, 1/4), ``blocks`` at each unless given.
        self.synthesis_blocks = (self.blocks,) * 2 if synthesis_blocks is None else \
            _block_counts(synthesis_blocks, "synthesis_blocks")
        self.n, self.m, self.lambdas, self.slices = n, m, tuple(float(v) for v in lambdas), int(slices)
        # The hyper transforms' width (= channels of z) is its own setting, so the image transforms can be
        # widened (train ntc --n, from a narrower model) without changing what the hyper-latents are.
        self.hyper_n = hyper_n
        # The analysis transform's width is its own setting too: g_a runs only at the encoder, so a wider
        # one costs encode time, never decode time (an asymmetric codec, as in Yang & Mandt 2023).
        self.n_analysis = n_a
        k = len(self.lambdas)
        self.g_a = nn.Sequential(_conv(3, n_a), GDN(n_a), _conv(n_a, n_a), GDN(n_a), _conv(n_a, n_a), GDN(n_a),
                                 _conv(n_a, m))
        self.g_s = nn.Sequential(_deconv(m, n), GDN(n, True), _deconv(n, n), GDN(n, True), _deconv(n, n),
                                 GDN(n, True), _deconv(n, 3))
        self.g_a_blocks, self.g_s_blocks = _blocks(n_a, (self.blocks,) * 2), _blocks(n, self.synthesis_blocks)
        h = hyper_n
        self.h_a = nn.Sequential(_conv(m, h, 3, 1), nn.LeakyReLU(inplace=True), _conv(h, h),
                                 nn.LeakyReLU(inplace=True), _conv(h, h))
        self.h_s = nn.Sequential(_deconv(h, m), nn.LeakyReLU(inplace=True), _deconv(m, m * 3 // 2),
                                 nn.LeakyReLU(inplace=True), _conv(m * 3 // 2, 2 * m, 3, 1))
        # log gains: rate–distortion balance puts the step near λ^(−½) (MSE ∝ step²).
        lg = 0.5 * torch.log(torch.tensor(self.lambdas) / self.lambdas[k // 2])
        self.gain = nn.Parameter(lg[:, None].repeat(1, m).contiguous())
        self.inv_gain = nn.Parameter(-lg[:, None].repeat(1, m).contiguous())
        self.hgain = nn.Parameter(torch.zeros(k, h))
        self.inv_hgain = nn.Parameter(torch.zeros(k, h))
        self.z_density = FactorizedDensity(h)
        width = m // self.slices
        self.context = nn.ModuleList(SliceContext(width, i * width) for i in range(self.slices)) \
            if self.slices > 1 else None
        self.residual = LatentResidual(m, k) if residual else None
        self.quality_slices = _quality_slices(quality_slices, k, self.slices)
        # (qualities, M) 0/1: whether quality q codes latent channel c (a buffer, so it follows .double()).
        width = m // self.slices
        coded = torch.arange(m)[None, :] < torch.tensor(self.quality_slices)[:, None] * width
        self.register_buffer("_coded", coded.float(), persistent=False)

    @torch.no_grad()
    def tabulate(self, radius: int = 1024):
        """(offsets, frequencies) of the hyper-latent tables (:func:`chansim.ntc.tables.frequency_table`),
        from the learned density evaluated in float64 on the integers ``[-radius, radius]``."""
        from .tables import frequency_table

        density = copy.deepcopy(self.z_density).double()
        grid = torch.arange(-radius, radius + 1, dtype=torch.float64)
        x = grid.expand(self.hyper_n, -1).unsqueeze(0)            # (1, C, 2R+1): the channel axis is 1
        pmf = density.likelihood(x)[0].numpy()
        return frequency_table(pmf)

    def config(self) -> Dict[str, Any]:
        # "slices", "residual", "scale_min", "hyper_n", "n_analysis", "blocks", "synthesis_blocks" and
        # "quality_slices" only when not the
        # default, so a model without them keeps its config (and model id).
        cfg = {"kind": self.kind, "n": self.n, "m": self.m, "lambdas": list(self.lambdas)}
        if self.slices > 1:
            cfg["slices"] = self.slices
        if self.residual is not None:
            cfg["residual"] = True
        if self.scale_min != SCALE_MIN:
            cfg["scale_min"] = self.scale_min
        if self.hyper_n != self.n:
            cfg["hyper_n"] = self.hyper_n
        if self.n_analysis != self.n:
            cfg["n_analysis"] = self.n_analysis
        if self.blocks:
            cfg["blocks"] = self.blocks
        if self.synthesis_blocks != (self.blocks,) * 2:
            cfg["synthesis_blocks"] = list(self.synthesis_blocks)
        if any(n != self.slices for n in self.quality_slices):
            cfg["quality_slices"] = list(self.quality_slices)
        return cfg

    @property
    def num_qualities(self) -> int:
        return len(self.lambdas)

    # -- pieces the codec calls one by one ------------------------------------------------------
    @staticmethod
    def _rows(table: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        return table.exp()[q][:, :, None, None]

    def analysis_transform(self, x: torch.Tensor) -> torch.Tensor:
        """x in [0, 1] → latents y (before the quality's gain)."""
        return _run(self.g_a, self.g_a_blocks, x, ANALYSIS_BLOCKS_AFTER)

    def synthesis_transform(self, y: torch.Tensor) -> torch.Tensor:
        """Latents (after the inverse gain) → x̂ in [0, 1] (unclamped)."""
        return _run(self.g_s, self.g_s_blocks, y, SYNTHESIS_BLOCKS_AFTER)

    def coded_slices(self, quality_index: int) -> int:
        """How many latent slices quality ``quality_index`` (0-based) codes: slices 0 … this − 1."""
        return self.quality_slices[int(quality_index)]

    def coded_channels(self, quality_index: int) -> int:
        """How many latent channels quality ``quality_index`` (0-based) codes: channels 0 … this − 1."""
        return self.coded_slices(quality_index) * (self.m // self.slices)

    def coded(self, q: torch.Tensor) -> torch.Tensor:
        """(B, M, 1, 1) 1 where quality q codes the latent channel, 0 where it does not."""
        return self._coded[q][:, :, None, None]

    def gained(self, y: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """Analysis output y → gained latents y' (0 in the channels quality q does not code).

        The float32 gains promote a bfloat16 y (a trainer's autocast) to float32, as the entropy model and
        the latent residual's erfcx need; a float64 y (the codec's) stays float64."""
        return y * (self._rows(self.gain, q) * self.coded(q))

    def uncoded_filled(self, y_hat: torch.Tensor, mean: torch.Tensor, scale: torch.Tensor, q: torch.Tensor):
        """(ŷ', μ', σ') with the channels quality q does not code set to (0, 0, 1): what both sides hold
        for latents that are never sent."""
        coded = self.coded(q).to(y_hat.dtype)
        return y_hat * coded, mean * coded, scale * coded + (1 - coded)

    def analysis(self, x: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """x in [0, 1] → gained latents y'."""
        return self.gained(self.analysis_transform(x), q)

    def hyper_analysis(self, y: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        return self.h_a(y) * self._rows(self.hgain, q)

    def hyper_synthesis(self, z_hat: torch.Tensor, q: torch.Tensor):
        """ẑ' → (μ', σ') of the gained latents (σ' not yet bounded)."""
        mean, scale = self.h_s(z_hat * self._rows(self.inv_hgain, q)).chunk(2, dim=1)
        return mean, scale

    def slice_bounds(self, i: int) -> slice:
        """Channels of latent slice ``i``."""
        width = self.m // self.slices
        return slice(i * width, (i + 1) * width)

    def slice_parameters(self, i: int, mean: torch.Tensor, scale: torch.Tensor, earlier: torch.Tensor):
        """(μ', σ') of slice ``i`` from the hyperprior's (``mean``, ``scale``: all M channels) and ŷ' of
        slices 0 … i−1 (``earlier``, i·M/slices channels); the hyperprior's own without a context."""
        sl = self.slice_bounds(i)
        if self.context is None:
            return mean[:, sl], scale[:, sl]
        return self.context[i](mean[:, sl], scale[:, sl], earlier)

    def entropy_parameters(self, z_hat: torch.Tensor, y_hat: torch.Tensor, q: torch.Tensor):
        """(μ', σ') of every latent (σ' not yet bounded) given ẑ' and ŷ' (each slice sees only earlier ones)."""
        mean, scale = self.hyper_synthesis(z_hat, q)
        if self.context is None:
            return mean, scale
        parts = [self.slice_parameters(i, mean, scale, y_hat[:, :self.slice_bounds(i).start])
                 for i in range(self.slices)]
        return torch.cat([p[0] for p in parts], dim=1), torch.cat([p[1] for p in parts], dim=1)

    def synthesis(self, y_hat: torch.Tensor, q: torch.Tensor, mean: Optional[torch.Tensor] = None,
                  scale: Optional[torch.Tensor] = None) -> torch.Tensor:
        """ŷ' → x̂ in [0, 1] (unclamped). A model with a :class:`LatentResidual` also needs the entropy
        model's (μ', σ') of ŷ' (σ' bounded below), from which it estimates y' before the transform."""
        if self.residual is not None:
            if mean is None or scale is None:
                raise ValueError("this NTC model's synthesis needs the latents' means and scales (it has a latent residual)")
            y_hat = self.residual(y_hat, mean, scale, q)
        return self.synthesis_transform(y_hat * self._rows(self.inv_gain, q))

    # -- training ---------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, q: torch.Tensor, generator=None) -> Dict[str, torch.Tensor]:
        """Training/evaluation pass with the exact noise law of the codec.

        ``x``: (B, 3, H, W) in [0, 1], H and W multiples of 64; ``q``: (B,) int64 qualities.
        Returns per-image ``bits_y``, ``bits_z`` and the reconstruction ``x_hat``.
        """
        # The .float() casts are no-ops in float32; under a trainer's bfloat16 autocast they keep the
        # latents, the entropy model's (μ, σ) and the distortion in float32 (only the transforms run in bf16).
        y = self.analysis(x, q).float()
        z = self.hyper_analysis(y, q).float()
        z_noisy = z + torch.rand(z.shape, generator=generator, dtype=z.dtype) - 0.5
        z_hat = z + (torch.round(z) - z).detach()          # the decoder sees rounded z (straight-through)
        bits_z = -torch.log2(self.z_density.likelihood(z_noisy).clamp_min(1e-9)).sum((1, 2, 3))
        y_hat = y + torch.rand(y.shape, generator=generator, dtype=y.dtype) - 0.5   # = UQ in law
        coded = self.coded(q)
        y_hat = y_hat * coded                               # uncoded latents are 0, never noisy
        mean, scale = (t.float() for t in self.entropy_parameters(z_hat, y_hat, q))
        scale = _LowerBound.apply(scale, self.scale_min)
        bits_y = (gaussian_cell_bits(y_hat - mean, scale) * coded).sum((1, 2, 3))
        y_hat, mean, scale = self.uncoded_filled(y_hat, mean, scale, q)
        x_hat = self.synthesis(y_hat, q, mean, scale).float()
        return {"x_hat": x_hat, "bits_y": bits_y, "bits_z": bits_z}

    def loss(self, x: torch.Tensor, q: torch.Tensor, weight: Optional[torch.Tensor] = None,
             generator=None) -> Dict[str, torch.Tensor]:
        """The batch's mean Lagrangian λ_q·MSE + bpp (MSE of 0..255 pixels), each crop's times ``weight``
        (B,) when given (a trainer's per-quality balance, :mod:`chansim.train.qualities`); also each
        crop's unweighted ``rd``, ``bpp`` and ``mse`` (detached)."""
        out = self(x, q, generator)
        pixels = x.shape[2] * x.shape[3]
        bpp = (out["bits_y"] + out["bits_z"]) / pixels
        mse = ((out["x_hat"] - x) ** 2).mean((1, 2, 3)) * (255.0 ** 2)
        lam = torch.tensor(self.lambdas, dtype=x.dtype)[q]
        rd = lam * mse + bpp
        weighted = rd if weight is None else rd * weight.to(rd.dtype)
        return {"loss": weighted.mean(), "rd": rd.detach(), "bpp": bpp.detach(), "mse": mse.detach()}


def pad_to(x: torch.Tensor, multiple: int = PAD) -> torch.Tensor:
    """Replicate-pad the bottom/right edges up to a multiple of ``multiple``."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    return F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x
