"""The DiffC codec (Theis et al. 2022; Vonderfecht & Liu 2025): Gaussian diffusion steps sent by channel simulation.

One unconditional Gaussian diffusion model gives every bit rate. Sender and receiver
start from the same z_T (Philox, :func:`.streams.initial_latent`); each section of
the file carries one reverse step γ_t → γ_s of a fixed schedule
(:mod:`.diffc_schedule`): the sender draws z_s from q(z_s | z_t, x) by chunked PFR
against the receiver's p(z_s | z_t) (:mod:`.diffc_channel`), and both follow the same
trajectory bit for bit. ``quality`` is the number of transmitted steps, so a
lower-quality file is a prefix of a higher one (``container.truncate``) and every prefix
decodes to a preview. The decoder reconstructs from the last received z_t
(:mod:`.diffc_reconstruct`): ``"mmse"``, ``"flow"`` (DDIM η = 0), ``"ancestral"`` or
``"interp"`` (λ between a posterior sample and the MMSE estimate).

Usage::

    import numpy as np
    from PIL import Image
    from chansim.codecs import DiffC

    codec = DiffC.pretrained()                      # shipped model, offline
    image = np.array(Image.open("kodim01.png").convert("RGB"))
    data = codec.compress(image, quality=12)        # bytes; codec.qualities lists 1 … 20
    recon = codec.decompress(data)                  # uint8[H, W, 3], probability flow
    sharp = codec.decompress(data, reconstruction="ancestral")
    for bits, preview in codec.decompress_progressive(data, "mmse"):
        ...                                         # z_T's preview, then one after every section
    for r in codec.evaluate(image, [4, 8, 12], reconstructions=("mmse", "flow")):
        r.quality, r.bits, r.images["flow"], r.info["steps"]   # one trajectory for all qualities

Channel settings: ``DiffC.pretrained(channel="unbiased" | "balanced" | "compact" | "latent-fast" |
"latent" | "latent-unbiased")``, a :class:`~chansim.codecs.diffc_channel.ChannelSettings`, or
``channel="auto"`` (a preset chosen per file from ``work_budget`` candidate·coordinates per step,
:func:`~chansim.codecs.diffc_channel.choose_preset`); they travel in the file, so the decoder needs
no options.

Pretrained models: ``DiffC.from_diffusers(path_or_id, prompt="", guidance=None, device=, dtype=)``
runs the same steps on Stable Diffusion 1.x/2.x, SDXL, SD3 and Flux latents (and on unconditional
``UNet2DModel`` pipelines, pixel or latent) through :mod:`chansim.diffusion.pretrained`. The
caption and the guidance setting are part of the message: stored in the file, counted in its
size, read back by the decoder. The network runs on ``device`` in ``dtype``; the channel
simulation stays on the CPU in float32, so a file decodes anywhere (another device or dtype than
the encoder's, recorded in the file, gives a :class:`RuntimeWarning` and a slightly different
image, never a desynchronised one).

Files are ``docs/format.md`` §6 containers; the settings blob and sections are §7 (settings
version 3; version 2, without the conditioning, still decodes; version 1, whose coordinate
permutation borrowed z_T's purpose, is refused with a :class:`~chansim.errors.FormatError`).

Deprecated for one release (DeprecationWarning): ``codec_id`` (use ``name``), :meth:`DiffC.encode`
(use :meth:`DiffC.evaluate`, whose ``info`` holds the same diagnostics) and
:meth:`DiffC.reconstruct_many` (use :meth:`DiffC.evaluate` or :meth:`DiffC.reconstruct`).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import container, streams
from ._pretrained import load_shipped
from .base import Codec, DeprecatedAttribute, Evaluation
from .diffc_channel import (DEFAULT_PRESET, DEFAULT_WORK_BUDGET, PRESETS, ChannelSettings, choose_preset,
                            coefficients, decode_step, encode_step, permutation)
from .diffc_reconstruct import KINDS as RECONSTRUCTIONS
from .diffc_schedule import DEFAULT_SCHEDULE, SCHEDULES, gamma_grid
from ..errors import FormatError

DEFAULT_MODEL = "diffc_default"
#: Default number of steps: schedule 1 reaches γ = −2 after 12 steps.
DEFAULT_QUALITY = 12
#: Version of the settings blob (docs/format.md §7). Version 1 (5 bytes, no version byte) drew the
#: coordinate permutation from ``stream_id("diffusion_init", 0, 1)``; version 2 draws it from its own
#: purpose (:func:`.streams.permutation`), so version-1 files are refused.
#: Version 3 appends the conditioning (docs/format.md §7): the encoder's network runtime, the
#: guidance setting and the caption, so a conditional model's file says what it was conditioned on
#: and the bytes are counted in the rate. Version-2 files (6 bytes) still decode: no caption, no
#: guidance, CPU float32.
SETTINGS_VERSION = 3
_V2_SETTINGS_BYTES = 6
_V1_SETTINGS_BYTES = 5
#: Longest caption a file may carry (UTF-8 bytes); text encoders read 77 (CLIP) to 512 (T5) tokens.
MAX_CAPTION_BYTES = 4096

#: Keys of one step's diagnostics (``Encoding.steps[i]``, ``Evaluation.info["steps"][i]``).
STEP_KEYS = {
    "step": "section index i (0-based): the step γ_t → γ_s",
    "gamma_t": "γ at the start of the step (float64)",
    "gamma_s": "γ at its end",
    "kl_bits": "KL(q ‖ p) of the step in bits, the ideal rate: Σ_j ½ m_j² / ln 2 with m = (μ_q − μ_p)/β",
    "bits": "bits of the step's section: 8 × its length in bytes (varint count, λ, L and the rANS indices)",
    "chunks": "number of PFR chunks C (permuted coordinate j is in chunk j mod C)",
    "max_chunk_kl_bits": "largest chunk KL in bits",
    "capped": "chunks whose candidate budget hit the cap 2^(chunk_bits + pad_bits + cap_bits)",
    "shift_fraction": "realised fraction Σ m·ξ / Σ m² of the mean shift, ξ = (z_s − μ_p)/β the sent sample "
                      "(1 for an exact channel; budgeted PFR and ORC fall short)",
    "bias_z_mean": "mean over chunks of the standardised projection (m_c·ξ_c − ‖m_c‖²)/‖m_c‖ (0 for an exact channel)",
    "bias_z_var": "its variance over chunks (1 for an exact channel)",
    "candidates": "candidates the encoder examined (summed over chunks; at most the budgets Σ_c K_c)",
    "work": "candidate coordinates the encoder may generate, Σ_c K_c·d_c (its cost model)",
    "seconds": "wall time of the channel simulation (PFR search and coding)",
    "network_seconds": "wall time of the denoiser call and the step's fused math",
    "preset": "the channel preset (a name in ``diffc_channel.PRESETS``, or ``\"custom\"``) whose settings the file "
              "carries; ``channel=\"auto\"`` picks it per file with ``diffc_channel.choose_preset`` from the work "
              "budget and the diffusion-space dimension",
}
#: ``DiffC(channel=AUTO, work_budget=W)``: the preset is chosen at compress time (see STEP_KEYS["preset"]).
AUTO = "auto"


@dataclass
class Encoding:
    """What the deprecated :meth:`DiffC.encode` returns: the file and the sender's own view of it.

    Attributes:
        data: the file (what :meth:`DiffC.compress` returns).
        z: the last latent z_q (float32 torch tensor in diffusion space, padded to the network's
            multiple; in latent mode the VAE's latents), bit-identical to the decoder's.
        gamma: its noise level γ_q (``codec.grid()[q]``).
        steps: one dict per section with the keys of :data:`STEP_KEYS` (KL, bits, PFR chunks,
            bias diagnostics, timings).
        seconds: wall time of the whole encoding.
    """

    data: bytes
    z: Any
    gamma: float
    steps: List[Dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0


class DiffC(Codec):
    """DiffC codec around a Gaussian denoiser (``schedule`` + ``denoise(z, γ) -> (x̂, ε̂)``); see
    :class:`chansim.codecs.base.Codec` for the contract.

    Attributes:
        model, schedule, model_id, card: as loaded.
        channel: :class:`ChannelSettings` used by :meth:`compress`, or ``"auto"``: each file gets
            ``diffc_channel.choose_preset(work_budget, dims)`` for its diffusion-space dimension.
        work_budget: with ``"auto"``, the encoder work allowed per step (candidate·coordinates).
        qualities: valid ``quality`` values (number of steps sent), lowest rate first.
        reconstructions: ``("flow", "mmse", "ancestral", "interp")``; ``"flow"`` is the default.
    """

    name = "diffc"
    reconstructions = RECONSTRUCTIONS
    codec_id = DeprecatedAttribute("DiffC.codec_id", "DiffC.name", "diffc")

    def __init__(self, model, model_id: str, card: Optional[Dict[str, Any]] = None, *,
                 channel: Union[str, ChannelSettings] = DEFAULT_PRESET, schedule_id: int = DEFAULT_SCHEDULE,
                 recon_steps: int = 8, prompt: str = "", guidance: Optional[float] = None,
                 work_budget: Optional[float] = None):
        if not (hasattr(model, "denoise") and hasattr(model, "schedule")):
            raise TypeError("DiffC needs a denoiser with .schedule and .denoise(z, gamma)")
        self.prompt, self.guidance = _check_conditioning(model, prompt, guidance)
        self.model, self.model_id, self.card = model, model_id, card
        self.schedule = model.schedule
        self.work_budget = None
        if channel == AUTO:
            self.work_budget = DEFAULT_WORK_BUDGET if work_budget is None else float(work_budget)
            if not self.work_budget > 0:
                raise ValueError(f"work_budget must be positive, got {work_budget!r}")
        elif work_budget is not None:
            raise ValueError('work_budget is for channel="auto"')
        elif isinstance(channel, str):
            if channel not in PRESETS:
                raise ValueError(f"unknown channel preset {channel!r}; known: {sorted(PRESETS) + [AUTO]}")
            channel = PRESETS[channel]
        if not isinstance(channel, ChannelSettings) and channel != AUTO:
            raise TypeError('channel must be a preset name, "auto" or a ChannelSettings')
        if schedule_id not in SCHEDULES:
            raise ValueError(f"unknown schedule id {schedule_id}; known: {sorted(SCHEDULES)}")
        if not 1 <= int(recon_steps) <= 1000:
            raise ValueError("recon_steps must be in [1, 1000]")
        self.channel, self.schedule_id, self.recon_steps = channel, schedule_id, int(recon_steps)
        self._grid = {schedule_id: gamma_grid(self.schedule, schedule_id)}

    @property
    def qualities(self) -> Tuple[int, ...]:
        """1 … N: the number of steps sent (N = the schedule's step count, 20 for the shipped model)."""
        return tuple(range(1, len(self._grid[self.schedule_id])))

    @property
    def default_quality(self) -> int:
        return min(DEFAULT_QUALITY, self.qualities[-1])

    @classmethod
    def pretrained(cls, name: str = DEFAULT_MODEL, **options) -> "DiffC":
        """The model shipped in the package (no network access)."""
        model, mid, card = load_shipped(name, "gaussian")
        return cls(model.eval(), mid, card, **options)

    @classmethod
    def from_diffusers(cls, source, *, prompt: str = "", guidance: Optional[float] = None, device="cpu",
                       dtype="float32", variant: Optional[str] = None, local_files_only: bool = False,
                       **options) -> "DiffC":
        """Zero-shot DiffC on a pretrained diffusers model (:func:`chansim.diffusion.pretrained.load`).

        ``source``: a local directory in ``save_pretrained`` layout (Stable Diffusion 1.x/2.x, SDXL,
        SD3, Flux, or an unconditional ``UNet2DModel`` pipeline, latent mode if it has a VAE), or a
        hub id when the machine can reach the hub. ``prompt``: the caption the encoder conditions on
        (stored in the file, counted in the rate; the decoder reads it from there). ``guidance``:
        classifier-free guidance scale (Flux-dev: its embedded guidance), stored in the file; None =
        the plain model. ``device`` and ``dtype`` (``"float32"``, ``"float16"``, ``"bfloat16"``)
        place the networks; the channel simulation stays on the CPU in float32, so a file decodes
        on any device and dtype (a different one than the encoder's gives a warning and a slightly
        different image, never a desynchronised one).
        """
        import torch

        from ..diffusion.pretrained import load

        dt = getattr(torch, dtype) if isinstance(dtype, str) and hasattr(torch, dtype) else dtype
        if not isinstance(dt, torch.dtype):
            raise ValueError(f"unknown dtype {dtype!r}")
        den = load(source, device=device, dtype=dt, variant=variant, local_files_only=local_files_only)
        # The channel stays "unbiased" unless asked (channel="auto" picks a latent preset by work budget).
        # Measured (BENCHMARKS.md "Latent presets"): on latent-like steps the latent presets spend
        # 1.31-1.44 bits per bit of KL against unbiased's 2.19 at the same shift fraction (0.96-0.98),
        # but on SD's 16384 latent coordinates "latent-fast" costs ~2^30 candidate-coordinates per step
        # (~2 s on one core), ~60x unbiased's channel and ~300x an assumed GPU network call; and no real
        # latent could be measured here (no weights). So "auto" is opt-in, not the default.
        return cls(den, den.model_id(), prompt=prompt, guidance=guidance, **options)

    # ---- helpers -------------------------------------------------------------------

    def grid(self, schedule_id: Optional[int] = None) -> List[float]:
        """The γ levels of a schedule: z_T at grid[0], after q steps z is at grid[q]."""
        sid = self.schedule_id if schedule_id is None else schedule_id
        if sid not in self._grid:
            self._grid[sid] = gamma_grid(self.schedule, sid)
        return self._grid[sid]

    @property
    def latent(self) -> bool:
        return getattr(self.model, "vae", None) is not None

    def _multiple(self) -> int:
        """Padding multiple so the network (and the VAE) see whole blocks."""
        if hasattr(self.model, "pad_multiple"):
            return int(self.model.pad_multiple())
        net = getattr(self.model, "net", None)
        return int(net.stride) if net is not None and hasattr(net, "stride") else 1

    def _space_shape(self, h: int, w: int) -> Tuple[int, ...]:
        """Shape of x in the diffusion space for a padded h × w image."""
        if hasattr(self.model, "space_shape"):
            return tuple(self.model.space_shape(h, w))
        return (1, 3, h, w)

    def _runtime(self) -> int:
        """The network's device/dtype code (:func:`chansim.diffusion.pretrained.runtime_code`)."""
        if hasattr(self.model, "runtime"):
            return int(self.model.runtime)
        from ..diffusion.pretrained.denoiser import runtime_code

        p = next(iter(self.model.parameters()), None)
        return 0 if p is None else runtime_code(p.device, p.dtype)

    def _condition(self, prompt: str, guidance: Optional[float]) -> None:
        """Condition the network on a file's caption and guidance (both sides call this first)."""
        if hasattr(self.model, "condition"):
            self.model.condition(prompt, guidance)

    def _settings(self, channel: Optional[ChannelSettings] = None) -> bytes:
        import struct

        from .. import varint

        caption = self.prompt.encode("utf-8")
        flags = 1 if self.guidance is not None else 0
        cs = self.channel if channel is None else channel
        out = bytes([SETTINGS_VERSION, self.schedule_id]) + cs.to_bytes() + bytes([self._runtime(), flags])
        if self.guidance is not None:
            out += struct.pack("<f", self.guidance)
        return out + varint.encode(len(caption)) + caption

    def _parse(self, data) -> Tuple[container.Container, ChannelSettings, List[float], Dict[str, Any]]:
        """(container, channel settings, γ grid, conditioning {"prompt", "guidance", "runtime"})."""
        import struct

        from .. import varint

        c = container.unpack(data, codec=self.name, model_id=self.model_id)
        s = c.settings
        if len(s) == _V1_SETTINGS_BYTES:
            raise FormatError("DiffC file of settings version 1 (written before the coordinate permutation got "
                              "its own Philox purpose): this chansim reads versions 2 and 3; re-encode the image")
        if len(s) < _V2_SETTINGS_BYTES or s[0] not in (2, SETTINGS_VERSION):
            raise FormatError(f"DiffC settings version {s[0] if s else '?'} ({len(s)} bytes); this chansim reads "
                              f"versions 2 and {SETTINGS_VERSION}")
        if s[0] == 2 and len(s) != _V2_SETTINGS_BYTES:
            raise FormatError(f"DiffC settings version 2 must be {_V2_SETTINGS_BYTES} bytes, got {len(s)}")
        if s[1] not in SCHEDULES:
            raise FormatError(f"DiffC file uses unknown schedule id {s[1]}")
        cs = ChannelSettings.from_bytes(s[2:_V2_SETTINGS_BYTES])
        cond: Dict[str, Any] = {"prompt": "", "guidance": None, "runtime": 0}
        if s[0] == SETTINGS_VERSION:
            if len(s) < _V2_SETTINGS_BYTES + 3:
                raise FormatError("DiffC settings truncated (no conditioning)")
            cond["runtime"], flags = s[6], s[7]
            if flags & ~1:
                raise FormatError(f"DiffC settings: unknown flags {flags:#x}")
            pos = 8
            if flags & 1:
                if len(s) < pos + 4:
                    raise FormatError("DiffC settings truncated (guidance)")
                g = struct.unpack_from("<f", s, pos)[0]
                if not 0.0 <= g <= 100.0:
                    raise FormatError(f"DiffC settings: guidance {g} outside [0, 100]")
                cond["guidance"], pos = float(g), pos + 4
            n, pos = varint.read(s, pos, "caption length", MAX_CAPTION_BYTES, "DiffC settings")
            if pos + n != len(s):
                raise FormatError(f"DiffC settings: caption of {n} bytes does not fill the {len(s) - pos} left")
            try:
                cond["prompt"] = bytes(s[pos:]).decode("utf-8")
            except UnicodeDecodeError:
                raise FormatError("DiffC settings: the caption is not valid UTF-8") from None
        if (cond["prompt"] or cond["guidance"] is not None) and not getattr(self.model, "conditional", False):
            raise FormatError("DiffC file carries a caption or guidance setting, but this model is unconditional")
        grid = self.grid(s[1])
        if len(c.sections) > len(grid) - 1:
            raise FormatError(f"DiffC file has {len(c.sections)} sections, schedule {s[1]} has {len(grid) - 1} steps")
        if c.height < 16 or c.width < 16:
            raise FormatError(f"DiffC file image size {c.width}×{c.height} (width×height) below 16×16")
        return c, cs, grid, cond

    # ---- the shared step -------------------------------------------------------------

    def _prior(self, z, g_t: float, g_s: float, cached=None):
        """(x̂, ε̂, μ_p, coefficient vector) of step γ_t → γ_s, computed identically by both sides."""
        import torch

        from ..diffusion.gaussian import step_coefficients
        from ..kernels import diffusion_steps as K

        x_hat, eps_hat = cached if cached is not None else self.model.denoise(z, g_t)
        coefs = coefficients(step_coefficients(g_s, g_t), z.device)
        _, mu_p, _ = K.diffc_decode(z, eps_hat, torch.zeros_like(z), coefs)
        return x_hat, eps_hat, mu_p, coefs

    # ---- encoder ---------------------------------------------------------------------

    def _encode(self, image: np.ndarray, quality, seed, keep: bool = False):
        """(Encoding, [(z_i, γ_i, denoise(z_i)) for i = 0 … q] if ``keep``): the sender's whole trajectory."""
        import torch

        from ..diffusion.determinism import deterministic_inference
        from ..diffusion.gaussian import step_coefficients
        from ..diffusion.likelihood import to_unit
        from ..kernels import diffusion_steps as K
        from .image import check_image, pad_to_multiple, to_batch

        img = check_image(image)
        h, w = img.shape[:2]
        q = self.check_quality(quality)
        seed = container.derive_seed(img.tobytes(), self.model_id) if seed is None else self.check_seed(seed)
        t0 = time.perf_counter()
        grid = self.grid()
        sections, steps, points = [], [], []
        self._condition(self.prompt, self.guidance)
        with deterministic_inference():
            xb = to_unit(to_batch(pad_to_multiple(img, self._multiple())))
            x = self.model.encode(xb) if self.latent else xb
            x = x.to(torch.float32).contiguous()
            z = streams.initial_latent(seed, tuple(x.shape))
            perm = permutation(seed, z.numel())
            if self.channel == AUTO:
                preset = choose_preset(self.work_budget, z.numel())
                cs = PRESETS[preset]
            else:
                cs = self.channel
                preset = next((k for k, v in PRESETS.items() if v == cs), "custom")
            for i in range(q):
                g_t, g_s = grid[i], grid[i + 1]
                ts = time.perf_counter()
                den = self.model.denoise(z, g_t)
                if keep:
                    points.append((z, g_t, den))
                coefs = coefficients(step_coefficients(g_s, g_t), z.device)
                _, mu_p, mu_q, _, _ = K.diffc_encode(z, den[1], x, coefs)
                beta = float(coefs[4].item())
                tn = time.perf_counter() - ts
                zs, sec, info = encode_step(mu_p.double().numpy(), mu_q.double().numpy(), beta, seed, i,
                                            cs, perm)
                z = torch.from_numpy(zs.astype(np.float32))
                info.update(step=i, gamma_t=g_t, gamma_s=g_s, network_seconds=tn, preset=preset)
                sections.append(sec)
                steps.append(info)
            if keep:
                points.append((z, grid[q], self.model.denoise(z, grid[q])))
        data = container.Container(self.name, container.model_tag(self.model_id), h, w, seed,
                                   self._settings(cs), sections).pack()
        return Encoding(data, z, grid[q], steps, time.perf_counter() - t0), points

    def encode(self, image: np.ndarray, quality: Optional[int] = None, *, seed: Optional[int] = None) -> Encoding:
        """Deprecated (one release): compress and keep the sender's trajectory end and per-step
        diagnostics. Use :meth:`evaluate` (``info["steps"]``) or :meth:`compress`.

        Returns an :class:`Encoding`: ``data`` (the file), ``z`` (the last latent z_q, float32,
        padded, bit-identical to the decoder's), ``gamma`` (its γ_q), ``steps`` (one dict per
        section, the keys below) and ``seconds`` (wall time).
        """
        warnings.warn("DiffC.encode is deprecated: use DiffC.evaluate (info['steps'] holds the diagnostics) "
                      "or DiffC.compress", DeprecationWarning, stacklevel=2)
        return self._encode(image, quality, seed)[0]

    def compress(self, image: np.ndarray, quality: Optional[int] = None, *, seed: Optional[int] = None) -> bytes:
        """uint8[H, W, 3] (H, W ≥ 16) → bytes. ``quality`` = steps sent (see :attr:`qualities`; default 12);
        ``seed`` (< 2^64) defaults to a hash of image and model."""
        return self._encode(image, quality, seed)[0].data

    def evaluate(self, image: np.ndarray, qualities: Optional[Sequence] = None, *,
                 reconstructions: Optional[Sequence[str]] = None, seed: Optional[int] = None,
                 lam: float = 0.5) -> List[Evaluation]:
        """:meth:`compress` and :meth:`decompress` for several qualities from **one** trajectory.

        The file at quality q is the first q sections of the file at the highest quality asked
        (qualities are prefixes), and the sender holds the decoder's z_q bit for bit, so one
        encoding to max(qualities) plus the reconstructions at each z_q give every entry — the
        same bytes and images as ``compress`` and ``decompress`` (tested). ``reconstructions``
        defaults to ``("flow",)``. Each entry's ``info`` holds ``"gamma"`` (γ_q), ``"steps"`` (one
        dict per section, the keys below, also :data:`STEP_KEYS`) and ``"kl_bits"`` (their sum).
        """
        from .diffc_reconstruct import reconstruct_many

        qualities = [self.check_quality(q) for q in (self.qualities if qualities is None else qualities)]
        kinds = _kinds(self, reconstructions)
        _check_recon("flow", lam)
        if not qualities:
            return []
        enc, points = self._encode(image, max(qualities), seed, keep=True)
        c = container.unpack(enc.data)
        from ..diffusion.determinism import deterministic_inference

        out = []
        for q in qualities:
            data = container.Container(self.name, c.model_tag, c.height, c.width, c.seed, c.settings,
                                       c.sections[:q]).pack()
            z, g, den = points[q]
            with deterministic_inference():
                images = reconstruct_many(self.model, z, g, c.height, c.width, c.seed, kinds, lam=lam,
                                          steps=self.recon_steps, gamma_end=float(self.schedule.gamma_min),
                                          denoised=den) if kinds else {}
            steps = enc.steps[:q]
            out.append(Evaluation(q, data, images, {"gamma": g, "steps": steps,
                                                    "kl_bits": float(sum(s["kl_bits"] for s in steps))}))
        return out

    # ---- decoder ---------------------------------------------------------------------

    def trajectory(self, data) -> Iterator[Tuple[int, Any, float, Any]]:
        """Yield ``(sections_used, z, γ, (x̂, ε̂) at z)`` for the start and after every section."""
        import torch

        from ..diffusion.determinism import stepwise

        c, cs, grid, cond = self._parse(data)
        if cond["runtime"] != self._runtime():
            from ..diffusion.pretrained.denoiser import describe_runtime

            warnings.warn(f"DiffC file was encoded with the network on {describe_runtime(cond['runtime'])}, "
                          f"decoding on {describe_runtime(self._runtime())}: the decoder stays in sync but the "
                          "reconstruction can differ slightly from the encoder's", RuntimeWarning, stacklevel=3)
        self._condition(cond["prompt"], cond["guidance"])

        def work():  # each step runs inside deterministic_inference, every yield outside it (stepwise)
            h, w = c.height, c.width
            m = self._multiple()
            shape = self._space_shape(h + (-h) % m, w + (-w) % m)
            z = streams.initial_latent(c.seed, shape)
            perm = permutation(c.seed, z.numel())
            for i in range(len(c.sections) + 1):
                den = self.model.denoise(z, grid[i])
                yield i, z, grid[i], den
                if i == len(c.sections):
                    break
                _, _, mu_p, coefs = self._prior(z, grid[i], grid[i + 1], cached=den)
                beta = float(coefs[4].item())
                zs = decode_step(c.sections[i], mu_p.double().numpy(), beta, c.seed, i, cs, perm)
                z = torch.from_numpy(zs.astype(np.float32))

        yield from stepwise(work())

    def reconstruct(self, z, gamma: float, height: int, width: int, seed: int, reconstruction: str = "flow",
                    lam: float = 0.5, denoised=None) -> np.ndarray:
        """uint8 image from a trajectory point (the same function for the encoder and the decoder)."""
        from ..diffusion.determinism import deterministic_inference
        from .diffc_reconstruct import reconstruct

        with deterministic_inference():
            return reconstruct(self.model, z, gamma, height, width, seed, reconstruction, lam=lam,
                               steps=self.recon_steps, gamma_end=float(self.schedule.gamma_min), denoised=denoised)

    def reconstruct_many(self, z, gamma: float, height: int, width: int, seed: int, kinds=RECONSTRUCTIONS,
                         lam: float = 0.5, denoised=None) -> Dict[str, np.ndarray]:
        """Deprecated (one release): {kind: image} for several reconstructions of one trajectory
        point (shares the ancestral sample). Use :meth:`evaluate`, or :meth:`reconstruct` per kind."""
        from ..diffusion.determinism import deterministic_inference
        from .diffc_reconstruct import reconstruct_many

        warnings.warn("DiffC.reconstruct_many is deprecated: use DiffC.evaluate or DiffC.reconstruct",
                      DeprecationWarning, stacklevel=2)
        with deterministic_inference():
            return reconstruct_many(self.model, z, gamma, height, width, seed, tuple(kinds), lam=lam,
                                    steps=self.recon_steps, gamma_end=float(self.schedule.gamma_min),
                                    denoised=denoised)

    def decompress(self, data, reconstruction: Optional[str] = None, lam: float = 0.5) -> np.ndarray:
        """bytes → uint8[H, W, 3]; ``reconstruction`` from :attr:`reconstructions` (default ``"flow"``)."""
        reconstruction = _kinds(self, (reconstruction,))[0] if reconstruction is not None else "flow"
        _check_recon(reconstruction, lam)
        last = None
        for last in self.trajectory(data):
            pass
        c = container.unpack(data)
        _, z, g, den = last
        return self.reconstruct(z, g, c.height, c.width, c.seed, reconstruction, lam, den)

    def decompress_progressive(self, data, reconstruction: Optional[str] = None,
                               lam: float = 0.5) -> Iterator[Tuple[int, np.ndarray]]:
        """Yield ``(bits, image)`` for z_T and after every section, coarse to fine.

        ``bits`` is 8 × the length of the valid file that holds exactly those sections
        (``container.truncate(data, i)``: header, i sections, CRC), the size a user would store
        for that preview (:meth:`chansim.codecs.base.Codec.decompress_progressive`)."""
        reconstruction = _kinds(self, (reconstruction,))[0] if reconstruction is not None else "flow"
        _check_recon(reconstruction, lam)
        c = None
        for i, z, g, den in self.trajectory(data):
            if c is None:
                c = container.unpack(data)
            yield 8 * len(container.truncate(data, i)), self.reconstruct(z, g, c.height, c.width, c.seed,
                                                                          reconstruction, lam, den)

    def __repr__(self) -> str:
        return f"DiffC(model_id={self.model_id[:16]}…, channel={self.channel}, schedule={self.schedule_id})"


def _step_keys_doc() -> str:
    return "\n\n        Keys of a step's diagnostics:\n\n" + "\n".join(
        f"        - ``{k}``: {v}" for k, v in STEP_KEYS.items()) + "\n"


# One list of the step keys (STEP_KEYS) in every docstring that hands them out (docs/api.md).
for _f in (DiffC.evaluate, DiffC.encode):
    _f.__doc__ = _f.__doc__.rstrip() + _step_keys_doc()
Encoding.__doc__ = Encoding.__doc__.rstrip() + _step_keys_doc().replace("        ", "    ")
del _f


def _kinds(codec, reconstructions) -> Tuple[str, ...]:
    kinds = tuple(codec.reconstructions[:1] if reconstructions is None else reconstructions)
    codec.check_reconstructions(kinds)
    return kinds


def _check_recon(reconstruction: str, lam: float) -> None:
    if reconstruction not in RECONSTRUCTIONS:
        raise ValueError(f"reconstruction must be one of {RECONSTRUCTIONS}, got {reconstruction!r}")
    if not 0.0 <= float(lam) <= 1.0:
        raise ValueError("lam must lie in [0, 1]")


def _check_conditioning(model, prompt: str, guidance: Optional[float]) -> Tuple[str, Optional[float]]:
    """Validated (prompt, guidance): only a conditional model takes them; the caption must fit the file."""
    import struct

    if not isinstance(prompt, str):
        raise TypeError("prompt must be a str")
    if len(prompt.encode("utf-8")) > MAX_CAPTION_BYTES:
        raise ValueError(f"prompt longer than {MAX_CAPTION_BYTES} UTF-8 bytes")
    if guidance is not None:
        guidance = float(guidance)
        if not 0.0 <= guidance <= 100.0:
            raise ValueError(f"guidance must lie in [0, 100], got {guidance}")
        guidance = struct.unpack("<f", struct.pack("<f", guidance))[0]  # the float32 the file stores
    if (prompt or guidance is not None) and not getattr(model, "conditional", False):
        raise ValueError("this model is unconditional: it takes no prompt or guidance")
    return prompt, guidance
