"""The NTC codec: round trips, the universal quantizer's law, cross-machine safety, bad files.

Most tests run on tiny randomly initialised models of the shipped class — without and with a
channel-wise context (3 slices), and with a latent residual too, their zero-started parts
randomised so they matter — saved and loaded through the public model-file functions; the size
test uses the shipped model.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
stats = pytest.importorskip("scipy.stats")
special = pytest.importorskip("scipy.special")

from chansim import FormatError, dq  # noqa: E402
from chansim.codecs import container as C  # noqa: E402
from chansim.codecs.ntc import DITHER_STREAM, NTC  # noqa: E402
from chansim.ntc import tables as T  # noqa: E402
from chansim.ntc.io import load_model, save_model  # noqa: E402
from chansim.ntc.model import Bottleneck, HyperpriorModel, cell_posterior_mean  # noqa: E402


#: Slices coded per quality of the "quality-slices" case: qualities 1–2 code one of three, 3–5 two.
GATED = (1, 1, 2, 2, 2, 3, 3, 3)


@pytest.fixture(scope="module", params=[(1, False, T.SCALE_MIN, None, 0, None), (3, False, T.SCALE_MIN, None, 0, None),
                                        (3, True, T.SCALE_MIN, None, 0, None),
                                        (3, True, T.SCALE_MIN_LOWEST, 12, 0, None),
                                        (3, True, T.SCALE_MIN, None, 1, None), (3, True, T.SCALE_MIN, None, 0, GATED)],
                ids=["hyperprior", "context", "residual", "low-floor-hyper12", "blocks", "quality-slices"])
def tiny_path(request, tmp_path_factory):
    torch.manual_seed(0)
    slices, residual, floor, hyper_n, blocks, gated = request.param     # hyper_n: z narrower than the transforms
    model = HyperpriorModel(16, 24, slices=slices, residual=residual, scale_min=floor, hyper_n=hyper_n,
                            blocks=blocks, quality_slices=gated)
    # A trained-looking gain ladder: finer steps at higher qualities.
    with torch.no_grad():
        model.gain.copy_(torch.linspace(0.5, 3.0, 8)[:, None].expand(-1, 24))
        model.inv_gain.copy_(-model.gain)
        for ctx in model.context or ():
            torch.nn.init.normal_(ctx.net[-1].weight, std=0.05)
        if model.residual is not None:                      # zero-started parts randomised so they matter
            model.residual.weight.uniform_(0.5, 1.0)
            torch.nn.init.normal_(model.residual.net[-1].weight, std=0.05)
        for block in model.modules():
            if isinstance(block, Bottleneck):
                torch.nn.init.normal_(block.net[-1].weight, std=0.05)
        if floor < T.SCALE_MIN:                             # most σ' between the floor and 0.11
            model.h_s[-1].weight[24:] *= 0.02
            model.h_s[-1].bias[24:] = 0.05
    path = tmp_path_factory.mktemp("ntc") / "tiny.pt"
    save_model(model, path)
    return path


@pytest.fixture(scope="module")
def codec(tiny_path):
    return NTC.from_file(tiny_path)


@pytest.fixture(scope="module")
def photo():
    data = pytest.importorskip("skimage.data")
    return np.ascontiguousarray(data.astronaut()[::4, ::4][:100, :90])   # not a multiple of 64


def test_round_trip_every_quality(codec, photo):
    sizes = []
    for result in codec.evaluate(photo):
        out = codec.decompress(result.data)
        assert out.shape == photo.shape and out.dtype == np.uint8
        assert (out == result.images["mmse"]).all()          # evaluate() shows what the receiver gets
        assert codec.compress(photo, result.quality) == result.data
        sizes.append(len(result.data))
    assert sizes == sorted(sizes)


def test_decodes_identically_in_another_process(codec, photo, tiny_path, tmp_path):
    data = codec.compress(photo, 6, seed=7)
    f = tmp_path / "a.chsm"
    f.write_bytes(data)
    out = tmp_path / "a.npy"
    script = ("import numpy as np; from chansim.codecs.ntc import NTC; "
              f"c = NTC.from_file({str(tiny_path)!r}); "
              f"np.save({str(out)!r}, c.decompress(open({str(f)!r}, 'rb').read()))")
    subprocess.run([sys.executable, "-c", script], check=True)
    assert (np.load(out) == codec.decompress(data)).all()


def _test_latents(codec, photo):
    """(y', μ̂) of the photo at quality 8: the gained latents and the means the decoder predicts."""
    q = codec._q(8)
    with torch.inference_mode():
        yg = codec._analysis(photo)[1] * codec.model.gain[q].exp()[:, :, None, None]
    mean = codec.read_symbols(codec.compress(photo, 8))[1].mean
    return yg.double().numpy(), np.asarray(mean, np.float64)


def _dq_channel(y, mean, *, subtract=True, dither=True, bias=0.0):
    """(encode, decode) for chansim.testing of the NTC latent channel: ŷ' = μ̂ + k − u with
    k = rint(y' − μ̂ + u) (chansim.dq, the codec's stream), or a wrong quantizer for the power
    checks: ``dither=False`` rounds plainly (ŷ' = μ̂ + rint(y' − μ̂)), ``subtract=False`` leaves the
    dither in (ŷ' = μ̂ + k), ``bias`` shifts the encoder's dither (the decoder's is right)."""
    def dither_of(s):
        return dq.dither(s, DITHER_STREAM, 0, y.size).reshape(y.shape)

    def y_hat(k, s):
        if dither and subtract and not bias:  # the library's own dequantizer, as the codec calls it
            return dq.dequantize(k, 1.0, s, DITHER_STREAM, mu=mean, dtype=np.float64).ravel()
        return (mean + (k - dither_of(s) if dither and subtract else k)).ravel()

    def encode(s):
        if dither and not bias:
            k = dq.quantize(y, 1.0, s, DITHER_STREAM, mu=mean)
        else:
            k = np.rint(y - mean + (dither_of(s) + bias if dither else 0.0)).astype(np.int32)
        return y_hat(k, s), k.tobytes()

    def decode(message, s):
        return y_hat(np.frombuffer(message, np.int32).reshape(y.shape), s)

    return encode, decode


def test_quantization_error_is_uniform_and_independent_of_the_latent(codec, photo):
    """ŷ' − y' ~ U(−½, ½) independently of y', through chansim.testing.check_exact on all
    n = 1,536 latents of the photo (24 channels × 8 × 8) in one call, seed 11, α = 1e-3
    family-wise: ŷ' against q = Uniform.around(y', 1) (KS and χ² of the PIT, which is the
    error + ½), and the PIT's law given the latent's position in its quantization cell,
    frac(y' − μ̂), in 5 equal-count bins (χ², 5 × 19 cells, 90 degrees of freedom); Bonferroni
    over the three. ŷ' decoded from the indices alone is bit-identical.

    Power at the same n, seed and α: plain rounding ŷ' = μ̂ + rint(y' − μ̂) — whose marginal
    error passes KS and χ² here, so only the conditional test catches it —, non-subtractive
    dithering ŷ' = μ̂ + rint(y' − μ̂ + u) and an encoder's dither off by 0.1 are all rejected."""
    from chansim.testing import Uniform, check_exact

    y, mean = _test_latents(codec, photo)
    n = y.size
    assert y.shape == (1, 24, 8, 8)  # the n stated above
    q = Uniform.around(y.ravel(), 1.0)
    position = {"frac(y' − μ)": ((y - mean) % 1.0).ravel()}
    encode, decode = _dq_channel(y, mean)
    assert np.abs(encode(11)[0] - y.ravel()).max() <= 0.5
    r = check_exact(encode, decode, q, n=n, seed=11, batched=True, given=position)
    assert r.n == n and r.alpha == 1e-3 and len(r.given_pvalues) == 1 and not r.mismatches

    def wrong(**kw):
        bad = check_exact(*_dq_channel(y, mean, **kw), q, n=n, seed=11, batched=True, given=position,
                          raise_on_failure=False)
        assert not bad.passed and bad.p_value < 1e-3 and not bad.mismatches, (kw, bad.message)
        return bad

    plain = wrong(dither=False)
    assert plain.worst.startswith("chi-squared given") and plain.given_pvalues["frac(y' − μ)"] * 3 < 1e-3
    assert plain.ks_pvalues[0] * 3 > 1e-3 and plain.chi2_pvalues[0] * 3 > 1e-3  # marginally indistinguishable
    wrong(subtract=False)
    assert wrong(bias=0.1).ks_pvalues[0] * 3 < 1e-3  # a biased dither shifts the marginal


class _Perturbed(torch.nn.Module):
    """A float64 entropy-model network whose every output goes through ``change``."""

    def __init__(self, net, change):
        super().__init__()
        self.net, self.change = net, change

    def forward(self, *args):
        out = self.net(*args)
        return tuple(self.change(t) for t in out) if isinstance(out, tuple) else self.change(out)


def _decode_perturbed(codec, data, change):
    """Decode with the decoder's hyper-synthesis and every slice context's outputs changed."""
    f64 = codec._f64
    h_s, contexts = f64.h_s, list(f64.context or ())
    try:
        f64.h_s = _Perturbed(h_s, change)
        for i, net in enumerate(contexts):
            f64.context[i] = _Perturbed(net, change)
        return codec.decompress(data)
    finally:
        f64.h_s = h_s
        for i, net in enumerate(contexts):
            f64.context[i] = net


def test_one_ulp_of_the_entropy_model_does_not_change_the_decoding(codec, photo):
    """Cross-machine safety: float64 hyper-synthesis (and slice-context) outputs nudged by one
    ulp (either way) snap to the same grid points, so the decoder builds identical tables."""
    data = codec.compress(photo, 4, seed=3)
    reference = codec.decompress(data)
    for direction in (np.inf, -np.inf):
        out = _decode_perturbed(codec, data, lambda t: torch.from_numpy(np.nextafter(t.numpy(), direction)))
        assert (out == reference).all()


def test_a_different_entropy_model_is_detected(codec, photo):
    data = codec.compress(photo, 4, seed=3)
    with pytest.raises(FormatError):     # means and scales well off their grid points
        _decode_perturbed(codec, data, lambda t: t + 0.3 * torch.sign(t))


def test_file_errors_and_arguments(codec, photo):
    data = codec.compress(photo, 2, seed=1)
    c = C.unpack(data)
    assert c.codec == "ntc" and c.seed == 1 and len(c.settings) == 6
    with pytest.raises(FormatError):
        codec.decompress(data[:-5])
    bad = C.Container(c.codec, c.model_tag, c.height, c.width, c.seed, bytes([2]) + c.settings[1:], c.sections)
    with pytest.raises(FormatError, match="version"):
        codec.decompress(bad.pack())
    bad = C.Container(c.codec, c.model_tag, c.height, c.width, c.seed, bytes([1, 9]) + c.settings[2:], c.sections)
    with pytest.raises(FormatError, match="quality"):
        codec.decompress(bad.pack())
    for q in (0, 9, 2.5, True, "3"):
        with pytest.raises(ValueError):
            codec.compress(photo, q)
    with pytest.raises(ValueError):
        codec.compress(photo, 2, seed=-1)
    with pytest.raises(ValueError):
        codec.decompress(data, reconstruction="flow")


def test_the_model_id_is_what_a_decoder_reads(codec, photo, tiny_path, tmp_path):
    """The id files carry hashes the decoder side only: changing any encoder tensor (the analysis
    transforms and their gains) or widening the analysis transform keeps it — and such a model decodes
    a file of the original bit for bit, so keeping the id is safe — while changing any other stored
    tensor (synthesis, entropy model, context, residual, tables) gives a new id."""
    from chansim.ntc.io import decoder_id
    from chansim.ntc.model import encoder_only

    model, _, mid = load_model(tiny_path)
    blob = torch.load(tiny_path, weights_only=True)
    stored = blob["state_dict"]
    encoder = [k for k in stored if encoder_only(k)]
    assert {k.split(".")[0] for k in encoder} == {"g_a", "h_a", "gain", "hgain"} | ({"g_a_blocks"} if model.blocks else set())
    for k, v in stored.items():
        changed = dict(stored)
        changed[k] = v.clone()
        changed[k].view(-1)[0] += 1            # the smallest step of an int table, a large one of a float
        assert not torch.equal(changed[k], v), k
        assert (decoder_id(blob["config"], changed) == mid) == (k in encoder), k
    data = codec.compress(photo, 3, seed=7)
    other = HyperpriorModel(model.n, model.m, model.lambdas, model.slices, model.residual is not None,
                            model.scale_min, model.hyper_n, n_analysis=20, blocks=model.blocks,
                            quality_slices=model.quality_slices)
    torch.manual_seed(1)
    other.load_state_dict({k: (torch.randn_like(other.state_dict()[k]) * 0.1 if encoder_only(k) else v)
                           for k, v in model.state_dict().items()})
    assert save_model(other, tmp_path / "other.pt") == mid
    recoded = NTC.from_file(tmp_path / "other.pt")
    assert (recoded.decompress(data) == codec.decompress(data)).all()
    assert recoded.compress(photo, 3, seed=7) != data           # a different encoder, a different file


def test_shipped_pair_is_described_truthfully_by_its_cards():
    """The shipped NTC model and generative decoder: each card's SHA-256 and model id are its file's, the
    decoder's card and config name the NTC model's id as ``base_model``, and the codec binds the two."""
    import json

    from chansim.codecs._pretrained import models_dir
    from chansim.diffusion.io import file_sha256, load_model as load_diffusion

    ntc_path, gen_path = models_dir() / "ntc_default.pt", models_dir() / "ntc_generative.pt"
    if not ntc_path.is_file() or not gen_path.is_file():
        pytest.skip("the shipped NTC pair is not in this installation")
    ntc_card = json.loads(ntc_path.with_suffix(".json").read_text())
    gen_card = json.loads(gen_path.with_suffix(".json").read_text())
    ntc_id = load_model(ntc_path)[2]
    decoder, gen_id = load_diffusion(gen_path)
    assert ntc_card["file_sha256"] == file_sha256(ntc_path) and ntc_card["model_id"] == ntc_id
    assert gen_card["file_sha256"] == file_sha256(gen_path) and gen_card["model_id"] == gen_id
    assert gen_card["base_model"] == decoder.base_model == ntc_id
    assert NTC.pretrained().decoder is not None


def test_model_file_round_trip_and_tables(tiny_path):
    model, (offsets, freqs), mid = load_model(tiny_path)
    model2, tables2, mid2 = load_model(tiny_path)
    assert mid == mid2 and (tables2[1] == freqs).all()
    assert freqs.min() >= 1 and offsets.shape == (model.hyper_n,)      # one table per channel of z
    assert model.config().get("hyper_n", model.n) == model.hyper_n     # in the config (so the id) when ≠ n


def test_int8_kernels_are_exact_products_and_decode_in_another_process(codec, photo, tiny_path, tmp_path):
    """storage="int8": every convolution kernel is stored as int8 q with a float32 scale s per slice of its
    first axis, s = max|w| / 127 and |q·s − w| ≤ s/2 (the closed form of symmetric rounding), the rest as
    float16; the loaded weights are exactly q·s in float32, the file is version 2 and smaller, and the
    model codes: round trip at the lowest and highest quality, another process decoding identically."""
    import subprocess
    import sys

    from chansim.ntc.io import VERSION_INT8, quantize_int8

    model = codec.model
    path = tmp_path / "int8.pt"
    mid = save_model(model, path, "int8")
    blob = torch.load(path, weights_only=True)
    sd = blob["state_dict"]
    assert blob["version"] == VERSION_INT8 and path.stat().st_size < 0.75 * tiny_path.stat().st_size
    loaded, _, mid2 = load_model(path)
    assert mid2 == mid != codec.model_id
    for name, w in model.state_dict().items():
        if w.dim() == 4:
            q, s = sd[name], sd[name + ".scale"]
            assert q.dtype == torch.int8 and s.dtype == torch.float32 and s.shape == (w.shape[0],)
            peak = w.abs().reshape(w.shape[0], -1).amax(1)
            assert torch.equal(s, (peak.double() / 127).float()) and int(q.abs().max()) == 127
            view = (-1, 1, 1, 1)
            assert ((q.double() * s.double().view(view) - w.double()).abs() <= s.double().view(view) / 2 + 1e-12).all()
            assert torch.equal(loaded.state_dict()[name], q.float() * s.view(view))
        elif w.is_floating_point():
            assert sd[name].dtype == torch.float16 and torch.equal(loaded.state_dict()[name], sd[name].float())
    q0, s0 = quantize_int8(torch.zeros(2, 3, 1, 1))
    assert not q0.any() and torch.equal(s0, torch.ones(2))
    small = NTC.from_file(path)
    for quality in (1, small.model.num_qualities):
        data = small.compress(photo, quality)
        out = small.decompress(data)
        assert (out == small.evaluate(photo, [quality])[0].images["mmse"]).all()
    (tmp_path / "f.chsm").write_bytes(data)
    script = ("import sys, numpy as np; from chansim.codecs.ntc import NTC; "
              "c = NTC.from_file(sys.argv[1]); np.save(sys.argv[3], c.decompress(open(sys.argv[2], 'rb').read()))")
    subprocess.run([sys.executable, "-c", script, str(path), str(tmp_path / "f.chsm"), str(tmp_path / "o.npy")],
                   check=True)
    assert np.array_equal(np.load(tmp_path / "o.npy"), out)
    del sd[next(k for k in sd if k.endswith(".scale"))]
    torch.save(blob, tmp_path / "broken.pt")
    with pytest.raises(ValueError, match="scale"):
        load_model(tmp_path / "broken.pt")
    # "mixed": the image transforms' kernels float16, every other kernel the int8 product above.
    save_model(model, tmp_path / "mixed.pt", "mixed")
    blob = torch.load(tmp_path / "mixed.pt", weights_only=True)
    mixed, _, _ = load_model(tmp_path / "mixed.pt")
    assert blob["version"] == VERSION_INT8
    for name, w in model.state_dict().items():
        if w.dim() == 4:
            image = name.startswith(("g_a.", "g_s."))
            assert blob["state_dict"][name].dtype == (torch.float16 if image else torch.int8), name
            assert torch.equal(mixed.state_dict()[name], (w.half() if image else loaded.state_dict()[name]).float())
    data = NTC.from_file(tmp_path / "mixed.pt").compress(photo, 1)
    assert np.array_equal(NTC.from_file(tmp_path / "mixed.pt").decompress(data),
                          NTC.from_file(tmp_path / "mixed.pt").evaluate(photo, [1])[0].images["mmse"])
    torch.save({**blob, "version": 3}, tmp_path / "future.pt")
    with pytest.raises(ValueError, match="version 3"):
        load_model(tmp_path / "future.pt")
    with pytest.raises(ValueError, match="storage"):
        save_model(model, tmp_path / "x.pt", "int4")


def test_a_lower_floor_is_the_models_own_setting(codec, photo, tiny_path):
    """A model's σ' floor is in its config (so in its id) and in what its files are coded with: the
    snapped scales go down to the floor, not below, each a grid point 2^(j/32) (20 bits)."""
    model = codec.model
    sym = codec.read_symbols(codec.compress(photo, 1))[1]
    j = np.rint(32 * np.log2(sym.scale))
    assert np.array_equal(sym.scale, round20(2 ** (j / 32))) and sym.scale.min() >= model.scale_min * 2 ** (-1 / 64)
    if model.scale_min == T.SCALE_MIN:
        assert "scale_min" not in model.config()           # models from before the setting keep their id
        return
    assert model.config()["scale_min"] == model.scale_min and (sym.scale < 0.1).mean() > 0.5
    other = HyperpriorModel(**{**{k: v for k, v in model.config().items() if k != "kind"}, "scale_min": T.SCALE_MIN})
    other.load_state_dict(model.state_dict())
    assert save_model(other, tiny_path.with_name("other.pt")) != codec.model_id


def test_frequency_table_keeps_the_central_mass():
    """A discretized N(3, 4²) and a Laplace(−20, 2): offsets and lengths from the closed forms."""
    r = 64
    grid = np.arange(-r, r + 1)
    g = special.ndtr((grid + 0.5 - 3) / 4) - special.ndtr((grid - 0.5 - 3) / 4)
    lap = stats.laplace(-20, 2)
    l_ = lap.cdf(grid + 0.5) - lap.cdf(grid - 0.5)
    offsets, freqs = T.frequency_table(np.stack([g, l_]), tail=1e-6)
    # Shortest range with ≤ 1e-6 outside, half in each tail: quantiles 5e-7 and 1 − 5e-7.
    lo_g = int(np.floor(stats.norm(3, 4).ppf(5e-7) + 0.5))
    assert abs(offsets[0] - lo_g) <= 1
    lo_l = int(np.floor(lap.ppf(5e-7) + 0.5))
    assert abs(offsets[1] - lo_l) <= 1
    assert freqs.min() >= 1
    p = freqs[0] / freqs[0].sum()
    ideal = g[offsets[0] + r: offsets[0] + r + freqs.shape[1]]
    ideal = ideal / ideal.sum()
    # What matters is the code length: the table costs < 0.002 bits per symbol over the true pmf.
    nz = ideal > 0
    assert (ideal[nz] * np.log2(ideal[nz] / p[nz])).sum() < 2e-3


def round20(v):
    m, e = np.frexp(v)
    return np.ldexp(np.rint(np.ldexp(m, 20)), e - 20)


def test_snapping_grid():
    """docs/format.md §9: σ̂ = 2^(j/32) rounded to 20 significant bits, j = clip(rint(32 log2 max(σ',
    floor)), ⌈32 log2 floor⌉, 256) — the default floor 0.11 gives j ≥ −101 (the grid of every model
    before floors were a setting), the lowest 1/64 gives j ≥ −192."""
    assert T.snap_scales(np.array([1.0]))[0] == 1.0
    assert T.snap_scales(np.array([2.0, 0.5, 4.0]))[:].tolist() == [2.0, 0.5, 4.0]
    assert T.snap_scales(np.array([1e-9, 0.05, 0.11]))[:].tolist() == [round20(2 ** (-101 / 32))] * 3
    assert T.snap_scales(np.array([1e-9, 0.02, 0.11]), 1 / 64).tolist() == [
        1 / 64, round20(2 ** (np.rint(32 * np.log2(0.02)) / 32)), round20(2 ** (np.rint(32 * np.log2(0.11)) / 32))]
    s = np.exp(np.random.default_rng(2).uniform(np.log(0.112), np.log(200), 10_000))     # j ≥ −101
    assert np.array_equal(T.snap_scales(s), T.snap_scales(s, 1 / 64))      # the floor only moves the bottom
    for bad in (0.01, 1 / 65, 1.5, -1, float("nan"), "x", None):
        with pytest.raises(ValueError, match="scale_min"):
            T.snap_scales(np.array([1.0]), bad)
        with pytest.raises(ValueError, match="scale_min"):
            HyperpriorModel(8, 12, scale_min=bad)
    assert T.snap_scales(np.array([1e9]))[0] == T.SCALE_TABLE[-1] <= T.SCALE_MAX
    s = np.exp(np.random.default_rng(0).uniform(np.log(0.2), np.log(200), 10_000))
    ratio = T.snap_scales(s) / s
    assert np.abs(np.log2(ratio)).max() <= 1 / 64 + 1e-12
    m = np.random.default_rng(1).normal(0, 30, 10_000)
    sm = T.snap_means(m)
    assert np.abs(sm - m).max() <= 1 / 128 and (sm * 64 == np.rint(sm * 64)).all()


def test_slice_context_sees_only_earlier_slices():
    """Channel-wise context (Minnen & Singh 2020): slice i's (μ', σ') depend on ŷ' of slices < i and
    on nothing from slice i on — the decoder has exactly those when it needs them."""
    torch.manual_seed(1)
    model = HyperpriorModel(8, 12, slices=3)
    for ctx in model.context:
        torch.nn.init.normal_(ctx.net[-1].weight, std=0.1)
    z, y = torch.randn(1, 8, 2, 2), torch.randn(1, 12, 8, 8)
    q = torch.tensor([2])
    with torch.no_grad():
        base = torch.cat(model.entropy_parameters(z, y, q))          # (2, 12, 8, 8): means, scales
        for j in range(3):
            y2 = y.clone()
            y2[:, model.slice_bounds(j)] += torch.randn(1, 4, 8, 8)
            moved = (torch.cat(model.entropy_parameters(z, y2, q)) != base).any(dim=(0, 2, 3))
            assert not moved[:4 * (j + 1)].any() and moved[4 * (j + 1):].all()


@pytest.mark.parametrize("add_on", [{"slices": 3}, {"residual": True}], ids=["context", "residual"])
def test_a_zero_add_on_codes_as_the_model_without_it(tmp_path, photo, add_on):
    """A model whose channel-wise context or latent residual is still zero (a fresh --init-from start)
    decodes to the same image from the same symbols, and its file is the same size, at every quality."""
    torch.manual_seed(2)
    plain = HyperpriorModel(16, 24)
    ctx = HyperpriorModel(16, 24, **add_on)
    ctx.load_state_dict(plain.state_dict(), strict=False)
    save_model(plain, tmp_path / "plain.pt")
    save_model(ctx, tmp_path / "ctx.pt")
    a, b = NTC.from_file(tmp_path / "plain.pt"), NTC.from_file(tmp_path / "ctx.pt")
    assert a.model_id != b.model_id
    for q in (1, 5, 8):
        fa, fb = a.compress(photo, q, seed=9), b.compress(photo, q, seed=9)
        sa, sb = a.read_symbols(fa)[1], b.read_symbols(fb)[1]
        assert np.array_equal(sa.z, sb.z) and np.array_equal(sa.k, sb.k) and np.array_equal(sa.mean, sb.mean)
        assert (a.decompress(fa) == b.decompress(fb)).all()
        assert abs(len(fa) - len(fb)) <= 8, (len(fa), len(fb))


@pytest.mark.parametrize("slices", [0, -1, 5, 7])
def test_slices_must_divide_the_latent_channels(slices):
    with pytest.raises(ValueError, match="slices must be a positive divisor of m = 24"):
        HyperpriorModel(16, 24, slices=slices)


def test_cell_posterior_mean_is_the_truncated_normal_mean():
    """E[t | t ∈ v ± ½] for t ~ N(0, s²) against SciPy's truncated normal, and in the far tail (where
    SciPy itself loses digits) against the Mills-ratio expansion c + s²/c − 2s⁴/c³ + 10s⁶/c⁵ of the near
    edge c = |v| − ½; odd in v and always inside the cell."""
    v = np.concatenate([np.linspace(-6, 6, 97), [0.5, -0.5, 0.4999, 12.0, 40.0]])
    for s in (0.11, 0.3, 1.0, 4.0, 60.0):
        got = cell_posterior_mean(torch.from_numpy(v), torch.full(v.shape, s, dtype=torch.float64)).numpy()
        ref = np.array([stats.truncnorm.mean((x - 0.5) / s, (x + 0.5) / s, scale=s) for x in v])
        np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-12)
        assert (np.abs(got - v) <= 0.5).all()
        mirrored = cell_posterior_mean(torch.from_numpy(-v), torch.full(v.shape, s, dtype=torch.float64)).numpy()
        np.testing.assert_array_equal(mirrored, -got)
    s, c = 0.11, np.array([20.0, 200.0, 2000.0])
    got = cell_posterior_mean(torch.from_numpy(c + 0.5), torch.full(c.shape, s, dtype=torch.float64)).numpy()
    np.testing.assert_allclose(got, c + s ** 2 / c - 2 * s ** 4 / c ** 3 + 10 * s ** 6 / c ** 5, rtol=1e-14)
    low = cell_posterior_mean(torch.tensor([3.0, 0.2]), torch.tensor([0.11, 0.11]))   # float32: still finite
    assert torch.isfinite(low).all()


def test_latent_residual_with_unit_gates_is_the_posterior_mean():
    """With gates w_q = 1 and no learned term, what the synthesis transform receives is E[y' | cell]
    under N(μ', σ'²) — SciPy's truncated-normal mean — and a residual model refuses to synthesise
    without the entropy model's (μ', σ')."""
    torch.manual_seed(6)
    model = HyperpriorModel(8, 12, residual=True)
    y_hat, mean = torch.randn(1, 12, 3, 3, dtype=torch.float64) * 3, torch.randn(1, 12, 3, 3, dtype=torch.float64)
    scale = torch.rand(1, 12, 3, 3, dtype=torch.float64) * 2 + 0.11
    q = torch.tensor([4])
    with torch.no_grad():
        model.residual.weight[4] = 1.0
        got = model.residual(y_hat, mean, scale, q).double().numpy().ravel()
    v, s, mu = (t.numpy().ravel() for t in (y_hat - mean, scale, mean))
    ref = mu + np.array([stats.truncnorm.mean((a - 0.5) / b, (a + 0.5) / b, scale=b) for a, b in zip(v, s)])
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-5)          # the network runs in float32
    with pytest.raises(ValueError, match="means and scales"):
        model.synthesis(y_hat.float(), q)


def test_candidate_models_are_described_truthfully_and_decode():
    """Each model in candidates/ (trained, not yet shipped): its card's SHA-256 and model id are its file's,
    it fits the shipped models' size budget, and on a detailed photo it codes no worse than the shipped
    model it would replace — a broken or mis-stored candidate fails. "No worse" is read along the shipped
    model's R-D curve (PSNR interpolated in log rate at the candidate's own rate, within 0.3 dB), not at the
    same quality index: a candidate may move its ladder in rate, as a re-weighted run does."""
    import json
    from pathlib import Path

    from chansim.diffusion.io import file_sha256
    from chansim.metrics import psnr
    from chansim.ntc.io import SIZE_BUDGET

    files = sorted((Path(__file__).resolve().parents[1] / "candidates").glob("*.pt"))
    if not files:
        pytest.skip("no model waiting in candidates/ (none at present, or an sdist's or a wheel's test run)")
    image = np.ascontiguousarray(pytest.importorskip("skimage.data").astronaut()[::4, ::4][:128, :96])

    def point(codec, quality):
        data = codec.compress(image, quality)
        out = codec.decompress(data)
        assert out.shape == image.shape
        return np.log(8 * len(data) / image[..., 0].size), psnr(image, out)

    shipped = NTC.pretrained()
    log_rate, db = np.array([point(shipped, q) for q in shipped.qualities]).T
    assert np.all(np.diff(log_rate) > 0), "the shipped ladder's rate must rise with the quality"
    for path in files:
        card = json.loads(path.with_suffix(".json").read_text())
        codec = NTC.from_file(path)
        assert card["file_sha256"] == file_sha256(path) and card["model_id"] == codec.model_id
        assert path.stat().st_size <= SIZE_BUDGET
        compared = 0
        for quality in (3, 6, 9):
            rate, got = point(codec, quality)
            if log_rate[0] <= rate <= log_rate[-1]:
                compared += 1
                assert got >= np.interp(rate, log_rate, db) - 0.3, (path.name, quality, np.exp(rate), got)
        assert compared >= 2, f"{path.name}: its rates leave the shipped model's range on this photo"
