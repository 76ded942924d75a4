"""The image transforms' residual bottleneck blocks (``HyperpriorModel(blocks=b)``): each block is the
formula of docs/format.md §9, a model given blocks computes exactly what its source did, and that
start is no saddle (the zero layer gets a gradient at once)."""

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

from chansim.ntc.model import Bottleneck, HyperpriorModel  # noqa: E402


def test_a_block_is_x_plus_w3_rho_w2_rho_w1_x():
    """The block against the formula written out in float64 with torch's functional convolutions."""
    torch.manual_seed(0)
    block = Bottleneck(10).double()
    for conv in block.net[::2]:
        torch.nn.init.normal_(conv.weight, std=0.3)
        torch.nn.init.normal_(conv.bias, std=0.3)
    w1, w2, w3 = (block.net[i] for i in (0, 2, 4))
    assert w1.weight.shape == (5, 10, 1, 1) and w2.weight.shape == (5, 5, 3, 3) and w3.weight.shape == (10, 5, 1, 1)
    x = torch.randn(2, 10, 7, 9, dtype=torch.float64)
    rho = lambda t: torch.where(t >= 0, t, 0.01 * t)                       # noqa: E731
    h = rho(F.conv2d(x, w1.weight, w1.bias))
    h = rho(F.conv2d(h, w2.weight, w2.bias, padding=1))
    want = x + F.conv2d(h, w3.weight, w3.bias)
    assert torch.allclose(block(x), want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("residual", [False, True])
def test_blocks_start_as_their_source_and_learn_from_the_first_step(residual):
    """A model with blocks, loaded from one without, gives the source's latents, (μ', σ'), bits and
    reconstruction bit for bit; under the same loss every block's zero last layer has a nonzero
    gradient at once, while its first two layers' is exactly 0 (they learn from the second step)."""
    torch.manual_seed(1)
    lams = (0.001, 0.01, 0.1)
    source = HyperpriorModel(12, 16, lams, slices=2, residual=residual)
    deep = HyperpriorModel(12, 16, lams, slices=2, residual=residual, blocks=2)
    missing, unexpected = deep.load_state_dict(source.state_dict(), strict=False)
    assert not unexpected and missing and all(k.startswith(("g_a_blocks.", "g_s_blocks.")) for k in missing)
    assert deep.config()["blocks"] == 2 and "blocks" not in source.config()
    x = torch.rand(2, 3, 64, 128)
    q = torch.tensor([0, 2])
    outs = []
    for model in (source, deep):
        outs.append(model(x, q, generator=torch.Generator().manual_seed(3)))
    for key in ("x_hat", "bits_y", "bits_z"):
        assert torch.equal(outs[0][key], outs[1][key]), key
    torch.manual_seed(4)
    deep.loss(x, q)["loss"].backward()
    blocks = [m for m in deep.modules() if isinstance(m, Bottleneck)]
    assert len(blocks) == 8                                                # 2 transforms × 2 places × 2
    for block in blocks:
        assert block.net[-1].weight.grad.abs().sum() > 0
        assert not block.net[0].weight.grad.any() and not block.net[2].weight.grad.any()


def test_blocks_sit_at_quarter_and_eighth_resolution():
    """Each group of blocks sees the transform's channels at 1/4 and 1/8 of the image's side (a shape
    check through forward hooks), so they add depth where the transforms have their widest maps but one."""
    model = HyperpriorModel(12, 16, (0.01,), blocks=1)
    seen = []
    for name, m in model.named_modules():
        if isinstance(m, Bottleneck):
            m.register_forward_hook(lambda mod, inp, out, name=name: seen.append((name, tuple(out.shape))))
    x = torch.rand(1, 3, 128, 192)
    q = torch.tensor([0])
    with torch.no_grad():
        y = model.analysis(x, q)
        model.synthesis(y, q)
    assert seen == [("g_a_blocks.0.0", (1, 12, 32, 48)), ("g_a_blocks.1.0", (1, 12, 16, 24)),
                    ("g_s_blocks.0.0", (1, 12, 16, 24)), ("g_s_blocks.1.0", (1, 12, 32, 48))]


def test_a_block_appended_to_a_place_starts_as_its_source():
    """``synthesis_blocks=(1, 2)`` on a ``blocks=1`` model: the new block is the second at the synthesis'
    1/4-resolution place (a shape check through a forward hook), the config names the synthesis' counts
    (and only when they differ from ``blocks``), and loaded from the source it computes the source's
    reconstruction and bits exactly; its zero last layer gets a gradient at once."""
    torch.manual_seed(5)
    lams = (0.001, 0.01, 0.1)
    source = HyperpriorModel(12, 16, lams, slices=2, residual=True, blocks=1)
    deep = HyperpriorModel(12, 16, lams, slices=2, residual=True, blocks=1, synthesis_blocks=(1, 2))
    for conv in [m for name, m in source.named_modules() if name.endswith("net.4")]:
        torch.nn.init.normal_(conv.weight, std=0.1)           # the source's blocks are trained, not identities
    missing, unexpected = deep.load_state_dict(source.state_dict(), strict=False)
    assert not unexpected and sorted({k.rsplit(".", 3)[0] for k in missing}) == ["g_s_blocks.1.1"]
    assert deep.config()["synthesis_blocks"] == [1, 2] and "synthesis_blocks" not in source.config()
    assert "synthesis_blocks" not in HyperpriorModel(12, 16, lams, blocks=2, synthesis_blocks=(2, 2)).config()
    seen = []
    deep.g_s_blocks[1][1].register_forward_hook(lambda mod, inp, out: seen.append(tuple(out.shape)))
    x = torch.rand(2, 3, 64, 128)
    q = torch.tensor([0, 2])
    outs = [model(x, q, generator=torch.Generator().manual_seed(3)) for model in (source, deep)]
    assert seen == [(2, 12, 16, 32)]                                         # 1/4 of 64 × 128
    for key in ("x_hat", "bits_y", "bits_z"):
        assert torch.equal(outs[0][key], outs[1][key]), key
    deep.loss(x, q)["loss"].backward()
    assert deep.g_s_blocks[1][1].net[-1].weight.grad.abs().sum() > 0


def test_a_model_file_keeps_the_synthesis_block_counts(tmp_path):
    """An exported model with its own synthesis counts loads with them (config and modules), and the
    decoder id tells it apart from the same weights without the appended block."""
    from chansim.ntc.io import load_model, save_model

    torch.manual_seed(6)
    deep = HyperpriorModel(12, 16, (0.001, 0.01), blocks=1, synthesis_blocks=(1, 2))
    mid = save_model(deep, tmp_path / "deep.pt", storage="mixed")
    loaded, _, loaded_id = load_model(tmp_path / "deep.pt")
    assert loaded_id == mid and loaded.synthesis_blocks == (1, 2) and loaded.config() == deep.config()
    assert [len(group) for group in loaded.g_s_blocks] == [1, 2] and [len(g) for g in loaded.g_a_blocks] == [1, 1]
    shallow = HyperpriorModel(12, 16, (0.001, 0.01), blocks=1)
    shallow.load_state_dict(deep.state_dict(), strict=False)
    assert save_model(shallow, tmp_path / "shallow.pt", storage="mixed") != mid


@pytest.mark.parametrize("bad", [-1, 1.5])
def test_bad_block_counts_are_refused(bad):
    with pytest.raises(ValueError, match="blocks"):
        HyperpriorModel(12, 16, (0.01,), blocks=bad)
    with pytest.raises(ValueError, match="synthesis_blocks"):
        HyperpriorModel(12, 16, (0.01,), synthesis_blocks=(1, bad))
    with pytest.raises(ValueError, match="synthesis_blocks"):
        HyperpriorModel(12, 16, (0.01,), synthesis_blocks=(1,))
