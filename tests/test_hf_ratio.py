"""chansim.metrics.hf_energy_ratio against its specification (docstring): the energy of the
radially averaged, Hann-windowed power spectrum over 0.25 ≤ f < 0.5 cycles/pixel, reconstruction
over original.

The statistical checks use independent white-noise images with fixed seeds. Their tolerances
come from the spread of the estimator, measured over 40 seeds at 256×256: one image's ratio has a
relative standard deviation of 1.9 % (two independent noise images) and 1.5 % (a blurred image over
its own input); the tests average 8 images, so the bounds below are about 6 standard deviations.
"""

from __future__ import annotations

import numpy as np
import pytest

from chansim.metrics import HF_MIN_SIDE, hf_energy_ratio

N = 256
IMAGES = 8


def _noise(seed, std, n=N):
    return np.random.default_rng(seed).normal(0.0, std, (n, n))


def _box3(x):
    """3×3 box blur with wrap-around borders: exactly the multiplier H(f) on the DFT grid."""
    return sum(np.roll(np.roll(x, i, 0), j, 1) for i in (-1, 0, 1) for j in (-1, 0, 1)) / 9.0


def _box3_expected_ratio(n, cutoff=0.25):
    """E[ratio] for white noise through the 3×3 box blur: |H(f)|² radially averaged over the same
    rings as the metric (one grid step wide, up to Nyquist) and integrated over f ≥ cutoff, over
    the same integral of a flat spectrum. H(fx, fy) = (1 + 2cos 2πfx)/3 · (1 + 2cos 2πfy)/3."""
    fy, fx = np.fft.fftfreq(n)[:, None], np.fft.fftfreq(n)[None, :]
    h2 = ((1 + 2 * np.cos(2 * np.pi * fx)) / 3 * (1 + 2 * np.cos(2 * np.pi * fy)) / 3) ** 2
    ring = np.floor(np.hypot(fx, fy) * n).astype(int)
    inside = ring < n // 2
    radial = np.bincount(ring[inside], h2[inside], n // 2) / np.bincount(ring[inside], minlength=n // 2)
    return float(radial[np.arange(n // 2) / n >= cutoff].mean())


def test_identical_images_give_exactly_one():
    img = np.random.default_rng(0).integers(0, 256, (40, 56, 3), dtype=np.uint8)
    assert hf_energy_ratio(img, img) == 1.0
    assert hf_energy_ratio(img[..., 0], img[..., 0]) == 1.0


def test_white_noise_ratio_is_the_variance_ratio():
    s1, s2 = 4.0, 10.0
    ratios = [hf_energy_ratio(_noise(2 * k + 1, s2), _noise(2 * k, s1)) for k in range(IMAGES)]
    assert np.mean(ratios) == pytest.approx((s2 / s1) ** 2, rel=0.04)


def test_box_blur_matches_its_transfer_function():
    expected = _box3_expected_ratio(N)
    assert 0.02 < expected < 0.05  # the blur keeps a few per cent of the band (H = 0 at f = 1/3)
    ratios = [hf_energy_ratio(_box3(x), x) for x in (_noise(k, 20.0) for k in range(IMAGES))]
    assert np.mean(ratios) == pytest.approx(expected, rel=0.03)


def test_low_frequency_sinusoid_leaves_the_ratio_unchanged():
    # 0.06 cycles/pixel, not a whole number of periods across the image: without the window its
    # wrap-around jump would put energy into the band; with it the ratio stays at 1.
    x = _noise(3, 5.0)
    yy, xx = np.mgrid[0:N, 0:N]
    wave = 40.0 * np.sin(2 * np.pi * (0.0537 * xx + 0.0311 * yy) + 0.3)
    assert hf_energy_ratio(x + wave, x) == pytest.approx(1.0, abs=0.01)
    # ... and on uint8 images, where rounding adds its own (white, tiny) noise.
    base = np.clip(np.rint(128 + x), 0, 255)
    assert hf_energy_ratio(np.clip(np.rint(base + wave), 0, 255).astype(np.uint8), base.astype(np.uint8)) == \
        pytest.approx(1.0, abs=0.02)


def test_a_photo_blurred_loses_detail_and_noised_gains_it(shared_data):
    from PIL import Image, ImageFilter

    path = shared_data / "kodak" / "kodim23.png"
    if not path.exists():
        pytest.skip(f"{path} not found")
    with Image.open(path) as im:
        photo = im.convert("RGB")
    img = np.asarray(photo)
    blurred = np.asarray(photo.filter(ImageFilter.GaussianBlur(1.0)))
    assert hf_energy_ratio(blurred, img) < 0.7
    noisy = np.clip(np.rint(img + np.random.default_rng(0).normal(0, 6.0, img.shape)), 0, 255).astype(np.uint8)
    assert hf_energy_ratio(noisy, img) > 1.0


def test_bad_input_is_refused():
    a = np.zeros((32, 32, 3), np.uint8)
    with pytest.raises(ValueError, match="shape"):
        hf_energy_ratio(a, a[:, :16])
    small = np.random.default_rng(0).integers(0, 256, (HF_MIN_SIDE - 1, 40), dtype=np.uint8)
    with pytest.raises(ValueError, match="16"):
        hf_energy_ratio(small, small)
    with pytest.raises(ValueError, match="no energy"):
        hf_energy_ratio(np.random.default_rng(1).integers(0, 256, a.shape, dtype=np.uint8), a)
    with pytest.raises(ValueError, match="cutoff"):
        hf_energy_ratio(a, a, cutoff=0.5)
