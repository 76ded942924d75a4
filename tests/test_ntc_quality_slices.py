"""Latent slices per quality (``quality_slices``): a quality codes slices 0 … k_q − 1 and never the rest.

Checked against what the rule says, not against recorded outputs: the uncoded latents cost no bits
and are 0 on both sides; the coded slices' symbols are those of the same model coding every slice
(the channel-wise context is causal, so gating later slices cannot change earlier ones); a widening
whose new slices only the top qualities code leaves every other quality exactly its source's, and
``--widen-start s`` starts the new latents at s × the old ones' RMS, with σ' there
(chansim.train.ntc.start_new_latents), and ``--widen-warmup`` holds their encoder side
(chansim.train.ntc.hold_new_latents).
"""

import argparse

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from chansim.codecs.ntc import NTC  # noqa: E402
from chansim.ntc.io import load_model, save_model  # noqa: E402
from chansim.ntc.model import HyperpriorModel, gaussian_cell_bits  # noqa: E402
from chansim.train.data import CropSampler  # noqa: E402
from chansim.train.__main__ import main  # noqa: E402
from chansim.train.ntc import NTCTrainer  # noqa: E402

LAMS = (0.001, 0.004, 0.016, 0.064)
GATED = (1, 2, 2, 3)


def _model(gated, seed=0):
    torch.manual_seed(seed)
    model = HyperpriorModel(16, 24, LAMS, slices=3, residual=True, quality_slices=gated)
    with torch.no_grad():
        model.gain.copy_(torch.linspace(0.5, 3.0, 4)[:, None].expand(-1, 24))
        model.inv_gain.copy_(-model.gain)
        for ctx in model.context:
            torch.nn.init.normal_(ctx.net[-1].weight, std=0.05)
        model.residual.weight.uniform_(0.5, 1.0)
        torch.nn.init.normal_(model.residual.net[-1].weight, std=0.05)
    return model.eval()


def test_counts_are_validated_and_travel_with_the_model(tmp_path):
    for bad in ((1, 2, 3), (1, 2, 2, 4), (0, 1, 2, 3), (2, 1, 3, 3), (1, 2, 2.5, 3), (True, 2, 2, 3)):
        with pytest.raises(ValueError, match="quality_slices"):
            HyperpriorModel(16, 24, LAMS, slices=3, quality_slices=bad)
    full = HyperpriorModel(16, 24, LAMS, slices=3)
    assert "quality_slices" not in full.config()            # every slice at every quality: the old config, old id
    assert "quality_slices" not in HyperpriorModel(16, 24, LAMS, slices=3, quality_slices=(3,) * 4).config()
    save_model(_model(GATED), tmp_path / "g.pt")
    back = load_model(tmp_path / "g.pt")[0]
    assert back.quality_slices == GATED and back.config()["quality_slices"] == list(GATED)
    assert [back.coded_slices(q) for q in range(4)] == list(GATED)
    coded = back.coded(torch.arange(4))[:, :, 0, 0]
    assert coded.sum(1).tolist() == [8 * k for k in GATED]   # slice width 8: the first 8·k_q channels
    assert (coded[:, :-1] >= coded[:, 1:]).all()             # a prefix of the channels


def test_uncoded_latents_cost_nothing_and_the_coded_ones_what_they_cost_ungated():
    gated, full = _model(GATED), _model(None)
    x, q = torch.rand(4, 3, 64, 128), torch.arange(4)
    with torch.no_grad():
        full.h_a[0].weight.zero_()                   # z must not see the gated channels' values in either model
        gated.load_state_dict(full.state_dict())
        out_g = gated(x, q, generator=torch.Generator().manual_seed(5))
        # the ungated model's per-latent bits with the same draws, summed over the channels each quality codes
        y = full.analysis(x, q)
        z = full.hyper_analysis(y, q)
        gen = torch.Generator().manual_seed(5)
        torch.rand(z.shape, generator=gen)
        y_hat = y + torch.rand(y.shape, generator=gen) - 0.5
        mean, scale = full.entropy_parameters(torch.round(z), y_hat, q)
        bits = gaussian_cell_bits(y_hat - mean, scale.clamp_min(full.scale_min))
        for i, k in enumerate(GATED):
            expected = bits[i, :8 * k].sum()
            assert torch.allclose(out_g["bits_y"][i], expected, rtol=1e-5), (i, k)
            if k < 3:
                assert out_g["bits_y"][i] < bits[i].sum()
    assert torch.equal(out_g["bits_z"], full(x, q, generator=torch.Generator().manual_seed(5))["bits_z"])


def test_a_gated_file_codes_only_its_slices_and_they_are_the_ungated_files(tmp_path):
    """Same weights, gated and not: at every quality the coded slices' symbols k are the ungated file's
    (same seed, dither and causal context), the uncoded ones are (k, u, μ̂, σ̂, ŷ') = (0, 0, 0, 1, 0), the
    gated file is smaller where it codes fewer slices, and it decodes (the decoder walks exactly the slices
    the encoder coded: a symbol left over or missing fails the file)."""
    full = _model(None)
    with torch.no_grad():
        full.h_a[0].weight[:, 8:].zero_()            # z independent of the gated channels in both
    gated = HyperpriorModel(16, 24, LAMS, slices=3, residual=True, quality_slices=GATED)
    gated.load_state_dict(full.state_dict())
    save_model(full, tmp_path / "f.pt")
    save_model(gated, tmp_path / "g.pt")
    cf, cg = NTC.from_file(tmp_path / "f.pt"), NTC.from_file(tmp_path / "g.pt")
    rng = np.random.default_rng(0)
    image = np.clip(rng.normal(128, 40, (70, 90, 3)).cumsum(1) / 10 % 256, 0, 255).astype(np.uint8)
    for quality, k in zip(cg.qualities, GATED):
        fa, fb = cf.compress(image, quality, seed=3), cg.compress(image, quality, seed=3)
        sa, sb = cf.read_symbols(fa)[1], cg.read_symbols(fb)[1]
        c = 8 * k
        assert np.array_equal(sa.z, sb.z) and np.array_equal(sa.k[:, :c], sb.k[:, :c])
        assert not sb.k[:, c:].any() and not sb.u[:, c:].any() and not sb.mean[:, c:].any()
        assert (sb.scale[:, c:] == 1).all() and not sb.y_hat[:, c:].any()
        assert (len(fb) < len(fa)) == (k < 3) and (len(fb) == len(fa)) == (k == 3)
        out = cg.decompress(fb)
        assert out.shape == image.shape and np.array_equal(out, cg.decompress(cg.compress(image, quality, seed=3)))


def test_refinement_keeps_the_uncoded_latents_at_zero(tmp_path):
    gated = _model(GATED)
    save_model(gated, tmp_path / "g.pt")
    codec = NTC.from_file(tmp_path / "g.pt")
    image = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    data = codec.compress(image, 1, seed=2, refine=4)
    sym = codec.read_symbols(data)[1]
    assert not sym.y_hat[:, 8:].any() and codec.decompress(data).shape == image.shape


def _widened(tmp_path, start, gated=(3, 3, 3, 4)):
    torch.manual_seed(3)
    save_model(HyperpriorModel(8, 12, LAMS, slices=3, residual=True), tmp_path / "m.pt")
    source = load_model(tmp_path / "m.pt")[0].eval()
    rng = np.random.default_rng(0)
    sampler = CropSampler([rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)], 64)
    torch.manual_seed(11)
    args = argparse.Namespace(out=tmp_path / "run", n=8, hyper_n=8, m=16, slices=4, residual=True, lambdas=LAMS,
                              scale_min=1 / 64, seed=0, lr=1e-3, ema=0.999, init_from=tmp_path / "m.pt",
                              widen_start=start, quality_slices=gated)
    return source, NTCTrainer(args, sampler, None).model.eval(), sampler


@pytest.mark.parametrize("start", [0.0, 0.5])
def test_a_widening_for_the_top_qualities_leaves_the_others_exactly_the_source(tmp_path, start):
    source, wide, _ = _widened(tmp_path, start)
    x, q = torch.rand(3, 3, 64, 64), torch.tensor([0, 1, 2])
    with torch.no_grad():
        y_s, y_w = source.analysis(x, q), wide.analysis(x, q)
        assert torch.equal(y_w[:, 12:], torch.zeros_like(y_w[:, 12:]))     # never coded at these qualities
        torch.testing.assert_close(y_w[:, :12], y_s, rtol=1e-6, atol=1e-6)
        z_hat = torch.round(source.hyper_analysis(y_s, q))
        assert torch.equal(torch.round(wide.hyper_analysis(y_w, q)), z_hat)
        y_hat = y_s + torch.rand(y_s.shape, generator=torch.Generator().manual_seed(1)) - 0.5
        mean_s, scale_s = source.entropy_parameters(z_hat, y_hat, q)
        y_hat_w = torch.cat([y_hat, torch.zeros_like(y_w[:, 12:])], 1)
        mean_w, scale_w = wide.entropy_parameters(z_hat, y_hat_w, q)
        torch.testing.assert_close(mean_w[:, :12], mean_s, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(scale_w[:, :12], scale_s, rtol=1e-6, atol=1e-6)
        x_s = source.synthesis(y_hat, q, mean_s, scale_s.clamp_min(source.scale_min))
        y_in, mean_in, scale_in = wide.uncoded_filled(y_hat_w, mean_w, scale_w.clamp_min(wide.scale_min), q)
        x_w = wide.synthesis(y_in, q, mean_in, scale_in)
        torch.testing.assert_close(x_w, x_s, rtol=1e-5, atol=1e-6)
        top = wide.analysis(x[:1], torch.tensor([3]))[:, 12:]
    assert (top.abs().max() > 0) == (start > 0)              # the top quality codes the new latents


def test_widen_start_gives_the_new_latents_the_old_ones_size(tmp_path):
    """At the start, each new latent's RMS over the calibration crops (the first training batch), at the middle
    quality that codes it, is s × the old latents' median RMS there; its σ' is that RMS; the synthesis reads
    it with weight 0 — recomputed here from the widened model itself."""
    from chansim.train.ntc import WIDEN_CALIBRATION_CROPS

    _, wide, _ = _widened(tmp_path, 0.5, gated=(3, 3, 4, 4))
    rng = np.random.default_rng(0)
    crops = CropSampler([rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)], 64)   # the same first batch
    x = crops.batch(WIDEN_CALIBRATION_CROPS).float() / 255.0
    q = torch.full((x.shape[0],), 3)                        # qualities 3–4 code them: the middle of [2, 3] is 3
    with torch.no_grad():
        y = wide.analysis(x, q)
        rms = y.double().pow(2).mean((0, 2, 3)).sqrt().numpy()
        target = 0.5 * np.median(rms[:12])
        np.testing.assert_allclose(rms[12:], target, rtol=1e-4)
        z_hat = torch.round(wide.hyper_analysis(y, q))
        _, scale = wide.entropy_parameters(z_hat, y, q)
    np.testing.assert_allclose(scale[:, 12:].double().numpy(), target, rtol=1e-4)
    assert target > wide.scale_min and not wide.g_s[0].weight[12:].any()


def test_the_command_line_refuses_bad_counts_before_writing(tmp_path, capsys):
    for bad in ("0,1", "x", ""):
        with pytest.raises(SystemExit):
            main(["ntc", "--out", str(tmp_path / "r"), "--quality-slices", bad])
        assert "--quality-slices" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_the_warmup_holds_the_new_latents_encoder_side(tmp_path):
    """A trainer widened with ``--widen-warmup S``: before step S a training step's gradient on the new latents'
    analysis rows (weight, bias) and gain columns is exactly 0 while the old ones' and the synthesis weights
    that read the new latents get theirs; from step S on, the new rows get theirs too."""
    source = _widened(tmp_path, 1.0)[0]
    save_model(source, tmp_path / "s.pt")
    rng = np.random.default_rng(0)
    sampler = CropSampler([rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)], 64)
    args = argparse.Namespace(out=tmp_path / "run2", n=8, hyper_n=8, m=16, slices=4, residual=True, lambdas=LAMS,
                              scale_min=1 / 64, seed=0, lr=1e-3, ema=0.999, init_from=tmp_path / "s.pt",
                              widen_start=1.0, quality_slices=(3, 3, 3, 4), widen_warmup=40, batch=4)
    trainer = NTCTrainer(args, sampler, None)
    assert args.widened_from == 12
    model = trainer.model.train()

    def grads(step):
        trainer.step = step
        model.zero_grad()
        x = torch.from_numpy(rng.integers(0, 256, (4, 3, 64, 64))).float() / 255.0
        model.loss(x, torch.tensor([3, 3, 3, 3]))["loss"].backward()
        return (model.g_a[6].weight.grad, model.g_a[6].bias.grad, model.gain.grad, model.g_s[0].weight.grad)

    w, b, g, read = grads(10)
    assert not w[12:].any() and not b[12:].any() and not g[:, 12:].any()
    assert w[:12].abs().max() > 0 and g[3, :12].abs().max() > 0 and read[12:].abs().max() > 0
    w, b, g, _ = grads(40)
    assert w[12:].abs().max() > 0 and g[3, 12:].abs().max() > 0


def test_widen_warmup_needs_a_widening(tmp_path, capsys):
    save_model(_model(GATED), tmp_path / "g.pt")
    for extra in ([], ["--m", "24"]):
        with pytest.raises(SystemExit):
            main(["ntc", "--out", str(tmp_path / "r"), "--init-from", str(tmp_path / "g.pt"), "--widen-warmup", "100",
                  *extra])
        assert "--widen-warmup" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
