"""NTC's generative decoder (chansim.diffusion.models.ResidualDiffusion + NTC's "generative" / "interp").

* The sampler draws the law it should: with the exact denoiser of Gaussian residuals plugged in
  as the network, the output of ``sample`` from the codec's Philox z_T is Gaussian with the
  variance given by the DPM-Solver++(2M) recursion written out below from the paper's formulas
  (KS test, n = 12,288, α = 10⁻³, at data scales 0.1, 0.8 and 3) — and that variance is within
  4 % of the data's, so the 15-step solver itself is accurate.
* The codec: all three reconstructions decode from one file; "mmse" is bit-identical to a codec
  without a decoder; the generative image is a function of the file alone; "interp" is the λ-mix
  of the other two (to the rounding of 8-bit output); bad λ, a decoder of another model and a
  generative request without a decoder are refused.
* The shipped decoder (when present): trained on the shipped NTC model, and on a real photo at the
  lowest quality its reconstruction carries more high-frequency energy than the MMSE one.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from chansim.codecs import streams  # noqa: E402
from chansim.codecs._pretrained import models_dir  # noqa: E402
from chansim.codecs.ntc import NTC  # noqa: E402
from chansim.diffusion.io import load_model as load_diffusion  # noqa: E402
from chansim.diffusion.io import save_model  # noqa: E402
from chansim.diffusion.models import default_residual  # noqa: E402
from chansim.ntc.io import load_model  # noqa: E402


def _sig(x):
    return 1.0 / (1.0 + math.exp(-x))


class GaussianOracle(torch.nn.Module):
    """The exact v-prediction for residuals r ~ N(0, s²) iid (independent of the conditioning)."""

    def __init__(self, s: float, in_channels=7, out_channels=3):
        super().__init__()
        self.s, self.in_channels, self.out_channels = s, in_channels, out_channels

    def config(self):
        return {}

    def forward(self, z_in, gamma):
        z = z_in[:, :3].double()
        g = torch.as_tensor(gamma, dtype=torch.float64).reshape(-1, 1, 1, 1)
        a2, s2 = torch.sigmoid(-g), torch.sigmoid(g)
        a, sig = a2.sqrt(), s2.sqrt()
        x_hat = a * self.s ** 2 * z / (a2 * self.s ** 2 + s2)
        eps_hat = (z - a * x_hat) / sig
        return (a * eps_hat - sig * x_hat).to(z_in.dtype)


def _output_variance(gammas, s: float) -> float:
    """Var of the sampler's output for r ~ N(0, s²) with the exact denoiser, from r_1 ~ N(0, 1).

    VP: α² = sigmoid(−γ), σ² = sigmoid(γ), λ = −γ/2. Exact denoiser x̂ = c·z, c = α s²/(α² s² + σ²).
    DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2): h = λ_s − λ_t, z_s = (σ_s/σ_t) z_t − α_s (e^(−h) − 1) D
    with D = x̂_t first and (1 + 1/(2r)) x̂_t − (1/(2r)) x̂_prev, r = h_prev/h, after. Everything is
    linear in r_1, so the output is m·r_1 and its variance m²."""
    m, x_prev, h_prev = 1.0, None, None
    for gt, gs in zip(gammas, gammas[1:]):
        at, st = math.sqrt(_sig(-gt)), math.sqrt(_sig(gt))
        as_, ss = math.sqrt(_sig(-gs)), math.sqrt(_sig(gs))
        h = (-gs / 2) - (-gt / 2)
        x0 = at * s ** 2 / (at ** 2 * s ** 2 + st ** 2) * m
        d = x0 if x_prev is None else (1 + h / (2 * h_prev)) * x0 - h / (2 * h_prev) * x_prev
        m = (ss / st) * m - as_ * (math.exp(-h) - 1) * d
        x_prev, h_prev = x0, h
    a0, s0 = math.sqrt(_sig(-gammas[-1])), math.sqrt(_sig(gammas[-1]))
    return (a0 * s ** 2 / (a0 ** 2 * s ** 2 + s0 ** 2) * m) ** 2


@pytest.mark.parametrize("s_data", [0.1, 0.8, 3.0])
def test_sampler_draws_the_gaussian_law_the_recursion_gives(s_data):
    stats = pytest.importorskip("scipy.stats")
    s_q = 0.07
    model = default_residual([0.05, s_q, 0.09], "base", widths=(8, 16))
    model.net = GaussianOracle(s_data)
    base = torch.full((1, 3, 64, 64), 0.5)
    x = model.sample(base, 1, streams.initial_latent(77, base.shape))
    gammas = model.sampling_gammas()
    assert len(gammas) == 16 and gammas[0] == 8.0 and gammas[-1] == -10.0   # 15 steps + the final x̂
    var = _output_variance(gammas, s_data)
    assert abs(var / s_data ** 2 - 1) < 0.04, var     # the 15-step solver keeps the data's variance
    r = ((x - base) / s_q).double().flatten().numpy()
    assert stats.kstest(r / math.sqrt(var), "norm").pvalue > 1e-3
    # …and not its neighbours: 10 % too wide or too narrow is rejected at this n (12,288).
    for wrong in (0.9, 1.1):
        assert stats.kstest(r / math.sqrt(var * wrong ** 2), "norm").pvalue < 1e-3


@pytest.fixture(scope="module")
def shipped_ntc():
    return load_model(models_dir() / "ntc_default.pt")


@pytest.fixture(scope="module")
def tiny(shipped_ntc, tmp_path_factory):
    """An NTC codec with a small randomly initialised decoder of the shipped model, saved and loaded
    through the public model-file functions."""
    model, tables, mid = shipped_ntc
    torch.manual_seed(0)
    dec = default_residual([0.04 + 0.01 * q for q in range(model.num_qualities)], mid, widths=(8, 16))
    for p in dec.parameters():      # zero-initialised output layers would make the sample = base
        torch.nn.init.normal_(p, std=0.05)
    path = tmp_path_factory.mktemp("dec") / "dec.pt"
    dec_id = save_model(dec, path, torch.float16)
    loaded, loaded_id = load_diffusion(path)
    assert loaded_id == dec_id and loaded.config() == dec.config()
    return NTC(model, tables, mid, decoder=loaded)


@pytest.fixture(scope="module")
def photo():
    data = pytest.importorskip("skimage.data")
    return np.ascontiguousarray(data.astronaut()[100:196, 150:230])     # 96×80


def test_three_reconstructions_from_one_file(tiny, shipped_ntc, photo):
    model, tables, mid = shipped_ntc
    plain = NTC(model, tables, mid)
    assert plain.reconstructions == ("mmse",) and tiny.reconstructions == ("mmse", "generative", "interp")
    data = tiny.compress(photo, 2)
    assert data == plain.compress(photo, 2)               # the decoder changes no byte of the file
    mmse = tiny.decompress(data)
    assert np.array_equal(mmse, plain.decompress(data))
    gen = tiny.decompress(data, "generative")
    assert gen.shape == photo.shape and gen.dtype == np.uint8
    assert np.abs(gen.astype(int) - mmse).mean() > 1.0    # a real draw, not the MMSE image
    assert np.array_equal(gen, tiny.decompress(bytes(data), "generative"))   # a function of the file
    for lam in (0.0, 0.3, 1.0):
        mix = tiny.decompress(data, "interp", lam=lam).astype(np.float64)
        assert np.abs(mix - (lam * gen + (1 - lam) * mmse)).max() <= 1.0 + 1e-9
    ev = tiny.evaluate(photo, [2], reconstructions=tiny.reconstructions, lam=0.3)[0]
    assert ev.data == data
    assert np.array_equal(ev.images["generative"], gen) and np.array_equal(ev.images["mmse"], mmse)
    assert np.array_equal(ev.images["interp"], tiny.decompress(data, "interp", lam=0.3))


def test_generative_draw_depends_on_the_seed(tiny, photo):
    a = tiny.decompress(tiny.compress(photo, 2, seed=1), "generative")
    b = tiny.decompress(tiny.compress(photo, 2, seed=2), "generative")
    assert not np.array_equal(a, b)


def test_refusals(tiny, shipped_ntc, photo):
    model, tables, mid = shipped_ntc
    data = tiny.compress(photo, 1)
    for lam in (-0.1, 1.5, float("nan"), "x"):
        with pytest.raises(ValueError, match="lam"):
            tiny.decompress(data, "interp", lam=lam)
    with pytest.raises(ValueError, match="no reconstruction 'generative'"):
        NTC(model, tables, mid).decompress(data, "generative")
    other = default_residual([0.05] * model.num_qualities, "0" * 64, widths=(8, 16))
    with pytest.raises(ValueError, match="trained on NTC model"):
        NTC(model, tables, mid, decoder=other)
    fewer = default_residual([0.05] * 3, mid, widths=(8, 16))
    with pytest.raises(ValueError, match="qualities"):
        NTC(model, tables, mid, decoder=fewer)


SHIPPED = models_dir() / "ntc_generative.pt"


@pytest.mark.skipif(not SHIPPED.is_file(), reason="no shipped generative decoder")
def test_shipped_decoder_adds_the_detail_mmse_lacks():
    from chansim.metrics import hf_energy_ratio

    codec = NTC.pretrained()
    assert codec.decoder is not None and codec.decoder.base_model == codec.model_id
    assert codec.reconstructions == ("mmse", "generative", "interp")
    data = pytest.importorskip("skimage.data")
    img = np.ascontiguousarray(data.astronaut()[64:256, 64:256])      # 192×192, hair and texture
    f = codec.compress(img, 1)
    mmse, gen = codec.decompress(f), codec.decompress(f, "generative")
    hf_m, hf_g = hf_energy_ratio(mmse, img), hf_energy_ratio(gen, img)
    assert hf_m < 0.7 and hf_g > hf_m + 0.15, (hf_m, hf_g)


@pytest.mark.skipif(not SHIPPED.is_file(), reason="no shipped generative decoder")
def test_cli_decodes_one_file_three_ways(tmp_path, cli_run):
    """chansim decompress --reconstruction generative / interp --lam on an NTC file: what the API gives."""
    from PIL import Image

    data = pytest.importorskip("skimage.data")
    img = np.ascontiguousarray(data.astronaut()[200:264, 200:280])
    Image.fromarray(img).save(tmp_path / "in.png")
    assert cli_run("compress", tmp_path / "in.png", tmp_path / "a.chsm", "--codec", "ntc", "--quality", "2")[0] == 0
    codec = NTC.pretrained()
    f = (tmp_path / "a.chsm").read_bytes()
    for rec, extra in (("generative", ()), ("interp", ("--lam", "0.25"))):
        out = tmp_path / f"{rec}.png"
        status, _, err = cli_run("decompress", tmp_path / "a.chsm", out, "--reconstruction", rec, *extra)
        assert status == 0, err
        want = codec.decompress(f, rec, **({"lam": 0.25} if extra else {}))
        assert np.array_equal(np.asarray(Image.open(out)), want)


def test_temperature_scales_the_gaussian_draw_exactly():
    """With the exact denoiser of Gaussian residuals the ODE sampler is linear in its start, so a
    temperature τ scales the draw by τ exactly (to float32 rounding)."""
    model = default_residual([0.05, 0.07], "base", widths=(8, 16))
    model.net = GaussianOracle(0.8)
    base = torch.full((1, 3, 32, 32), 0.5)
    start = streams.initial_latent(5, base.shape)
    full = model.sample(base, 1, start) - base
    model.temperatures = [1.0, 0.6]
    cool = model.sample(base, 1, start) - base
    assert torch.allclose(cool, 0.6 * full, atol=1e-6)
    with pytest.raises(ValueError, match="temperatures"):
        default_residual([0.05, 0.07], "base", widths=(8, 16)).__class__(
            model.net, model.schedule, [0.05, 0.07], "base", temperatures=[1.0, 2.5])


def test_a_batch_samples_as_its_images_do_alone():
    """Sampling B images at one quality gives each image what sampling it alone gives (the quality plane
    is broadcast over the batch; calibration samples in batches, the codec one image at a time)."""
    torch.manual_seed(0)
    model = default_residual([0.05, 0.07, 0.09], "base", widths=(8, 16)).eval()
    base = torch.rand(3, 3, 32, 32)
    start = streams.initial_latent(9, base.shape)
    together = model.sample(base, 2, start)
    for i in range(3):
        alone = model.sample(base[i:i + 1], 2, start[i:i + 1])
        torch.testing.assert_close(together[i:i + 1], alone, atol=1e-5, rtol=1e-5)


def test_a_sent_temperature_is_the_one_the_receiver_samples_with(tiny, shipped_ntc, photo):
    """compress(temperature=τ) writes settings version 2 (one more byte) with τ on the 1/128 grid; its
    generative image is what a decoder whose own τ_q is that τ draws from the version-1 file of the
    same symbols; the MMSE image does not change."""
    import copy

    from chansim.codecs import container as C

    model, tables, mid = shipped_ntc
    plain = tiny.compress(photo, 2)
    sent = tiny.compress(photo, 2, temperature=1.503)          # rounds to 192 / 128 = 1.5
    assert len(sent) == len(plain) + 1
    c1, c2 = C.unpack(plain), C.unpack(sent)
    assert c2.settings[0] == 2 and c2.settings[-1] == 192 and c2.settings[1:6] == c1.settings[1:6]
    assert c2.sections == c1.sections
    assert tiny.read_symbols(sent)[1].temperature == 1.5 and tiny.read_symbols(plain)[1].temperature is None
    hot = copy.deepcopy(tiny.decoder)
    hot.temperatures[1] = 1.5
    want = NTC(model, tables, mid, decoder=hot).decompress(plain, "generative")
    assert np.array_equal(tiny.decompress(sent, "generative"), want)
    assert not np.array_equal(want, tiny.decompress(plain, "generative"))
    assert np.array_equal(tiny.decompress(sent), tiny.decompress(plain))
    assert np.array_equal(NTC(model, tables, mid).decompress(sent), tiny.decompress(plain))   # no decoder needed


def test_matched_temperature_gives_the_originals_detail_within_the_posterior_cost(tiny, photo):
    """temperature="match": the file's τ is a grid point whose generative image (recomputed here from the
    decoded images) has an HF energy ratio at most 1 + tolerance and at most twice the MMSE image's
    squared error, and whose HF ratio is as near 1 as the best such point of a 12-point scan of the
    range (or within the tolerance); evaluate() gives the same file and images."""
    from chansim.codecs.ntc import MATCH_MSE_BOUND, MATCH_TOLERANCE
    from chansim.metrics import hf_energy_ratio

    assert MATCH_MSE_BOUND == 2.0                      # an exact posterior sample's expected MSE / MMSE
    ref = photo.astype(np.float64)
    mse = lambda a: float(np.mean((a.astype(np.float64) - ref) ** 2))      # noqa: E731
    mmse = mse(tiny.decompress(tiny.compress(photo, 1)))

    def detail_and_cost(data):
        gen = tiny.decompress(data, "generative")
        return hf_energy_ratio(gen, photo), mse(gen) / (2 * mmse)

    data = tiny.compress(photo, 1, temperature="match")
    tau = tiny.read_symbols(data)[1].temperature
    assert tau is not None and tau * 128 == round(tau * 128)
    hf, cost = detail_and_cost(data)
    scan = [detail_and_cost(tiny.compress(photo, 1, temperature=t)) for t in np.linspace(0.1, 1.95, 12)]
    admitted = [abs(h - 1) for h, c in scan if h <= 1 + MATCH_TOLERANCE and c <= 1]
    assert admitted, scan                              # the tiny decoder admits the limits somewhere
    assert hf <= 1 + MATCH_TOLERANCE and cost <= 1, (hf, cost)
    assert abs(hf - 1) <= max(min(admitted), MATCH_TOLERANCE) + 1e-12, (hf, cost, scan)
    ev = tiny.evaluate(photo, [1], reconstructions=("generative", "interp"), temperature="match")[0]
    assert ev.data == data and np.array_equal(ev.images["generative"], tiny.decompress(data, "generative"))
    assert np.array_equal(ev.images["interp"], tiny.decompress(data, "interp"))


def test_match_ratio_stops_in_the_detail_band_or_at_a_spent_budget_and_admits_exactly_the_limits():
    """The sender's fold (chansim.codecs.ntc.match_ratio) against its specification on a grid of
    (HF ratio h, squared error over budget c): within ±tol of 1 — the search stops — exactly when h is,
    or when c is in [1 − budget tol, 1]; at most 1 + tol — admitted — exactly when h ≤ 1 + tol and
    c ≤ 1; non-decreasing in each."""
    from chansim.codecs.ntc import MATCH_BUDGET_TOLERANCE as btol, MATCH_TOLERANCE as tol, match_ratio

    assert 0 < btol < tol
    hs, cs = np.linspace(0.0, 1.3, 262), np.linspace(0.0, 1.2, 241)
    edges_h, edges_c = (1 - tol, 1 + tol), (1 - btol, 1.0)
    for h in hs:
        ratios = [match_ratio(h, c) for c in cs]
        assert all(a <= b for a, b in zip(ratios, ratios[1:]))
        for c, r in zip(cs, ratios):
            if min(abs(h - e) for e in edges_h) < 1e-9 or min(abs(c - e) for e in edges_c) < 1e-9:
                continue                                 # exactly on an edge: either side is right
            h_in, c_spent = abs(h - 1) <= tol, 1 - btol <= c <= 1
            assert (abs(r - 1) <= tol) == ((h_in and c <= 1) or (c_spent and h <= 1 + tol)), (h, c, r)
            assert (r <= 1 + tol) == (h <= 1 + tol and c <= 1), (h, c, r)
    assert all(match_ratio(a, 0.5) <= match_ratio(b, 0.5) for a, b in zip(hs, hs[1:]))


def test_temperature_refusals(tiny, shipped_ntc, photo):
    from chansim.codecs import container as C
    from chansim.errors import FormatError

    model, tables, mid = shipped_ntc
    for bad in (0, 0.003, -1, 2.0, float("nan"), float("inf"), "hot", True, [1.0]):
        with pytest.raises(ValueError, match="temperature"):
            tiny.compress(photo, 1, temperature=bad)
    with pytest.raises(ValueError, match="no generative decoder"):
        NTC(model, tables, mid).compress(photo, 1, temperature="match")
    c = C.unpack(tiny.compress(photo, 1, temperature=1.0))
    for settings, message in ((c.settings[:-1] + b"\0", "temperature code 0"),
                              (c.settings[:-1], "must be 7 bytes"),
                              (b"\x03" + c.settings[1:], "settings version 3")):
        forged = C.Container(c.codec, c.model_tag, c.height, c.width, c.seed, settings, c.sections).pack()
        with pytest.raises(FormatError, match=message):
            tiny.decompress(forged)


@pytest.mark.skipif(not SHIPPED.is_file(), reason="no shipped generative decoder")
def test_cli_temperature_option(tmp_path, cli_run):
    """chansim compress --temperature T writes T into the NTC file; a codec without the option, a bad
    value or 'match' without a generative decoder is refused before anything is written."""
    from PIL import Image

    data = pytest.importorskip("skimage.data")
    Image.fromarray(np.ascontiguousarray(data.astronaut()[200:264, 200:280])).save(tmp_path / "in.png")
    status, _, err = cli_run("compress", tmp_path / "in.png", tmp_path / "a.chsm", "--codec", "ntc",
                             "--quality", "2", "--temperature", "1.25")
    assert status == 0, err
    assert NTC.pretrained().read_symbols((tmp_path / "a.chsm").read_bytes())[1].temperature == 1.25
    for args, message in ((("--codec", "uqdm", "--temperature", "1"), "no such encoder option"),
                          (("--codec", "ntc", "--temperature", "warm"), "number or 'match'"),
                          (("--codec", "ntc", "--temperature", "-1"), "positive number"),
                          (("--codec", "ntc", "--temperature", "3"), "1 … 255 / 128")):
        status, _, err = cli_run("compress", tmp_path / "in.png", tmp_path / "b.chsm", *args)
        assert status != 0 and message in err, err
        assert not (tmp_path / "b.chsm").exists()
