"""chansim.ntc.layers.GDN against its closed form, and the gradient of its zero-initialised terms."""

import numpy as np
import pytest
import torch

from chansim.ntc.layers import GDN


def _closed_form(x, beta, gamma, inverse):
    """y_i = x_i / sqrt(β_i + Σ_j γ_ij x_j²) (× for the inverse), per pixel, in NumPy float64."""
    x = x.astype(np.float64)
    norm = np.abs(beta)[None, :, None, None] + 1e-6 + np.einsum("ij,bjhw->bihw", np.abs(gamma), x * x)
    return x * np.sqrt(norm) if inverse else x / np.sqrt(norm)


@pytest.mark.parametrize("inverse", [False, True])
def test_gdn_is_the_divisive_normalisation_formula(inverse):
    """Parameters of either sign (their magnitudes are used) and a dense γ: the layer equals the formula."""
    g = torch.Generator().manual_seed(3)
    layer = GDN(5, inverse).double()
    with torch.no_grad():
        layer.beta.copy_(torch.randn(5, generator=g, dtype=torch.float64))
        layer.gamma.copy_(0.3 * torch.randn(5, 5, generator=g, dtype=torch.float64))
    x = torch.randn(2, 5, 4, 3, generator=g, dtype=torch.float64)
    want = _closed_form(x.numpy(), layer.beta.detach().numpy(), layer.gamma.detach().numpy(), inverse)
    np.testing.assert_allclose(layer(x).detach().numpy(), want, rtol=1e-12)


@pytest.mark.parametrize("inverse", [False, True])
def test_zero_initialised_cross_channel_terms_get_the_one_sided_derivative(inverse):
    """At initialisation every off-diagonal γ is exactly 0. Its gradient must be the derivative of the
    loss as γ_ij grows from 0 (a forward difference of the formula), not 0 — with a zero gradient the
    cross-channel terms would never train."""
    g = torch.Generator().manual_seed(5)
    layer = GDN(4, inverse).double()
    x = torch.randn(1, 4, 6, 6, generator=g, dtype=torch.float64)
    w = torch.randn(1, 4, 6, 6, generator=g, dtype=torch.float64)
    (layer(x) * w).sum().backward()
    beta, gamma = layer.beta.detach().numpy(), layer.gamma.detach().numpy()
    assert np.all(gamma[~np.eye(4, dtype=bool)] == 0)
    h = 1e-7
    for i, j in [(0, 1), (2, 3), (3, 0), (1, 1)]:
        bumped = gamma.copy()
        bumped[i, j] += h
        diff = (np.sum(_closed_form(x.numpy(), beta, bumped, inverse) * w.numpy())
                - np.sum(_closed_form(x.numpy(), beta, gamma, inverse) * w.numpy())) / h
        grad = layer.gamma.grad[i, j].item()
        assert grad != 0 and abs(grad - diff) <= 1e-5 * max(1.0, abs(diff)), (i, j, grad, diff)
