"""Fused DiffC / UQDM step kernels: Triton (CPU interpreter) vs the PyTorch references, bit for bit,
and the references vs the unfused formulas of chansim.diffusion."""

import math
import os

# Must precede the first triton import: @triton.jit reads it when the kernel module is imported.
os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402

torch = pytest.importorskip("torch")

from chansim.diffusion import gaussian as G  # noqa: E402
from chansim.codecs import diffc_channel, uqdm_step  # noqa: E402
from chansim.diffusion import steps  # noqa: E402  (deprecated aliases, tested below)
from chansim.diffusion import uqdm as U  # noqa: E402
from chansim.kernels import diffusion_steps as K  # noqa: E402

needs_triton = pytest.mark.skipif(not K.HAVE_TRITON, reason="triton is not installed")


def _bits(t):
    return t.view(torch.int32) if t.dtype == torch.float32 else t


def _assert_bit_equal(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.dtype == y.dtype and x.shape == y.shape
        assert torch.equal(_bits(x), _bits(y))


def _inputs(n_shape, seed, spread=1.0):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n_shape, generator=g) * spread
    eps = torch.randn(n_shape, generator=g)
    x = torch.rand(n_shape, generator=g) * 2 - 1
    return g, z, eps, x


STEPS = [(-7.725, -3.15), (1.425, 6.0), (-12.3, -7.725)]
SHAPES = [(1, 3, 7, 11), (1, 3, 24, 45)]  # not multiples of BLOCK; the second needs 4 programs


@needs_triton
@pytest.mark.parametrize("gs,gt", STEPS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("clip", [False, True])
def test_diffc_kernels_bit_identical_to_reference(gs, gt, shape, clip):
    g, z, eps, x = _inputs(shape, 1, spread=3.0)
    coefs = diffc_channel.coefficients(G.step_coefficients(gs, gt))
    _assert_bit_equal(K.diffc_encode(z, eps, x, coefs, clip, backend="triton"),
                      K.diffc_encode_ref(z, eps, x, coefs, clip))
    xi = torch.randn(shape, generator=g)
    _assert_bit_equal(K.diffc_decode(z, eps, xi, coefs, clip, backend="triton"),
                      K.diffc_decode_ref(z, eps, xi, coefs, clip))


@needs_triton
@pytest.mark.parametrize("gs,gt", STEPS[:2])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("clip", [False, True])
def test_uqdm_kernels_bit_identical_to_reference(gs, gt, shape, clip):
    g, z, eps, x = _inputs(shape, 2, spread=2.0)
    f = torch.exp(torch.randn(shape, generator=g) * 2)  # scale factors over several table decades
    u = torch.rand(shape, generator=g) - 0.5
    coefs = uqdm_step.coefficients(G.step_coefficients(gs, gt))
    bounds = uqdm_step.scale_boundaries()
    enc = K.uqdm_encode(z, eps, f, x, u, coefs, bounds, clip, backend="triton")
    ref = K.uqdm_encode_ref(z, eps, f, x, u, coefs, bounds, clip)
    _assert_bit_equal(enc, ref)
    assert enc[2].dtype == torch.int32 and enc[3].dtype == torch.int32
    assert len(set(enc[3].flatten().tolist())) > 5  # the scale inputs really cover many levels
    dec = K.uqdm_decode(z, eps, f, enc[2], u, coefs, bounds, clip, backend="triton")
    _assert_bit_equal(dec, K.uqdm_decode_ref(z, eps, f, enc[2], u, coefs, bounds, clip))
    # The receiver rebuilds exactly the sender's z_s from k.
    assert torch.equal(_bits(dec[3]), _bits(enc[4]))


@needs_triton
def test_kernels_reject_bad_inputs():
    z = torch.zeros(4)
    coefs = diffc_channel.coefficients(G.step_coefficients(-1.0, 0.0))
    with pytest.raises(ValueError):
        K.diffc_encode(z, z.double(), z, coefs, backend="triton")
    with pytest.raises(ValueError):
        K.diffc_encode(z, torch.zeros(5), z, coefs, backend="triton")
    with pytest.raises(ValueError):
        K.diffc_encode(z, z, z, coefs[:4])


def test_auto_backend_uses_the_reference_on_cpu():
    _, z, eps, x = _inputs((1, 3, 4, 4), 3)
    coefs = diffc_channel.coefficients(G.step_coefficients(-2.0, 1.0))
    _assert_bit_equal(K.diffc_encode(z, eps, x, coefs), K.diffc_encode_ref(z, eps, x, coefs))
    with pytest.raises(ValueError):
        K.diffc_encode(z, eps, x, coefs, backend="cuda")


@pytest.mark.parametrize("gs,gt", STEPS)
def test_diffc_reference_matches_unfused_formulas(gs, gt):
    # Tolerance: float32 step vs the same quantities in float64 (relative 1e-5 of the magnitudes involved).
    _, z, eps, x = _inputs((2, 3, 8, 8), 4)
    c = G.step_coefficients(gs, gt)
    x_hat, mu_p, mu_q, m, kl = K.diffc_encode_ref(z, eps, x, diffc_channel.coefficients(c))
    zd, ed, xd = z.double(), eps.double(), x.double()
    xh64 = G.x_from_eps(zd, ed, gt)
    assert torch.allclose(x_hat.double(), xh64, rtol=1e-5, atol=1e-5 * float(xh64.abs().max()))
    mp64, mq64 = G.posterior_mean(zd, xh64, gs, gt), G.posterior_mean(zd, xd, gs, gt)
    assert torch.allclose(mu_q.double(), mq64, rtol=1e-5, atol=1e-6)
    assert torch.allclose(mu_p.double(), mp64, rtol=1e-5, atol=1e-6)
    # KL per coordinate: Σ ½ m² equals ½ (SNR(s) − SNR(t)) ‖x − x̂‖².
    kl64 = G.kl_step(xd, x_hat.double(), gs, gt)
    assert torch.allclose(kl.double().flatten(1).sum(1), kl64, rtol=1e-3)
    assert torch.allclose(m.double(), (mu_q.double() - mu_p.double()) / c.beta, rtol=1e-6, atol=1e-6)


def test_uqdm_reference_matches_unfused_formulas():
    gs, gt = -7.725, -3.15
    g, z, eps, x = _inputs((2, 3, 8, 8), 5)
    f = torch.rand((2, 3, 8, 8), generator=g) + 0.5
    u = torch.rand((2, 3, 8, 8), generator=g) - 0.5
    c = G.step_coefficients(gs, gt)
    x_hat, mu_p, k, idx, z_s = K.uqdm_encode_ref(z, eps, f, x, u, uqdm_step.coefficients(c),
                                                uqdm_step.scale_boundaries(), clip=True)
    width = math.sqrt(12) * c.beta
    assert torch.equal(x_hat, x_hat.clamp(-1, 1))
    mu_q = G.posterior_mean(z.double(), x.double(), gs, gt)
    # z_s − μ_Q is the dithered-quantisation error: inside ±Δ/2 (up to float32 rounding).
    assert float((z_s.double() - mu_q).abs().max()) <= width / 2 * (1 + 1e-5) + 1e-6
    scale = U.logistic_scale(f.double(), gs, gt)
    assert torch.equal(idx, uqdm_step.scale_index(scale.float(), torch.tensor(width, dtype=torch.float32)))
    # The §3 rule written out: k = rint((μ_Q − μ_p)/Δ + u) in float32, ties to even.
    w32 = torch.tensor(width, dtype=torch.float32)
    assert torch.equal(k.double(), torch.round((mu_q.float() - mu_p) / w32 + u).double())


def test_step_helpers_run_the_network():
    from chansim.diffusion.models import UQDMModel
    from chansim.diffusion.schedules import LinearSchedule
    from chansim.diffusion.unet import UNet

    torch.manual_seed(0)
    m = UQDMModel(UNet(out_channels=6, widths=(8, 16), groups=4), LinearSchedule(-12.3, 6.0), steps=4).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    z, x = torch.randn(1, 3, 9, 9), torch.rand(1, 3, 9, 9) * 2 - 1
    u = torch.rand(1, 3, 9, 9) - 0.5
    with pytest.warns(DeprecationWarning):
        x_hat, mu_p, k, idx, z_s = steps.uqdm_encode_step(m, z, x, u, 1.425, -3.15)
    # μ_p from the fused path agrees with the model's own reverse() to float32 rounding.
    mu_ref, scale_ref, width_ref, _ = m.reverse(z, torch.tensor(1.425), torch.tensor(-3.15))
    assert torch.allclose(mu_p, mu_ref, atol=1e-5)
    with pytest.warns(DeprecationWarning):
        dec = steps.uqdm_decode_step(m, z, k, u, 1.425, -3.15)
    assert torch.equal(dec[3], z_s) and torch.equal(dec[2], idx)


def test_kernel_module_works_without_triton():
    # Simulate an install without triton: the module imports, reports it, and the CPU path still runs.
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['triton'] = None\n"
        "import torch\n"
        "from chansim.kernels import diffusion_steps as K\n"
        "assert not K.HAVE_TRITON\n"
        "z = torch.zeros(5); c = torch.tensor([1.0, 0.5, 0.9, 0.1, 0.3])\n"
        "out = K.diffc_encode(z, z, torch.ones(5), c)\n"
        "assert abs(float(out[3][0]) - 1/3) < 1e-6\n"
        "try:\n"
        "    K.diffc_encode(z, z, z, c, backend='triton'); raise SystemExit('no error')\n"
        "except RuntimeError:\n"
        "    pass\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


# Values whose dithered index (y = (μ_q − μ_p)/Δ + u) is a tie, next to a tie, or beyond 2^22.
TIES = [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5, 0.49999997, -0.49999997, 1.4999999, 4194304.5, 4194305.5,
        8388609.0, -8388609.0, 0.0, 1e-30]


@pytest.mark.parametrize("backend", ["torch", pytest.param("triton", marks=needs_triton)])
def test_uqdm_index_rounds_half_to_even_like_dq(backend):
    # Coefficients [α_t, σ_t, a, b, Δ, c] = [1, 0, 0, 1, 1, 1] make x̂ = z = 0, μ_p = 0, μ_q = x, so
    # with u = 0 the kernel rounds x itself: it must agree with np.rint (the rule of chansim.dq,
    # docs/format.md §3) and with chansim.diffusion.uqdm.dither_index, ties included.
    import numpy as np

    x = torch.tensor(TIES, dtype=torch.float32).reshape(1, 1, 1, -1)
    zero = torch.zeros_like(x)
    coefs = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 1.0], dtype=torch.float32)
    _, mu_p, k, _, z_s = K.uqdm_encode(zero, zero, torch.ones_like(x), x, zero, coefs, uqdm_step.scale_boundaries(),
                                       clip=False, backend=backend)
    expect = np.rint(x.numpy().astype(np.float64)).astype(np.int32)
    assert k.numpy().tolist() == expect.tolist()
    with pytest.warns(DeprecationWarning):
        assert torch.equal(U.dither_index(x, mu_p, 1.0, zero).to(torch.int32), k)
    assert torch.equal(z_s, k.to(torch.float32))
