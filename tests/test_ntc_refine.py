"""Encoder-side latent refinement of NTC (chansim.ntc.refine): same decoder, same format, a
better rate–distortion loss for the shipped model on a real photo, deterministic files."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from chansim.codecs.container import unpack  # noqa: E402
from chansim.codecs.ntc import NTC  # noqa: E402


@pytest.fixture(scope="module")
def codec():
    return NTC.pretrained()


@pytest.fixture(scope="module")
def photo():
    data = pytest.importorskip("skimage.data")
    return np.ascontiguousarray(data.astronaut()[120:216, 180:260])     # 96×80, not a multiple of 64


STEPS = 25


@pytest.fixture(scope="module")
def refined(codec, photo):
    """evaluate() with refinement at qualities 2, 5 and 9 (λ 0.00022, 0.0023, 0.055; gained latents
    ≈ 0.025, 0.29, 1.4 times the transform's): {quality: Evaluation}."""
    return {ev.quality: ev for ev in codec.evaluate(photo, [2, 5, 9], refine=STEPS)}


def _loss(codec, quality, image, data, decoded):
    """The objective refinement minimises, measured on the real file: λ·MSE(0…255) + bits per pixel."""
    mse = np.mean((decoded.astype(np.float64) - image) ** 2)
    return codec.model.lambdas[quality - 1] * mse + 8 * len(data) / (image.shape[0] * image.shape[1])


#: Qualities where refinement must make this photo's file strictly better. At quality 5 the shipped
#: model's descent (default step size, this file's dither) never beats the start on this 96×80 crop —
#: its realized loss, read every third step, runs +0.1 … +5.3 % above the start's — so there only the guarantee
#: (never worse: the start is returned) is checked; Kodak-24's figures are in BENCHMARKS.md.
STRICT = (2, 9)


@pytest.mark.parametrize("quality", [2, 5, 9])
def test_refined_files_decode_unchanged_and_never_raise_the_loss(codec, photo, refined, quality):
    plain = codec.compress(photo, quality)
    data = refined[quality].data
    assert unpack(data).settings[:2] == unpack(plain).settings[:2]    # same settings version and quality
    out_plain, out_refined = codec.decompress(plain), codec.decompress(data)
    assert np.array_equal(refined[quality].images["mmse"], out_refined)  # evaluate() shows what the receiver gets
    before, after = _loss(codec, quality, photo, plain, out_plain), _loss(codec, quality, photo, data, out_refined)
    if quality in STRICT:
        assert data != plain and after < before, (before, after)
    else:                     # either a better file or exactly the unrefined one
        assert after < before or data == plain, (before, after)


def test_compress_writes_the_file_evaluate_made(codec, photo, refined):
    assert codec.compress(photo, 9, refine=STEPS) == refined[9].data


def test_refinement_is_deterministic_and_seeded(codec, photo):
    a = codec.compress(photo, 4, refine=5, seed=7)
    assert codec.compress(photo, 4, refine=5, seed=7) == a
    assert codec.compress(photo, 4, refine=5, seed=8) != a
    assert codec.compress(photo, 4, refine=0) == codec.compress(photo, 4)
    assert all(p.grad is None for p in codec.model.parameters())     # the model is not trained by it
    assert not torch.is_inference_mode_enabled() and torch.is_grad_enabled()


def _start(codec, photo, quality, seed):
    """(x, q, y', z', dither) the codec's refinement starts from: the analysis transform's gained
    latents and the file's dither of them, computed here from chansim.dq and the documented stream."""
    from chansim import dq
    from chansim.codecs.ntc import DITHER_STREAM

    x, y = codec._analysis(photo)
    q = codec._q(quality)
    yg = (y * codec.model.gain[q].exp()[:, :, None, None]).detach()
    z = codec.model.hyper_analysis(yg, q).detach()
    u = torch.from_numpy(dq.dither(seed, DITHER_STREAM, 0, yg.numel()).astype(np.float32)).reshape(yg.shape)
    return x, q, yg, z, u


@pytest.fixture(scope="module")
def portrait():
    data = pytest.importorskip("skimage.data")
    return np.ascontiguousarray(data.astronaut()[:256, 128:384])


@pytest.mark.parametrize("quality", [3, 8])
def test_realized_loss_is_the_files_loss(codec, portrait, quality):
    """The guard's measure, realized_loss (float32, unsnapped (μ, σ), unrounded picture), against the
    real file's loss — its bytes and its decoded 8-bit picture through the float64 entropy model and
    rANS: equal to within the container's bytes (≈ 50 of them: ≤ 0.006 bpp on 256²) and 1 %."""
    from chansim.ntc.refine import realized_loss

    seed = 11
    x, q, yg, z, u = _start(codec, portrait, quality, seed)
    estimate = realized_loss(codec.model, x, q, yg, z, u, *portrait.shape[:2])
    data = codec.compress(portrait, quality, seed=seed)
    actual = _loss(codec, quality, portrait, data, codec.decompress(data))
    assert abs(actual - estimate) <= 0.01 * actual + 8 * 50 / portrait[..., 0].size, (estimate, actual)


def test_refinement_that_would_worsen_the_file_returns_the_start(codec, photo):
    """With the file's dither, a descent that ends worse than where it started (here: a step size
    1000 times too large) gives back the analysis transform's latents unchanged; without the dither
    (no check) the same call returns the wandered latents."""
    from chansim.ntc.refine import realized_loss, refine_latents

    seed = 5
    x, q, yg, z, u = _start(codec, photo, 5, seed)
    h, w = photo.shape[:2]
    wild = refine_latents(codec.model, x, q, yg, z, 4, seed=seed, height=h, width=w, lr=40.0)
    assert realized_loss(codec.model, x, q, *wild, u, h, w) > realized_loss(codec.model, x, q, yg, z, u, h, w)
    kept = refine_latents(codec.model, x, q, yg, z, 4, seed=seed, height=h, width=w, lr=40.0, dither=u)
    assert torch.equal(kept[0], yg) and torch.equal(kept[1], z)
    # A descent at the default step size beats the start where refinement's gain is large (quality 9:
    # −4.8 … −7 % on this crop for every seed tried); at quality 5 whether any checked iterate beats
    # the start here depends on the seed and even on torch's thread count (STRICT above).
    x, q, yg, z, u = _start(codec, photo, 9, seed)
    good = refine_latents(codec.model, x, q, yg, z, STEPS, seed=seed, height=h, width=w, dither=u)
    assert realized_loss(codec.model, x, q, *good, u, h, w) < realized_loss(codec.model, x, q, yg, z, u, h, w)


@pytest.mark.parametrize("bad", [-1, 1.5, True, "10", 10**6])
def test_refine_argument_is_checked(codec, photo, bad):
    with pytest.raises(ValueError, match="refine must be an integer number of steps"):
        codec.compress(photo, 4, refine=bad)


def test_refined_hyper_latents_stay_in_their_tables(codec, photo):
    """z' is projected into [offset, offset + K − 1] after every step: outside, the coder's escape is
    priced by a density floor the objective does not see. A file refined for many steps keeps every ẑ'
    inside its channel's table; a range of one value pins z' to it."""
    from chansim.ntc.refine import refine_latents

    data = codec.compress(photo, 1, refine=60)
    z = codec.read_symbols(data)[1].z - codec.z_offsets[None, :, None, None]
    assert z.min() >= 0 and z.max() < codec.z_probs.shape[1]
    x, q, yg, z0, _ = _start(codec, photo, 3, 1)
    one = torch.full((1, z0.shape[1], 1, 1), 2.0)
    _, zr = refine_latents(codec.model, x, q, yg, z0, 5, seed=1, height=photo.shape[0],
                           width=photo.shape[1], z_range=(one, one))
    assert torch.equal(zr, torch.full_like(zr, 2.0))
    _, free = refine_latents(codec.model, x, q, yg, z0, 5, seed=1, height=photo.shape[0],
                             width=photo.shape[1])
    assert not torch.equal(free, torch.full_like(free, 2.0))
