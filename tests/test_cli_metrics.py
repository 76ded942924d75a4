"""chansim.metrics: MS-SSIM against pytorch_msssim, SSIM against scikit-image, on the same inputs."""

import numpy as np
import pytest

from chansim.metrics import MS_SSIM_MIN_SIDE, ms_ssim, psnr, ssim


def _pair(h, w, noise, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    a = np.clip(np.stack([x, y, x + y], -1) * 0.7 + 40 * np.sin(x / 7.0)[..., None] + rng.integers(0, 30, (h, w, 3)),
                0, 255).astype(np.uint8)
    b = np.clip(a + rng.normal(0, noise, a.shape).round(), 0, 255).astype(np.uint8)
    return a, b


# Sides that are multiples of 16, where every implementation's pooling agrees (Kodak's case).
@pytest.mark.parametrize("h,w,noise", [(176, 176, 8.0), (192, 256, 20.0), (240, 208, 3.0)])
def test_ms_ssim_matches_pytorch_msssim(h, w, noise):
    torch = pytest.importorskip("torch")
    ref = pytest.importorskip("pytorch_msssim")
    a, b = _pair(h, w, noise)
    t = [torch.from_numpy(v.transpose(2, 0, 1)[None].astype(np.float64)) for v in (a, b)]
    expected = float(ref.ms_ssim(*t, data_range=255))
    # pytorch_msssim builds its Gaussian window in float32: agreement to ~1e-6, not to the last bit.
    assert ms_ssim(a, b) == pytest.approx(expected, abs=1e-5)
    assert ssim(a, b) == pytest.approx(float(ref.ssim(*t, data_range=255)), abs=1e-5)
    # A change far smaller than any real codec difference is still resolved.
    assert abs(ms_ssim(a, b) - expected) < abs(ms_ssim(a, np.roll(b, 1, axis=1)) - expected)


def test_ssim_matches_scikit_image():
    sk = pytest.importorskip("skimage.metrics")
    a, b = _pair(64, 80, 15.0)
    expected = sk.structural_similarity(a, b, channel_axis=2, gaussian_weights=True, sigma=1.5,
                                        use_sample_covariance=False, data_range=255)
    assert ssim(a, b) == pytest.approx(expected, abs=1e-9)


def test_identity_order_and_bad_input():
    a, b = _pair(177, 181, 10.0)  # odd sides: the trailing row / column is dropped at each scale
    _, c = _pair(177, 181, 30.0)
    assert ms_ssim(a, a) == pytest.approx(1.0, abs=1e-12) and psnr(a, a) == float("inf")
    assert 0 < ms_ssim(a, c) < ms_ssim(a, b) < 1
    assert ms_ssim(a[..., 0], b[..., 0]) > 0  # greyscale
    with pytest.raises(ValueError, match="176"):
        ms_ssim(a[: MS_SSIM_MIN_SIDE - 1], b[: MS_SSIM_MIN_SIDE - 1])
    with pytest.raises(ValueError, match="shape"):
        ms_ssim(a, b[:-1])
