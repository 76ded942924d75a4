"""The UQDM codec (Yang, Will & Mandt 2025): progressive and lossless coding by universal quantization.

::

    import numpy as np
    from PIL import Image
    from chansim.codecs import UQDM

    codec = UQDM.pretrained()
    image = np.asarray(Image.open("kodim01.png").convert("RGB"))
    data = codec.compress(image, quality=codec.qualities[3])      # or quality="lossless"
    out = codec.decompress(data)                                   # uint8[H, W, 3], "mmse"
    for bits, preview in codec.decompress_progressive(data, reconstruction="mmse"):
        ...                                                        # z_T's preview, then one per section
    for r in codec.evaluate(image, reconstructions=("mmse", "ancestral")):
        r.quality, r.bits, r.images["mmse"]                        # every quality from T network calls

How a file is made (docs/format.md §6 and §8):

- z_T ~ N(0, I) comes from common randomness (seed of the file, :mod:`.streams`): 0 bits.
- Step i = 0…T−1 (t_i → t_{i+1}) sends z_{t_{i+1}} by dithered quantization relative to the
  prior mean μ_p of p(z_s | z_t) = logistic(μ_p, s) ⋆ U(±Δ/2); the indices are rANS-coded under
  that prior in one native call per step (:mod:`.uqdm_step`, where all of a step lives). One
  container section per step, each with a CRC32 of the reconstructed latent, so a receiver whose
  network output differs raises :class:`~chansim.errors.FormatError` instead of decoding a wrong image.
- Lossless mode adds one section: the pixels coded exactly under the discretized
  p(x | z_0) (:mod:`.uqdm_lossless`).

Quality knob (:attr:`UQDM.qualities`): the model's T steps give only T rates, so a quality is
(number of steps n, fraction m/64): the first n − 1 steps are sent whole and the last one for
the pixels whose rank in an 8×8 Bayer tile is below m (all three channels of a pixel); the
step's rate is the sent fraction of its full rate. Where nothing was sent the decoder fills in
μ_p, the prior mean, for the ``"mmse"`` and ``"flow"`` reconstructions, and a draw from the
model's p(z_s | z_t) (common randomness, the network's own logistic scale) for ``"ancestral"``,
whose later steps are draws from the same reverse process: a sample of the model's reverse
process given what was sent (earlier versions drew the fill-in with the entropy table's
snapped scale, up to 6.8 % off; see :func:`.uqdm_step.fill_in`). (Filling in draws for ``"mmse"`` too
lowered PSNR below the previous whole step on Kodak crops; a wider final step Δ' > Δ was
rejected as well: a T = 4 model is trained at its four noise levels only, and its denoiser
fails on latents between them.)

Reconstructions (``reconstruction=``, :attr:`UQDM.reconstructions`): ``"mmse"`` (the default) —
the network's x̂ at the current latent (the MMSE estimate, best PSNR); ``"ancestral"`` — the
remaining steps sampled from the model's reverse process with decoder-side common randomness
(a realistic sample); ``"flow"`` — the remaining steps by the deterministic probability-flow
(DDIM) update. After all T steps all three return the mode of p(x | z_0) (no network call).

Deprecated for one release (DeprecationWarning): the reconstruction name ``"denoise"`` (now
``"mmse"``), ``codec_id`` (now ``name``) and :meth:`UQDM.compress_many` (now :meth:`UQDM.evaluate`).
"""

from __future__ import annotations

import copy
import warnings
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..diffusion.determinism import CODEC_THREADS, deterministic_inference, stepwise
from ..diffusion.gaussian import alpha_sigma
from ..diffusion.likelihood import to_pixels, to_unit
from ..diffusion.samplers import ddim_step
from ..errors import FormatError
from . import container as C
from . import uqdm_lossless, uqdm_step
from ._pretrained import load_shipped
from .base import Codec, DeprecatedAttribute, Evaluation
from .image import check_image, from_batch, to_batch

DEFAULT_MODEL = "uqdm_default"
SETTINGS_BYTES = 4
RECONSTRUCTIONS = ("mmse", "ancestral", "flow")
#: Old reconstruction names still accepted for one release (DeprecationWarning).
DEPRECATED_RECONSTRUCTIONS = {"denoise": "mmse"}
LOSSLESS = "lossless"
SMALL_IMAGE = 128 * 128


def default_quality_table(steps: int) -> List[Tuple[int, int]]:
    """(steps sent, fraction of the last one in 64ths) per quality, lowest rate first.

    The first step (≈ 0.1 bit/dim) at ¼, ½ and all of its pixels; every later step at
    ⅛, ¼, ½, ¾ and all of them.
    """
    table = [(1, 16), (1, 32), (1, 64)]
    for n in range(2, steps + 1):
        table += [(n, m) for m in (8, 16, 32, 48, 64)]
    return table


class UQDM(Codec):
    """UQDM image codec around a :class:`chansim.diffusion.UQDMModel`; see
    :class:`chansim.codecs.base.Codec` for the contract.

    Attributes:
        model: the UQDM model (float32, eval mode, CPU).
        schedule: the model's γ(t).
        steps: number of diffusion steps T.
        model_id: SHA-256 hex of the weights + config.
        card: the model card (dict) for shipped models, else None.
        qualities: valid ``quality`` values (1, 2, …), lowest rate first; ``"lossless"`` is
            accepted as well (or ``lossless=True``).
        reconstructions: ``("mmse", "ancestral", "flow")``; ``"mmse"`` is the default.
    """

    name = "uqdm"
    reconstructions = RECONSTRUCTIONS
    codec_id = DeprecatedAttribute("UQDM.codec_id", "UQDM.name", "uqdm")

    def __init__(self, model, model_id: str, card: Optional[Dict[str, Any]] = None,
                 threads: Optional[int] = CODEC_THREADS):
        if getattr(model, "kind", None) != "uqdm":
            raise TypeError("UQDM needs a chansim.diffusion.UQDMModel")
        self.model, self.model_id, self.card = model, model_id, card
        self.schedule = model.schedule
        self.steps = model.steps
        self.threads = threads
        self.quality_table = default_quality_table(self.steps)
        self._lossless_table = None
        self._infer = None

    @classmethod
    def pretrained(cls, name: str = DEFAULT_MODEL) -> "UQDM":
        """The model shipped in the package (no network access)."""
        return cls(*load_shipped(name, "uqdm"))

    def gammas(self) -> List[float]:
        """γ(t_i) for t_i = 1 − i/T, i = 0..T, as float64 Python floats (the values both sides use)."""
        return [float(g) for g in self.model.gammas().detach()]

    @property
    def qualities(self) -> Sequence[int]:
        return tuple(range(1, len(self.quality_table) + 1))

    @property
    def default_quality(self) -> int:
        return len(self.quality_table) // 2

    def __repr__(self) -> str:
        return f"UQDM(steps={self.steps}, model_id={self.model_id[:16]}…)"

    # ---- settings ---------------------------------------------------------------------------

    def _plan(self, quality, lossless: bool) -> Tuple[int, int, bool]:
        if quality == LOSSLESS or lossless:
            if quality not in (None, LOSSLESS, len(self.quality_table)):
                raise ValueError("lossless mode sends every step whole: leave quality unset")
            return self.steps, uqdm_step.FRACTION_UNITS, True
        if quality is None:
            quality = self.default_quality
        if isinstance(quality, bool) or not isinstance(quality, (int, np.integer)) or \
                not 1 <= quality <= len(self.quality_table):
            raise ValueError(f"quality must be one of {self.qualities} or {LOSSLESS!r}, got {quality!r}")
        n, j = self.quality_table[int(quality) - 1]
        return n, j, False

    def _settings(self, n: int, j: int, lossless: bool) -> bytes:
        return bytes([self.steps, n, j, int(lossless)])

    def _parse_settings(self, c: C.Container) -> Tuple[int, int, bool]:
        s = c.settings
        if len(s) != SETTINGS_BYTES:
            raise FormatError(f"UQDM settings must be {SETTINGS_BYTES} bytes, got {len(s)}")
        steps, n, m, flags = s
        if steps != self.steps:
            raise FormatError(f"file made for a {steps}-step UQDM model, this model has {self.steps} steps")
        if not 1 <= n <= steps or not 1 <= m <= uqdm_step.FRACTION_UNITS or flags > 1:
            raise FormatError(f"corrupted UQDM settings (steps sent {n}, fraction {m}/64, flags {flags})")
        lossless = bool(flags)
        if lossless and (n != steps or m != uqdm_step.FRACTION_UNITS):
            raise FormatError("corrupted UQDM settings: lossless needs every step whole")
        if len(c.sections) > n + lossless:
            raise FormatError(f"UQDM file holds {len(c.sections)} sections, its settings allow {n + lossless}")
        return n, m, lossless

    def _steps(self, n: int, j: int) -> List[uqdm_step.Step]:
        g = self.gammas()
        return [uqdm_step.Step.make(g, i, j if i == n - 1 else uqdm_step.FRACTION_UNITS) for i in range(n)]

    def _threads(self, h: int, w: int) -> Optional[int]:
        """Inference threads for an image: one below SMALL_IMAGE pixels (a second thread only adds
        synchronisation there), else ``threads``. Both sides derive it from the shape."""
        if self.threads is None:
            return None
        return 1 if h * w <= SMALL_IMAGE else self.threads

    def _inference(self):
        """The model as both sides run it: a copy with channels-last weights, made at first use
        (oneDNN's convolutions are ~10 % faster with both weights and input in that layout than
        with the input alone; ``self.model`` itself is left untouched)."""
        if self._infer is None:
            m = copy.deepcopy(self.model).eval()
            m.net.to(memory_format=torch.channels_last)
            self._infer = m
        return self._infer

    def _table(self):
        if self._lossless_table is None:
            self._lossless_table = uqdm_lossless.table(self.gammas()[-1])
        return self._lossless_table

    def _reconstruction(self, reconstruction: Optional[str]) -> str:
        """The canonical name of ``reconstruction`` (None → the default), warning for an old name."""
        if reconstruction is None:
            return self.reconstructions[0]
        if reconstruction in DEPRECATED_RECONSTRUCTIONS:
            new = DEPRECATED_RECONSTRUCTIONS[reconstruction]
            warnings.warn(f"UQDM reconstruction {reconstruction!r} is deprecated: use {new!r}",
                          DeprecationWarning, stacklevel=3)
            return new
        if reconstruction not in RECONSTRUCTIONS:
            raise ValueError(f"reconstruction must be one of {RECONSTRUCTIONS}, got {reconstruction!r}")
        return reconstruction

    def _seed(self, image: np.ndarray, seed) -> int:
        return C.derive_seed(image.tobytes(), self.model_id) if seed is None else self.check_seed(seed)

    # ---- public API -------------------------------------------------------------------------

    def compress(self, image, quality=None, *, lossless: bool = False, seed: Optional[int] = None) -> bytes:
        """uint8[H, W, 3] (H, W ≥ 16) → bytes. ``quality`` from :attr:`qualities` (default: the
        middle one) or ``"lossless"``; ``seed`` (< 2^64) defaults to a hash of image and model."""
        image = check_image(image)
        n, j, lossless = self._plan(quality, lossless)
        h, w = image.shape[:2]
        seed = self._seed(image, seed)
        x_raw = to_batch(image)
        x = to_unit(x_raw)
        sections = []
        with deterministic_inference(self._threads(h, w)):
            z = uqdm_step.initial_latent(seed, x.shape)
            for step in self._steps(n, j):
                z, section = uqdm_step.encode(self._inference(), z, x, step, seed)
                sections.append(section)
            if lossless:
                sections.append(uqdm_lossless.encode(x_raw.numpy().astype(np.uint8), z, self.gammas()[-1],
                                                     self._table()))
        return C.Container(self.name, C.model_tag(self.model_id), h, w, seed,
                           self._settings(n, j, lossless), sections).pack()

    def evaluate(self, image, qualities: Optional[Sequence] = None, *,
                 reconstructions: Optional[Sequence[str]] = None, seed: Optional[int] = None) -> List[Evaluation]:
        """:meth:`compress` and :meth:`decompress` for each of ``qualities`` (default: all;
        ``"lossless"`` allowed), sharing the network passes.

        Files at different qualities share their whole steps, and a partial step codes a subset
        of the whole step's indices, so T network calls serve every file. The sender holds the
        latent the receiver rebuilds (the section checksums guarantee it) and applies the same
        reconstruction, so each entry's ``images`` are what :meth:`decompress` returns for its
        file (tested, also in a separate process). ``reconstructions`` defaults to ``("mmse",)``;
        a lossless file's images are the image itself. ``info`` holds ``"steps"`` (n), ``"fraction"``
        (m/64 of the last step) and ``"lossless"``.
        """
        image = check_image(image)
        qualities = list(self.qualities if qualities is None else qualities)
        kinds = tuple(self._reconstruction(k) for k in (reconstructions or self.reconstructions[:1]))
        return self._evaluate(image, qualities, kinds, seed)

    def _evaluate(self, image, qualities, kinds, seed) -> List[Evaluation]:
        plans = [self._plan(q, q == LOSSLESS) for q in qualities]
        h, w = image.shape[:2]
        seed = self._seed(image, seed)
        x = to_unit(to_batch(image))
        g = self.gammas()
        out = []
        with deterministic_inference(self._threads(h, w)):
            z = uqdm_step.initial_latent(seed, x.shape)
            sent, whole = [], []
            for i in range(max((n for n, _, _ in plans), default=0)):
                sent.append(uqdm_step.run(self._inference(), z, x, uqdm_step.Step.make(g, i), seed))
                z, sec = uqdm_step.section(sent[-1])
                whole.append((z, sec))
            for q, (n, m, lossless) in zip(qualities, plans):
                z_q, sec = whole[n - 1] if m == uqdm_step.FRACTION_UNITS else uqdm_step.section(sent[n - 1], m)
                sections = [s for _, s in whole[:n - 1]] + [sec]
                if lossless:
                    sections.append(uqdm_lossless.encode(image.transpose(2, 0, 1), z_q, g[-1], self._table()))
                c = C.Container(self.name, C.model_tag(self.model_id), h, w, seed,
                                self._settings(n, m, lossless), sections)
                images = {}
                step = uqdm_step.Step.make(g, n - 1, m)
                for kind in kinds:
                    if lossless:
                        images[kind] = image.copy()
                    elif kind == "ancestral":
                        images[kind] = self._reconstruct(uqdm_step.sample_of(sent[n - 1], step, seed), step, c, kind)
                    else:
                        images[kind] = self._reconstruct(z_q, step, c, kind)
                out.append(Evaluation(q, c.pack(), images, {"steps": n, "fraction": m, "lossless": lossless}))
        return out

    def compress_many(self, image, qualities: Optional[Sequence] = None, *, seed: Optional[int] = None,
                      reconstructions: bool = False) -> List:
        """Deprecated (one release): use :meth:`evaluate`. The files :meth:`compress` makes for each
        of ``qualities``; with ``reconstructions=True`` each entry is ``(bytes, "mmse" image)``."""
        warnings.warn("UQDM.compress_many is deprecated: use UQDM.evaluate", DeprecationWarning, stacklevel=2)
        image = check_image(image)
        qualities = list(self.qualities if qualities is None else qualities)
        res = self._evaluate(image, qualities, ("mmse",) if reconstructions else (), seed)
        return [(r.data, r.images["mmse"]) if reconstructions else r.data for r in res]

    def decompress(self, data, reconstruction: Optional[str] = None) -> np.ndarray:
        """bytes → uint8[H, W, 3]: the last preview of :meth:`decompress_progressive` (default ``"mmse"``)."""
        out = None
        for _, out in self._decode(data, self._reconstruction(reconstruction), progressive=False):
            pass
        return out

    def decompress_progressive(self, data, reconstruction: Optional[str] = None) -> Iterator[Tuple[int, np.ndarray]]:
        """(bits, image) for z_T and after each section, coarse to fine.

        ``bits`` is 8 × the length of the valid file holding exactly the sections used
        (``container.truncate(data, i)``: header, i sections, CRC) — what a user would store for
        that preview (:meth:`chansim.codecs.base.Codec.decompress_progressive`)."""
        return self._decode(data, self._reconstruction(reconstruction), progressive=True)

    # ---- decoding ---------------------------------------------------------------------------

    def _decode(self, data, reconstruction: str, progressive: bool):
        c = C.unpack(data, codec=self.name, model_id=self.model_id)
        n, j, lossless = self._parse_settings(c)
        # bits of the valid file with the first i sections (header, those sections, CRC).
        def bits(i: int) -> int:
            return 8 * (len(C.truncate(data, i)) if progressive else len(data))

        steps = self._steps(n, j)[:min(len(c.sections), n)]
        shape = (1, 3, c.height, c.width)

        def work():  # each step runs inside deterministic_inference, every yield outside it (stepwise)
            z = uqdm_step.initial_latent(c.seed, shape)
            if progressive:
                yield bits(0), self._reconstruct(z, None, c, reconstruction)
            for i, step in enumerate(steps):
                z, z_sample = uqdm_step.decode(self._inference(), z, c.sections[i], step, c.seed)
                last = i == len(steps) - 1
                if progressive or (last and not (lossless and len(c.sections) > n)):
                    image = self._reconstruct(z_sample if reconstruction == "ancestral" else z, step, c,
                                              reconstruction)
                    yield bits(i + 1), image
            if not steps and not progressive:
                yield 8 * len(data), self._reconstruct(z, None, c, reconstruction)
            if lossless and len(c.sections) > n:
                pixels = uqdm_lossless.decode(c.sections[n], z, self.gammas()[-1], self._table())
                x_raw = torch.from_numpy(pixels.astype(np.int64)).reshape(shape)
                yield bits(n + 1), from_batch(x_raw, c.height, c.width)

        yield from stepwise(work(), self._threads(c.height, c.width))

    def _reconstruct(self, z: torch.Tensor, step: Optional[uqdm_step.Step], c: C.Container,
                     reconstruction: str) -> np.ndarray:
        g = self.gammas()
        gamma = g[0] if step is None else step.gamma_s
        if reconstruction != "mmse":
            rest = [gg for gg in g if gg < gamma]
            first = g.index(gamma)
            for i, (g_t, g_s) in enumerate(zip([gamma] + rest, rest)):
                if reconstruction == "flow":
                    z = ddim_step(self._inference(), z, g_t, g_s)
                else:
                    # Steps the file did not send: decoder-side randomness, away from the encoder's streams.
                    z = uqdm_step.ancestral_step(self._inference(), z, g_t, g_s, c.seed, first + i)
            gamma = g[-1] if rest else gamma
        if gamma == g[-1]:
            # z_0: the mode of p(x | z_0) is the level nearest z_0/α_0 (no network call).
            x_hat = z / float(alpha_sigma(torch.tensor(g[-1], dtype=torch.float64))[0])
        else:
            x_hat = self._inference().predict(z.contiguous(memory_format=torch.channels_last),
                                              torch.tensor(gamma, dtype=torch.float32))[0].contiguous()
        return from_batch(to_pixels(x_hat).to(torch.int64), c.height, c.width)

