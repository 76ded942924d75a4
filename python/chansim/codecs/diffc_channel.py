"""One DiffC step's Gaussian channel: q(z_s | z_t, x) sent against p(z_s | z_t) by chunked PFR.

Both distributions have the posterior standard deviation β, so the channel is
equal-variance and needs a candidate budget (``chansim.pfr`` modes ``budgeted`` / ``orc``;
exact PFR has no stopping rule here). The settings (:class:`ChannelSettings`) travel in
the file's settings blob; the presets in :data:`PRESETS` are the measured operating points
(BENCHMARKS.md, "DiffC codec").

Chunking: ``chansim.pfr`` puts coordinate j in chunk j mod C. DiffC's per-coordinate KL
is heavy-tailed (edges carry most of it), so the coordinates are first shuffled by a
permutation both sides draw from Philox (:func:`.streams.permutation`), which
breaks the image's spatial structure, and C is the count ⌈KL / chunk_bits⌉: chunks carry
chunk_bits on average and every chunk's budget follows its own KL,
K_c = min(2^(⌈KL_c⌉ + pad_bits), 2^(chunk_bits + pad_bits + cap_bits)). The cap bounds the
encoder's work on the rare over-full chunk; a capped chunk is more biased, which the
per-step diagnostics report (``capped``). The section is the PFR message
(``docs/format.md`` §5.2) without the fields the container already provides: magic,
version, mode (in the settings), the coordinate count (from the image shape) and the
CRC (the file's CRC32 covers it).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Dict, Tuple

import numpy as np

from .. import pfr, prng
from ..errors import FormatError
from . import streams

LN2 = math.log(2.0)
_MODES = {"budgeted": 1, "orc": 2}  # the pfr message's own mode codes (docs/format.md §5.2)
_MODE_NAMES = {v: k for k, v in _MODES.items()}


@dataclass(frozen=True)
class ChannelSettings:
    """How each step's channel is simulated.

    mode: ``"budgeted"`` (truncated PFR) or ``"orc"`` (ordered random coding).
    chunk_bits: largest KL (bits) of one PFR chunk.
    pad_bits: a chunk with KL D gets K = 2^(⌈D⌉ + pad_bits) candidates.
    cap_bits: no chunk gets more than 2^(chunk_bits + pad_bits + cap_bits) candidates.
    """

    mode: str = "budgeted"
    chunk_bits: int = 2
    pad_bits: int = 6
    cap_bits: int = 4

    def __post_init__(self):
        if self.mode not in _MODES:
            raise ValueError(f"channel mode must be one of {sorted(_MODES)}, got {self.mode!r}")
        for name, lo, hi in (("chunk_bits", 1, 24), ("pad_bits", 0, 16), ("cap_bits", 0, 8)):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or not lo <= v <= hi:
                raise ValueError(f"{name} must be an integer in [{lo}, {hi}], got {v!r}")
        if self.chunk_bits + self.pad_bits + self.cap_bits > 30:
            raise ValueError("chunk_bits + pad_bits + cap_bits must be ≤ 30 (PFR indices are below 2^31)")

    @property
    def max_candidates(self) -> int:
        return 1 << (self.chunk_bits + self.pad_bits + self.cap_bits)

    def to_bytes(self) -> bytes:
        return bytes([_MODES[self.mode], self.chunk_bits, self.pad_bits, self.cap_bits])

    @classmethod
    def from_bytes(cls, b: bytes) -> "ChannelSettings":
        if len(b) != 4 or b[0] not in _MODE_NAMES:
            raise FormatError("DiffC settings: bad channel settings")
        try:
            return cls(_MODE_NAMES[b[0]], b[1], b[2], b[3])
        except ValueError as exc:
            raise FormatError(f"DiffC settings: {exc}") from None


#: Named operating points (see BENCHMARKS.md "DiffC codec" for their measured bias, rate and time).
#: The ``latent*`` presets spend more candidates per coordinate (K = 2^(D + pad) of 2^15 … 2^18
#: against ``unbiased``'s 2^8) for a rate near the KL; they suit latent diffusion models, whose
#: latents have 12–48× fewer coordinates than the image has pixel values (BENCHMARKS.md, "Latent
#: presets: frontier (chunk KL 4–10 bits, pad 4–10)"). Measured laws: :data:`PRESET_LAWS`.
PRESETS: Dict[str, ChannelSettings] = {
    # ≤ 2 % bias along the mean shift (1-D law: shift fraction 0.99, variance 0.94 at D = 2, K = 2^8).
    "unbiased": ChannelSettings("budgeted", 2, 6, 4),
    # D = 4, K ≤ 2^10: shift fraction ≈ 0.97 (3 % bias), fewer bits per unit of KL.
    "balanced": ChannelSettings("budgeted", 4, 6, 4),
    # D = 8, K ≤ 2^10 ORC: rate close to the KL, strongly biased (shift fraction ≈ 0.82).
    "compact": ChannelSettings("orc", 8, 2, 4),
    # D = 7, K = 2^15: the cheapest point with shift ≥ 0.97 at ≤ 1.5 bits per bit of KL that keeps
    # both through the codec's uneven chunks (D ≤ 6 leaves too little margin under 1.5 there).
    "latent-fast": ChannelSettings("budgeted", 7, 8, 2),
    # D = 8, K = 2^17: the lowest bits over KL with shift ≥ 0.97 among the presets.
    "latent": ChannelSettings("budgeted", 8, 9, 2),
    # D = 8, K = 2^18: ≤ 2 % bias (as ``unbiased``) at ≈ 0.65× ``unbiased``'s bits over KL.
    "latent-unbiased": ChannelSettings("budgeted", 8, 10, 2),
}
DEFAULT_PRESET = "unbiased"


@dataclass(frozen=True)
class PresetLaw:
    """A preset's measured 1-D law (``benchmarks/pfr_pareto.py --presets``): ``chunks`` equal-variance
    1-D chunks of KL = chunk_bits, each with K = 2^(chunk_bits + pad_bits) candidates (seed 11).

    shift_fraction: realised fraction of the mean shift (1 = unbiased), ``shift_se`` its standard error.
    bits_over_kl: whole-message bits per chunk over the chunk KL (the channel's rate overhead).
    """

    shift_fraction: float
    shift_se: float
    bits_over_kl: float
    chunks: int


#: The presets' 1-D laws, measured in one run (BENCHMARKS.md, "Latent presets: frontier (chunk KL
#: 4–10 bits, pad 4–10)", 2026-12-03, with the machine and its load). :func:`choose_preset` ranks
#: by these. "codec" = the same preset through :func:`encode_step` on synthetic latent-like steps of
#: 16384 coordinates at 0.1 / 0.3 bits of KL per coordinate (``pfr_pareto.py --codec``, SE ±0.009 /
#: ±0.007): the codec's chunks carry uneven KL (mean 1.1–1.2× chunk_bits, the heaviest up to the cap),
#: which moves both numbers; from 0.1 to 0.3 bits per coordinate every preset loses 0.005–0.02 of shift.
#:
#: ===============  =================  ======  ===============  =======  ==============  ===============
#: preset           mode, D, pad, cap  K       1-D shift (±SE)  1-D      codec shift     codec bits/KL
#:                                                              bits/KL  (0.1 / 0.3)     (0.1 / 0.3)
#: ===============  =================  ======  ===============  =======  ==============  ===============
#: unbiased         budgeted 2, 6, 4   2^8     0.992 ± 0.004    2.128    0.984 / 0.968   2.19 / 2.19
#: balanced         budgeted 4, 6, 4   2^10    0.968 ± 0.003    1.586    0.958 / 0.939   1.65 / 1.39
#: compact          orc 8, 2, 4        2^10    0.821 ± 0.002    0.995    –               –
#: latent-fast      budgeted 7, 8, 2   2^15    0.972 ± 0.003    1.370    0.976 / 0.971   1.44 / 1.38
#: latent           budgeted 8, 9, 2   2^17    0.975 ± 0.006    1.335    0.973 / 0.960   1.40 / 1.31
#: latent-unbiased  budgeted 8, 10, 2  2^18    0.986 ± 0.009    1.375    0.981 / 0.967   1.42 / 1.33
#: ===============  =================  ======  ===============  =======  ==============  ===============
#:
#: (K: candidates per chunk at KL = D; a chunk of d coordinates costs K·d candidate·coordinates.
#: Cap 2 keeps the work within 1.05–1.19× :func:`estimated_work`; cap 4 adds 0.005–0.011 of codec
#: shift at 0.3 bits per coordinate for 2.1–2.4× the work.)
PRESET_LAWS: Dict[str, PresetLaw] = {
    "unbiased": PresetLaw(0.992, 0.004, 2.128, 20000),
    "balanced": PresetLaw(0.968, 0.003, 1.586, 20000),
    "compact": PresetLaw(0.821, 0.002, 0.995, 20000),
    "latent-fast": PresetLaw(0.972, 0.003, 1.370, 8192),
    "latent": PresetLaw(0.975, 0.006, 1.335, 2048),
    "latent-unbiased": PresetLaw(0.986, 0.009, 1.375, 1024),
}
#: Shift fraction a preset must reach to count as (nearly) unbiased in :func:`choose_preset`.
SHIFT_TARGET = 0.97
#: Work budget of ``DiffC(channel="auto")`` when none is given: candidate·coordinates per step.
DEFAULT_WORK_BUDGET = float(2**30)


def estimated_work(cs: ChannelSettings, dims: int) -> float:
    """Estimated encoder work of one step on ``dims`` coordinates, in the cost model of the ``work``
    diagnostic (Σ_c K_c·d_c, :func:`_work`; the chunks' sizes add up to ``dims``) with every chunk's
    budget at K_c = 2^(chunk_bits + 1 + pad_bits), i.e. ⌈KL_c⌉ = chunk_bits + 1, the usual rounding of
    chunk KLs that scatter around chunk_bits. Measured work over this estimate: 1.05–1.19 for the
    ``latent*`` presets on latent-like steps, 1.07–4.0 for the cap-4 pixel presets there (their heavy
    chunks reach 2^4× the budget), ≈ 0.67 for ``unbiased`` and ``balanced`` on Kodak pixels."""
    return float(dims) * 2.0 ** (cs.chunk_bits + 1 + cs.pad_bits)


def choose_preset(work_budget: float, dims: int, presets=None) -> str:
    """The preset for steps of ``dims`` coordinates whose :func:`estimated_work` fits ``work_budget``
    (candidate·coordinates per step).

    Among the fitting presets (``presets``: names, default all of :data:`PRESET_LAWS`), the one with
    the lowest bits over KL whose shift fraction reaches :data:`SHIFT_TARGET`; if none reaches it,
    the most accurate (highest shift fraction); if none fits, the cheapest. Ties go to the cheaper
    preset, then to the name. A larger budget never gives a worse choice: the fitting set only grows.
    """
    names = sorted(PRESET_LAWS if presets is None else presets)
    if not names:
        raise ValueError("choose_preset needs at least one preset")
    for n in names:
        if n not in PRESET_LAWS:
            raise ValueError(f"no measured law for preset {n!r}; known: {sorted(PRESET_LAWS)}")
    dims, budget = int(dims), float(work_budget)
    if dims < 1:
        raise ValueError(f"dims must be ≥ 1, got {dims}")
    if not budget > 0:
        raise ValueError(f"work_budget must be positive, got {work_budget!r}")
    work = {n: estimated_work(PRESETS[n], dims) for n in names}
    law = PRESET_LAWS
    fit = [n for n in names if work[n] <= budget]
    if not fit:
        return min(names, key=lambda n: (work[n], -law[n].shift_fraction, n))
    good = [n for n in fit if law[n].shift_fraction >= SHIFT_TARGET]
    if good:
        return min(good, key=lambda n: (law[n].bits_over_kl, work[n], n))
    return min(fit, key=lambda n: (-law[n].shift_fraction, work[n], n))


def coefficients(c, device=None):
    """The fused kernel's float32 vector [α_t, σ_t, a, b, β] of a step (each rounded once from the
    float64 :class:`~chansim.diffusion.gaussian.StepCoefficients`): μ_Q = a·z_t + b·x, β the
    posterior standard deviation of q and p."""
    import torch

    return torch.tensor([c.alpha_t, c.sigma_t, c.a, c.b, c.beta], dtype=torch.float32, device=device)


def candidate_stream(step: int) -> int:
    """PFR candidate stream of ``step`` (chunk c uses this + c, docs/format.md §5.1)."""
    return streams.pfr_candidates(step)


def permutation(seed: int, d: int) -> np.ndarray:
    """The coordinate shuffle of a file: stable argsort of the uint32 words 0 … d − 1 of
    :func:`.streams.permutation` (its own purpose since DiffC settings version 2)."""
    w = prng.words(seed, streams.permutation(), 0, d)
    return np.argsort(w, kind="stable")


def chunk_bound(kl: np.ndarray, chunk_bits: int) -> float:
    """The ``chunk_bits`` to hand ``pfr``: the largest chunk KL at C = ⌈KL / chunk_bits⌉.

    ``pfr`` picks the smallest C whose chunks all fit a bound; bounding by the fullest
    chunk of the count we want makes it pick (about) that count instead of splitting
    until the heaviest coordinate sits alone.
    """
    d = kl.size
    c = min(d, max(1, math.ceil(float(kl.sum()) / chunk_bits)))
    top = float(np.bincount(np.arange(d) % c, kl, minlength=c).max())
    return max(top, float(kl.max()), 1e-9) * (1.0 + 1e-9)


def encode_step(mu_p: np.ndarray, mu_q: np.ndarray, beta: float, seed: int, step: int,
                cs: ChannelSettings, perm: np.ndarray) -> Tuple[np.ndarray, bytes, dict]:
    """Sample of q = N(mu_q, β²) given p = N(mu_p, β²), sent by PFR.

    ``mu_p``, ``mu_q`` are float64 arrays (any shape), ``beta`` the float64 step std,
    ``perm`` the file's :func:`permutation`. Returns ``(z_s float64 of mu_p's shape,
    section bytes, info)``; ``info`` holds ``kl_bits``, ``bits``, ``chunks``, ``candidates``,
    ``max_chunk_kl_bits``, ``capped``, ``shift_fraction``, ``bias_z_mean``, ``bias_z_var``,
    ``work`` and ``seconds``, documented in :data:`chansim.codecs.diffc.STEP_KEYS`.
    """
    t0 = time.perf_counter()
    mp, mq = mu_p.reshape(-1)[perm], mu_q.reshape(-1)[perm]
    kl = pfr.kl_bits(mq, beta, mp, beta)
    bound = chunk_bound(kl, cs.chunk_bits)
    sample, msg, info = pfr.encode_gaussian(mq, beta, mp, beta, seed, candidate_stream(step), mode=cs.mode,
                                            chunk_bits=bound, pad_bits=cs.pad_bits,
                                            max_candidates=cs.max_candidates, return_info=True)
    section = pfr.unframe(msg)
    z = np.empty(mp.size, np.float64)
    z[perm] = sample
    budgets = info["budgets"]
    out = {"kl_bits": float(kl.sum()), "bits": 8 * len(section), "chunks": info["chunks"],
           "max_chunk_kl_bits": float(info["kl_bits"].max()) if info["chunks"] else 0.0,
           "capped": int(np.count_nonzero(np.ceil(info["kl_bits"]) + cs.pad_bits > math.log2(cs.max_candidates))),
           "shift_fraction": info.get("shift_fraction", 1.0),
           "bias_z_mean": info.get("bias_z_mean", 0.0), "bias_z_var": info.get("bias_z_var", 1.0),
           "candidates": int(np.sum(info["examined"])), "work": _work(budgets, mp.size, info["chunks"]),
           "seconds": time.perf_counter() - t0}
    return z.reshape(mu_p.shape), section, out


def _work(budgets: np.ndarray, d: int, chunks: int) -> float:
    """Candidate coordinates the encoder may generate: Σ_c K_c · d_c (its cost model)."""
    if chunks == 0:
        return 0.0
    sizes = np.full(chunks, d // chunks, np.float64)
    sizes[: d % chunks] += 1  # chunk c holds coordinates j ≡ c (mod C)
    return float(np.dot(budgets.astype(np.float64), sizes))


def decode_step(section: bytes, mu_p: np.ndarray, beta: float, seed: int, step: int, cs: ChannelSettings,
                perm: np.ndarray) -> np.ndarray:
    """The z_s :func:`encode_step` produced, bit for bit, from its section and p."""
    mp = mu_p.reshape(-1)[perm]
    msg = pfr.frame(section, cs.mode, mp.size)
    try:
        sample = pfr.decode_gaussian(msg, mp, beta, seed, candidate_stream(step), shape=mp.shape)
    except FormatError as exc:
        raise FormatError(f"DiffC section {step}: {exc}") from None
    z = np.empty(mp.size, np.float64)
    z[perm] = sample
    return z.reshape(mu_p.shape)
