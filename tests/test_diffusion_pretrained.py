"""The default models shipped in the package: loadable offline, described truthfully by their cards."""

import json

import pytest

torch = pytest.importorskip("torch")

from chansim.codecs import UQDM, DiffC  # noqa: E402
from chansim.codecs._pretrained import models_dir  # noqa: E402
from chansim.diffusion.gaussian import alpha_sigma  # noqa: E402
from chansim.diffusion.io import file_sha256  # noqa: E402

CODECS = [(UQDM, "uqdm_default", "uqdm"), (DiffC, "diffc_default", "gaussian")]


@pytest.fixture(scope="module", params=CODECS, ids=["uqdm", "diffc"])
def shipped(request):
    cls, name, kind = request.param
    return cls.pretrained(), name, kind


def test_shipped_files_and_card(shipped):
    codec, name, kind = shipped
    path = models_dir() / f"{name}.pt"
    card = json.loads(path.with_suffix(".json").read_text())
    assert path.stat().st_size <= 5 * 1024 * 1024
    assert card["file_sha256"] == file_sha256(path)
    assert card["model_id"] == codec.model_id and codec.card == card
    assert card["config"] == codec.model.config() and card["config"]["kind"] == kind
    assert card["parameters"] == sum(p.numel() for p in codec.model.parameters())
    for field in ("training_data", "steps", "wall_time_s", "heldout_bits_per_dim", "status", "machine"):
        assert card[field], field
    assert path.with_suffix(".md").is_file()


def test_uqdm_schedule_and_steps():
    codec = UQDM.pretrained()
    g = codec.gammas()
    assert codec.steps == 4 and len(g) == 5
    assert g[0] == pytest.approx(6.0) and -14.0 < g[-1] < -10.0  # γ(1) fixed, γ(0) learned from −12.3
    assert all(a > b for a, b in zip(g, g[1:]))


def test_shipped_models_are_trained(shipped):
    # An untrained (zero-output) net scores ≈ 9.7 bits/dim on the held-out crops; both models must be far below.
    codec, _, _ = shipped
    assert codec.card["heldout_bits_per_dim"]["total"] < 9.0


def test_shipped_diffc_denoiser_beats_trivial_estimators(shared_data):
    # At γ = −3.15 (noise sd ≈ 26 pixel levels) the trained denoiser must beat both z/α (MSE = e^γ) and the
    # best constant (each crop's mean) by a wide margin on held-out Kodak crops.
    from chansim.diffusion.likelihood import to_unit
    from chansim.train.data import kodak_heldout

    codec = DiffC.pretrained()
    x = to_unit(kodak_heldout(64, root=shared_data)[:4])
    g = torch.tensor(-3.15)
    a, s = alpha_sigma(g)
    z = a * x + s * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        x_hat, _ = codec.model.denoise(z, g)
    mse = float((x_hat - x).square().mean())
    const = float((x - x.mean(dim=(2, 3), keepdim=True)).square().mean())
    assert mse < 0.5 * min(float(g.exp()), const), (mse, float(g.exp()), const)


def test_card_heldout_bits_per_dim_reproduce(shared_data, shipped):
    # The card's per-image numbers are recomputed from the shipped weights for the first batch of 4 crops
    # (same crops, same noise seed; the batch's randomness does not depend on later batches).
    from chansim.train.data import kodak_heldout
    from chansim.train.loop import evaluate_per_image

    codec, _, _ = shipped
    res = evaluate_per_image(codec.model, kodak_heldout(128, root=shared_data)[:4])
    card = codec.card["heldout_bits_per_dim_per_image"]
    assert len(card) == 24
    assert res["total"].tolist() == pytest.approx(card[:4], abs=2e-4)


def test_missing_or_mismatched_model_names():
    with pytest.raises(FileNotFoundError):
        UQDM.pretrained("no_such_model")
    with pytest.raises(ValueError):
        UQDM.pretrained("diffc_default")
