"""The DiffC codec (Theis et al. 2022; Vonderfecht & Liu 2025): Gaussian diffusion steps sent by channel simulation.

One unconditional Gaussian diffusion model gives every bit rate. Sender and receiver
start from the same z_T (Philox, ``stream_id("diffusion_init", 0, 0)``); each section of
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
    for bits, preview in codec.decompress_progressive(data):
        ...                                         # a preview after every section

Channel settings: ``DiffC.pretrained(channel="unbiased" | "balanced" | "compact")`` or a
:class:`~chansim.codecs.diffc_channel.ChannelSettings`; they travel in the file, so the
decoder needs no options. Latent mode: a :class:`~chansim.diffusion.diffusers_adapter.DiffusersDenoiser`
with a VAE (``DiffC.from_diffusers(path)`` on a pipeline directory with ``vae/``) runs the
same steps on the VAE's latents. Files are ``docs/format.md`` §6 containers; the settings
blob and sections are §7.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

import numpy as np

from . import container
from ._pretrained import load_shipped
from .diffc_channel import DEFAULT_PRESET, PRESETS, ChannelSettings, decode_step, encode_step, permutation
from .diffc_reconstruct import KINDS as RECONSTRUCTIONS
from .diffc_schedule import DEFAULT_SCHEDULE, SCHEDULES, gamma_grid
from ..errors import FormatError

DEFAULT_MODEL = "diffc_default"
#: Default number of steps: schedule 1 reaches γ = −2 after 12 steps.
DEFAULT_QUALITY = 12
_SETTINGS_BYTES = 5


@dataclass
class Encoding:
    """What :meth:`DiffC.encode` returns: the file and the sender's own view of it."""

    data: bytes
    z: Any  # the last z (torch tensor, diffusion space, padded)
    gamma: float  # its noise level
    steps: List[Dict[str, float]] = field(default_factory=list)  # per-step channel diagnostics
    seconds: float = 0.0


class DiffC:
    """DiffC codec around a Gaussian denoiser (``schedule`` + ``denoise(z, γ) -> (x̂, ε̂)``).

    Attributes:
        model, schedule, model_id, card: as loaded.
        channel: :class:`ChannelSettings` used by :meth:`compress`.
        qualities: valid ``quality`` values (number of steps), lowest rate first.
    """

    codec_id = "diffc"

    def __init__(self, model, model_id: str, card: Optional[Dict[str, Any]] = None, *,
                 channel: Union[str, ChannelSettings] = DEFAULT_PRESET, schedule_id: int = DEFAULT_SCHEDULE,
                 recon_steps: int = 8):
        if not (hasattr(model, "denoise") and hasattr(model, "schedule")):
            raise TypeError("DiffC needs a denoiser with .schedule and .denoise(z, gamma)")
        self.model, self.model_id, self.card = model, model_id, card
        self.schedule = model.schedule
        if isinstance(channel, str):
            if channel not in PRESETS:
                raise ValueError(f"unknown channel preset {channel!r}; known: {sorted(PRESETS)}")
            channel = PRESETS[channel]
        if not isinstance(channel, ChannelSettings):
            raise TypeError("channel must be a preset name or a ChannelSettings")
        if schedule_id not in SCHEDULES:
            raise ValueError(f"unknown schedule id {schedule_id}; known: {sorted(SCHEDULES)}")
        if not 1 <= int(recon_steps) <= 1000:
            raise ValueError("recon_steps must be in [1, 1000]")
        self.channel, self.schedule_id, self.recon_steps = channel, schedule_id, int(recon_steps)
        self._grid = {schedule_id: gamma_grid(self.schedule, schedule_id)}
        self.qualities = list(range(1, len(self._grid[schedule_id])))

    @classmethod
    def pretrained(cls, name: str = DEFAULT_MODEL, **options) -> "DiffC":
        """The model shipped in the package (no network access)."""
        model, mid, card = load_shipped(name, "gaussian")
        return cls(model.eval(), mid, card, **options)

    @classmethod
    def from_diffusers(cls, path, **options) -> "DiffC":
        """Zero-shot DiffC on a diffusers model saved in a local directory (latent mode if it has a VAE)."""
        from ..diffusion.diffusers_adapter import DiffusersDenoiser

        den = DiffusersDenoiser.from_pretrained(path)
        return cls(den, den.model_id(), **options)

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
        net = getattr(self.model, "net", None)
        if net is not None and hasattr(net, "stride"):
            return int(net.stride)
        unet = getattr(self.model, "unet", None)
        levels = len(getattr(getattr(unet, "config", None), "down_block_types", ()) or ()) if unet is not None else 0
        mult = 2 ** max(0, levels - 1)
        vae = getattr(self.model, "vae", None)
        if vae is not None:
            mult *= 2 ** max(0, len(vae.config.block_out_channels) - 1)
        return max(1, mult)

    def _space_shape(self, h: int, w: int) -> Tuple[int, ...]:
        """Shape of x in the diffusion space for a padded h × w image."""
        if not self.latent:
            return (1, 3, h, w)
        vae = self.model.vae
        f = 2 ** max(0, len(vae.config.block_out_channels) - 1)
        return (1, int(vae.config.latent_channels), h // f, w // f)

    def _settings(self) -> bytes:
        return bytes([self.schedule_id]) + self.channel.to_bytes()

    def _parse(self, data) -> Tuple[container.Container, ChannelSettings, List[float]]:
        c = container.unpack(data, codec=self.codec_id, model_id=self.model_id)
        s = c.settings
        if len(s) != _SETTINGS_BYTES:
            raise FormatError(f"DiffC settings must be {_SETTINGS_BYTES} bytes, got {len(s)}")
        if s[0] not in SCHEDULES:
            raise FormatError(f"DiffC file uses unknown schedule id {s[0]}")
        cs = ChannelSettings.from_bytes(s[1:])
        grid = self.grid(s[0])
        if len(c.sections) > len(grid) - 1:
            raise FormatError(f"DiffC file has {len(c.sections)} sections, schedule {s[0]} has {len(grid) - 1} steps")
        if c.height < 16 or c.width < 16:
            raise FormatError(f"DiffC file image shape {c.height}×{c.width} below 16×16")
        return c, cs, grid

    # ---- the shared step -------------------------------------------------------------

    def _prior(self, z, g_t: float, g_s: float, cached=None):
        """(x̂, ε̂, μ_p, coefficient vector) of step γ_t → γ_s, computed identically by both sides."""
        import torch

        from ..diffusion.gaussian import step_coefficients
        from ..diffusion.steps import diffc_coefficients
        from ..kernels import diffusion_steps as K

        x_hat, eps_hat = cached if cached is not None else self.model.denoise(z, g_t)
        coefs = diffc_coefficients(step_coefficients(g_s, g_t), z.device)
        _, mu_p, _ = K.diffc_decode(z, eps_hat, torch.zeros_like(z), coefs)
        return x_hat, eps_hat, mu_p, coefs

    def _z_init(self, seed: int, shape):
        import torch

        from .. import prng

        n = int(np.prod(shape))
        return torch.from_numpy(prng.normal(seed, prng.stream_id("diffusion_init", 0, 0), 0, n)).reshape(shape)

    # ---- encoder ---------------------------------------------------------------------

    def encode(self, image: np.ndarray, quality: Optional[int] = None, *, seed: Optional[int] = None) -> Encoding:
        """Compress and keep the sender's trajectory end and per-step diagnostics."""
        import torch

        from ..diffusion.determinism import deterministic_inference
        from ..diffusion.gaussian import step_coefficients
        from ..diffusion.likelihood import to_unit
        from ..diffusion.steps import diffc_coefficients
        from ..kernels import diffusion_steps as K
        from .image import check_image, pad_to_multiple, to_batch

        img = check_image(image)
        h, w = img.shape[:2]
        q = min(DEFAULT_QUALITY, self.qualities[-1]) if quality is None else quality
        if q not in self.qualities:
            raise ValueError(f"quality must be one of {self.qualities[0]} … {self.qualities[-1]}, got {quality!r}")
        seed = container.derive_seed(img.tobytes(), self.model_id) if seed is None else int(seed)
        if not 0 <= seed < 1 << 64:
            raise ValueError("seed must be in [0, 2^64)")
        t0 = time.perf_counter()
        grid = self.grid()
        sections, steps = [], []
        with deterministic_inference():
            xb = to_unit(to_batch(pad_to_multiple(img, self._multiple())))
            x = self.model.encode(xb) if self.latent else xb
            x = x.to(torch.float32).contiguous()
            z = self._z_init(seed, tuple(x.shape))
            perm = permutation(seed, z.numel())
            for i in range(q):
                g_t, g_s = grid[i], grid[i + 1]
                ts = time.perf_counter()
                x_hat, eps_hat = self.model.denoise(z, g_t)
                coefs = diffc_coefficients(step_coefficients(g_s, g_t), z.device)
                _, mu_p, mu_q, _, _ = K.diffc_encode(z, eps_hat, x, coefs)
                beta = float(coefs[4].item())
                tn = time.perf_counter() - ts
                zs, sec, info = encode_step(mu_p.double().numpy(), mu_q.double().numpy(), beta, seed, i,
                                            self.channel, perm)
                z = torch.from_numpy(zs.astype(np.float32))
                info.update(step=i, gamma_t=g_t, gamma_s=g_s, network_seconds=tn)
                sections.append(sec)
                steps.append(info)
        data = container.Container(self.codec_id, container.model_tag(self.model_id), h, w, seed,
                                   self._settings(), sections).pack()
        return Encoding(data, z, grid[q], steps, time.perf_counter() - t0)

    def compress(self, image: np.ndarray, quality: Optional[int] = None, *, seed: Optional[int] = None) -> bytes:
        """uint8[H, W, 3] (H, W ≥ 16) → bytes. ``quality`` = steps sent (see :attr:`qualities`)."""
        return self.encode(image, quality, seed=seed).data

    # ---- decoder ---------------------------------------------------------------------

    def trajectory(self, data) -> Iterator[Tuple[int, Any, float, Any]]:
        """Yield ``(sections_used, z, γ, (x̂, ε̂) at z)`` for the start and after every section."""
        import torch

        from ..diffusion.determinism import deterministic_inference

        c, cs, grid = self._parse(data)
        with deterministic_inference():
            h, w = c.height, c.width
            m = self._multiple()
            shape = self._space_shape(h + (-h) % m, w + (-w) % m)
            z = self._z_init(c.seed, shape)
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
        """{kind: image} for several reconstructions of one trajectory point (shares the ancestral sample)."""
        from ..diffusion.determinism import deterministic_inference
        from .diffc_reconstruct import reconstruct_many

        with deterministic_inference():
            return reconstruct_many(self.model, z, gamma, height, width, seed, tuple(kinds), lam=lam,
                                    steps=self.recon_steps, gamma_end=float(self.schedule.gamma_min),
                                    denoised=denoised)

    def decompress(self, data, reconstruction: str = "flow", lam: float = 0.5) -> np.ndarray:
        """bytes → uint8[H, W, 3]; ``reconstruction`` in :data:`RECONSTRUCTIONS`."""
        _check_recon(reconstruction, lam)
        c = container.unpack(data)  # cheap header read for the shape and seed (fully checked by trajectory)
        last = None
        for last in self.trajectory(data):
            pass
        _, z, g, den = last
        return self.reconstruct(z, g, c.height, c.width, c.seed, reconstruction, lam, den)

    def decompress_progressive(self, data, reconstruction: str = "mmse",
                               lam: float = 0.5) -> Iterator[Tuple[int, np.ndarray]]:
        """Yield ``(bits_used, image)`` after every section (bits of the prefix file that holds it)."""
        _check_recon(reconstruction, lam)
        c = container.unpack(data)
        for i, z, g, den in self.trajectory(data):
            if i == 0:
                continue
            bits = 8 * len(container.Container(c.codec, c.model_tag, c.height, c.width, c.seed, c.settings,
                                               c.sections[:i]).pack())
            yield bits, self.reconstruct(z, g, c.height, c.width, c.seed, reconstruction, lam, den)

    def __repr__(self) -> str:
        return f"DiffC(model_id={self.model_id[:16]}…, channel={self.channel}, schedule={self.schedule_id})"


def _check_recon(reconstruction: str, lam: float) -> None:
    if reconstruction not in RECONSTRUCTIONS:
        raise ValueError(f"reconstruction must be one of {RECONSTRUCTIONS}, got {reconstruction!r}")
    if not 0.0 <= float(lam) <= 1.0:
        raise ValueError("lam must lie in [0, 1]")
