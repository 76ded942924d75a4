"""Training pipeline end to end on a tiny synthetic data directory and tiny nets (seconds, no real training)."""

import io
import json
import math
import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")
Image = pytest.importorskip("PIL.Image")

from chansim.diffusion.io import file_sha256, load_model  # noqa: E402
from chansim.train.__main__ import main  # noqa: E402
from chansim.train.data import CropSampler, kodak_heldout  # noqa: E402

TINY = ["--widths", "8", "16", "--crop", "16", "--batch", "2", "--checkpoint-minutes", "0", "--log-every", "1"]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("shared_data")
    rng = np.random.default_rng(0)
    for sub, sizes in (("train/setA", [(40, 50), (70, 90)]), ("train/setB", [(33, 20), (64, 64)]),
                       ("kodak", [(130, 140), (150, 128)])):
        d = root / sub
        d.mkdir(parents=True)
        for i, (h, w) in enumerate(sizes):
            # Smooth random images: a few sinusoids, so the models see structure, not white noise.
            yy, xx = np.mgrid[:h, :w]
            img = np.stack([127 + 100 * np.sin(xx / (5 + c + i) + yy / (7 + i) + c) for c in range(3)], -1)
            Image.fromarray(np.clip(img + rng.normal(0, 5, img.shape), 0, 255).astype(np.uint8)).save(d / f"{i}.png")
    (root / "train" / "setA" / "notes.txt").write_text("not an image")
    return root


@pytest.fixture
def keep_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def test_crop_sampler_crops_flips_and_replays(data_root):
    s = CropSampler.from_shared(16, seed=3, root=data_root, progress=False)
    assert len(s.images) == 4 and abs(s.p.sum() - 1) < 1e-12
    state = s.state()
    b = s.batch(64)
    assert b.shape == (64, 3, 16, 16) and b.dtype == torch.uint8
    s.set_state(state)
    assert torch.equal(s.batch(64), b)
    # Every crop is a window of some training image, as is or mirrored; both occur.
    flipped = plain = 0
    for crop in b.permute(0, 2, 3, 1).numpy():
        for im in s.images:
            for cand, is_flip in ((crop, False), (crop[:, ::-1], True)):
                hits = np.argwhere((im[: im.shape[0] - 15, : im.shape[1] - 15] == cand[0, 0]).all(-1))
                if any(np.array_equal(im[y:y + 16, x:x + 16], cand) for y, x in hits):
                    flipped += is_flip
                    plain += not is_flip
                    break
            else:
                continue
            break
        else:
            pytest.fail("a crop is not a window of any training image")
    assert flipped > 5 and plain > 5
    with pytest.raises(ValueError):
        CropSampler([np.zeros((8, 8, 3), np.uint8)], 16)


def test_kodak_heldout_is_the_centre_crop(data_root):
    h = kodak_heldout(128, root=data_root)
    assert h.shape == (2, 3, 128, 128)
    im = np.asarray(Image.open(data_root / "kodak" / "0.png"))
    assert np.array_equal(h[0].permute(1, 2, 0).numpy(), im[1:129, 6:134])


def test_uqdm_train_resume_export(tmp_path, data_root, keep_threads):
    out, dest = tmp_path / "run", tmp_path / "models"
    assert main(["uqdm", "--out", str(out), "--steps", "3", "--uqdm-steps", "2", "--data-dir", str(data_root),
                 *TINY]) == 0
    assert torch.load(out / "checkpoint.pt", weights_only=False)["step"] == 3
    assert main(["uqdm", "--out", str(out), "--resume", "--steps", "5", "--export-dir", str(dest)]) == 0
    blob = torch.load(out / "checkpoint.pt", weights_only=False)
    assert blob["step"] == 5 and [h["step"] for h in blob["history"]] == [3, 5]
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "loss" in r] == [1, 2, 3, 4, 5]
    card = json.loads((dest / "uqdm_default.json").read_text())
    model, mid = load_model(dest / "uqdm_default.pt")
    assert card["model_id"] == mid and card["file_sha256"] == file_sha256(dest / "uqdm_default.pt")
    assert card["status"] == "complete" and card["steps"] == 5 and card["storage_dtype"] == "float32"
    assert card["training_data"]["images_per_collection"] == {"setA": 2, "setB": 2}
    assert card["heldout_bits_per_dim"]["total"] > 0 and model.steps == 2
    assert (dest / "uqdm_default.md").read_text().startswith("# uqdm_default")


def test_resumed_training_equals_uninterrupted_training(tmp_path, data_root, keep_threads):
    common = ["diffc", "--steps", "4", "--data-dir", str(data_root), *TINY]
    assert main([common[0], "--out", str(tmp_path / "a"), *common[1:]]) == 0
    assert main([common[0], "--out", str(tmp_path / "b"), "--session-steps", "2", *common[1:]]) == 0
    assert torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=False)["step"] == 2
    assert main(["diffc", "--out", str(tmp_path / "b"), "--resume"]) == 0
    a = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=False)
    b = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=False)
    assert a["step"] == b["step"] == 4
    for k in a["ema"]["shadow"]:
        assert torch.equal(a["ema"]["shadow"][k], b["ema"]["shadow"][k]), k


def test_partial_run_exports_an_honest_card(tmp_path, data_root, keep_threads):
    out = tmp_path / "run"
    assert main(["diffc", "--out", str(out), "--steps", "10", "--session-steps", "1", "--data-dir", str(data_root),
                 *TINY]) == 0
    assert main(["export", str(out), "--dest", str(tmp_path / "m"), "--name", "d", "--data-dir", str(data_root)]) == 0
    card = json.loads((tmp_path / "m" / "d.json").read_text())
    assert card["status"].startswith("partial: stopped at step 1 of 10")
    assert load_model(tmp_path / "m" / "d.pt")[0].kind == "gaussian"


def test_uqdm_initialised_from_a_gaussian_model(tmp_path, data_root, keep_threads):
    from chansim.diffusion.models import GaussianDiffusion, UQDMModel
    from chansim.diffusion.schedules import LearnedLinearSchedule
    from chansim.diffusion.unet import UNet
    from chansim.train.loop import init_from

    torch.manual_seed(0)
    src = GaussianDiffusion(UNet(widths=(8, 16), groups=4), LearnedLinearSchedule(-13.3, 5.0))
    with torch.no_grad():
        for p in src.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    dst = UQDMModel(UNet(out_channels=6, widths=(8, 16), groups=4), LearnedLinearSchedule(-12.3, 6.0, True))
    w_before = dst.schedule.w.clone()
    done = init_from(dst, src)
    assert done["conv_out.weight"] == "partial" and done["conv_in.weight"] == "copied"
    z = torch.randn(1, 3, 12, 12)
    with torch.no_grad():
        out_dst, out_src = dst.net(z, -2.0), src.net(z, -2.0)
    assert torch.equal(out_dst[:, :3], out_src)  # ε channels: the source network exactly
    assert torch.equal(out_dst[:, 3:], torch.zeros_like(out_src))  # scale channels: factor 1
    assert torch.equal(dst.schedule.w, w_before)  # the schedule is the run's own
    with pytest.raises(ValueError):
        init_from(UQDMModel(UNet(out_channels=6, widths=(8, 24), groups=4), LearnedLinearSchedule(-12.3, 6.0)), src)

    # Through the command line: export a Gaussian run, start UQDM from it; the card records the source.
    dest = tmp_path / "models"
    assert main(["diffc", "--out", str(tmp_path / "g"), "--steps", "1", "--data-dir", str(data_root), *TINY,
                 "--export-dir", str(dest)]) == 0
    assert main(["uqdm", "--out", str(tmp_path / "u"), "--steps", "1", "--uqdm-steps", "2", "--data-dir",
                 str(data_root), *TINY, "--init-from", str(dest / "diffc_default.pt"), "--export-dir", str(dest)]) == 0
    card = json.loads((dest / "uqdm_default.json").read_text())
    src_card = json.loads((dest / "diffc_default.json").read_text())
    assert card["initialised_from"]["model_id"] == src_card["model_id"]
    assert card["initialised_from"]["steps"] == 1
    assert card["config"]["net"]["gamma_range"] == src_card["config"]["net"]["gamma_range"]


def test_ntc_run_starts_from_shipped_weights(tmp_path):
    """--init-from: a new NTC run continues from an exported model file (float16 weights as stored)."""
    import argparse

    import numpy as np

    from chansim.ntc.io import load_model as load_ntc, save_model as save_ntc
    from chansim.ntc.model import HyperpriorModel
    from chansim.train.data import CropSampler
    from chansim.train.ntc import NTCTrainer

    torch.manual_seed(3)
    src = HyperpriorModel(8, 12)
    save_ntc(src, tmp_path / "m.pt")
    shipped = load_ntc(tmp_path / "m.pt")[0].state_dict()
    args = argparse.Namespace(out=tmp_path / "run", n=8, m=12, seed=0, lr=1e-4, ema=0.999,
                              init_from=tmp_path / "m.pt")
    trainer = NTCTrainer(args, CropSampler([np.zeros((64, 64, 3), np.uint8)], 64), None)
    got = trainer.model.state_dict()
    assert all(torch.equal(got[k], v) for k, v in shipped.items())
    fresh = NTCTrainer(argparse.Namespace(**{**vars(args), "init_from": None}),
                       CropSampler([np.zeros((64, 64, 3), np.uint8)], 64), None)
    assert not torch.equal(fresh.model.state_dict()["g_a.0.weight"], got["g_a.0.weight"])


def test_ntc_context_run_starts_from_a_model_without_one(tmp_path):
    """--init-from a hyperprior without a channel-wise context into --slices 3: every shared weight
    is the source's, the corrections start at zero, the optimizer is rebuilt and steps; a source
    that does not fit otherwise is refused by name."""
    import argparse

    import numpy as np

    from chansim.ntc.io import load_model as load_ntc, save_model as save_ntc
    from chansim.ntc.model import HyperpriorModel
    from chansim.train.data import CropSampler
    from chansim.train.ntc import NTCTrainer

    torch.manual_seed(4)
    save_ntc(HyperpriorModel(8, 12), tmp_path / "m.pt")
    shipped = load_ntc(tmp_path / "m.pt")[0].state_dict()
    args = argparse.Namespace(out=tmp_path / "run", n=8, m=12, slices=3, seed=0, lr=1e-4, ema=0.999,
                              init_from=tmp_path / "m.pt")
    sampler = CropSampler([np.zeros((64, 64, 3), np.uint8)], 64)
    trainer = NTCTrainer(args, sampler, None)
    got = trainer.model.state_dict()
    assert all(torch.equal(got[k], v) for k, v in shipped.items())
    assert not any(trainer.model.context[i].net[-1].weight.any() for i in range(3))
    trainer.model.loss(torch.rand(2, 3, 64, 64), torch.tensor([0, 3]))["loss"].backward()
    trainer.opt.step()
    for other in ({"m": 15}, {"n": 6}, {"n": 12}):     # another latent width, a narrower or a wider hyperprior
        with pytest.raises(ValueError, match="does not fit"):
            NTCTrainer(argparse.Namespace(**{**vars(args), **other}), sampler, None)


def test_ntc_run_widens_the_image_transforms_exactly(tmp_path, data_root, keep_threads):
    """--init-from a model with N = 8 into --n 12: the widened model computes exactly what its source did
    (reconstruction and both code lengths, same noise), the source's weights sit in the leading blocks,
    old channels read nothing from new ones (a zero block where the input is new, for Conv2d, the
    transposed (in, out) layout of ConvTranspose2d and GDN's γ), and one Adam step moves those zero
    blocks. Through ``main`` the hyper width stays the source's (--hyper-n), which the export's config
    carries; a narrower --n or another M is refused by name."""
    import argparse

    from chansim.ntc.io import load_model as load_ntc, save_model as save_ntc
    from chansim.ntc.model import HyperpriorModel
    from chansim.train.data import CropSampler
    from chansim.train.ntc import NTCTrainer

    torch.manual_seed(6)
    lams = (0.001, 0.01, 0.05)
    src = HyperpriorModel(8, 12, lams, slices=3, residual=True)
    with torch.no_grad():                       # an off-diagonal GDN γ, as training leaves it
        src.g_a[1].gamma.add_(0.01 * torch.rand(8, 8))
        src.g_s[1].gamma.add_(0.01 * torch.rand(8, 8))
    save_ntc(src, tmp_path / "m.pt")
    source = load_ntc(tmp_path / "m.pt")[0]
    args = argparse.Namespace(out=tmp_path / "run0", n=12, hyper_n=8, m=12, slices=3, residual=True, lambdas=lams,
                              seed=0, lr=1e-3, ema=0.999, init_from=tmp_path / "m.pt")
    sampler = CropSampler([np.zeros((64, 64, 3), np.uint8)], 64)
    trainer = NTCTrainer(args, sampler, None)
    wide = trainer.model
    assert wide.n == 12 and wide.hyper_n == 8 and wide.g_a[2].weight.shape == (12, 12, 5, 5)
    x, q = torch.rand(2, 3, 64, 64), torch.tensor([0, 2])
    with torch.no_grad():
        a = source.eval()(x, q, torch.Generator().manual_seed(1))
        b = wide.eval()(x, q, torch.Generator().manual_seed(1))
    for k in ("x_hat", "bits_y", "bits_z"):
        assert torch.allclose(a[k], b[k], rtol=1e-6, atol=1e-6), k
    for name, v in source.state_dict().items():
        got = wide.state_dict()[name]
        assert torch.equal(got[tuple(slice(0, k) for k in v.shape)], v), name
    blocks = {"g_a.2.weight": wide.g_a[2].weight[:8, 8:], "g_a.6.weight": wide.g_a[6].weight[:, 8:],
              "g_s.2.weight": wide.g_s[2].weight[8:, :8], "g_s.6.weight": wide.g_s[6].weight[8:, :],
              "g_a.1.gamma": wide.g_a[1].gamma[:8, 8:], "g_s.3.gamma": wide.g_s[3].gamma[:8, 8:]}
    assert all(not t.any() for t in blocks.values())
    assert wide.g_s[2].weight[:8, 8:].any()     # new outputs from old inputs start at their fresh values
    wide.train()
    trainer.model.loss(torch.rand(2, 3, 64, 64), torch.tensor([0, 2]))["loss"].backward()
    trainer.opt.step()
    assert wide.g_a[2].weight[:8, 8:].any() and wide.g_s[2].weight[8:, :8].any()
    for other in ({"n": 6, "hyper_n": 6}, {"m": 15}):
        with pytest.raises(ValueError, match="does not fit"):
            NTCTrainer(argparse.Namespace(**{**vars(args), **other}), sampler, None)

    out = tmp_path / "run"
    common = ["--m", "12", "--slices", "3", "--residual", "--eval-crop", "64", "--crop", "64", "--batch", "2",
              "--threads", "1", "--log-every", "1", "--warmup", "1", "--data-dir", str(data_root)]
    assert main(["ntc", "--out", str(out), "--init-from", str(tmp_path / "m.pt"), "--n", "12", "--steps", "1",
                 *common]) == 0
    assert main(["export", str(out), "--dest", str(tmp_path / "models"), "--name", "w",
                 "--data-dir", str(data_root)]) == 0
    model = load_ntc(tmp_path / "models" / "w.pt")[0]
    assert (model.n, model.hyper_n) == (12, 8) and model.config()["hyper_n"] == 8
    card = json.loads((tmp_path / "models" / "w.json").read_text())
    assert card["storage_dtype"].startswith("float16")
    # Over the size budget the export stores the first storage that fits — int8 kernels outside the image
    # transforms, then every kernel int8 — and says so; the card's figures are the stored model's.
    import chansim.ntc.io as ntc_io
    float16_bytes = (tmp_path / "models" / "w.pt").stat().st_size
    sizes = {}
    for budget in (float16_bytes - 1, 1000):
        saved, ntc_io.SIZE_BUDGET = ntc_io.SIZE_BUDGET, budget
        try:
            assert main(["export", str(out), "--dest", str(tmp_path / f"b{budget}"), "--name", "w",
                         "--data-dir", str(data_root)]) == 0
        finally:
            ntc_io.SIZE_BUDGET = saved
        card = json.loads((tmp_path / f"b{budget}" / "w.json").read_text())
        sd = torch.load(tmp_path / f"b{budget}" / "w.pt", weights_only=True)["state_dict"]
        sizes[budget] = card["size_bytes"]
        assert (sd["g_a.0.weight"].dtype, sd["g_s.0.weight"].dtype, sd["h_s.0.weight"].dtype) == \
            ((torch.float16,) * 2 if budget > 1000 else (torch.int8,) * 2) + (torch.int8,)
        assert card["storage_dtype"].startswith("int8 kernels" if budget > 1000 else "int8 convolution")
    assert float16_bytes > sizes[float16_bytes - 1] > sizes[1000]


def test_ntc_run_widens_the_latents_exactly(tmp_path, keep_threads):
    """--init-from a model with M = 12 latents in 3 slices into M = 20 in 5: the old latents, their
    (μ', σ') and the reconstruction are exactly the source's whatever the new latents' values, the new
    latents are 0 with mean 0 and σ' at the floor — so each costs E_u[−log₂ P(cell)] under
    N(0, σ_min²) ⋆ U(−½, ½), the closed form ∫ −log₂(Φ((½ − |u|)/σ) − Φ((−½ − |u|)/σ)) du computed here
    by SciPy quadrature — their gains start at the old channels' mean, and one Adam step gives them a use.
    A widening that changes the slice width is refused by name."""
    import argparse

    from scipy import integrate, stats

    from chansim.ntc.io import save_model as save_ntc
    from chansim.ntc.model import HyperpriorModel, gaussian_cell_bits
    from chansim.train.ntc import NTCTrainer

    torch.manual_seed(7)
    lams = (0.001, 0.01, 0.05)
    src = HyperpriorModel(8, 12, lams, slices=3, residual=True, scale_min=1 / 64).eval()
    with torch.no_grad():                       # trained-looking add-ons: nonzero context and residual outputs
        for mod in (*src.context, src.residual):
            mod.net[-1].weight.normal_(0, 0.05)
        src.residual.weight.uniform_(0, 1)
        src.gain.add_(0.1 * torch.randn_like(src.gain))
    save_ntc(src, tmp_path / "m.pt")
    from chansim.ntc.io import load_model as load_ntc
    source = load_ntc(tmp_path / "m.pt")[0].eval()
    args = argparse.Namespace(out=tmp_path / "run", n=8, hyper_n=8, m=20, slices=5, residual=True, lambdas=lams,
                              scale_min=1 / 64, seed=0, lr=1e-3, ema=0.999, init_from=tmp_path / "m.pt")
    sampler = CropSampler([np.zeros((64, 64, 3), np.uint8)], 64)
    trainer = NTCTrainer(args, sampler, None)
    wide = trainer.model.eval()
    x, q = torch.rand(2, 3, 128, 64), torch.tensor([0, 2])
    with torch.no_grad():
        y_s, y_w = source.analysis(x, q), wide.analysis(x, q)
        assert torch.allclose(y_w[:, :12], y_s, rtol=1e-6, atol=1e-6) and not y_w[:, 12:].any()
        z_s, z_w = source.hyper_analysis(y_s, q), wide.hyper_analysis(y_w, q)
        assert torch.allclose(z_s, z_w, rtol=1e-6, atol=1e-6)
        z_hat = torch.round(z_s)
        u = torch.rand(y_w.shape) - 0.5
        y_hat_s = y_s + u[:, :12]
        y_hat_w = torch.cat([y_hat_s, 3.0 * torch.randn(2, 8, *y_s.shape[2:])], 1)   # any new values
        mean_s, scale_s = source.entropy_parameters(z_hat, y_hat_s, q)
        mean_w, scale_w = wide.entropy_parameters(z_hat, y_hat_w, q)
        assert torch.allclose(mean_w[:, :12], mean_s, rtol=1e-6, atol=1e-6)
        assert torch.allclose(scale_w[:, :12], scale_s, rtol=1e-6, atol=1e-6)
        assert not mean_w[:, 12:].any() and not scale_w[:, 12:].any()    # σ' = 0 → the floor
        scale_s, scale_w = scale_s.clamp_min(source.scale_min), scale_w.clamp_min(wide.scale_min)
        x_s = source.synthesis(y_hat_s, q, mean_s, scale_s)
        x_w = wide.synthesis(y_hat_w, q, mean_w, scale_w)
        assert torch.allclose(x_s, x_w, rtol=1e-5, atol=1e-6)
        # The new latents' bits: the floor's closed form, averaged over the dither.
        sigma = wide.scale_min
        cell = lambda t: -np.log2(stats.norm.cdf((0.5 - abs(t)) / sigma) - stats.norm.cdf((-0.5 - abs(t)) / sigma))
        expected = integrate.quad(cell, -0.5, 0.5, points=[-0.5 + 1e-3, 0.5 - 1e-3], limit=200)[0]
        new_bits = gaussian_cell_bits(u[:, 12:], scale_w[:, 12:]).double()
        assert 0.005 < expected < 0.05           # the shipped floor 1/64: a few hundredths of a bit
        n = new_bits.numel()
        assert abs(float(new_bits.mean()) - expected) < 5 * float(new_bits.std()) / n ** 0.5
    assert torch.allclose(wide.gain[:, 12:], source.gain.mean(1, keepdim=True).expand(-1, 8), atol=1e-6)
    assert len(wide.context) == 5 and not wide.context[4].net[-1].weight.any()
    wide.train()
    trainer.model.loss(torch.rand(2, 3, 64, 64), torch.tensor([0, 2]))["loss"].backward()
    trainer.opt.step()
    assert wide.g_s[0].weight[12:].any() and wide.h_s[4].weight[12:20].any()
    with pytest.raises(ValueError, match="slice width"):
        NTCTrainer(argparse.Namespace(**{**vars(args), "m": 20, "slices": 4}), sampler, None)


def test_ntc_wider_analysis_transform_starts_exactly_and_leaves_the_decoder_alone(tmp_path, keep_threads):
    """--n-analysis above the source's widens only g_a, exactly: the latents are the source's, every
    tensor a decoder reads (g_s, h_s, the context, residual, gains, z's density) is the source's, the
    new channels' outgoing weights into old channels are 0 but get a gradient (not a saddle: the new
    channels compute something from the start); the config carries n_analysis through a model file,
    and an analysis transform narrower than the source's is refused."""
    import argparse

    from chansim.ntc.io import load_model as load_ntc
    from chansim.ntc.io import save_model as save_ntc
    from chansim.ntc.model import HyperpriorModel
    from chansim.train.ntc import NTCTrainer

    torch.manual_seed(4)
    lams = (0.001, 0.01)
    save_ntc(HyperpriorModel(8, 12, lams, slices=3, residual=True), tmp_path / "m.pt")
    source = load_ntc(tmp_path / "m.pt")[0].eval()
    sampler = CropSampler([np.zeros((64, 64, 3), np.uint8)], 64)
    args = argparse.Namespace(out=tmp_path / "run", n=8, m=12, slices=3, residual=True, lambdas=lams, hyper_n=8,
                              n_analysis=14, scale_min=None, seed=0, lr=1e-3, ema=0.999, init_from=tmp_path / "m.pt")
    trainer = NTCTrainer(args, sampler, None)
    wide = trainer.model.eval()
    assert wide.config() == {**source.config(), "n_analysis": 14}
    assert wide.g_a[0].weight.shape == (14, 3, 5, 5) and wide.g_s[0].weight.shape == source.g_s[0].weight.shape
    x, q = torch.rand(2, 3, 64, 128), torch.tensor([0, 1])
    with torch.no_grad():
        torch.testing.assert_close(wide.analysis(x, q), source.analysis(x, q), rtol=1e-6, atol=1e-6)
        assert wide.g_a[0](x)[:, 8:].abs().max() > 0                 # new channels compute something
    for k, v in source.state_dict().items():
        if not k.startswith("g_a."):
            assert torch.equal(wide.state_dict()[k], v), k
    assert not wide.g_a[6].weight[:, 8:].any()
    wide.train()
    trainer.model.loss(x, q)["loss"].backward()
    assert wide.g_a[6].weight.grad[:, 8:].abs().max() > 0
    save_ntc(wide, tmp_path / "wide.pt")
    back = load_ntc(tmp_path / "wide.pt")[0]
    assert back.n_analysis == 14 and back.config()["n_analysis"] == 14
    with pytest.raises(ValueError, match="cannot be widened"):
        NTCTrainer(argparse.Namespace(**{**vars(args), "init_from": tmp_path / "wide.pt", "n_analysis": 10}),
                   sampler, None)


def test_ntc_widen_start_leaves_the_saddle_and_keeps_the_old_latents(tmp_path, keep_threads, capsys):
    """``--widen-start s``: the old latents, the hyper-latents and the old slices' (μ', σ') are still
    exactly the source's; the new latents are linear in s (s × the old ones' RMS,
    chansim.train.ntc.start_new_latents: s = 0.2 gives exactly twice s = 0.1's from the same fresh model);
    the synthesis reads them with weight 0; and the distortion of the noise-free latents gives those
    weights a gradient with s > 0 but not at the exact start (the saddle: a 0 latent read with weight 0)
    — also when N is widened at once. Outside [0, 1] the option is refused by argparse."""
    import argparse

    from chansim.ntc.io import load_model as load_ntc
    from chansim.ntc.io import save_model as save_ntc
    from chansim.ntc.model import HyperpriorModel
    from chansim.train.ntc import NTCTrainer

    torch.manual_seed(3)
    lams = (0.001, 0.01)
    save_ntc(HyperpriorModel(8, 12, lams, slices=3, residual=True), tmp_path / "m.pt")
    source = load_ntc(tmp_path / "m.pt")[0].eval()
    sampler = CropSampler([np.zeros((64, 64, 3), np.uint8)], 64)
    x, q = torch.rand(2, 3, 64, 128), torch.tensor([0, 1])

    def widened(start, n=8):
        torch.manual_seed(11)                   # the same fresh initialisation for every start
        args = argparse.Namespace(out=tmp_path / "run", n=n, hyper_n=8, m=20, slices=5, residual=True, lambdas=lams,
                                  scale_min=1 / 64, seed=0, lr=1e-3, ema=0.999, init_from=tmp_path / "m.pt",
                                  widen_start=start)
        return NTCTrainer(args, sampler, None).model.eval()

    with torch.no_grad():
        y_s = source.analysis(x, q)
        z_hat = torch.round(source.hyper_analysis(y_s, q))
        mean_s, scale_s = source.entropy_parameters(z_hat, y_s, q)
    new = {}
    for start in (0.0, 0.1, 0.2):
        wide = widened(start)
        with torch.no_grad():
            y_w = wide.analysis(x, q)
            assert torch.allclose(y_w[:, :12], y_s, rtol=1e-6, atol=1e-6)
            assert torch.allclose(wide.hyper_analysis(y_w, q), source.hyper_analysis(y_s, q), rtol=1e-6, atol=1e-6)
            mean_w, scale_w = wide.entropy_parameters(z_hat, y_w, q)
            assert torch.allclose(mean_w[:, :12], mean_s, rtol=1e-6, atol=1e-6)
            assert torch.allclose(scale_w[:, :12], scale_s, rtol=1e-6, atol=1e-6)
        new[start] = y_w[:, 12:]
        # The synthesis reads the new latents with weight 0 (it reconstructs as the source) ...
        assert not wide.g_s[0].weight[12:].any()
        # ... and the distortion of the noise-free latents gives those weights a gradient: the latents carry the
        # image (no saddle), while at the exact start they are 0 and only the dither could move the weights.
        y = wide.analysis(x, q)
        mean, scale = wide.entropy_parameters(z_hat, y, q)
        mse = ((wide.synthesis(y, q, mean, scale.clamp_min(wide.scale_min)) - x) ** 2).mean()
        grad = torch.autograd.grad(mse, wide.g_s[0].weight)[0][12:]
        assert (grad.abs().max() > 0) == (start > 0)
    assert not new[0.0].any() and new[0.1].abs().max() > 0
    # the trainer scales the new latents to s × the old ones' RMS (start_new_latents): linear in s
    assert torch.allclose(new[0.2], 2 * new[0.1], rtol=1e-4, atol=1e-7)
    with torch.no_grad():                       # widening N at the same time: old latents still never see new channels
        y_w = widened(0.1, n=10).analysis(x, q)
        assert torch.allclose(y_w[:, :12], y_s, rtol=1e-6, atol=1e-6) and y_w[:, 12:].abs().max() > 0
    for bad in ("1.5", "-0.1", "x"):
        with pytest.raises(SystemExit):
            main(["ntc", "--out", str(tmp_path / "r"), "--widen-start", bad])
        assert "--widen-start" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_ntc_run_refuses_a_source_it_cannot_widen_by_name_without_a_traceback(tmp_path, data_root, keep_threads,
                                                                                 capsys):
    """On the command line a widening the source does not allow (here a new slice width) is a one-line
    error naming it, exit status 2, and no run directory is written."""
    from chansim.ntc.io import save_model as save_ntc
    from chansim.ntc.model import HyperpriorModel

    save_ntc(HyperpriorModel(8, 12, (0.001, 0.01), slices=3, residual=True), tmp_path / "m.pt")
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as e:
        main(["ntc", "--out", str(out), "--init-from", str(tmp_path / "m.pt"), "--n", "8", "--m", "20", "--slices", "4",
              "--residual", "--crop", "64", "--eval-crop", "64", "--batch", "1", "--steps", "1", "--threads", "1",
              "--data-dir", str(data_root)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "slice width" in err and "Traceback" not in err
    assert not out.exists()


def test_ntc_run_trains_on_the_named_collections(tmp_path, data_root, keep_threads, capsys):
    """--collections: the sampler holds only those collections' photos (every crop is a window of one
    of them), the checkpoint keeps the choice for --resume, and the card counts only them; an unknown
    name is refused before anything is written, naming the collections there are."""
    from chansim.train.data import CropSampler, load_rgb, training_collections

    files = training_collections(data_root, ["setB"])["setB"]
    sampler = CropSampler.from_shared(16, root=data_root, progress=False, collections=["setB"])
    photos = [load_rgb(f) for f in files]
    assert len(sampler.images) == len(photos) and all(
        any(a.shape == b.shape and np.array_equal(a, b) for b in photos) for a in sampler.images)
    out = tmp_path / "run"
    common = ["--n", "8", "--m", "12", "--eval-crop", "64", "--crop", "64", "--batch", "1", "--threads", "1",
              "--log-every", "1", "--warmup", "1", "--data-dir", str(data_root)]
    with pytest.raises(SystemExit):
        main(["ntc", "--out", str(out), "--collections", "setB,nope", "--steps", "1", *common])
    assert "nope" in capsys.readouterr().err and not out.exists()
    with pytest.raises(SystemExit):
        main(["ntc", "--out", str(out), "--collections", " , ", "--steps", "1", *common])
    assert "no training collection named" in capsys.readouterr().err and not out.exists()
    assert main(["ntc", "--out", str(out), "--collections", "setB", "--steps", "1", *common]) == 0
    assert torch.load(out / "checkpoint.pt", weights_only=False)["args"]["collections"] == ["setB"]
    assert main(["ntc", "--out", str(out), "--resume", "--steps", "2"]) == 0
    assert main(["export", str(out), "--dest", str(tmp_path / "m"), "--name", "c", "--data-dir", str(data_root)]) == 0
    card = json.loads((tmp_path / "m" / "c.json").read_text())
    assert card["training_data"]["images_per_collection"] == {"setB": len(files)}


def test_ntc_residual_run_starts_from_a_context_model(tmp_path, data_root, keep_threads):
    """--init-from a context model into --residual: every shared weight is the source's and the latent
    residual starts at zero (gates and last layer); the gates step at GATE_LR_SCALE × the run's rate,
    through a resume, and the export's card and config say so. A source missing part of an add-on,
    or with weights this model lacks, is refused by name."""
    import argparse

    from chansim.ntc.io import load_model as load_ntc, save_model as save_ntc
    from chansim.ntc.model import HyperpriorModel
    from chansim.train.data import CropSampler
    from chansim.train.ntc import GATE_LR_SCALE, NTCTrainer

    torch.manual_seed(5)
    lams = (0.001, 0.01)
    save_ntc(HyperpriorModel(8, 12, lams, slices=3), tmp_path / "m.pt")
    shipped = load_ntc(tmp_path / "m.pt")[0].state_dict()
    args = argparse.Namespace(out=tmp_path / "run0", n=8, m=12, slices=3, residual=True, lambdas=lams, seed=0,
                              lr=1e-4, ema=0.999, init_from=tmp_path / "m.pt")
    sampler = CropSampler([np.zeros((64, 64, 3), np.uint8)], 64)
    model = NTCTrainer(args, sampler, None).model
    got = model.state_dict()
    assert all(torch.equal(got[k], v) for k, v in shipped.items())
    assert not model.residual.weight.any() and not model.residual.net[-1].weight.any()
    save_ntc(HyperpriorModel(8, 12, lams, slices=3, residual=True), tmp_path / "r.pt")
    with pytest.raises(ValueError, match="does not fit"):          # weights a context-only model lacks
        NTCTrainer(argparse.Namespace(**{**vars(args), "residual": False, "init_from": tmp_path / "r.pt"}),
                   sampler, None)
    partial = {k: v for k, v in load_ntc(tmp_path / "r.pt")[0].state_dict().items() if k != "residual.weight"}
    torch.save({"config": {"kind": "ntc"}, "args": {"lambdas": lams}, "ema": {"shadow": partial}, "opt": {}},
               tmp_path / "part.pt")                              # a run checkpoint's shape
    with pytest.raises(ValueError, match="does not fit"):          # half a residual is not a zero start
        NTCTrainer(argparse.Namespace(**{**vars(args), "init_from": tmp_path / "part.pt"}), sampler, None)

    out = tmp_path / "run"
    common = ["--n", "8", "--m", "12", "--slices", "3", "--residual", "--eval-crop", "64", "--crop", "64",
              "--batch", "2", "--threads", "1", "--log-every", "1", "--warmup", "1", "--data-dir", str(data_root)]
    assert main(["ntc", "--out", str(out), "--init-from", str(tmp_path / "m.pt"), "--steps", "2", *common]) == 0
    assert main(["ntc", "--out", str(out), "--resume", "--steps", "3"]) == 0
    blob = torch.load(out / "checkpoint.pt", weights_only=False)
    rest, gates = blob["opt"]["param_groups"]
    assert len(gates["params"]) == 1 and gates["lr"] == pytest.approx(GATE_LR_SCALE * rest["lr"])
    assert blob["model"]["residual.weight"].any()                 # the gates moved
    assert main(["export", str(out), "--dest", str(tmp_path / "models"), "--name", "n",
                 "--data-dir", str(data_root)]) == 0
    card = json.loads((tmp_path / "models" / "n.json").read_text())
    assert card["config"]["residual"] is True and "latent residual" in card["summary"]
    assert load_ntc(tmp_path / "models" / "n.pt")[0].residual is not None


def test_decoder_training_base_follows_the_latent_residual():
    """The generative decoder trains on x̂_mmse as the codec makes it: a model whose latent residual is
    still zero gives the plain model's x̂ on the same noise, and a trained (non-zero) residual changes it."""
    from chansim.ntc.model import HyperpriorModel
    from chansim.train.ntc_decoder import ntc_base

    torch.manual_seed(7)
    plain = HyperpriorModel(8, 12, (0.001, 0.01), slices=3)
    res = HyperpriorModel(8, 12, (0.001, 0.01), slices=3, residual=True)
    res.load_state_dict(plain.state_dict(), strict=False)
    x, q = torch.rand(2, 3, 64, 64), torch.tensor([0, 1])
    run = lambda m: ntc_base(m, x, q, torch.Generator().manual_seed(3))   # noqa: E731
    torch.testing.assert_close(run(res), run(plain), rtol=0, atol=0)
    with torch.no_grad():
        res.residual.weight.fill_(1.0)
    assert (run(res) - run(plain)).abs().max() > 1e-4


def test_ntc_init_from_continues_the_source_configuration(tmp_path):
    """What --init-from continues for flags not given: a model file's config or a checkpoint's
    arguments (architecture, σ' floor, λ ladder), the values older runs were trained with for keys
    they lack; anything else is refused by name."""
    from chansim.ntc.io import save_model as save_ntc
    from chansim.ntc.model import QUALITY_LAMBDAS, HyperpriorModel
    from chansim.ntc.tables import SCALE_MIN
    from chansim.train.ntc import source_config

    lams = (0.0001, 0.001, 0.01, 0.1, 0.3)
    save_ntc(HyperpriorModel(8, 12, lams, slices=3, residual=True, scale_min=1 / 64, hyper_n=6), tmp_path / "m.pt")
    assert source_config(tmp_path / "m.pt") == {"n": 8, "m": 12, "slices": 3, "residual": True, "hyper_n": 6,
                                                "blocks": 0, "synthesis_blocks": None, "n_analysis": None, "quality_slices": None, "scale_min": 1 / 64, "lambdas": lams}
    save_ntc(HyperpriorModel(8, 12, lams, n_analysis=10), tmp_path / "asym.pt")
    assert source_config(tmp_path / "asym.pt")["n_analysis"] == 10
    save_ntc(HyperpriorModel(8, 12, lams, blocks=2), tmp_path / "deep.pt")
    assert source_config(tmp_path / "deep.pt")["blocks"] == 2
    save_ntc(HyperpriorModel(8, 12, lams, blocks=1, synthesis_blocks=(1, 2)), tmp_path / "deeper.pt")
    assert [source_config(tmp_path / "deeper.pt")[k] for k in ("blocks", "synthesis_blocks")] == [1, (1, 2)]
    save_ntc(HyperpriorModel(8, 12, lams, slices=3, quality_slices=(1, 2, 2, 3, 3)), tmp_path / "gated.pt")
    assert source_config(tmp_path / "gated.pt")["quality_slices"] == (1, 2, 2, 3, 3)
    save_ntc(HyperpriorModel(8, 12), tmp_path / "plain.pt")
    assert source_config(tmp_path / "plain.pt") == {"n": 8, "m": 12, "slices": 1, "residual": False, "hyper_n": 8,
                                                    "blocks": 0, "synthesis_blocks": None, "n_analysis": None, "quality_slices": None, "scale_min": SCALE_MIN,
                                                    "lambdas": QUALITY_LAMBDAS}
    torch.save({"args": {"n": 16, "m": 24, "slices": 4, "residual": True, "scale_min": 0.05,
                         "lambdas": list(lams[:3])}}, tmp_path / "checkpoint.pt")
    assert source_config(tmp_path / "checkpoint.pt") == {"n": 16, "m": 24, "slices": 4, "residual": True,
                                                         "hyper_n": 16, "blocks": 0, "synthesis_blocks": None, "n_analysis": None,
                                                         "quality_slices": None, "scale_min": 0.05,
                                                         "lambdas": lams[:3]}
    torch.save({"args": {"n": 16, "m": 24}}, tmp_path / "old.pt")  # a run from before --slices, --lambdas, …
    assert source_config(tmp_path / "old.pt") == {"n": 16, "m": 24, "slices": 1, "residual": False, "hyper_n": 16,
                                                  "blocks": 0, "synthesis_blocks": None, "n_analysis": None, "quality_slices": None, "scale_min": SCALE_MIN,
                                                  "lambdas": QUALITY_LAMBDAS}
    torch.save([1, 2], tmp_path / "other.pt")
    with pytest.raises(ValueError, match="neither"):
        source_config(tmp_path / "other.pt")


def test_ntc_run_from_a_source_needs_no_architecture_flags(tmp_path, data_root, keep_threads, capsys):
    """`train ntc --init-from M` alone continues M: the run's model has M's config and starts at M's
    weights; a flag given still wins (--n wider widens). --widen-start without an --m above the
    source's, and an unreadable source, are one-line errors (exit 2) that write nothing."""
    from chansim.ntc.io import load_model as load_ntc, save_model as save_ntc
    from chansim.ntc.model import HyperpriorModel

    torch.manual_seed(5)
    lams = (0.001, 0.01)
    save_ntc(HyperpriorModel(8, 12, lams, slices=3, residual=True, scale_min=1 / 64), tmp_path / "m.pt")
    source = load_ntc(tmp_path / "m.pt")[0]
    common = ["--crop", "64", "--eval-crop", "64", "--batch", "1", "--threads", "1", "--steps", "1",
              "--data-dir", str(data_root)]
    out = tmp_path / "run"
    assert main(["ntc", "--out", str(out), "--init-from", str(tmp_path / "m.pt"), "--lr", "0", *common]) == 0
    blob = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=False)
    assert blob["config"] == source.config()
    assert all(torch.equal(blob["ema"]["shadow"][k], v) and torch.equal(blob["model"][k], v)
               for k, v in source.state_dict().items())                         # lr 0: still the source
    wide = tmp_path / "wide"
    assert main(["ntc", "--out", str(wide), "--init-from", str(tmp_path / "m.pt"), "--n", "10", *common]) == 0
    cfg = torch.load(wide / "checkpoint.pt", map_location="cpu", weights_only=False)["config"]
    assert cfg == {**source.config(), "n": 10, "hyper_n": 8}
    assert main(["ntc", "--out", str(tmp_path / "enc"), "--init-from", str(tmp_path / "m.pt"), "--n-analysis", "12",
                 *common]) == 0
    cfg = torch.load(tmp_path / "enc" / "checkpoint.pt", map_location="cpu", weights_only=False)["config"]
    assert cfg == {**source.config(), "n_analysis": 12}
    capsys.readouterr()
    for bad in (["--init-from", str(tmp_path / "m.pt"), "--widen-start", "0.1"],
                ["--init-from", str(tmp_path / "m.pt"), "--m", "12", "--widen-start", "0.1"],
                ["--widen-start", "0.1"],
                ["--init-from", str(tmp_path / "missing.pt")]):
        with pytest.raises(SystemExit) as e:
            main(["ntc", "--out", str(tmp_path / "r"), *bad, *common])
        err = capsys.readouterr().err
        assert e.value.code == 2 and err.startswith("error: ") and "Traceback" not in err
        assert ("--widen-start" in err) == ("--widen-start" in bad)
    assert not (tmp_path / "r").exists()


def test_ntc_scale_floor_is_set_or_continued(tmp_path):
    """--scale-min sets the model's σ' floor ("0.02" or "1/64", refused outside [1/64, 1]; without it
    --init-from continues the source's, test_ntc_init_from_continues_the_source_configuration); a run from a 0.11 model with --scale-min 1/64 starts at the source's weights with the new floor,
    which its exported config (and so its model id) carries."""
    import argparse

    import numpy as np

    from chansim.ntc.io import load_model as load_ntc, save_model as save_ntc
    from chansim.ntc.model import HyperpriorModel
    from chansim.ntc.tables import SCALE_MIN
    from chansim.train.data import CropSampler
    from chansim.train.ntc import NTCTrainer, _scale_min

    assert _scale_min("1/64") == 1 / 64 and _scale_min("0.02") == 0.02 and _scale_min("1") == 1.0
    for bad in ("0.01", "1/65", "2", "x", "1/0", "nan"):
        with pytest.raises(argparse.ArgumentTypeError, match="--scale-min"):
            _scale_min(bad)
    torch.manual_seed(3)
    src = HyperpriorModel(8, 12)
    mid = save_ntc(src, tmp_path / "m.pt")
    save_ntc(HyperpriorModel(8, 12, scale_min=1 / 64), tmp_path / "low.pt")
    args = argparse.Namespace(out=tmp_path / "run", n=8, m=12, seed=0, lr=1e-4, ema=0.999,
                              init_from=tmp_path / "m.pt", scale_min=1 / 64)
    trainer = NTCTrainer(args, CropSampler([np.zeros((64, 64, 3), np.uint8)], 64), None)
    shipped = load_ntc(tmp_path / "m.pt")[0].state_dict()
    assert trainer.model.scale_min == 1 / 64
    assert all(torch.equal(trainer.model.state_dict()[k], v) for k, v in shipped.items())
    assert save_ntc(trainer.model, tmp_path / "new.pt") != mid
    assert load_ntc(tmp_path / "new.pt")[0].scale_min == 1 / 64


def test_gain_regrid_follows_log_lambda():
    """Log-gains linear in log λ are reproduced exactly on any new ladder, inside and beyond the old one."""
    from chansim.train.ntc import regrid_gains

    old = (0.002, 0.005, 0.01, 0.04)
    new = (0.0001, 0.003, 0.01, 0.2)
    a, b = torch.linspace(-1, 1, 6, dtype=torch.float64), torch.linspace(0.3, 0.7, 6, dtype=torch.float64)
    table = lambda lams: a + b * torch.log(torch.tensor(lams, dtype=torch.float64))[:, None]
    torch.testing.assert_close(regrid_gains(table(old), old, new), table(new), rtol=0, atol=1e-12)
    bent = torch.randn(4, 6, dtype=torch.float64)
    assert torch.equal(regrid_gains(bent, old, old), bent)
    # Gates (extend=False): the same line inside the old ladder, held at its end rows beyond it.
    held = regrid_gains(table(old), old, new, extend=False)
    torch.testing.assert_close(held[1:3], table(new)[1:3], rtol=0, atol=1e-12)
    assert torch.equal(held[0], table(old)[0]) and torch.equal(held[3], table(old)[3])


def test_ntc_warm_restart_changes_the_lambda_ladder(tmp_path):
    """--init-from a run checkpoint with --lambdas (here one more λ than the source's, on a model with a
    latent residual): shared weights kept, gain rows and the residual's per-quality gates regridded, Adam
    moments reshaped so that the optimizer steps."""
    import argparse

    import numpy as np

    from chansim.ntc.model import HyperpriorModel
    from chansim.train.data import CropSampler
    from chansim.train.ntc import NTCTrainer, param_groups, regrid_gains

    torch.manual_seed(5)
    src = HyperpriorModel(8, 12, (0.001, 0.01, 0.1), residual=True)
    with torch.no_grad():
        src.residual.weight.copy_(torch.randn_like(src.residual.weight))      # gates of their own per quality
    opt = torch.optim.Adam(param_groups(src, 1e-4), lr=1e-4)                  # as a run's: the gates' own group
    src.loss(torch.rand(2, 3, 64, 64), torch.tensor([0, 2]))["loss"].backward()
    opt.step()
    torch.save({"ema": {"shadow": src.state_dict()}, "opt": opt.state_dict(), "config": src.config(),
                "args": {"n": 8, "m": 12, "lambdas": src.lambdas, "residual": True}}, tmp_path / "checkpoint.pt")
    new = (0.0005, 0.002, 0.01, 0.05, 0.2)
    args = argparse.Namespace(out=tmp_path / "run", n=8, m=12, seed=0, lr=1e-4, ema=0.999, lambdas=new,
                              residual=True, init_from=tmp_path / "checkpoint.pt")
    trainer = NTCTrainer(args, CropSampler([np.zeros((64, 64, 3), np.uint8)], 64), None)
    got = trainer.model.state_dict()
    assert trainer.model.lambdas == new and got["gain"].shape == (5, 12) and got["hgain"].shape == (5, 8)
    torch.testing.assert_close(got["inv_gain"], regrid_gains(src.inv_gain.detach(), src.lambdas, new))
    gates = src.residual.weight.detach()
    # λ 0.01 is the source's second: its gates exactly; 0.0005 and 0.2 lie beyond the source's ladder: held
    # at its first and last rows; 0.002 between the first two, in log λ.
    assert torch.equal(got["residual.weight"][2], gates[1])
    assert torch.equal(got["residual.weight"][0], gates[0]) and torch.equal(got["residual.weight"][4], gates[2])
    w = math.log(0.002 / 0.001) / math.log(0.01 / 0.001)
    torch.testing.assert_close(got["residual.weight"][1], (1 - w) * gates[0] + w * gates[1])
    assert torch.equal(got["g_s.0.weight"], src.state_dict()["g_s.0.weight"])
    trainer.model.loss(torch.rand(2, 3, 64, 64), torch.tensor([0, 4]))["loss"].backward()
    trainer.opt.step()                      # would raise on a moment of the old shape


@pytest.mark.parametrize("text", ["0.1", "0.2,0.1", "0.1,0.1", "0.1,-1", "a,b", "0.1,nan"])
def test_lambda_ladder_argument_rejects_bad_lists(text):
    import argparse

    from chansim.train.ntc import _lambda_list

    with pytest.raises(argparse.ArgumentTypeError, match="--lambdas"):
        _lambda_list(text)


def test_ntc_decoder_train_resume_export(tmp_path, data_root, keep_threads):
    """python -m chansim.train ntc-decoder: trains against a given NTC model file, resumes, exports a
    float16 decoder whose card names that model and which the NTC codec accepts."""
    from chansim.codecs.ntc import NTC
    from chansim.ntc.io import load_model as load_ntc, save_model as save_ntc
    from chansim.ntc.model import HyperpriorModel

    torch.manual_seed(3)
    save_ntc(HyperpriorModel(8, 12, lambdas=(0.001, 0.01, 0.1)), tmp_path / "ntc.pt")
    ntc_model, tables, ntc_id = load_ntc(tmp_path / "ntc.pt")
    out, dest = tmp_path / "run", tmp_path / "models"
    common = ["--widths", "8", "16", "--crop", "64", "--batch", "2", "--checkpoint-minutes", "0", "--log-every", "1",
              "--eval-crop", "64", "--threads", "1"]
    assert main(["ntc-decoder", "--out", str(out), "--ntc", str(tmp_path / "ntc.pt"), "--steps", "2",
                 "--data-dir", str(data_root), *common]) == 0
    blob = torch.load(out / "checkpoint.pt", weights_only=False)
    assert blob["step"] == 2 and blob["args"]["ntc_id"] == ntc_id and len(blob["args"]["residual_scales"]) == 3
    assert all(s > 0 for s in blob["args"]["residual_scales"])
    assert main(["ntc-decoder", "--out", str(out), "--resume", "--steps", "3"]) == 0
    assert torch.load(out / "checkpoint.pt", weights_only=False)["step"] == 3
    assert main(["export", str(out), "--dest", str(dest), "--name", "gen", "--data-dir", str(data_root),
                 "--calibration-side", "64"]) == 0
    card = json.loads((dest / "gen.json").read_text())
    dec, mid = load_model(dest / "gen.pt")
    assert card["model_id"] == mid and card["base_model"] == ntc_id and card["storage_dtype"] == "float16"
    assert [r["quality"] for r in card["heldout_figures"]] == [1, 2]
    assert [r["quality"] for r in card["temperature_calibration"]["rows"]] == [1, 2, 3]
    rows = card["temperature_calibration"]["rows"]
    assert np.allclose(dec.temperatures, [r["temperature"] for r in rows], atol=1e-4)
    assert all(0 < t <= 1 for t in dec.temperatures)
    assert all(r["hf_mmse"] > 0 and r["psnr_gen"] > 0 for r in card["heldout_figures"])
    codec = NTC(ntc_model, tables, ntc_id, decoder=dec)
    assert codec.reconstructions == ("mmse", "generative", "interp")

    # --init-from continues the exported network (fresh optimizer), its unit and widths included…
    import argparse

    from chansim.train.data import CropSampler
    from chansim.train.ntc_decoder import DecoderTrainer

    run2 = dict(out=tmp_path / "run2", ntc=tmp_path / "ntc.pt", init_from=dest / "gen.pt", widths=[4, 4],
                seed=0, lr=1e-3, ema=0.99)
    cont = DecoderTrainer(argparse.Namespace(**run2), CropSampler.from_shared(64, root=data_root, progress=False), None)
    assert cont.args.init_from_id == mid and cont.args.widths == [8, 16]
    assert cont.args.residual_scales == [float(v) for v in dec.residual_scales]
    for k, v in dec.net.state_dict().items():
        assert torch.equal(cont.model.net.state_dict()[k], v), k
    assert cont.model.temperatures == [1.0] * 3 and cont.model.schedule.gamma_min == -10.0
    # …and refuses a decoder of another NTC model.
    save_ntc(HyperpriorModel(8, 12, lambdas=(0.001, 0.01, 0.1)), tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a generative decoder of NTC model.*--rebase"):
        DecoderTrainer(argparse.Namespace(**{**run2, "ntc": tmp_path / "other.pt"}),
                       CropSampler.from_shared(64, root=data_root, progress=False), None)
    # --rebase continues it on the other model, with the residual unit measured on that model.
    from chansim.train.ntc_decoder import residual_scales

    other_id = load_ntc(tmp_path / "other.pt")[2]
    rebased = DecoderTrainer(argparse.Namespace(**{**run2, "ntc": tmp_path / "other.pt", "rebase": True}),
                             CropSampler.from_shared(64, root=data_root, progress=False), None)
    assert rebased.args.ntc_id == other_id and rebased.model.base_model == other_id
    assert rebased.args.widths == [8, 16] and rebased.args.init_from_id == mid
    want = residual_scales(load_ntc(tmp_path / "other.pt")[0], CropSampler.from_shared(64, root=data_root, progress=False))
    assert rebased.args.residual_scales == want != cont.args.residual_scales
    for k, v in dec.net.state_dict().items():
        assert torch.equal(rebased.model.net.state_dict()[k], v), k


def test_ntc_decoder_draws_qualities_with_the_given_weights(tmp_path, data_root, keep_threads, capsys):
    """--quality-weights: the training crops' qualities follow the stated law (χ², n = 2,400, α = 0.001;
    a zero weight is never drawn), the run keeps it through --resume and the card states it; weights
    that do not fit --ntc, or that are negative, all zero or not numbers, are refused before anything
    is written."""
    import argparse

    from scipy import stats

    from chansim.ntc.io import save_model as save_ntc
    from chansim.ntc.model import HyperpriorModel
    from chansim.train.data import CropSampler
    from chansim.train.ntc_decoder import DecoderTrainer

    torch.manual_seed(3)
    save_ntc(HyperpriorModel(8, 12, lambdas=(0.001, 0.01, 0.1)), tmp_path / "ntc.pt")
    args = argparse.Namespace(out=tmp_path / "law", ntc=tmp_path / "ntc.pt", widths=[4, 4], seed=0, lr=1e-3,
                              ema=0.99, batch=8, quality_weights=[1.0, 3.0, 0.0])
    trainer = DecoderTrainer(args, CropSampler.from_shared(64, root=data_root, progress=False), None)
    drawn = []
    trainer.model.loss = lambda x, base, q, generator: drawn.append(q) or torch.zeros(())
    gen = torch.Generator().manual_seed(0)
    for _ in range(300):
        trainer.loss_step(gen)
    counts = np.bincount(torch.cat(drawn).numpy(), minlength=3)
    assert counts.sum() == 2400 and counts[2] == 0
    assert stats.chisquare(counts[:2], [600, 1800]).pvalue > 1e-3

    out, dest = tmp_path / "run", tmp_path / "models"
    common = ["--ntc", str(tmp_path / "ntc.pt"), "--widths", "8", "16", "--crop", "64", "--batch", "2",
              "--checkpoint-minutes", "0", "--eval-crop", "64", "--threads", "1", "--data-dir", str(data_root)]
    for bad, says in [("1,2", "has 2 weights; .* has 3 qualities"), ("1,-1,1", "non-negative"),
                      ("0,0,0", "not all zero"), ("1,x,1", "comma-separated numbers"), ("1,nan,1", "finite")]:
        with pytest.raises(SystemExit) as e:
            main(["ntc-decoder", "--out", str(out), "--quality-weights", bad, "--steps", "1", *common])
        assert e.value.code == 2 and re.search(says, capsys.readouterr().err) and not out.exists(), bad
    assert main(["ntc-decoder", "--out", str(out), "--quality-weights", "2,1,1", "--steps", "1", *common]) == 0
    assert main(["ntc-decoder", "--out", str(out), "--resume", "--steps", "2"]) == 0
    assert torch.load(out / "checkpoint.pt", weights_only=False)["args"]["quality_weights"] == [2.0, 1.0, 1.0]
    assert main(["export", str(out), "--dest", str(dest), "--name", "g", "--data-dir", str(data_root),
                 "--calibration-side", "64"]) == 0
    assert "weights [2.0, 1.0, 1.0]" in json.loads((dest / "g.json").read_text())["training_data"]["inputs"]


def test_ntc_run_draws_qualities_with_the_given_weights(tmp_path, data_root, keep_threads, capsys):
    """`train ntc --quality-weights`: the crops' qualities follow the stated law (χ², n = 2,400, α = 0.001;
    a zero weight is never drawn); without weights the draw is the original uniform one, bit for bit; the
    run keeps the weights through --resume and the card states them; a count that does not fit the λ ladder
    is refused before anything is written."""
    import argparse

    from scipy import stats

    from chansim.train.data import CropSampler
    from chansim.train.ntc import NTCTrainer

    def drawn_by(weights, steps):
        args = argparse.Namespace(out=tmp_path / "law", n=8, m=12, seed=0, lr=1e-3, ema=0.99, batch=8,
                                  lambdas=(0.001, 0.01, 0.1), quality_weights=weights)
        trainer = NTCTrainer(args, CropSampler.from_shared(64, root=data_root, progress=False), None)
        drawn = []
        trainer.model.loss = lambda x, q, weight=None: drawn.append(q) or {"loss": torch.zeros(()), "bpp": torch.zeros(1)}
        gen = torch.Generator().manual_seed(0)
        for _ in range(steps):
            trainer.loss_step(gen)
        return torch.cat(drawn)

    counts = np.bincount(drawn_by([1.0, 0.0, 3.0], 300).numpy(), minlength=3)
    assert counts.sum() == 2400 and counts[1] == 0
    assert stats.chisquare(counts[[0, 2]], [600, 1800]).pvalue > 1e-3
    gen = torch.Generator().manual_seed(0)
    uniform = torch.cat([torch.randint(0, 3, (8,), generator=gen) for _ in range(5)])
    assert torch.equal(drawn_by(None, 5), uniform)

    out, dest = tmp_path / "run", tmp_path / "models"
    common = ["--n", "8", "--m", "12", "--lambdas", "0.001,0.01,0.1", *_small_ntc_run(data_root)]
    with pytest.raises(SystemExit) as e:
        main(["ntc", "--out", str(out), "--quality-weights", "1,2", "--steps", "1", *common])
    assert e.value.code == 2 and "has 2 weights; the λ ladder has 3 qualities" in capsys.readouterr().err
    assert not out.exists()
    assert main(["ntc", "--out", str(out), "--quality-weights", "1,1,2", "--steps", "1", *common]) == 0
    assert main(["ntc", "--out", str(out), "--resume", "--steps", "2"]) == 0
    assert torch.load(out / "checkpoint.pt", weights_only=False)["args"]["quality_weights"] == [1.0, 1.0, 2.0]
    assert main(["export", str(out), "--dest", str(dest), "--name", "n", "--data-dir", str(data_root)]) == 0
    card = json.loads((dest / "n.json").read_text())
    assert "weights [1.0, 1.0, 2.0]" in card["training_data"]["quality_sampling"]


def test_balanced_loss_weights_equalise_each_qualitys_loss():
    """`balanced`: w_q·L_q is the same for every quality and Σ w_q L_q = Σ L_q (closed forms); losses
    that are not finite and positive are refused."""
    from chansim.train.qualities import balanced

    losses = [0.09, 0.2, 0.57, 1.5, 4.55]
    w = balanced(losses)
    products = [a * b for a, b in zip(w, losses)]
    assert max(products) - min(products) < 1e-12 and math.isclose(sum(products), sum(losses))
    assert w == sorted(w, reverse=True) and math.isclose(w[0] / w[-1], 4.55 / 0.09)
    for bad in ([], [1.0, 0.0], [1.0, float("nan")], [-1.0, 2.0]):
        with pytest.raises(ValueError, match="finite, positive"):
            balanced(bad)


@pytest.mark.parametrize("power", [0.25, 0.5, 0.75, 1.5])
def test_partly_balanced_loss_weights_follow_their_closed_form(power):
    """`balanced:α`: w_q·L_q ∝ L_q^(1−α) (the ratio of any two qualities' weighted losses is (L_a / L_b)^(1−α)),
    Σ w_q L_q = Σ L_q, and α → 1 meets `balanced`; the spec's α is parsed and checked (argparse type)."""
    import argparse

    from chansim.train.qualities import balance_power, balanced, loss_weights

    losses = [0.09, 0.2, 0.57, 1.5, 4.55]
    w = balanced(losses, power)
    products = [a * b for a, b in zip(w, losses)]
    assert math.isclose(sum(products), sum(losses), rel_tol=1e-12)
    for a in range(5):
        assert math.isclose(products[a] / products[-1], (losses[a] / losses[-1]) ** (1 - power), rel_tol=1e-12)
    near = balanced(losses, 1.0 + 1e-9)
    assert all(math.isclose(x, y, rel_tol=1e-6) for x, y in zip(near, balanced(losses)))
    assert loss_weights(f" balanced:{power} ") == f"balanced:{power}" and balance_power(f"balanced:{power}") == power
    assert balance_power("balanced") == 1.0 and balance_power([1.0, 2.0]) is None and balance_power(None) is None
    for bad in ("balanced:", "balanced:0", "balanced:-1", "balanced:nan", "balanced:x", "balanced:inf"):
        with pytest.raises(argparse.ArgumentTypeError, match="finite number > 0"):
            loss_weights(bad)
    with pytest.raises(ValueError, match="finite number > 0"):
        balanced(losses, 0.0)


def test_ntc_loss_weights_scale_each_crops_lagrangian(keep_threads):
    """HyperpriorModel.loss(weight=w): the batch loss is the mean of w_i times crop i's λ_i·MSE_i + bpp_i,
    with MSE and bpp recomputed here from the forward pass (same noise) — so a weight of 0 removes a
    crop's gradient and a weight of 2 doubles it."""
    from chansim.ntc.model import HyperpriorModel

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = HyperpriorModel(8, 12, lambdas=(0.001, 0.01, 0.1))
    x, q = torch.rand(3, 3, 64, 64), torch.tensor([0, 2, 1])
    w = torch.tensor([0.5, 2.0, 0.0])
    terms = model.loss(x, q, w, generator=torch.Generator().manual_seed(5))
    out = model(x, q, torch.Generator().manual_seed(5))
    mse = ((out["x_hat"] - x) ** 2).mean((1, 2, 3)) * 255.0 ** 2
    rd = torch.tensor([0.001, 0.1, 0.01]) * mse + (out["bits_y"] + out["bits_z"]) / 4096
    assert torch.allclose(terms["rd"], rd.detach(), rtol=1e-5)
    assert torch.allclose(terms["loss"], (w * rd).mean(), rtol=1e-5)

    def grad(weight):
        model.zero_grad()
        model.loss(x, q, weight, generator=torch.Generator().manual_seed(5))["loss"].backward()
        return model.g_s[0].weight.grad.clone()

    # Same noise each time: the gradient is linear in the weights, and a zero weight removes a crop.
    one_hot = torch.eye(3)
    assert torch.allclose(grad(w), 0.5 * grad(one_hot[0]) + 2.0 * grad(one_hot[1]), rtol=1e-4, atol=1e-8)
    assert grad(one_hot[2]).abs().sum() > 0


def test_ntc_run_with_balanced_loss_weights(tmp_path, data_root, keep_threads, capsys):
    """`train ntc --loss-weights balanced` measures each quality's mean loss on training crops through the
    starting model once: the weights give every quality the same weighted loss on those crops (checked
    with the model's own loss, recomputed here), fall with the quality, keep through --resume (not
    measured again) and are on the card; numbers are used as given; a count that does not fit the λ
    ladder, a zero or a word other than `balanced` is refused before anything is written; `balanced:0.5`
    goes half the way on the same measurement."""
    from chansim.train.ntc import BALANCE_CROPS, quality_losses

    out, dest = tmp_path / "run", tmp_path / "models"
    common = ["--n", "8", "--m", "12", "--lambdas", "0.001,0.01,0.1", *_small_ntc_run(data_root)]
    for bad, says in [("1,2", "has 2 weights; the λ ladder has 3 qualities"), ("1,0,1", "positive"),
                      ("even", "comma-separated numbers")]:
        with pytest.raises(SystemExit) as e:
            main(["ntc", "--out", str(out), "--loss-weights", bad, "--steps", "1", *common])
        assert e.value.code == 2 and says in capsys.readouterr().err and not out.exists(), bad
    assert main(["ntc", "--out", str(out), "--loss-weights", "balanced", "--steps", "1", *common]) == 0
    blob = torch.load(out / "checkpoint.pt", weights_only=False)
    w = blob["args"]["loss_weights"]
    assert len(w) == 3 and w[0] > w[1] > w[2] > 0
    assert main(["ntc", "--out", str(out), "--resume", "--steps", "2"]) == 0
    assert torch.load(out / "checkpoint.pt", weights_only=False)["args"]["loss_weights"] == w
    assert main(["export", str(out), "--dest", str(dest), "--name", "n", "--data-dir", str(data_root)]) == 0
    card = json.loads((dest / "n.json").read_text())
    assert "each crop's loss weighted by its quality" in card["training_data"]["quality_sampling"]
    assert f"(--loss-weights balanced, measured on {BALANCE_CROPS} training crops" in card["training_data"]["quality_sampling"]
    assert main(["ntc", "--out", str(tmp_path / "given"), "--loss-weights", "3,2,1", "--steps", "1", *common]) == 0
    assert torch.load(tmp_path / "given" / "checkpoint.pt", weights_only=False)["args"]["loss_weights"] == [3.0, 2.0, 1.0]
    # Part of the way: the same starting model and crops (same seed), so w_q·L_q ∝ L_q^(1−α) with
    # L_q = 1 / w_q of the full balance (up to a constant): the ratios of the half balance's weights are
    # the square roots of the full one's.
    assert main(["ntc", "--out", str(tmp_path / "half"), "--loss-weights", "balanced:0.5", "--steps", "1",
                 *common]) == 0
    half = torch.load(tmp_path / "half" / "checkpoint.pt", weights_only=False)["args"]["loss_weights"]
    for a in range(3):
        assert math.isclose(half[a] / half[2], math.sqrt(w[a] / w[2]), rel_tol=1e-9)

    # The measurement itself, on a model and crops of the test's own: equal weighted losses.
    from chansim.ntc.model import HyperpriorModel
    from chansim.train.qualities import balanced

    torch.manual_seed(1)
    model = HyperpriorModel(8, 12, lambdas=(0.001, 0.01, 0.1))
    x = CropSampler.from_shared(64, root=data_root, progress=False).batch(BALANCE_CROPS).float() / 255.0
    losses = quality_losses(model, x)
    weights = balanced(losses)
    for qi in range(3):
        q = torch.full((BALANCE_CROPS,), qi)
        with torch.no_grad():
            rd = model.loss(x, q, generator=torch.Generator().manual_seed(0))["rd"]
        assert math.isclose(float(rd.mean()) * weights[qi], sum(losses) / 3, rel_tol=0.05)


def test_ema_averages_parameters_and_copies_buffers():
    """A constant buffer stays exactly itself (averaging it in float32 drifts it: −10 → −9.999998 over
    3,000 updates at decay 0.998); a parameter is the average decay_n = min(d, (1 + n)/(10 + n)) gives."""
    from chansim.train.loop import EMA

    m = torch.nn.Linear(1, 1, bias=False)
    m.register_buffer("g0", torch.tensor(-10.0))
    with torch.no_grad():
        m.weight.fill_(0.0)
    ema = EMA(m, 0.998)
    for _ in range(3000):
        ema.update(m)
    assert ema.shadow["g0"].item() == -10.0
    with torch.no_grad():
        m.weight.fill_(1.0)
    ema.update(m)
    d = min(0.998, (1 + 3001) / (10 + 3001))          # update 3,001 with the documented warm-up
    assert ema.shadow["weight"].item() == pytest.approx(1 - d, rel=1e-4)


@pytest.mark.parametrize("command", ["ntc", "ntc-decoder"])
@pytest.mark.parametrize("crop", ["100", "0", "-64", "x"])
def test_ntc_runs_refuse_a_crop_that_is_not_a_multiple_of_64(tmp_path, command, crop, capsys):
    """Refused while parsing, before anything is loaded or written."""
    with pytest.raises(SystemExit) as e:
        main([command, "--out", str(tmp_path / "run"), "--crop", crop])
    assert e.value.code == 2 and "--crop" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("slices", ["0", "5"])
def test_ntc_run_refuses_slices_that_do_not_divide_m(tmp_path, slices, capsys):
    """Refused before anything is loaded or written (M = 128 by default)."""
    with pytest.raises(SystemExit) as e:
        main(["ntc", "--out", str(tmp_path / "run"), "--slices", slices])
    assert e.value.code == 2 and "--slices must be a positive divisor of --m = 128" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_ntc_forward_under_bf16_autocast_keeps_the_entropy_model_in_float32():
    """--precision bf16 runs the transforms in bfloat16; the reconstruction and the code lengths stay
    float32 and within 2 % of the float32 pass on the same noise (bfloat16 keeps 8 mantissa bits)."""
    from chansim.ntc.model import HyperpriorModel

    torch.manual_seed(0)
    model = HyperpriorModel(8, 12, (0.001, 0.01))
    x, q = torch.rand(2, 3, 64, 64), torch.tensor([0, 1])
    ref = model(x, q, generator=torch.Generator().manual_seed(1))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = model(x, q, generator=torch.Generator().manual_seed(1))
    assert all(got[k].dtype == torch.float32 for k in ("bits_y", "bits_z", "x_hat"))
    torch.testing.assert_close(got["bits_y"] + got["bits_z"], ref["bits_y"] + ref["bits_z"], rtol=0.02, atol=0)
    assert float((got["x_hat"] - ref["x_hat"]).abs().max()) < 0.05


@pytest.mark.parametrize("command", ["ntc", "ntc-decoder"])
def test_bf16_runs_keep_float32_weights_and_resume_in_bf16(tmp_path, data_root, keep_threads, command):
    from chansim.ntc.io import save_model as save_ntc
    from chansim.ntc.model import HyperpriorModel

    out = tmp_path / "run"
    if command == "ntc":
        extra = ["--n", "8", "--m", "12", "--lambdas", "0.001,0.01", "--eval-crop", "64"]
    else:
        torch.manual_seed(3)
        # The shipped kind (channel context, latent residual): its erfcx has no bfloat16 kernel, so the
        # base reconstruction must reach it in float32 under the decoder run's autocast.
        save_ntc(HyperpriorModel(8, 12, lambdas=(0.001, 0.01), slices=2, residual=True), tmp_path / "ntc.pt")
        extra = ["--ntc", str(tmp_path / "ntc.pt"), "--widths", "8", "16", "--eval-crop", "64"]
    common = ["--crop", "64", "--batch", "2", "--checkpoint-minutes", "0", "--log-every", "1", "--threads", "1",
              "--data-dir", str(data_root)]
    assert main([command, "--out", str(out), "--steps", "2", "--precision", "bf16", *extra, *common]) == 0
    blob = torch.load(out / "checkpoint.pt", weights_only=False)
    assert blob["args"]["precision"] == "bf16" and blob["step"] == 2
    weights = [*blob["model"].values(), *blob["ema"]["shadow"].values()]
    assert all(v.dtype == torch.float32 for v in weights if v.is_floating_point())
    logged = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert all(np.isfinite(r["loss"]) for r in logged if "loss" in r)
    assert main([command, "--out", str(out), "--resume", "--steps", "3"]) == 0
    blob = torch.load(out / "checkpoint.pt", weights_only=False)
    assert blob["step"] == 3 and blob["args"]["precision"] == "bf16"
    assert main(["export", str(out), "--dest", str(tmp_path / "models"), "--name", "m", "--data-dir", str(data_root),
                 "--calibration-side", "64"]) == 0
    card = json.loads((tmp_path / "models" / "m.json").read_text())
    assert card["optimizer"]["precision"] == "bf16" and card["initialised_from"] is None
    if command == "ntc":
        assert card["total_steps_all_runs"] == 3 and card["heldout"].startswith("Kodak, centre 64×64")


def test_ntc_export_card_counts_the_runs_it_continues(tmp_path, data_root, keep_threads):
    """A run --init-from a model file: the card names the source (its id and card, as they were when the run
    started) and adds its steps; a run from a checkpoint, whatever its file name, names no model id and
    counts the steps of every run before it (the checkpoint's run's own source included)."""
    from chansim.ntc.io import save_model as save_ntc
    from chansim.ntc.model import HyperpriorModel

    torch.manual_seed(4)
    src_id = save_ntc(HyperpriorModel(8, 12, (0.001, 0.01)), tmp_path / "src.pt")
    (tmp_path / "src.json").write_text(json.dumps({"name": "src", "steps": 40, "total_steps_all_runs": 100}))
    out = tmp_path / "run"
    assert main(["ntc", "--out", str(out), "--init-from", str(tmp_path / "src.pt"), "--n", "8", "--m", "12",
                 "--lambdas", "0.001,0.01", "--eval-crop", "64", "--crop", "64", "--batch", "2", "--steps", "2",
                 "--threads", "1", "--log-every", "1", "--data-dir", str(data_root)]) == 0
    # The source's card is replaced after the run started (as a shipped model is): the run keeps what it started from.
    (tmp_path / "src.json").write_text(json.dumps({"name": "other", "steps": 7, "total_steps_all_runs": 7}))
    assert main(["export", str(out), "--dest", str(tmp_path / "m"), "--name", "n", "--data-dir", str(data_root)]) == 0
    card = json.loads((tmp_path / "m" / "n.json").read_text())
    assert card["initialised_from"]["model_id"] == src_id and card["initialised_from"]["name"] == "src"
    assert card["total_steps_all_runs"] == 102 and card["optimizer"]["precision"] == "fp32"
    # A run from a checkpoint copied aside under another name: told by its content, it has no model id.
    (tmp_path / "aside.pt").write_bytes((out / "checkpoint.pt").read_bytes())
    assert main(["ntc", "--out", str(tmp_path / "run2"), "--init-from", str(tmp_path / "aside.pt"), "--eval-crop", "64",
                 "--crop", "64", "--batch", "2", "--steps", "1", "--threads", "1", "--data-dir", str(data_root)]) == 0
    assert main(["export", str(tmp_path / "run2"), "--dest", str(tmp_path / "m2"), "--name", "n",
                 "--data-dir", str(data_root)]) == 0
    card = json.loads((tmp_path / "m2" / "n.json").read_text())
    assert card["initialised_from"]["file"] == "aside.pt" and card["initialised_from"]["model_id"] is None
    assert card["initialised_from"]["steps"] == 2 and card["initialised_from"]["initialised_from"]["name"] == "src"
    assert card["total_steps_all_runs"] == 100 + 2 + 1


def _small_ntc_run(data_root):
    """Arguments of a seconds-long NTC run on 64² crops (one thread, no warm-up)."""
    return ["--crop", "64", "--eval-crop", "64", "--batch", "2", "--threads", "1", "--lr", "1e-3",
            "--warmup", "0", "--data-dir", str(data_root)]


def test_ntc_encoder_only_run_keeps_the_decoder_and_its_model_id(tmp_path, data_root, keep_threads, capsys,
                                                                    monkeypatch):
    """`train ntc --encoder-only` (here with a wider analysis transform): after training and export every
    tensor a decoder reads is the source's bit for bit (Adam never sees them, the EMA copies them) while
    the encoder's moved, so the exported model has the source's id and decodes the source's files. It
    needs --init-from, and a decoder-side flag that differs from the source (here --n) is a one-line
    error that writes nothing."""
    from chansim.ntc.io import load_model as load_ntc, save_model as save_ntc
    from chansim.ntc.model import HyperpriorModel, encoder_only

    torch.manual_seed(6)
    src_id = save_ntc(HyperpriorModel(8, 12, (0.001, 0.01), slices=3, residual=True), tmp_path / "m.pt")
    source = load_ntc(tmp_path / "m.pt")[0].state_dict()
    common = ["--crop", "64", "--eval-crop", "64", "--batch", "2", "--threads", "1", "--steps", "3", "--lr", "1e-2",
              "--warmup", "0", "--data-dir", str(data_root)]
    out = tmp_path / "run"
    assert main(["ntc", "--out", str(out), "--init-from", str(tmp_path / "m.pt"), "--encoder-only",
                 "--n-analysis", "10", *common]) == 0
    blob = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=False)
    for k, v in source.items():                                  # float32, before the storage's rounding
        if not encoder_only(k):
            assert torch.equal(blob["ema"]["shadow"][k], v) and torch.equal(blob["model"][k], v), k
    assert main(["export", str(out), "--dest", str(tmp_path / "x"), "--name", "e", "--data-dir", str(data_root)]) == 0
    model, _, mid = load_ntc(tmp_path / "x" / "e.pt")
    assert mid == src_id and model.n_analysis == 10
    card = json.loads((tmp_path / "x" / "e.json").read_text())
    assert card["model_id"] == src_id and card["optimizer"]["trained"].startswith("the encoder side alone")
    trained = model.state_dict()
    moved = [k for k, v in source.items() if encoder_only(k) and v.shape == trained[k].shape
             and not torch.equal(v, trained[k])]
    assert moved                                                  # the encoder trained
    for k, v in source.items():
        if not encoder_only(k):
            assert torch.equal(trained[k], v), k
    capsys.readouterr()
    for bad in (["--encoder-only"], ["--init-from", str(tmp_path / "m.pt"), "--encoder-only", "--n", "10"]):
        with pytest.raises(SystemExit) as e:
            main(["ntc", "--out", str(tmp_path / "r"), *bad, *common])
        err = capsys.readouterr().err
        assert e.value.code == 2 and err.startswith("error: ") and "--encoder-only" in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()
    # A wider encoder that would push the file past the size budget, whose fitting storage then stores
    # decoder kernels in int8 (another decoder, another id), is refused before the run.
    from chansim.ntc import io as ntc_io

    sizes = {}
    for width in (8, 10):
        m = HyperpriorModel(8, 12, (0.001, 0.01), slices=3, residual=True, n_analysis=width)
        buf = io.BytesIO()
        torch.save(ntc_io.model_file(m, "float16")[0], buf)
        sizes[width] = buf.tell()
    monkeypatch.setattr(ntc_io, "SIZE_BUDGET", (sizes[8] + sizes[10]) // 2)
    with pytest.raises(SystemExit) as e:
        main(["ntc", "--out", str(tmp_path / "r"), "--init-from", str(tmp_path / "m.pt"), "--encoder-only",
              "--n-analysis", "10", *common])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.startswith("error: --encoder-only") and "--n-analysis" in err
    assert not (tmp_path / "r").exists()


def test_centre_crop_refuses_an_image_smaller_than_the_crop():
    """A photo smaller than the crop is named in a ValueError, not cropped to a ragged shape."""
    from chansim.train.data import centre_crop

    img = np.arange(100 * 60 * 3, dtype=np.uint8).reshape(100, 60, 3)
    assert centre_crop(img, 60).shape == (60, 60, 3) and np.array_equal(centre_crop(img, 60), img[20:80, 0:60])
    with pytest.raises(ValueError, match="100×60 image has no centre 64×64 crop"):
        centre_crop(img, 64)


@pytest.mark.parametrize("command", ["uqdm", "diffc", "ntc", "ntc-decoder", "export"])
def test_every_training_command_prints_its_help(command, capsys):
    """argparse formats help texts with %: a bare one in any option's help breaks --help."""
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0 and "--" in capsys.readouterr().out


def test_ntc_blocks_run_adds_identity_started_blocks_at_their_own_rate(tmp_path, data_root, keep_threads, capsys):
    """`train ntc --init-from <model without blocks> --blocks 1 --blocks-lr-scale 10`: every source
    weight carries over and each block starts as the identity (its last layer 0), the blocks form one
    Adam group stepping at 10 × the run's rate through a resume, and the export's config, card and
    model id say the decoder changed; the codec decodes its files. --encoder-only cannot add blocks
    (the synthesis' blocks are the decoder's)."""
    from chansim.codecs.ntc import NTC
    from chansim.ntc.io import load_model as load_ntc, save_model as save_ntc
    from chansim.ntc.model import Bottleneck, HyperpriorModel

    torch.manual_seed(7)
    src_id = save_ntc(HyperpriorModel(8, 12, (0.001, 0.01), slices=3, residual=True), tmp_path / "m.pt")
    source = load_ntc(tmp_path / "m.pt")[0].state_dict()
    common = _small_ntc_run(data_root)
    out = tmp_path / "run"
    assert main(["ntc", "--out", str(out), "--init-from", str(tmp_path / "m.pt"), "--blocks", "1",
                 "--blocks-lr-scale", "10", "--steps", "0", *common]) == 0
    start = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=False)["model"]
    assert all(torch.equal(start[k], v) for k, v in source.items())
    assert all(not start[k].any() for k in start if k.startswith(("g_a_blocks.", "g_s_blocks.")) and ".net.4." in k)
    assert main(["ntc", "--out", str(out), "--resume", "--steps", "2"]) == 0
    blob = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=False)
    rest, blocks, gates = blob["opt"]["param_groups"]
    assert blocks["lr"] == pytest.approx(10 * rest["lr"]) and len(blocks["params"]) == 4 * 6   # 4 blocks × 3 convs × (w, b)
    assert any(blob["model"][k].any() for k in blob["model"] if ".net.4.weight" in k and "blocks" in k)
    assert main(["export", str(out), "--dest", str(tmp_path / "x"), "--name", "b", "--data-dir", str(data_root)]) == 0
    model, _, mid = load_ntc(tmp_path / "x" / "b.pt")
    card = json.loads((tmp_path / "x" / "b.json").read_text())
    assert model.blocks == 1 and card["config"]["blocks"] == 1 and "bottleneck" in card["summary"]
    assert mid != src_id and sum(isinstance(m, Bottleneck) for m in model.modules()) == 4
    codec = NTC.from_file(tmp_path / "x" / "b.pt")
    image = np.asarray(Image.open(next((data_root / "kodak").iterdir())).convert("RGB"))[:70, :90]
    out_image = codec.decompress(codec.compress(image, 2))
    assert out_image.shape == image.shape
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(["ntc", "--out", str(tmp_path / "r"), "--init-from", str(tmp_path / "m.pt"), "--encoder-only",
              "--blocks", "1", "--steps", "1", *common])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "--encoder-only" in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()
    for bad in (["--blocks", "-1"], ["--blocks", "two"], ["--blocks", "1", "--blocks-lr-scale", "0"]):
        with pytest.raises(SystemExit) as e:
            main(["ntc", "--out", str(tmp_path / "r"), *bad, "--steps", "1", *common])
        err = capsys.readouterr().err
        assert e.value.code == 2 and "--blocks" in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_ntc_run_appends_a_synthesis_block_to_a_model_with_blocks(tmp_path, data_root, keep_threads, capsys):
    """`train ntc --init-from <blocks=1 model> --synthesis-blocks 1,2`: every source weight carries over,
    only the one appended block (``g_s_blocks.1.1``) is new and starts as the identity, it steps in the
    blocks' Adam group, and the run's config says so; the analysis keeps its one block per place.
    Malformed counts and an --encoder-only run that would add a decoder block are refused before anything
    is written."""
    from chansim.ntc.io import load_model as load_ntc, save_model as save_ntc
    from chansim.ntc.model import HyperpriorModel

    torch.manual_seed(8)
    source_model = HyperpriorModel(8, 12, (0.001, 0.01), slices=3, residual=True, blocks=1)
    for name, conv in source_model.named_modules():
        if name.endswith("net.4"):
            torch.nn.init.normal_(conv.weight, std=0.1)
    save_ntc(source_model, tmp_path / "m.pt")
    source = load_ntc(tmp_path / "m.pt")[0].state_dict()
    common = _small_ntc_run(data_root)
    out = tmp_path / "run"
    assert main(["ntc", "--out", str(out), "--init-from", str(tmp_path / "m.pt"), "--synthesis-blocks", "1,2",
                 "--blocks-lr-scale", "10", "--steps", "0", *common]) == 0
    blob = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=False)
    start = blob["model"]
    assert all(torch.equal(start[k], v) for k, v in source.items())
    new = sorted(k for k in start if k not in source)
    assert {k.rsplit(".", 3)[0] for k in new} == {"g_s_blocks.1.1"}
    assert not start["g_s_blocks.1.1.net.4.weight"].any() and not start["g_s_blocks.1.1.net.4.bias"].any()
    assert tuple(blob["args"]["synthesis_blocks"]) == (1, 2) and blob["args"]["blocks"] == 1
    rest, blocks, gates = blob["opt"]["param_groups"]
    assert blocks["lr"] == pytest.approx(10 * rest["lr"]) and len(blocks["params"]) == 5 * 6    # 5 blocks × 3 convs × (w, b)
    capsys.readouterr()
    for bad in (["--synthesis-blocks", "2"], ["--synthesis-blocks", "1,-1"], ["--synthesis-blocks", "a,b"],
                ["--synthesis-blocks", "1,2", "--encoder-only"]):
        with pytest.raises(SystemExit) as e:
            main(["ntc", "--out", str(tmp_path / "r"), "--init-from", str(tmp_path / "m.pt"), *bad, "--steps", "1",
                  *common])
        err = capsys.readouterr().err
        assert e.value.code == 2 and ("--synthesis-blocks" in err or "--encoder-only" in err) and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_ntc_widening_for_the_top_qualities_end_to_end(tmp_path, data_root, keep_threads):
    """`train ntc --init-from M --m … --slices … --quality-slices … --widen-start 1 --widen-warmup S`, stopped
    and resumed, then exported: the run records the source's width (the warm-up's new channels survive the
    resume), the card names the slices per quality, and the exported model's files decode at a quality that
    codes the new slices and at one that does not, whose new latents hold (k, σ̂) = (0, 1)."""
    from chansim.codecs.ntc import NTC
    from chansim.ntc.io import save_model as save_ntc
    from chansim.ntc.model import HyperpriorModel

    torch.manual_seed(8)
    save_ntc(HyperpriorModel(8, 12, (0.001, 0.01, 0.1), slices=3, residual=True), tmp_path / "m.pt")
    out = tmp_path / "run"
    common = _small_ntc_run(data_root)
    assert main(["ntc", "--out", str(out), "--init-from", str(tmp_path / "m.pt"), "--m", "16", "--slices", "4",
                 "--quality-slices", "3,3,4", "--widen-start", "1", "--widen-warmup", "4", "--steps", "2",
                 *common]) == 0
    assert torch.load(out / "checkpoint.pt", weights_only=False)["args"]["widened_from"] == 12
    assert main(["ntc", "--out", str(out), "--resume", "--steps", "3", "--threads", "1"]) == 0
    blob = torch.load(out / "checkpoint.pt", weights_only=False)
    assert blob["step"] == 3 and blob["args"]["widened_from"] == 12 and blob["args"]["widen_warmup"] == 4
    assert main(["export", str(out), "--dest", str(tmp_path / "x"), "--name", "w", "--data-dir", str(data_root)]) == 0
    card = json.loads((tmp_path / "x" / "w.json").read_text())
    assert card["config"]["quality_slices"] == [3, 3, 4] and "latent slices per quality [3, 3, 4]" in card["summary"]
    codec = NTC.from_file(tmp_path / "x" / "w.pt")
    image = np.random.default_rng(2).integers(0, 256, (64, 80, 3), dtype=np.uint8)
    for quality, coded in ((1, 12), (3, 16)):
        data = codec.compress(image, quality, seed=1)
        sym = codec.read_symbols(data)[1]
        assert codec.decompress(data).shape == image.shape
        assert not sym.k[:, coded:].any() and (sym.scale[:, coded:] == 1).all()
