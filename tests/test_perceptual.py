"""chansim.perceptual (LPIPS, DISTS, FID, KID) and ``chansim eval --perceptual``.

No pretrained weights exist on this machine or CI, so no test claims a perceptual number of a
real network. The networks are built by the loader's own constructors
(:mod:`chansim._perceptual_nets`) with random weights, saved under the published files' names in
a temporary directory and loaded through the public path (:meth:`Perceptual.from_dir`); the tests
check what holds for any weights: zero distance of an image to itself, symmetry, FID ≈ 0 of a set
against itself, the exact FID / KID identities of their definitions, agreement with torchmetrics'
implementations on the same weights, that nothing is downloaded, and the command-line wiring.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from chansim import perceptual  # noqa: E402
from chansim import _perceptual_nets as nets  # noqa: E402
from chansim.perceptual import MissingWeights, Perceptual, fid, kid, locate  # noqa: E402

ALL = ("lpips", "dists", "fid", "kid")


def _randomise(module: torch.nn.Module, gen: torch.Generator) -> None:
    """He-normal convolutions (activations keep their scale through the depth, unlike PyTorch's
    default init, under which deep VGG features fade to ~0 and every DISTS would be ~0) and
    non-trivial batch-norm statistics."""
    for m in module.modules():
        if isinstance(m, torch.nn.Conv2d):
            fan_in = m.weight[0].numel()
            m.weight.data = torch.randn(m.weight.shape, generator=gen) * (2.0 / fan_in) ** 0.5
            if m.bias is not None:
                m.bias.data = torch.randn(m.bias.shape, generator=gen) * 0.01
        elif isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.data = torch.randn(m.running_mean.shape, generator=gen) * 0.1
            m.running_var.data = torch.rand(m.running_var.shape, generator=gen) + 0.5
            m.weight.data = torch.rand(m.weight.shape, generator=gen) + 0.5
            m.bias.data = torch.randn(m.bias.shape, generator=gen) * 0.1


@pytest.fixture(scope="session")
def weights_dir(tmp_path_factory):
    """Random weights of every network, in the files and layouts :func:`locate` expects."""
    d = tmp_path_factory.mktemp("perceptual-weights")
    gen = torch.Generator().manual_seed(0)
    for name, build in (("alexnet-owt-7be5be79.pth", nets.alexnet), ("vgg16-397923af.pth", nets.vgg16),
                        ("weights-inception-2015-12-05-6726825d.pth", nets.FIDInceptionV3)):
        net = build()
        _randomise(net, gen)
        state = net.state_dict()
        if name.startswith("weights-inception"):  # the published file also holds the classifier
            state["fc.weight"], state["fc.bias"] = torch.zeros(1008, 2048), torch.zeros(1008)
        torch.save(state, d / name)
    # The learned heads are non-negative in the published files (a distance must not go negative).
    torch.save({f"lin{k}.model.1.weight": torch.rand((1, c, 1, 1), generator=gen)
                for k, c in enumerate(nets.LPIPS.CHANNELS)}, d / "lpips_alex.pth")
    n = sum(nets.DISTS.CHANNELS)
    torch.save({"alpha": torch.rand((1, n, 1, 1), generator=gen), "beta": torch.rand((1, n, 1, 1), generator=gen)},
               d / "dists_weights.pt")
    return d


@pytest.fixture
def perc(weights_dir):
    return Perceptual.from_dir(ALL, weights_dir, patch=32)


def _images(n, h=64, w=64, seed=0):
    """Smooth colour fields with texture (not white noise, so a shift in brightness or a blur
    changes the features in a structured way)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / 16.0
    out = []
    for _ in range(n):
        f = rng.uniform(0.3, 1.5, 3)
        img = np.stack([128 + 60 * np.sin(f[c] * xx + rng.uniform(0, 6) + f[(c + 1) % 3] * yy) for c in range(3)], -1)
        out.append(np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8))
    return out


# ---- weights: found locally or refused --------------------------------------------------------


def test_missing_weights_are_named_and_nothing_else_is_searched(tmp_path, weights_dir, monkeypatch):
    with pytest.raises(MissingWeights, match="alexnet-owt-7be5be79.pth") as e:
        locate(["lpips"], tmp_path)
    assert str(tmp_path) in str(e.value) and "nothing is downloaded" in str(e.value)
    with pytest.raises(MissingWeights, match="weights-inception-2015-12-05-6726825d.pth"):
        locate(["kid"], tmp_path)
    with pytest.raises(MissingWeights, match="no such directory"):
        locate(["fid"], tmp_path / "nowhere")
    with pytest.raises(ValueError, match="unknown perceptual metric 'psnr'"):
        locate(["psnr"], weights_dir)
    # A TORCH_HOME layout works as the directory, and is the default (PyTorch's hub cache).
    home = tmp_path / "torch-home"
    (home / "hub" / "checkpoints").mkdir(parents=True)
    (home / "hub" / "checkpoints" / "pt_inception-2015-12-05-6726825d.pth").write_bytes(b"x")
    assert locate(["fid"], home)["inception"].endswith("pt_inception-2015-12-05-6726825d.pth")
    monkeypatch.setenv("TORCH_HOME", str(home))
    assert locate(["fid", "kid"]) == {"inception": str(home / "hub" / "checkpoints" /
                                                       "pt_inception-2015-12-05-6726825d.pth")}


def test_a_file_of_another_network_is_refused(weights_dir, tmp_path):
    for f in weights_dir.iterdir():
        (tmp_path / f.name).symlink_to(f)
    (tmp_path / "vgg16-397923af.pth").unlink()
    (tmp_path / "vgg16-397923af.pth").symlink_to(weights_dir / "alexnet-owt-7be5be79.pth")
    p = Perceptual.from_dir(["dists"], tmp_path)
    with pytest.raises(ValueError, match="not a torchvision VGG16 checkpoint"):
        p.scorer(_images(1)[0])


def test_nothing_is_downloaded(weights_dir, monkeypatch):
    import urllib.request

    import torch.hub

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args[:1]}")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(perceptual, "_nets", {})  # load every network afresh, under the patches
    p = Perceptual.from_dir(ALL, weights_dir, patch=32)
    a, b = _images(2)
    assert set(p.scorer(a)(b)) == {"lpips", "dists"}
    assert p.features(a).shape == (4, 2048)


# ---- per-image metrics -------------------------------------------------------------------------


def test_lpips_and_dists_are_distances(perc):
    a, b = _images(2)
    blurred = ((a.astype(np.float32) + np.roll(a, 1, 0) + np.roll(a, 1, 1) + np.roll(a, 1, (0, 1))) / 4).astype(np.uint8)
    to_a = perc.scorer(a)
    same = to_a(a)
    assert same["lpips"] == 0.0
    assert abs(same["dists"]) < 1e-6  # 1 − (Σα·1 + Σβ·1)/(Σα + Σβ), up to float32 rounding
    for other in (b, blurred):
        d = to_a(other)
        back = perc.scorer(other)(a)
        assert d["lpips"] > 0 and d["dists"] > 0
        assert back["lpips"] == pytest.approx(d["lpips"], rel=1e-5)  # both are symmetric in their arguments
        assert back["dists"] == pytest.approx(d["dists"], rel=1e-4, abs=1e-7)


def test_matches_torchmetrics_on_the_same_weights(weights_dir, monkeypatch):
    """torchmetrics' LPIPS, DISTS, FID and KID with the same weights agree. Their backbones come
    from torchvision, absent here: its constructors are replaced by ours (same layout)."""
    pytest.importorskip("torchmetrics")
    tm_lpips = pytest.importorskip("torchmetrics.functional.image.lpips")
    tm_dists = pytest.importorskip("torchmetrics.functional.image.dists")
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    if not all(hasattr(m, a) for m, a in ((tm_lpips, "_get_tv_model_features"), (tm_lpips, "_LPIPS"),
                                          (tm_dists, "DISTSNetwork"), (tm_dists, "_PATH_WEIGHT_DISTS"))):
        pytest.skip("this torchmetrics is laid out differently")
    files = locate(["lpips", "dists"], weights_dir)
    ours_l, ours_d = nets.load("lpips", files), nets.load("dists", files)

    def backbone(path, build):
        net = build()
        nets.load_matching(net, path, "test")
        return net

    monkeypatch.setattr(tm_lpips, "_TORCHVISION_AVAILABLE", True)
    monkeypatch.setattr(tm_lpips, "_get_tv_model_features",
                        lambda name, pretrained=False: backbone(files["alexnet"], nets.alexnet).features)
    ref_l = tm_lpips._LPIPS(pretrained=True, net="alex", model_path=files["lpips_alex"])
    monkeypatch.setattr(tm_dists, "_TORCHVISION_AVAILABLE", True)
    monkeypatch.setattr(tm_dists, "VGG16_Weights", type("W", (), {"DEFAULT": None}), raising=False)
    monkeypatch.setattr(tm_dists, "vgg16", lambda weights=None: backbone(files["vgg16"], nets.vgg16), raising=False)
    monkeypatch.setattr(tm_dists, "_PATH_WEIGHT_DISTS", weights_dir / "dists_weights.pt")
    ref_d = tm_dists.DISTSNetwork()
    x = torch.rand(2, 3, 64, 72, generator=torch.Generator().manual_seed(1))
    y = (x + 0.2 * torch.randn(x.shape, generator=torch.Generator().manual_seed(2))).clamp(0, 1)
    with torch.inference_mode():
        assert ours_l(2 * x - 1, 2 * y - 1).numpy() == pytest.approx(ref_l(2 * x - 1, 2 * y - 1).flatten().numpy(),
                                                                      rel=1e-4)
        assert ours_d(x, y).numpy() == pytest.approx(ref_d(x, y).flatten().numpy(), rel=1e-4)

    class Given(torch.nn.Module):  # the features themselves, as torchmetrics' custom feature extractor
        num_features = 32

        def forward(self, f):
            return f

    rng = np.random.default_rng(0)
    for n_real, n_fake in ((20, 30), (80, 60)):  # fewer and more samples than dimensions
        real, fake = rng.normal(size=(n_real, 32)), rng.normal(0.3, 1.2, size=(n_fake, 32))
        m = FrechetInceptionDistance(feature=Given())
        m.update(torch.from_numpy(real), real=True)
        m.update(torch.from_numpy(fake), real=False)
        assert fid(real, fake) == pytest.approx(float(m.compute()), rel=1e-6)
    real, fake = rng.normal(size=(40, 32)), rng.normal(0.3, 1.0, size=(40, 32))
    k = KernelInceptionDistance(feature=Given(), subset_size=40, subsets=2)
    k.update(torch.from_numpy(real), real=True)
    k.update(torch.from_numpy(fake), real=False)
    assert kid(real, fake) == pytest.approx(float(k.compute()[0]), rel=1e-9)


# ---- set-level metrics --------------------------------------------------------------------------


def test_fid_follows_its_definition():
    rng = np.random.default_rng(0)
    for n, d in ((30, 64), (200, 16)):  # singular covariances (n < d) and full-rank ones
        x = rng.normal(size=(n, d)) @ rng.normal(size=(d, d))
        trace = np.trace(np.cov(x, rowvar=False))
        assert abs(fid(x, x)) < 1e-9 * trace
        c = rng.normal(size=d)
        assert fid(x, x + c) == pytest.approx(float(c @ c), rel=1e-9, abs=1e-9 * trace)  # Σ unchanged by a shift
        # Scaling one set by s: ‖μ − sμ‖² + tr Σ (1 − s)².
        s = 1.7
        assert fid(x, s * x) == pytest.approx(float(((1 - s) * x.mean(0)) @ ((1 - s) * x.mean(0)) + trace * (1 - s) ** 2),
                                              rel=1e-9)
    with pytest.raises(ValueError, match="at least 2"):
        fid(np.zeros((1, 4)), np.zeros((5, 4)))


def test_kid_is_the_unbiased_polynomial_mmd():
    rng = np.random.default_rng(0)
    d, m = 16, 50
    x = rng.normal(size=(m, d))
    k = (x @ x.T / d + 1) ** 3
    # A set against itself: the estimator (off-diagonal means of k_xx and k_yy minus twice the
    # full mean of k_xy) is −(2/m)(mean of the diagonal − mean off the diagonal): near 0, O(1/m).
    off = (k.sum() - np.trace(k)) / (m * (m - 1))
    assert kid(x, x) == pytest.approx(-2 / m * (np.trace(k) / m - off), rel=1e-9)
    shifted = kid(x, x + 1.0)
    assert shifted > 20 * abs(kid(x, x))
    # Unbiased: over 200 independent pairs from one distribution the mean is 0 within 4 standard errors.
    vals = np.array([kid(rng.normal(size=(m, d)), rng.normal(size=(m, d))) for _ in range(200)])
    assert abs(vals.mean()) < 4 * vals.std() / np.sqrt(len(vals))
    # Larger sets: random subsets, reproducible.
    y = rng.normal(size=(120, d))
    assert kid(y, y + 0.5, subset_size=50, subsets=10) == kid(y, y + 0.5, subset_size=50, subsets=10)


def test_patches_tile_from_the_top_left():
    img = np.arange(5 * 7 * 3).reshape(5, 7, 3).astype(np.uint8)
    p = perceptual.patches(img, 2)
    assert p.shape == (6, 2, 2, 3)
    assert np.array_equal(p[4], img[2:4, 2:4])  # row 1, column 1 of the 2 × 3 grid
    assert perceptual.patches(img, 8).shape == (0, 8, 8, 3)


def test_fid_and_kid_of_image_patches(perc):
    imgs = _images(2, seed=3)
    real = np.concatenate([perc.features(i) for i in imgs])
    assert real.shape == (8, 2048) and np.isfinite(real).all()
    brighter = np.concatenate([perc.features(np.clip(i.astype(int) + 60, 0, 255).astype(np.uint8)) for i in imgs])
    fid_shift = fid(real, brighter)
    assert fid_shift > 0
    assert abs(fid(real, real)) < 1e-6 * fid_shift
    # KID of a set against itself: the unbiased estimator's −(2/m)(mean diagonal − mean off-diagonal
    # kernel value), within 2/m of the kernel's scale of 0. (Whether KID against the brighter set
    # is positive depends on the weights: 8 samples of an estimator of random sign, not tested.)
    m, k = len(real), (real.astype(np.float64) @ real.T.astype(np.float64) / 2048 + 1) ** 3
    off = (k.sum() - np.trace(k)) / (m * (m - 1))
    assert kid(real, real) == pytest.approx(-2 / m * (np.trace(k) / m - off), rel=1e-6)
    assert abs(kid(real, real)) <= 2 / m * np.trace(k) / m
    assert np.isfinite(kid(real, brighter))
    assert np.isnan(perc.set_metrics(real[:1], brighter)["fid"])  # one patch: undefined


# ---- chansim eval --perceptual -------------------------------------------------------------------


def _one_line_error(status, err, *needles):
    assert status == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in lines[0], lines[0]


def _image_dir(tmp_path, n=2):
    from PIL import Image

    d = tmp_path / "imgs"
    d.mkdir()
    imgs = {}
    for i, img in enumerate(_images(n, 64, 128, seed=7)):
        imgs[f"im{i}.png"] = img
        Image.fromarray(img).save(d / f"im{i}.png")
    return d, imgs


def test_eval_with_perceptual_metrics(tmp_path, cli_run, weights_dir):
    pytest.importorskip("distributed")
    d, imgs = _image_dir(tmp_path)
    out = tmp_path / "out"
    status, stdout, err = cli_run("eval", d, "--codec", "test_cli:PlaneCodec", "--out", out, "--qualities", "1,4",
                                  "--baselines", "", "--scheduler", "threads", "--workers", "1", "--crops", "0",
                                  "--perceptual", "kid,LPIPS,dists,fid", "--perceptual-weights", weights_dir,
                                  "--fid-patch", "64")
    assert status == 0, err
    doc = json.loads((out / "results.json").read_text())
    assert doc["meta"]["perceptual"]["metrics"] == list(ALL) and doc["meta"]["perceptual"]["fid_patch"] == 64
    p = Perceptual.from_dir(ALL, weights_dir, patch=64)
    from test_cli import PlaneCodec

    for r in doc["images"]:
        img = imgs[r["image"]]
        if r["quality"] == "4":  # lossless
            assert r["lpips"] == 0.0 and abs(r["dists"]) < 1e-6 and r["hf_ratio"] == 1.0
        else:
            dec = PlaneCodec().decompress(PlaneCodec().compress(img, 1))
            expect = p.scorer(img)(dec)
            assert r["lpips"] == pytest.approx(expect["lpips"], rel=1e-5) and r["lpips"] > 0
            assert r["dists"] == pytest.approx(expect["dists"], rel=1e-4) and r["dists"] > 0
    summary = {e["quality"]: e for e in doc["summary"]}
    assert {e["patches"] for e in summary.values()} == {4}  # 2 images × two 64×64 patches
    assert abs(summary["4"]["fid"]) < 1e-6 * summary["1"]["fid"]
    lossy = np.concatenate([p.features(PlaneCodec().decompress(PlaneCodec().compress(imgs[n], 1))) for n in sorted(imgs)])
    real = np.concatenate([p.features(imgs[n]) for n in sorted(imgs)])
    assert summary["1"]["fid"] == pytest.approx(fid(real, lossy), rel=1e-4)
    assert summary["1"]["kid"] == pytest.approx(kid(real, lossy), rel=1e-4, abs=1e-9)
    assert (out / "results.csv").read_text().splitlines()[0].endswith("hf_ratio,encode_s,decode_s,lpips,dists")
    assert (out / "summary.csv").read_text().splitlines()[0].endswith("lpips,dists,fid,kid,patches")
    assert "LPIPS" in stdout and "FID" in stdout
    # The features are in the journal: a resumed run recomputes nothing and reports the same.
    status, _, err = cli_run("eval", d, "--codec", "test_cli:PlaneCodec", "--out", out, "--qualities", "1,4",
                             "--baselines", "", "--scheduler", "threads", "--workers", "1", "--crops", "0",
                             "--perceptual", "lpips,dists,fid,kid", "--perceptual-weights", weights_dir,
                             "--fid-patch", "64", "--resume")
    assert status == 0, err
    again = json.loads((out / "results.json").read_text())
    assert again["meta"]["resumed_tasks"] == again["meta"]["tasks"] == 6  # 4 codec tasks, 2 originals
    assert [e["fid"] for e in again["summary"]] == [e["fid"] for e in doc["summary"]]


def test_eval_refuses_bad_perceptual_options_before_any_work(tmp_path, cli_run, weights_dir):
    pytest.importorskip("distributed")
    d, _ = _image_dir(tmp_path, 1)
    base = ("eval", d, "--codec", "test_cli:PlaneCodec", "--out", tmp_path / "o", "--baselines", "")
    empty = tmp_path / "empty"
    empty.mkdir()
    _one_line_error(*cli_run(*base, "--perceptual", "fid", "--perceptual-weights", empty)[::2],
                    "weights-inception-2015-12-05-6726825d.pth", str(empty))
    _one_line_error(*cli_run(*base, "--perceptual", "lpips,psnr", "--perceptual-weights", weights_dir)[::2],
                    "unknown perceptual metric 'psnr'")
    _one_line_error(*cli_run(*base, "--perceptual-weights", weights_dir)[::2], "without --perceptual")
    status, _, err = cli_run(*base, "--perceptual", "kid", "--perceptual-weights", weights_dir, "--fid-patch", "8")
    assert status == 2 and err.strip().splitlines()[-1].endswith("argument --fid-patch: must be ≥ 16, got 8"), err
    assert not (tmp_path / "o").exists()


def test_eval_perceptual_without_torch_names_the_extra(tmp_path):
    from test_base_install import CLI, run_without_torch

    d, _ = _image_dir(tmp_path, 1)
    status, out, err = run_without_torch(CLI, "eval", d, "--codec", "uqdm", "--out", tmp_path / "o",
                                         "--perceptual", "lpips")
    _one_line_error(status, err, 'pip install "chansim[perceptual]"')
