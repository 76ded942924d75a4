"""Perceptual metrics for ``chansim eval --perceptual``: LPIPS and DISTS per image, FID and KID per set.

- **LPIPS** (Zhang et al. 2018), v0.1 with AlexNet, on the whole image scaled to [-1, 1].
- **DISTS** (Ding et al. 2020), VGG16 with L2 pooling, on the whole image in [0, 1] (the original
  code optionally shrinks images to 256 pixels on the short side first; this does not).
- **FID** (Heusel et al. 2017) and **KID** (Bińkowski et al. 2018) on the 2048 pool3 features of
  the FID Inception-v3, over non-overlapping :data:`FID_PATCH` × :data:`FID_PATCH` patches of the
  images (HiFiC's protocol, Mentzer et al. 2020): the reconstructions' patches against the
  originals' patches. Few images give few patches (Kodak-24: 6 per 768×512 image, 144 in all,
  against 2048 feature dimensions), so FID there is noisy: compare methods on the same patches
  only, and read small differences as noise. KID is unbiased at any sample size.

Weights are read from a local directory only; nothing is ever downloaded. :func:`locate` looks for
each file (:data:`WEIGHTS`) in the directory given (``--perceptual-weights DIR``), then in
``DIR/hub/checkpoints``, or, without a directory, in PyTorch's hub cache
(``$TORCH_HOME/hub/checkpoints``, by default ``~/.cache/torch/hub/checkpoints``: where torchvision
and torch-fidelity keep what they downloaded). The two small learned heads (LPIPS's linear
layers, DISTS's α/β) are also taken from an installed torchmetrics, which ships them. A file that
is not there is a :class:`MissingWeights` error naming it and where to put it.

The networks are defined in the checkpoints' own layouts (:mod:`chansim._perceptual_nets`), so
neither torchvision nor torch-fidelity is needed. This module imports PyTorch only when a network
is built; :func:`fid` and :func:`kid` are NumPy. ``import chansim`` never imports it.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

__all__ = ["FID_PATCH", "METRICS", "MissingWeights", "Perceptual", "WEIGHTS", "fid", "kid", "locate", "network",
           "parse_metrics", "patches", "torch_hub_checkpoints"]

#: Metric names, in report order: per image, then per set.
METRICS = ("lpips", "dists", "fid", "kid")
PER_IMAGE = ("lpips", "dists")
PER_SET = ("fid", "kid")
#: Side of the square patches FID and KID are computed over.
FID_PATCH = 256


@dataclass(frozen=True)
class WeightFile:
    """A weight file: the names it goes by, where it comes from, and an installed package's copy."""

    names: Tuple[str, ...]  # accepted file names, the usual one first
    what: str  # where the file comes from
    package: Optional[Tuple[str, str]] = None  # (package, path inside it) of a copy an installed package ships


#: The files each network reads, by the names their publishers' loaders cache them under.
WEIGHTS: Dict[str, WeightFile] = {
    "alexnet": WeightFile(("alexnet-owt-7be5be79.pth",), "torchvision's ImageNet AlexNet (AlexNet_Weights.IMAGENET1K_V1)"),
    "lpips_alex": WeightFile(("lpips_alex.pth",), "LPIPS v0.1 linear layers for AlexNet (weights/v0.1/alex.pth of the "
                             "LPIPS repository)", ("torchmetrics", "functional/image/lpips_models/alex.pth")),
    "vgg16": WeightFile(("vgg16-397923af.pth",), "torchvision's ImageNet VGG16 (VGG16_Weights.IMAGENET1K_V1)"),
    "dists": WeightFile(("dists_weights.pt",), "DISTS alpha/beta (weights.pt of the DISTS repository)",
                        ("torchmetrics", "functional/image/dists_models/weights.pt")),
    # The same file under torch-fidelity's and pytorch-fid's names (the hash suffix is its SHA-256's).
    "inception": WeightFile(("weights-inception-2015-12-05-6726825d.pth", "pt_inception-2015-12-05-6726825d.pth"),
                            "the FID Inception-v3 as torch-fidelity / pytorch-fid distribute it"),
}
NEEDS = {"lpips": ("alexnet", "lpips_alex"), "dists": ("vgg16", "dists"), "fid": ("inception",),
         "kid": ("inception",)}


class MissingWeights(FileNotFoundError):
    """A weight file a requested metric needs is not in the weight directory."""


def parse_metrics(names: Sequence[str]) -> Tuple[str, ...]:
    """Lower-cased, de-duplicated metric names in :data:`METRICS` order; ValueError for an unknown one."""
    wanted = {n.strip().lower() for n in names if n.strip()}
    unknown = sorted(wanted - set(METRICS))
    if unknown:
        raise ValueError(f"unknown perceptual metric {unknown[0]!r}; choose from {', '.join(METRICS)}")
    return tuple(m for m in METRICS if m in wanted)


def torch_hub_checkpoints() -> Path:
    """PyTorch's hub cache, by torch.hub's own rule (without importing torch): $TORCH_HOME/hub/checkpoints,
    $TORCH_HOME defaulting to $XDG_CACHE_HOME/torch, that to ~/.cache/torch."""
    home = os.environ.get("TORCH_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "torch")
    return Path(os.path.expanduser(home)) / "hub" / "checkpoints"


def _package_file(package: str, rel: str) -> Optional[Path]:
    # find_spec of a top-level package locates it without running its __init__ (torchmetrics's imports
    # are heavy, and break where torch-fidelity is installed without torchvision).
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        p = Path(root) / rel
        if p.is_file():
            return p
    return None


def locate(metrics: Sequence[str], directory=None) -> Dict[str, str]:
    """{file key of :data:`WEIGHTS`: path} for every file ``metrics`` need; :class:`MissingWeights`
    (naming the file, what it is and where to put it) for the first one not found."""
    dirs = [Path(directory), Path(directory) / "hub" / "checkpoints"] if directory else [torch_hub_checkpoints()]
    if directory and not Path(directory).is_dir():
        raise MissingWeights(f"--perceptual-weights {directory}: no such directory")
    found: Dict[str, str] = {}
    for metric in parse_metrics(metrics):
        for key in NEEDS[metric]:
            if key in found:
                continue
            spec = WEIGHTS[key]
            hit = next((d / n for d in dirs for n in spec.names if (d / n).is_file()), None)
            if hit is None and spec.package:
                hit = _package_file(*spec.package)
            if hit is None:
                where = " or ".join(str(d) for d in dirs)
                also = f" (or install {spec.package[0]}, which ships it)" if spec.package else ""
                raise MissingWeights(f"{metric.upper()} needs {spec.names[0]}, {spec.what}: not found in {where}; "
                                     f"put it there{also} — nothing is downloaded")
            found[key] = str(hit)
    return found


def patches(image: np.ndarray, size: int = FID_PATCH) -> np.ndarray:
    """Non-overlapping size×size patches of image[H, W, 3], row by row from the top-left corner
    (a remainder narrower than ``size`` is left out): uint8[n, size, size, 3], n possibly 0."""
    h, w = image.shape[:2]
    rows, cols = h // size, w // size
    if rows == 0 or cols == 0:
        return np.zeros((0, size, size) + image.shape[2:], image.dtype)
    return (image[:rows * size, :cols * size].reshape(rows, size, cols, size, -1)
            .swapaxes(1, 2).reshape(rows * cols, size, size, -1))


# ---- set-level metrics on features (NumPy) ------------------------------------------------------


def _factor(x: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(mean, F) of the rows of x with F Fᵀ = the unbiased covariance, F of min(n, d) columns."""
    mu = x.mean(axis=0)
    a = (x - mu).T / np.sqrt(len(x) - 1)  # d × n
    if a.shape[1] > a.shape[0]:  # more samples than dimensions: a d × d square root instead
        lam, v = np.linalg.eigh(a @ a.T)
        a = v * np.sqrt(np.clip(lam, 0.0, None))
    return mu, a


def fid(real: np.ndarray, fake: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets [n, d] (n ≥ 2 each):
    ‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr (Σ₁Σ₂)^½, covariances unbiased.

    tr (Σ₁Σ₂)^½ is computed exactly as the nuclear norm of F₁ᵀF₂ with Fᵢ Fᵢᵀ = Σᵢ (the square
    roots of the eigenvalues of Σ₁Σ₂ are the singular values of F₁ᵀF₂), which stays accurate
    when there are fewer samples than dimensions and the covariances are singular.
    """
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"feature sets must be [n, d] with the same d, got {real.shape} and {fake.shape}")
    if len(real) < 2 or len(fake) < 2:
        raise ValueError(f"FID needs at least 2 samples per set, got {len(real)} and {len(fake)}")
    mu1, f1 = _factor(real)
    mu2, f2 = _factor(fake)
    cross = np.linalg.svd(f1.T @ f2, compute_uv=False).sum()
    return float(((mu1 - mu2) ** 2).sum() + (f1 ** 2).sum() + (f2 ** 2).sum() - 2.0 * cross)


def _mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    d = x.shape[1]
    kxx = (x @ x.T / d + 1.0) ** 3
    kyy = (y @ y.T / d + 1.0) ** 3
    kxy = (x @ y.T / d + 1.0) ** 3
    m, n = len(x), len(y)
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
                 - 2.0 * kxy.mean())


def kid(real: np.ndarray, fake: np.ndarray, subsets: int = 100, subset_size: int = 1000, seed: int = 0) -> float:
    """Kernel Inception Distance: the unbiased estimate of MMD² with the cubic polynomial kernel
    k(x, y) = (xᵀy / d + 1)³, averaged over ``subsets`` random subsets of ``subset_size`` samples
    from each set (Bińkowski et al. 2018; torch-fidelity's defaults). Smaller sets are used whole
    (every subset would then be the same). Deterministic for a given ``seed``. Its expectation is 0
    for two samples of one distribution, so it can come out slightly negative."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"feature sets must be [n, d] with the same d, got {real.shape} and {fake.shape}")
    if len(real) < 2 or len(fake) < 2:
        raise ValueError(f"KID needs at least 2 samples per set, got {len(real)} and {len(fake)}")
    m = min(subset_size, len(real), len(fake))
    if m == len(real) == len(fake):
        return _mmd2_unbiased(real, fake)
    rng = np.random.default_rng(seed)
    vals = [_mmd2_unbiased(real[rng.choice(len(real), m, replace=False)], fake[rng.choice(len(fake), m, replace=False)])
            for _ in range(subsets)]
    return float(np.mean(vals))


# ---- the networks, per process -------------------------------------------------------------------

_lock = threading.Lock()
_nets: Dict[tuple, object] = {}


def _net(kind: str, files: Dict[str, str]):
    """The loaded network ``kind``, once per process (Dask workers reuse it across tasks)."""
    key = (kind, tuple(sorted(files.items())))
    with _lock:
        if key not in _nets:
            from . import _perceptual_nets

            _nets[key] = _perceptual_nets.load(kind, files)
        return _nets[key]


def _tensor(image: np.ndarray):
    import torch

    # A copy: Dask hands workers read-only arrays, which torch.from_numpy would only warn about.
    return torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1)[None]


@dataclass(frozen=True)
class Perceptual:
    """What to measure and with which weights; picklable (workers rebuild the networks once each).

    Build it with :meth:`from_dir` (which checks the weights are there). ``scorer(original)`` gives
    the per-image metrics of reconstructions of one original; ``features(image)`` the Inception
    features of its patches for :func:`fid` / :func:`kid`.
    """

    metrics: Tuple[str, ...]
    files: Dict[str, str] = field(hash=False)
    patch: int = FID_PATCH

    @classmethod
    def from_dir(cls, metrics: Sequence[str], directory=None, patch: int = FID_PATCH) -> "Perceptual":
        """Checks the metric names, that PyTorch is installed (ModuleNotFoundError otherwise) and
        that every weight file is there (:class:`MissingWeights`), before anything is loaded."""
        metrics = parse_metrics(metrics)
        if patch < 16:
            raise ValueError(f"the FID/KID patch side must be ≥ 16 pixels, got {patch}")
        if importlib.util.find_spec("torch") is None:
            raise ModuleNotFoundError("No module named 'torch'", name="torch")
        return cls(metrics, locate(metrics, directory), patch)

    @property
    def per_image(self) -> Tuple[str, ...]:
        """The per-image metrics asked for (LPIPS, DISTS)."""
        return tuple(m for m in self.metrics if m in PER_IMAGE)

    @property
    def per_set(self) -> Tuple[str, ...]:
        """The set-level metrics asked for (FID, KID)."""
        return tuple(m for m in self.metrics if m in PER_SET)

    def key(self) -> dict:
        """What the results depend on (for a resumable run's task keys): metrics, patch side and
        each weight file's name and size."""
        return dict(metrics=list(self.metrics), patch=self.patch,
                    weights={k: [Path(p).name, os.path.getsize(p)] for k, p in sorted(self.files.items())})

    def scorer(self, original: np.ndarray):
        """A function decoded → {"lpips": …, "dists": …} (the metrics asked for) of reconstructions of
        ``original`` (uint8[H, W, 3]); the original's activations are computed once."""
        import torch

        if not self.per_image:
            return lambda decoded: {}
        with torch.inference_mode():
            x = _tensor(original).float() / 255.0
            ref = {}
            if "lpips" in self.metrics:
                ref["lpips"] = _net("lpips", self.files).taps(2 * x - 1)
            if "dists" in self.metrics:
                ref["dists"] = _net("dists", self.files).stats(x)

        def score(decoded: np.ndarray) -> Dict[str, float]:
            decoded = np.asarray(decoded)
            if decoded.shape != original.shape:
                raise ValueError(f"decoded shape {decoded.shape} differs from the original {original.shape}")
            out = {}
            with torch.inference_mode():
                y = _tensor(decoded).float() / 255.0
                if "lpips" in ref:
                    net = _net("lpips", self.files)
                    out["lpips"] = float(net.distance(ref["lpips"], net.taps(2 * y - 1))[0])
                if "dists" in ref:
                    net = _net("dists", self.files)
                    out["dists"] = float(net.distance(ref["dists"], net.stats(y))[0])
            return out

        return score

    def features(self, image: np.ndarray, batch: int = 8) -> np.ndarray:
        """FID Inception features of the image's patches (:func:`patches`): float32[n, 2048]."""
        import torch

        p = patches(np.asarray(image), self.patch)
        if len(p) == 0:
            return np.zeros((0, 2048), np.float32)
        net = _net("inception", self.files)
        out = []
        with torch.inference_mode():
            for i in range(0, len(p), batch):
                out.append(net(torch.from_numpy(np.array(p[i:i + batch], dtype=np.uint8)).permute(0, 3, 1, 2)).numpy())
        return np.concatenate(out).astype(np.float32)

    def set_metrics(self, real: np.ndarray, fake: np.ndarray) -> Dict[str, float]:
        """{"fid": …, "kid": …} (those asked for) of two feature sets; NaN with fewer than 2 patches."""
        out = {}
        for m in self.per_set:
            ok = len(real) >= 2 and len(fake) >= 2
            out[m] = (fid if m == "fid" else kid)(real, fake) if ok else float("nan")
        return out


def network(kind: str, files: Dict[str, str]):
    """The loaded network "lpips", "dists" or "inception" (cached per process), for direct use."""
    return _net(kind, files)
