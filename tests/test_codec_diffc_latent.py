"""DiffC in latent mode: a tiny random diffusers VAE + UNet saved locally (no downloads)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

from chansim import FormatError  # noqa: E402
from chansim.codecs import DiffC, container  # noqa: E402


@pytest.fixture(scope="module")
def latent_codec(tmp_path_factory):
    d = tmp_path_factory.mktemp("ldm")
    torch.manual_seed(0)
    vae = diffusers.AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 8),
                                  norm_num_groups=4, down_block_types=("DownEncoderBlock2D",) * 2,
                                  up_block_types=("UpDecoderBlock2D",) * 2, scaling_factor=0.5)
    unet = diffusers.UNet2DModel(sample_size=16, in_channels=4, out_channels=4, layers_per_block=1,
                                 block_out_channels=(8, 16), norm_num_groups=4,
                                 down_block_types=("DownBlock2D", "DownBlock2D"),
                                 up_block_types=("UpBlock2D", "UpBlock2D"))
    sched = diffusers.DDIMScheduler(num_train_timesteps=1000)
    for name, m in (("unet", unet), ("vae", vae), ("scheduler", sched)):
        m.save_pretrained(d / name)
    return DiffC.from_diffusers(d, recon_steps=2)  # few network passes: the test is about bits, not quality


from images import pattern_image as _image  # noqa: E402


def test_latent_mode_roundtrip_prefixes_and_dimensions(latent_codec):
    codec = latent_codec
    assert codec.latent and codec._multiple() == 4
    img = _image(30, 37)
    q = min(4, codec.qualities[-1])
    with pytest.deprecated_call():
        enc = codec.encode(img, q, seed=3)
    # the diffusion runs on 4 × 8 × 10 latents (padded 32 × 40 image, VAE factor 2), not 3 × 32 × 40 pixels
    assert tuple(enc.z.shape) == (1, 4, 16, 20)
    for kind in ("mmse", "flow", "ancestral"):
        out = codec.decompress(enc.data, kind)
        assert out.shape == (30, 37, 3)
        assert np.array_equal(out, codec.reconstruct(enc.z, enc.gamma, 30, 37, 3, kind)), kind
    prog = list(codec.decompress_progressive(enc.data, "mmse"))
    assert len(prog) == q + 1 and [b for b, _ in prog] == sorted(b for b, _ in prog)
    assert codec.compress(img, 2, seed=3) == container.truncate(enc.data, 2)
    with pytest.raises(FormatError, match="model mismatch"):
        DiffC.pretrained().decompress(enc.data)
