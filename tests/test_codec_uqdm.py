"""UQDM codec: round trips at every quality, lossless exactness, progressive previews, the step
checksum against a one-ulp model change, and bad files. Uses the shipped model on small images;
no assertion depends on the weights' exact numbers."""

import copy
import hashlib
import math
import subprocess
import sys
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from chansim import FormatError, rans  # noqa: E402
from chansim.codecs import UQDM  # noqa: E402
from chansim.codecs import container as C  # noqa: E402
from chansim.codecs import uqdm_lossless, uqdm_step  # noqa: E402
from chansim.codecs.base import Codec  # noqa: E402


@pytest.fixture(scope="module")
def codec():
    return UQDM.pretrained()


def _image(h, w, seed=0):
    """A natural-ish test image: smooth colour gradients, an edge and mild noise, saturating at 0 and 255."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    base = np.stack([120 + 140 * np.sin(xx / 7.0), 90 + 60 * np.cos(yy / 5.0), 60 + 2.0 * (xx + yy)], axis=-1)
    base[h // 3:, w // 2:] += 70.0
    return np.clip(base + rng.normal(0, 4, base.shape), 0, 255).astype(np.uint8)


def _sections_bits(data):
    return [8 * (b - a) for a, b in C.section_offsets(data)]


def test_every_quality_round_trips_with_increasing_rate(codec):
    img = _image(16, 24)
    assert len(codec.qualities) >= 6 and list(codec.qualities) == sorted(codec.qualities)
    files = [r.data for r in codec.evaluate(img, seed=7)]  # = compress at each quality (test_evaluate_…)
    for data in files:
        out = codec.decompress(data)
        assert out.shape == img.shape and out.dtype == np.uint8
    assert codec.compress(img, quality=codec.qualities[5], seed=7) == files[5]  # deterministic
    sizes = [len(f) for f in files]
    # Each quality sends strictly more symbols than the previous one, so the files grow.
    assert all(b > a for a, b in zip(sizes, sizes[1:])), sizes


def test_whole_steps_approach_the_image(codec):
    # Sending all T steps leaves z_0/α_0 = x + noise of standard deviation σ_0/α_0 = exp(γ_0/2)
    # (in levels: 128·exp(γ_0/2), ≈ 0.3 for the shipped model), so the mode of p(x | z_0) is off by
    # about that much; bounds of 1 + 2σ (mean) and 1 + 8σ (max) hold for any γ_0.
    sigma = 128 * math.exp(codec.gammas()[-1] / 2)
    img = _image(32, 32, seed=1)
    data = codec.compress(img, quality=codec.qualities[-1])
    err = np.abs(codec.decompress(data).astype(int) - img.astype(int))
    assert err.mean() <= 1 + 2 * sigma and err.max() <= 1 + 8 * sigma


@pytest.mark.parametrize("shape", [(16, 16), (17, 23), (40, 19)])
def test_lossless_is_exact_for_any_size(codec, shape):
    img = _image(*shape, seed=shape[1])
    data = codec.compress(img, lossless=True)
    assert np.array_equal(codec.decompress(data), img)
    assert np.array_equal(codec.decompress(data, reconstruction="ancestral"), img)
    assert codec.compress(img, quality="lossless") == data


def test_lossless_handles_pure_noise_and_escapes(codec):
    # Uniform noise is far from what the model predicts; the categorical window's escape must carry it.
    img = np.random.default_rng(5).integers(0, 256, (16, 24, 3), dtype=np.uint8)
    assert np.array_equal(codec.decompress(codec.compress(img, lossless=True)), img)


def test_lossless_table_rows_are_distributions(codec):
    tab = uqdm_lossless.table(codec.gammas()[-1])
    assert tab.shape[0] == uqdm_lossless.ROWS_PER_LEVEL + 1 and tab.shape[1] % 2 == 1
    assert np.all(tab >= 0) and np.allclose(tab.sum(1), 1.0, atol=1e-9)
    # The row for offset 0 peaks at the centre level and is symmetric.
    mid = tab[uqdm_lossless.ROWS_PER_LEVEL // 2]
    assert mid.argmax() == len(mid) // 2 and np.allclose(mid, mid[::-1], rtol=1e-9)


def test_progressive_previews_match_truncated_files(codec):
    img = _image(32, 48, seed=2)
    data = codec.compress(img, quality=codec.qualities[-1])
    previews = list(codec.decompress_progressive(data))
    assert len(previews) == codec.steps + 1  # the z_T preview, then one per step
    bits = [b for b, _ in previews]
    assert all(b2 > b1 for b1, b2 in zip(bits, bits[1:]))
    # One definition for every codec (base.Codec.decompress_progressive): the size of the valid
    # truncated file holding the sections used — header, sections, CRC — so the last is the file.
    assert bits[-1] == 8 * len(data)
    assert bits == [8 * len(C.truncate(data, s)) for s in range(codec.steps + 1)]
    assert np.array_equal(previews[-1][1], codec.decompress(data))
    for s in range(codec.steps + 1):
        assert np.array_equal(codec.decompress(C.truncate(data, s)), previews[s][1])


@pytest.mark.parametrize("reconstruction", ["ancestral", "flow"])
def test_other_reconstructions(codec, reconstruction):
    img = _image(24, 24, seed=3)
    data = codec.compress(img, quality=codec.qualities[4])  # a partial step: the fill-in matters
    a = codec.decompress(data, reconstruction=reconstruction)
    assert a.shape == img.shape  # (decoding in another process: test_another_process_decodes_the_same_pixels)
    prev = list(codec.decompress_progressive(data, reconstruction=reconstruction))
    assert np.array_equal(prev[-1][1], a)
    with pytest.raises(ValueError):
        codec.decompress(data, reconstruction="magic")


def _logistic_bin_log2(k, u, s):
    """log2 P(k | u) = log2(F((k − u + ½)/s) − F((k − u − ½)/s)), F the standard logistic CDF (SciPy),
    taken on the side of the mode where the difference does not cancel."""
    from scipy.special import expit

    c = k - u
    hi, lo = (c + 0.5) / s, (c - 0.5) / s
    p = np.where(c > 0, expit(-lo) - expit(-hi), expit(hi) - expit(lo))
    return np.log2(p)


def test_section_rate_matches_the_model_code_length(codec):
    # The rANS bits of a step equal −Σ log2 P(k | u) under logistic ⋆ uniform with the table scale
    # (docs/format.md §8 step 4: width 1, offset u, scale SCALE_TABLE[r], all in units of Δ), computed
    # here with SciPy's logistic CDF, to within the coder's quantization (0.1 %) plus a header and
    # flush of < 24 bytes. The symbols k and table indices r come from the codec's step.
    img = _image(48, 48, seed=4)
    data = codec.compress(img, quality=codec.qualities[-1], seed=3)
    c = C.unpack(data)
    z = uqdm_step.initial_latent(c.seed, (1, 3, 48, 48))
    g = codec.gammas()
    x = torch.from_numpy(img.transpose(2, 0, 1)[None].astype(np.float32))
    x = 2.0 * ((x + 0.5) / 256) - 1.0
    table = 1.0 / 64 * (64.0 * 64.0) ** (np.arange(64) / 63.0)  # §8: exp(linspace(log 1/64, log 64, 64))
    from chansim.diffusion.determinism import deterministic_inference
    for i, section in enumerate(c.sections):
        step = uqdm_step.Step.make(g, i)
        with deterministic_inference(1):
            sent = uqdm_step.run(codec._inference(), z, x, step, c.seed)
        u = sent.u  # the §3 dither, float64
        ideal = -float(_logistic_bin_log2(sent.k.numpy().reshape(-1).astype(np.float64), u,
                                          table[sent.idx.numpy().reshape(-1)]).sum())
        coded = 8 * (len(section) - 4)
        assert ideal * 0.999 - 64 <= coded <= ideal * 1.001 + 8 * 24, (i, ideal, coded)
        z = sent.z_s


def _perturbed(codec, name):
    model = copy.deepcopy(codec.model)
    p = dict(model.named_parameters())[name]
    with torch.no_grad():
        flat = p.view(-1)
        flat[0] = torch.nextafter(flat[0], torch.tensor(float("inf")))
    return UQDM(model, codec.model_id)


def test_one_ulp_model_change_is_detected(codec):
    img = _image(32, 32, seed=6)
    data = codec.compress(img, quality=codec.qualities[-1], seed=11)
    # The first layer's bias feeds every later activation: one ulp there must change the network's
    # output at z_T (checked, so the test really perturbs something that matters) ...
    other = _perturbed(codec, "net.conv_in.bias")
    z = uqdm_step.initial_latent(11, (1, 3, 32, 32))
    from chansim.diffusion.determinism import deterministic_inference
    with deterministic_inference(1):
        g = torch.tensor(codec.gammas()[0], dtype=torch.float32)
        assert not torch.equal(codec.model.net(z, g), other.model.net(z, g))
    # ... and the receiver must refuse the file, not return a different image.
    with pytest.raises(FormatError, match="checksum of the reconstructed latent"):
        other.decompress(data)


def _repack(data, **changes):
    c = C.unpack(data)
    for k, v in changes.items():
        setattr(c, k, v)
    return c.pack()


def test_bad_files_raise_format_error(codec):
    img = _image(16, 16, seed=8)
    data = codec.compress(img, quality=codec.qualities[3])
    bad = [
        data[:-1], data[:10], b"", b"CHSM", b"not a chansim file at all",
        data[:20] + bytes([data[20] ^ 0x40]) + data[21:],  # CRC mismatch
        _repack(data, codec="diffc"),
        _repack(data, model_tag=b"\0" * 8),
        _repack(data, settings=b"\x04"),
        _repack(data, settings=bytes([5, 2, 8, 0])),   # wrong step count
        _repack(data, settings=bytes([4, 0, 8, 0])),   # zero steps
        _repack(data, settings=bytes([4, 2, 0, 0])),   # zero fraction
        _repack(data, settings=bytes([4, 2, 65, 0])),  # fraction > 64
        _repack(data, settings=bytes([4, 2, 8, 1])),   # lossless with a partial step
        _repack(data, settings=bytes([4, 2, 8, 2])),   # unknown flag
        _repack(data, settings=bytes([4, 1, 64, 0])),  # more sections than the settings allow
        _repack(data, sections=[C.unpack(data).sections[0][:3]]),
        _repack(data, sections=[C.unpack(data).sections[0][:-4], C.unpack(data).sections[1]]),
        _repack(data, sections=[C.unpack(data).sections[1], C.unpack(data).sections[0]]),
        _repack(data, seed=C.unpack(data).seed ^ 1),  # other dither and z_T: the checksum catches it
    ]
    for i, b in enumerate(bad):
        with pytest.raises(FormatError):
            codec.decompress(b)
        with pytest.raises(FormatError):
            list(codec.decompress_progressive(b))
    lossless = codec.compress(img, lossless=True)
    c = C.unpack(lossless)
    last = bytearray(c.sections[-1])
    last[0] ^= 1  # the pixel checksum
    with pytest.raises(FormatError):
        codec.decompress(_repack(lossless, sections=c.sections[:-1] + [bytes(last)]))


def test_bad_arguments_raise_value_error(codec):
    img = _image(16, 16)
    for q in (0, len(codec.qualities) + 1, 2.5, "best", True):
        with pytest.raises(ValueError):
            codec.compress(img, quality=q)
    with pytest.raises(ValueError):
        codec.compress(img, quality=codec.qualities[0], lossless=True)
    with pytest.raises(ValueError):
        codec.compress(img, seed=-1)
    for bad in (img[:15], img.astype(np.float32), img[..., :2], [[0]]):
        with pytest.raises(ValueError):
            codec.compress(bad)


def test_partial_mask_sends_the_stated_fraction():
    ranks = uqdm_step.bayer8()
    assert sorted(ranks.reshape(-1).tolist()) == list(range(64))
    for m in (1, 8, 16, 32, 48, 63):
        mask = uqdm_step.partial_mask((1, 3, 16, 24), m)
        assert int(mask.sum()) == 3 * (16 * 24) * m // 64
        # Every 2×2 block gets a pixel once m ≥ 16: the sent pixels are spread over the image.
        if m >= 16:
            assert mask[0, 0].reshape(8, 2, 12, 2).any(axis=(1, 3)).all()
    assert uqdm_step.partial_mask((1, 3, 8, 8), 64) is None
    with pytest.raises(ValueError):
        uqdm_step.partial_mask((1, 3, 8, 8), 0)


def test_dither_is_exact_in_float32():
    u64, u32 = uqdm_step.dither(123, 2, (1, 3, 8, 8))
    assert np.array_equal(u32.numpy().reshape(-1).astype(np.float64), u64)


def test_scale_grid_is_pinned():
    # The entropy tables are built from these 64 float32 scales (units of Δ): any change to them is a
    # format change (docs/format.md §8), so their bits are pinned here.
    U = uqdm_step
    t = U.SCALE_TABLE
    assert t.dtype == np.float32 and len(t) == 64
    assert math.isclose(float(t[0]), 1 / 64, rel_tol=1e-6) and math.isclose(float(t[-1]), 64.0, rel_tol=1e-6)
    assert np.allclose(t[1:] / t[:-1], 2 ** (12 / 63), rtol=1e-6)
    assert hashlib.sha256(t.tobytes()).hexdigest() == SCALE_TABLE_SHA256
    assert hashlib.sha256(U.SCALE_BOUNDARIES.tobytes()).hexdigest() == SCALE_BOUNDARIES_SHA256


SCALE_TABLE_SHA256 = "6215ee713b74ef267e247b7c4418d4d55218831362196240f850489608d62ac7"
SCALE_BOUNDARIES_SHA256 = "f2527f1b2d115d4ca37d21157b35b0bd403b8a334afedc4219a4a7b786a1161c"


def test_one_rans_call_per_step(codec, monkeypatch):
    # Every step (and the lossless pixels) is one vectorised native call, whatever the image size.
    calls = []
    real_enc = rans.Encoder

    class Counting(real_enc):
        def encode_logistic_dithered(self, *a, **k):
            calls.append("step")
            return super().encode_logistic_dithered(*a, **k)

        def encode_categorical(self, *a, **k):
            calls.append("pixels")
            return super().encode_categorical(*a, **k)

    monkeypatch.setattr(rans, "Encoder", Counting)
    codec.compress(_image(16, 32), lossless=True)
    assert calls == ["step"] * codec.steps + ["pixels"]


def test_evaluate_equals_compress_and_decompress(codec):
    img = _image(16, 32, seed=9)
    qs = [codec.qualities[0], codec.qualities[4], codec.qualities[7], "lossless"]
    kinds = ("mmse", "ancestral", "flow")
    res = codec.evaluate(img, qs, reconstructions=kinds, seed=4)
    assert [r.quality for r in res] == qs
    for q, r in zip(qs, res):
        data = codec.compress(img, lossless=True, seed=4) if q == "lossless" else codec.compress(img, q, seed=4)
        assert r.data == data and r.bits == 8 * len(data)
        for kind in kinds:
            assert np.array_equal(r.images[kind], codec.decompress(data, kind)), (q, kind)
    assert np.array_equal(res[-1].images["mmse"], img)
    # the default reconstruction is the first one, "mmse"
    assert codec.reconstructions[0] == "mmse" and list(codec.evaluate(img, qs[:1], seed=4)[0].images) == ["mmse"]
    with pytest.raises(ValueError):
        codec.evaluate(img, qs[:1], reconstructions=("magic",))


_DECODE_ELSEWHERE = """
import sys, numpy as np
from chansim.codecs import UQDM
codec = UQDM.pretrained()
for path in sys.argv[1:]:
    data = open(path, "rb").read()
    for kind in ("mmse", "ancestral", "flow"):
        np.save(f"{path}.{kind}.npy", codec.decompress(data, kind))
"""


def test_another_process_decodes_the_same_pixels(codec, tmp_path):
    # A fresh interpreter (its own model load, its own channels-last copy) must rebuild the same
    # latents — the section checksums hold — and return the pixels this process returns, for every
    # reconstruction, including the decoder-side random ones.
    img = _image(24, 24, seed=3)
    files = {"partial": codec.compress(img, quality=codec.qualities[4], seed=21),
             "whole": codec.compress(img, quality=codec.qualities[2], seed=21)}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    r = subprocess.run([sys.executable, "-c", _DECODE_ELSEWHERE] + [str(tmp_path / n) for n in files],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    for name, data in files.items():
        for kind in ("mmse", "ancestral", "flow"):
            theirs = np.load(tmp_path / f"{name}.{kind}.npy")
            assert np.array_equal(theirs, codec.decompress(data, kind)), (name, kind)


def test_fill_in_is_a_draw_from_the_models_reverse_step(codec):
    # docs/format.md §8: after a partial step the "ancestral" latent holds, at the unsent elements,
    # μ_p + s·logit(v₀) + Δ(v₁ − ½) with s = f·σ_{t|s}·√3/π the network's own logistic scale (the
    # scale every later ancestral step uses), v₀, v₁ the uniforms of ("ancestral", i, 0 / 1).
    # Written here from the model's reverse() in float64, not from the codec's step code; the entropy
    # table's snapped scale (the pre-fix fill-in) is up to 6.8 % off, far outside the tolerance.
    from chansim import prng
    from chansim.diffusion.determinism import deterministic_inference

    img = _image(16, 24, seed=12)
    data = codec.compress(img, quality=codec.qualities[1], seed=8)  # step 0 for 32/64 of the pixels
    c = C.unpack(data)
    g = codec.gammas()
    step = uqdm_step.Step.make(g, 0, 32)
    with deterministic_inference(1):
        z_t = uqdm_step.initial_latent(8, (1, 3, 16, 24))
        z_s, z_sample = uqdm_step.decode(codec._inference(), z_t, c.sections[0], step, 8)
        _, scale, width, _ = codec.model.reverse(z_t, torch.tensor(g[0], dtype=torch.float64),
                                                 torch.tensor(g[1], dtype=torch.float64))
    scale, width = scale.double(), float(width)
    unsent = ~uqdm_step.partial_mask(z_t.shape, 32)
    n = z_t.numel()
    v0, v1 = (torch.from_numpy(prng.uniform(8, prng.stream_id("ancestral", 0, part), 0, n).astype(np.float64))
              .reshape(z_t.shape) for part in (0, 1))
    # z_s = μ_p at the unsent elements, so the logistic part is (z_sample − z_s − Δ(v₁ − ½))/logit(v₀);
    # away from logit(v₀) ≈ 0, where float32 rounding of z would dominate the ratio.
    use = unsent & (torch.logit(v0).abs() > 0.5)
    assert int(use.sum()) > 300
    logistic = (z_sample.double() - z_s.double() - width * (v1 - 0.5)) / torch.logit(v0)
    rel = ((logistic - scale) / scale)[use]
    assert float(rel.abs().max()) < 2e-3, float(rel.abs().max())
    assert torch.equal(z_sample[~unsent], z_s[~unsent])  # the sent elements are the decoded ones
    snapped = torch.from_numpy(uqdm_step.SCALES)[uqdm_step.scale_index(scale.float(), width).long()] * width
    assert float(((snapped - scale) / scale)[use].abs().max()) > 0.02  # the old rule would fail above


def test_contract_and_deprecated_aliases(codec):
    img = _image(16, 16, seed=13)
    assert isinstance(codec, Codec) and codec.name == "uqdm"
    assert codec.reconstructions == ("mmse", "ancestral", "flow")
    with pytest.deprecated_call():
        assert UQDM.codec_id == "uqdm"
    data = codec.compress(img, quality=codec.qualities[3], seed=2)
    with pytest.deprecated_call():
        old = codec.decompress(data, reconstruction="denoise")
    assert np.array_equal(old, codec.decompress(data, "mmse"))
    assert np.array_equal(codec.decompress(data), codec.decompress(data, "mmse"))
    with pytest.deprecated_call():
        prev = list(codec.decompress_progressive(data, "denoise"))
    assert np.array_equal(prev[-1][1], old)
    with pytest.deprecated_call():
        files = codec.compress_many(img, [1, 4], seed=2)
    with pytest.deprecated_call():
        pairs = codec.compress_many(img, [4], seed=2, reconstructions=True)
    assert files[1] == data and pairs[0][0] == data and np.array_equal(pairs[0][1], old)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the new names warn about nothing
        codec.evaluate(img, [4], reconstructions=("mmse",), seed=2)
