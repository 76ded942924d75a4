"""The NTC codec: a mean-scale hyperprior whose latents are sent by universal quantization.

::

    from chansim.codecs import NTC
    codec = NTC.pretrained()                        # shipped model, offline
    data = codec.compress(image, quality=5)         # qualities 1 … codec.qualities[-1], lowest rate first
    smaller = codec.compress(image, 5, refine=100)  # encoder-side latent refinement: same decoder
    out = codec.decompress(data)                    # uint8[H, W, 3]

How a file is made (docs/format.md §9):

1. The image is edge-padded to a multiple of 64 and the analysis transform gives the
   latents y; quality q scales them by its gain vector: y' = y·g_q.
2. Hyper-latents z' = h_a(y')·h_q are rounded to integers ẑ' and coded with the model's
   per-channel frequency tables (categorical family; out-of-table values escape).
3. The hyper-synthesis, in float64, maps ẑ' to (μ', σ'), snapped to the grid of
   :mod:`chansim.ntc.tables` so both sides build identical tables from grid indices. A model
   with a channel-wise context does this one latent slice at a time, its float64 context
   network seeing the ŷ' of the slices already sent.
4. y' is sent by dithered quantization with step 1 around μ̂ (:func:`chansim.dq.quantize`,
   dither stream ``stream_id("dither", 0, 0)`` of the file's seed): ``k = rint(y' − μ̂ + u)``,
   ``ŷ' = μ̂ + k − u``, so ``ŷ' − y' ~ U(−½, ½)`` independently of y' — exactly the noise
   the model was trained with. k is coded under N(0, σ̂²) ⋆ U(−½, ½) on the dithered grid
   (``rans`` Gaussian-uniform family, offset u), slice after slice.
5. The receiver decodes ẑ', then per slice rebuilds μ̂, σ̂ and u, decodes k and forms ŷ';
   it runs the synthesis transform on ŷ'/g_q (a model with a latent residual first estimates y'
   from ŷ', μ̂ and σ̂: :class:`~chansim.ntc.model.LatentResidual`).

The file's settings carry a CRC-32 of the decoded symbols, so a receiver whose
arithmetic disagrees with the sender's raises :class:`~chansim.errors.FormatError`
instead of returning a wrong image.

Reconstructions (docs/format.md §9): ``"mmse"`` is the synthesis transform's x̂ — the
default, and the only one without a generative decoder. With one (shipped as
``ntc_generative``; :class:`~chansim.diffusion.models.ResidualDiffusion`, HFD's design:
a diffusion model of the residual x − x̂_mmse given x̂_mmse and q), ``"generative"`` is a
draw from p(x | x̂_mmse, q) — the probability-flow ODE from a Philox normal r_1 under the
file's seed, 16 network evaluations — and ``"interp"`` is λ·generative + (1 − λ)·mmse (survey Eq. 17, ``lam``).
All three decode from the same file.

The draw's starting noise is scaled by a temperature τ: by default the decoder's τ_q, calibrated
on training photos; ``compress(..., temperature=τ)`` writes a τ of the sender's into the file
(one byte, a 1/128 grid), and ``temperature="match"`` lets the sender, who holds the original,
choose the τ whose generative reconstruction has the original's fine-detail energy
(:func:`chansim.metrics.hf_energy_ratio` → 1, :func:`chansim.diffusion.temperature.temperature_search`
over ≤ 6 draws) — a detail level the receiver cannot know and a calibration on other photos only
guesses — without a squared error above twice the MMSE image's (an exact posterior sample's
expected cost, 3 dB of PSNR); where that budget ends first, the search spends it to within 2 %.
"""

from __future__ import annotations

import copy
import math
import struct
import zlib
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import torch

from .. import dq, rans
from ..diffusion.determinism import CODEC_THREADS, deterministic_inference
from ..diffusion.io import load_model as load_diffusion
from ..diffusion.models import ResidualDiffusion
from ..diffusion.samplers import interpolate
from ..diffusion.temperature import temperature_search
from ..errors import FormatError
from ..metrics import hf_energy_ratio
from ..ntc.io import load_model
from ..ntc.model import PAD, HyperpriorModel
from ..ntc.refine import refine_latents
from ..ntc.tables import snap_means, snap_scales
from . import container as C
from . import streams
from ._pretrained import models_dir
from .base import Codec, Evaluation
from .image import check_image, pad_to_multiple

DEFAULT_MODEL = "ntc_default"
#: File stem of the shipped generative decoder (attached when its base model is the NTC model).
GENERATIVE_MODEL = "ntc_generative"
SETTINGS_VERSION = 1                    # settings without a temperature …
SETTINGS_VERSION_TEMPERATURE = 2        # … and with the sender's
_SETTINGS = struct.Struct("<BBI")       # settings version, quality, CRC-32 of the symbols
_SETTINGS_T = struct.Struct("<BBIB")    # … and the temperature code c: τ = c / TEMPERATURE_GRID
#: A sent temperature is c / TEMPERATURE_GRID with c in 1 … 255 (exact in float32).
TEMPERATURE_GRID = 128
#: ``temperature="match"``: the search stops at an HF ratio within this of 1 (after at most MATCH_DRAWS
#: draws); one grid step of τ moves a draw's HF ratio by several percent, so a narrower band is missed.
MATCH_TOLERANCE = 0.05
MATCH_DRAWS = 6
#: ``temperature="match"`` keeps the draw's squared error within this multiple of the MMSE image's:
#: an exact posterior sample's expected squared error is twice the MMSE (a 3 dB PSNR cost), so a
#: sharper draw than that would be paying for detail the file does not support.
MATCH_MSE_BOUND = 2.0
#: … and the search also stops at a draw whose squared error is within this fraction under that
#: bound: the budget is spent, more detail would break it. (Folding the budget into the HF band
#: itself stopped at 90.5 % of it, up to 0.43 dB of PSNR short — where 11 of Kodak's 24 files at
#: quality 4 ended below the HF band with budget to spare; BENCHMARKS.md.)
MATCH_BUDGET_TOLERANCE = 0.02
#: The fold's exponent: (1 + tol)·c^k is 1 + tol at the bound (c = 1) and 1 − tol at c = 1 − budget tol.
_MATCH_BUDGET_POWER = math.log((1 - MATCH_TOLERANCE) / (1 + MATCH_TOLERANCE)) / math.log(1 - MATCH_BUDGET_TOLERANCE)
#: Dither stream of the latents (docs/format.md §1.2, :mod:`.streams`).
DITHER_STREAM = streams.ntc_dither()
GENERATIVE_RECONSTRUCTIONS = ("mmse", "generative", "interp")


def match_ratio(hf: float, cost: float) -> float:
    """The one increasing ratio ``temperature="match"`` drives to 1: ``hf`` is a draw's HF energy ratio,
    ``cost`` its squared error over the budget (:data:`MATCH_MSE_BOUND` × the MMSE image's). It is within
    ±:data:`MATCH_TOLERANCE` of 1 (the search stops) exactly when ``hf`` is, or when ``cost`` is in
    [1 − :data:`MATCH_BUDGET_TOLERANCE`, 1], and at most 1 + tolerance (the draw is admitted) exactly
    when ``hf`` ≤ 1 + tolerance and ``cost`` ≤ 1."""
    return max(hf, (1.0 + MATCH_TOLERANCE) * cost ** _MATCH_BUDGET_POWER)


def default_seed(image: np.ndarray, model_id: str) -> int:
    """32 bits of the image/model hash: a 5-byte varint instead of 10 in every file."""
    return C.derive_seed(image.tobytes(), model_id) & 0xFFFFFFFF


class NTC(Codec):
    """Neural transform coding (Ballé et al. 2018, Minnen et al. 2018) with gain-unit qualities.

    Attributes: ``model`` (:class:`~chansim.ntc.model.HyperpriorModel`, float32, eval),
    ``model_id``, ``card``, ``qualities`` (1 … number of gain rows); ``decoder`` (the generative
    decoder or None) and ``decoder_id``.
    """

    name = "ntc"
    #: Without a generative decoder; an instance with one offers :data:`GENERATIVE_RECONSTRUCTIONS`.
    reconstructions = ("mmse",)

    def __init__(self, model: HyperpriorModel, tables: Tuple[np.ndarray, np.ndarray], model_id: str,
                 card: Optional[Dict[str, Any]] = None, threads: Optional[int] = CODEC_THREADS,
                 decoder: Optional[ResidualDiffusion] = None, decoder_id: Optional[str] = None):
        if not isinstance(model, HyperpriorModel):
            raise TypeError("NTC needs a chansim.ntc.HyperpriorModel")
        offsets, freqs = (np.asarray(t, dtype=np.int32) for t in tables)
        if offsets.shape != (model.hyper_n,) or freqs.ndim != 2 or freqs.shape[0] != model.hyper_n or (freqs <= 0).any():
            raise ValueError("hyper-latent tables do not match the model")
        if decoder is not None:
            if not isinstance(decoder, ResidualDiffusion):
                raise TypeError("the generative decoder must be a chansim.diffusion.models.ResidualDiffusion")
            if decoder.base_model != model_id or decoder.num_qualities != model.num_qualities:
                raise ValueError(f"the generative decoder was trained on NTC model {decoder.base_model[:16]}… "
                                 f"({decoder.num_qualities} qualities), not on {model_id[:16]}…")
            self.decoder = decoder.eval()
            self.reconstructions = GENERATIVE_RECONSTRUCTIONS
        else:
            self.decoder = None
        self.decoder_id = decoder_id if decoder is not None else None
        self.model, self.model_id, self.card, self.threads = model.eval(), model_id, card, threads
        self.z_offsets = offsets
        # Probabilities are exact quotients of integers, so both sides pass the coder identical floats.
        self.z_probs = freqs.astype(np.float64) / freqs.sum(axis=1, keepdims=True)
        # The entropy model runs in float64 (chansim.ntc.tables says why); the memo leaves the two
        # transforms out of the copy, which never runs them.
        self._f64 = copy.deepcopy(model, {id(m): None for m in (model.g_a, model.g_s, model.g_a_blocks,
                                                                  model.g_s_blocks, model.residual)}).double().eval()

    @classmethod
    def pretrained(cls, name: Optional[str] = None) -> "NTC":
        import json

        path = models_dir() / f"{name or DEFAULT_MODEL}.pt"
        if not path.is_file():
            raise FileNotFoundError(f"no shipped NTC model {name or DEFAULT_MODEL!r} (looked for {path})")
        model, tables, mid = load_model(path)
        card_path = path.with_suffix(".json")
        card = json.loads(card_path.read_text()) if card_path.is_file() else None
        decoder, decoder_id = None, None
        gen_path = models_dir() / f"{GENERATIVE_MODEL}.pt"
        if name in (None, DEFAULT_MODEL) and gen_path.is_file():
            decoder, decoder_id = load_diffusion(gen_path)
            if getattr(decoder, "base_model", None) != mid:
                import warnings

                warnings.warn(f"{gen_path.name} was trained on another NTC model; generative reconstructions are off")
                decoder = None
        return cls(model, tables, mid, card, decoder=decoder, decoder_id=decoder_id)

    @classmethod
    def from_file(cls, path, decoder=None) -> "NTC":
        """A codec on a model file written by :func:`chansim.ntc.io.save_model`; ``decoder``: the path of a
        generative decoder file (:func:`chansim.diffusion.io.save_model` of a ``ResidualDiffusion``)."""
        model, tables, mid = load_model(path)
        dec, dec_id = (None, None) if decoder is None else load_diffusion(decoder)
        return cls(model, tables, mid, decoder=dec, decoder_id=dec_id)

    @property
    def qualities(self) -> Sequence[int]:
        return tuple(range(1, self.model.num_qualities + 1))

    # ---- the two halves of the entropy model -----------------------------------------------------

    def _q(self, quality: int) -> torch.Tensor:
        return torch.tensor([int(quality) - 1])

    def _latent_slices(self, z_int: np.ndarray, q: torch.Tensor, seed: int, code) -> Tuple[np.ndarray, ...]:
        """Walk the latent slices in coding order (one slice without a channel-wise context): slice i's
        snapped float64 (μ̂_i, σ̂_i) come from ẑ' and the ŷ' of slices 0 … i−1, and
        ``code(i, μ̂_i, σ̂_i, u_i, start)`` gives its indices k_i — the encoder quantizes and codes them,
        the decoder decodes them (``start``: the slice's first element in the dither stream).
        Returns (k, u, μ̂, σ̂, ŷ') of all latents; the slices this quality does not code
        (:meth:`~chansim.ntc.model.HyperpriorModel.coded_slices`) are never walked and hold
        (k, u, μ̂, σ̂, ŷ') = (0, 0, 0, 1, 0) on both sides."""
        _, _, h, w = z_int.shape
        y_shape = (1, self.model.m, 4 * h, 4 * w)
        mean_h, scale_h = self._f64.hyper_synthesis(torch.from_numpy(z_int.astype(np.float64)), q)
        k = np.zeros(y_shape, np.int32)
        u, mean, y_hat = (np.zeros(y_shape) for _ in range(3))
        scale = np.ones(y_shape)
        plane = y_shape[2] * y_shape[3]
        for i in range(self.model.coded_slices(int(q[0]))):
            sl = self.model.slice_bounds(i)
            m_i, s_i = self._f64.slice_parameters(i, mean_h, scale_h, torch.from_numpy(y_hat[:, :sl.start]))
            mean[:, sl], scale[:, sl] = snap_means(m_i.numpy()), snap_scales(s_i.numpy(), self.model.scale_min)
            start, n = sl.start * plane, (sl.stop - sl.start) * plane
            u[:, sl] = dq.dither(seed, DITHER_STREAM, start, n).reshape(u[:, sl].shape)
            k[:, sl] = code(i, mean[:, sl], scale[:, sl], u[:, sl], start)
            y_hat[:, sl] = dq.dequantize(k[:, sl], 1.0, seed, DITHER_STREAM, mu=mean[:, sl], start=start,
                                         dtype=np.float64)
        return k, u, mean, scale, y_hat

    def _z_probs(self, shape) -> np.ndarray:
        _, c, h, w = shape
        return np.broadcast_to(self.z_probs[None, :, None, None, :], (1, c, h, w, self.z_probs.shape[1]))

    def _latents(self, x: torch.Tensor, y: torch.Tensor, quality: int, seed: int, refine: int,
                 height: int, width: int) -> Tuple[torch.Tensor, torch.Tensor]:
        """Gained latents (y', z') for the analysis output y of the padded image x, refined by
        ``refine`` gradient steps (:func:`chansim.ntc.refine.refine_latents`; 0 = the transform's own)."""
        q = self._q(quality)
        yg = self.model.gained(y, q)
        z = self.model.hyper_analysis(yg, q)
        if not refine:
            return yg, z
        lo = torch.from_numpy(self.z_offsets.astype(np.float32))[None, :, None, None]
        # the file's dither of every latent (the slices are consecutive channel ranges of one stream)
        u = torch.from_numpy(dq.dither(seed, DITHER_STREAM, 0, yg.numel()).astype(np.float32)).reshape(yg.shape)
        return refine_latents(self.model, x, q, yg, z, refine, seed=seed, height=height, width=width,
                              z_range=(lo, lo + (self.z_probs.shape[1] - 1)), dither=u)

    def _encode(self, yg: torch.Tensor, z: torch.Tensor, quality: int, seed: int) -> Tuple[int, bytes, Tuple]:
        """(symbol CRC, section, (ŷ', μ̂, σ̂)) for the gained latents y' and hyper-latents z' (rounded here)."""
        q = self._q(quality)
        z_int = torch.round(z).to(torch.int32).numpy()
        y = yg.double().numpy()
        enc = rans.Encoder()
        enc.encode_categorical(z_int - self.z_offsets[None, :, None, None], self._z_probs(z_int.shape))

        def code(i, mean, scale, u, start):
            k = dq.quantize(y[:, self.model.slice_bounds(i)], 1.0, seed, DITHER_STREAM, mu=mean, start=start)
            enc.encode_gaussian_dithered(k, 0.0, scale, 1.0, u)
            return k

        k, _, mean, scale, y_hat = self._latent_slices(z_int, q, seed, code)
        return _symbols_crc(z_int, k), enc.finish(), (y_hat, mean, scale)

    def _synthesize(self, latents: Tuple[np.ndarray, np.ndarray, np.ndarray], quality: int, height: int,
                    width: int) -> torch.Tensor:
        """x̂_mmse (1, 3, height, width) in [0, 1], float32, from the float64 (ŷ', μ̂, σ̂) both sides hold
        (a model with a latent residual estimates y' from all three; δ is formed in float64)."""
        y_hat, mean, scale = (torch.from_numpy(t) for t in latents)
        if self.model.residual is None:
            y_hat, mean, scale = y_hat.float(), None, None
        return self.model.synthesis(y_hat, self._q(quality), mean, scale)[:, :, :height, :width].clamp(0, 1)

    def _generative(self, x_mmse: torch.Tensor, quality: int, seed: int, temperature: Optional[float]) -> torch.Tensor:
        """The clamped generative draw from x̂_mmse (τ = ``temperature``, or the decoder's τ_q when None)."""
        initial = streams.initial_latent(seed, x_mmse.shape)
        return self.decoder.sample(x_mmse, quality - 1, initial, temperature).clamp(0, 1)

    def _reconstruct(self, x_mmse: torch.Tensor, quality: int, seed: int, kinds: Sequence[str],
                     lam: float, temperature: Optional[float] = None,
                     gen: Optional[torch.Tensor] = None) -> Dict[str, np.ndarray]:
        """{kind: uint8 image} from x̂_mmse; the generative draw (``gen`` when the caller already
        made it) is shared by "generative" and "interp"."""
        out = {"mmse": x_mmse}
        if "generative" in kinds or "interp" in kinds:
            # Clamped before mixing: "interp" is the λ-mix of the two images the receiver could show.
            gen = self._generative(x_mmse, quality, seed, temperature) if gen is None else gen
            out["generative"] = gen
            out["interp"] = interpolate(gen, x_mmse, lam)
        return {k: _to_uint8(out[k]) for k in kinds}

    def _match_temperature(self, image: np.ndarray, x_mmse: torch.Tensor, quality: int,
                           seed: int) -> Tuple[int, torch.Tensor]:
        """(temperature code, its generative draw): among ≤ :data:`MATCH_DRAWS` grid τ tried from the
        decoder's τ_q, the one whose draw's fine-detail energy is nearest the original ``image``'s
        (HF energy ratio within ±:data:`MATCH_TOLERANCE` of 1, or the budget below spent to within
        :data:`MATCH_BUDGET_TOLERANCE`, ends the search) among those whose squared error is at most
        :data:`MATCH_MSE_BOUND` times the MMSE image's and whose HF ratio is at most 1 + tolerance.
        One increasing ratio carries both, :func:`match_ratio`."""
        draws = {}
        reference = image.astype(np.float64)
        mse = lambda shown: float(np.mean((shown.astype(np.float64) - reference) ** 2))   # noqa: E731
        budget = MATCH_MSE_BOUND * mse(_to_uint8(x_mmse))

        def ratio_at(tau: float) -> float:
            draws[tau] = self._generative(x_mmse, quality, seed, tau)
            shown = _to_uint8(draws[tau])            # the image the receiver shows, converted once
            err = mse(shown)
            cost = err / budget if budget > 0 else (0.0 if err == 0 else math.inf)
            return match_ratio(hf_energy_ratio(shown, image), cost)

        tau, _, _ = temperature_search(ratio_at, MATCH_TOLERANCE, MATCH_DRAWS, tau_max=255 / TEMPERATURE_GRID,
                                       start=self.decoder.temperatures[quality - 1], snap=_snap_temperature,
                                       accept="within")
        return round(tau * TEMPERATURE_GRID), draws[tau]

    def _settings(self, quality: int, crc: int, temperature_code: Optional[int]) -> bytes:
        if temperature_code is None:
            return _SETTINGS.pack(SETTINGS_VERSION, int(quality), crc)
        return _SETTINGS_T.pack(SETTINGS_VERSION_TEMPERATURE, int(quality), crc, temperature_code)

    def _file(self, image: np.ndarray, x: torch.Tensor, y: torch.Tensor, quality: int, seed: int, refine: int,
              temperature, kinds: Sequence[str] = (), lam: float = 0.5) -> Evaluation:
        """The file at one quality and, for ``kinds``, what :meth:`decompress` returns for it."""
        h, w = image.shape[:2]
        crc, section, latents = self._encode(*self._latents(x, y, quality, seed, refine, h, w), quality, seed)
        code, gen, x_mmse = None, None, None
        if refine:
            (crc, section, latents), x_mmse = self._better_file(image, x, y, quality, seed, (crc, section, latents))
        if x_mmse is None and (kinds or temperature == "match"):
            x_mmse = self._synthesize(latents, quality, h, w)
        if temperature == "match":
            code, gen = self._match_temperature(image, x_mmse, quality, seed)
        elif temperature is not None:
            code = round(temperature * TEMPERATURE_GRID)
        data = C.Container(self.name, C.model_tag(self.model_id), h, w, seed, self._settings(quality, crc, code),
                           [section]).pack()
        tau = None if code is None else code / TEMPERATURE_GRID
        images = self._reconstruct(x_mmse, quality, seed, kinds, lam, tau, gen) if kinds else {}
        return Evaluation(quality, data, images)

    def _better_file(self, image: np.ndarray, x: torch.Tensor, y: torch.Tensor, quality: int, seed: int,
                     refined: Tuple) -> Tuple[Tuple, torch.Tensor]:
        """(the encoding — CRC, section, latents — and its x̂_mmse) of the refined or the unrefined file,
        whichever has the lower real loss λ·MSE(decoded uint8 image) + file bits per pixel; ties keep the
        unrefined one. Refinement's own guard prices iterates by float32 estimates (no (μ, σ) grid snap,
        no 8-bit rounding, no rANS or container bytes); on a small image those can differ from the files
        by more than the gain (a 96×80 crop at quality 5: estimated −0.23 %, real +0.44 %), so the codec
        compares the two files it could write — one more encode and synthesis, only when refining."""
        h, w = image.shape[:2]
        plain = self._encode(*self._latents(x, y, quality, seed, 0, h, w), quality, seed)
        best = None
        for encoding in (plain, refined):
            crc, section, latents = encoding
            x_mmse = self._synthesize(latents, quality, h, w)
            decoded = self._reconstruct(x_mmse, quality, seed, ("mmse",), 0.5)["mmse"]
            size = len(C.Container(self.name, C.model_tag(self.model_id), h, w, seed,
                                   self._settings(quality, crc, None), [section]).pack())
            mse = np.mean((decoded.astype(np.float64) - image) ** 2)
            loss = self.model.lambdas[quality - 1] * mse + 8 * size / (h * w)
            if best is None or loss < best[0]:
                best = (loss, encoding, x_mmse)
        return best[1], best[2]

    def _analysis(self, image: np.ndarray) -> Tuple[torch.Tensor, torch.Tensor]:
        """(x, y): the edge-padded image in [0, 1] and its analysis transform."""
        x = pad_to_multiple(image, PAD)
        x = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None].float() / 255.0
        return x, self.model.analysis_transform(x)

    # ---- the contract ---------------------------------------------------------------------------

    def compress(self, image: np.ndarray, quality=None, *, seed: Optional[int] = None, refine: int = 0,
                 temperature=None) -> bytes:
        """uint8[H, W, 3] (H, W ≥ 16) → bytes; ``quality`` in :attr:`qualities`.

        ``refine``: gradient steps of encoder-side latent refinement (:mod:`chansim.ntc.refine`):
        a lower rate–distortion loss for more encoding time (≈ 0.55 s per step at 768×512 on two cores;
        30 steps: BENCHMARKS.md "NTC"), never a higher one (a refined result that would make this file's
        loss worse is dropped for the transform's own latents); decoding is unchanged.

        ``temperature``: the generative reconstruction's sampling temperature, written into the file —
        None (the decoder's calibrated τ_q; nothing is written), a number in (0, 2) (rounded to the
        1/128 grid), or ``"match"`` (needs the generative decoder: up to 6 generative draws at
        encode time choose the τ whose draw has the original's fine-detail energy, within 5 %, at no more
        than twice the MMSE image's squared error — spending that budget to within 2 % where it binds).
        """
        image = check_image(image)
        quality = self.check_quality(quality)
        refine = check_refine(refine)
        temperature = self.check_temperature(temperature)
        seed = default_seed(image, self.model_id) if seed is None else self.check_seed(seed)
        with deterministic_inference(self.threads):
            x, y = self._analysis(image)
            return self._file(image, x, y, quality, seed, refine, temperature).data

    def decompress(self, data, reconstruction: Optional[str] = None, lam: float = 0.5) -> np.ndarray:
        """bytes → uint8[H, W, 3]: ``"mmse"`` (default) the synthesis transform of ŷ; with a generative
        decoder ``"generative"`` a draw from p(x | x̂_mmse) or ``"interp"`` λ·generative + (1 − λ)·mmse."""
        reconstruction = reconstruction or "mmse"
        self.check_reconstructions([reconstruction])
        lam = check_lam(lam)
        c, sym = self.read_symbols(data)
        with deterministic_inference(self.threads):
            x_mmse = self._synthesize((sym.y_hat, sym.mean, sym.scale), sym.quality, c.height, c.width)
            return self._reconstruct(x_mmse, sym.quality, c.seed, (reconstruction,), lam,
                                     sym.temperature)[reconstruction]

    def read_symbols(self, data) -> Tuple[C.Container, "Symbols"]:
        """(container, :class:`Symbols`) of an NTC file: its coded symbols decoded with this model's
        entropy model and checked against the file's symbol CRC, so they are the encoder's (refined or
        not) — what ``decompress`` reconstructs from and what a code-length audit prices."""
        c = C.unpack(data, codec=self.name, model_id=self.model_id)
        version = c.settings[0] if c.settings else None
        layout = {SETTINGS_VERSION: _SETTINGS, SETTINGS_VERSION_TEMPERATURE: _SETTINGS_T}.get(version)
        if layout is None:
            raise FormatError(f"NTC settings version {version}; this chansim reads {SETTINGS_VERSION} and "
                              f"{SETTINGS_VERSION_TEMPERATURE}")
        if len(c.settings) != layout.size:
            raise FormatError(f"NTC settings version {version} must be {layout.size} bytes, got {len(c.settings)}")
        _, quality, crc, *code = layout.unpack(c.settings)
        if code and code[0] == 0:
            raise FormatError("NTC temperature code 0: a sent temperature is 1…255 / 128")
        temperature = code[0] / TEMPERATURE_GRID if code else None
        if quality not in self.qualities:
            raise FormatError(f"NTC file at quality {quality}, this model has qualities 1…{len(self.qualities)}")
        if len(c.sections) != 1:
            raise FormatError(f"NTC file must hold 1 section, found {len(c.sections)}")
        hp, wp = c.height + (-c.height) % PAD, c.width + (-c.width) % PAD
        z_shape = (1, self.model.hyper_n, hp // PAD, wp // PAD)
        with deterministic_inference(self.threads):
            dec = rans.Decoder(c.sections[0])
            z_int = dec.decode_categorical(self._z_probs(z_shape)) + self.z_offsets[None, :, None, None]
            k, u, mean, scale, y_hat = self._latent_slices(
                z_int, self._q(quality), c.seed, lambda i, mean, scale, u, start: dec.decode_gaussian_dithered(
                    0.0, scale, 1.0, u))
        if dec.remaining:
            raise FormatError(f"corrupted NTC file: {dec.remaining} symbols left undecoded")
        if _symbols_crc(z_int, k) != crc:
            raise FormatError("NTC latents fail their checksum: this decoder's entropy model differs from the "
                              "encoder's (another model or machine arithmetic)")
        return c, Symbols(quality, z_int, k, u, mean, scale, temperature, y_hat)

    def evaluate(self, image: np.ndarray, qualities: Optional[Sequence] = None, *,
                 reconstructions: Optional[Sequence[str]] = None, seed: Optional[int] = None,
                 refine: int = 0, lam: float = 0.5, temperature=None) -> List[Evaluation]:
        """One analysis pass for every quality; each image is what :meth:`decompress` returns for its file
        (ŷ' is a function of the indices and the dither alone, which both sides hold; a matched
        temperature's draw is the one the search kept)."""
        image = check_image(image)
        refine = check_refine(refine)
        lam = check_lam(lam)
        temperature = self.check_temperature(temperature)
        qualities = [self.check_quality(q) for q in (self.qualities if qualities is None else qualities)]
        kinds = tuple(reconstructions or ("mmse",))
        self.check_reconstructions(kinds)
        seed = default_seed(image, self.model_id) if seed is None else self.check_seed(seed)
        with deterministic_inference(self.threads):
            x, y = self._analysis(image)
            return [self._file(image, x, y, quality, seed, refine, temperature, kinds, lam) for quality in qualities]

    def check_temperature(self, temperature):
        """None, ``"match"`` (with a generative decoder) or a number whose 1/128 grid point is in 1 … 255 / 128."""
        if temperature is None:
            return None
        if isinstance(temperature, str):
            if temperature != "match":
                raise ValueError(f"temperature must be a number in (0, 2) or 'match', got {temperature!r}")
            if self.decoder is None:
                raise ValueError("temperature='match' chooses the generative decoder's temperature; this NTC "
                                 "codec has no generative decoder")
            return "match"
        if isinstance(temperature, bool):
            raise ValueError(f"temperature must be a number in (0, 2) or 'match', got {temperature!r}")
        try:
            value = float(temperature)
        except (TypeError, ValueError):
            raise ValueError(f"temperature must be a number in (0, 2) or 'match', got {temperature!r}") from None
        if not (math.isfinite(value) and 1 <= round(value * TEMPERATURE_GRID) <= 255):
            raise ValueError(f"temperature must round to 1 … 255 / {TEMPERATURE_GRID} (0.0078 … 1.992), "
                             f"got {temperature!r}")
        return _snap_temperature(value)


class Symbols(NamedTuple):
    """What an NTC file codes (:meth:`NTC.read_symbols`): its quality, the integer hyper-latents ẑ', the
    latent indices k with their dither u, and the snapped (μ̂, σ̂) they were coded under."""

    quality: int
    z: np.ndarray
    k: np.ndarray
    u: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    #: The sender's sampling temperature (settings version 2), None when the file leaves it to the decoder.
    temperature: Optional[float] = None
    #: The dequantized gained latents ŷ' = μ̂ + k − u (float64), what the synthesis transform receives.
    y_hat: Optional[np.ndarray] = None


#: Most refinement steps one call accepts (a typo like 1e6 would otherwise run for days).
MAX_REFINE = 10_000


def check_refine(refine) -> int:
    if isinstance(refine, bool) or not isinstance(refine, (int, np.integer)) or not 0 <= refine <= MAX_REFINE:
        raise ValueError(f"refine must be an integer number of steps in 0…{MAX_REFINE}, got {refine!r}")
    return int(refine)


def check_lam(lam) -> float:
    """λ of the "interp" reconstruction, in [0, 1]."""
    try:
        value = float(lam)
    except (TypeError, ValueError):
        raise ValueError(f"lam must be a number in [0, 1], got {lam!r}") from None
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"lam must lie in [0, 1], got {lam!r}")
    return value


def _snap_temperature(tau: float) -> float:
    """τ on the file's grid c / 128, c in 1 … 255."""
    return min(255, max(1, round(tau * TEMPERATURE_GRID))) / TEMPERATURE_GRID


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    arr = (x[0].clamp(0, 1) * 255.0).round().to(torch.uint8).numpy()
    return np.ascontiguousarray(arr.transpose(1, 2, 0))


def _symbols_crc(z_int: np.ndarray, k: np.ndarray) -> int:
    crc = zlib.crc32(np.ascontiguousarray(z_int, dtype="<i4").tobytes())
    return zlib.crc32(np.ascontiguousarray(k, dtype="<i4").tobytes(), crc)
