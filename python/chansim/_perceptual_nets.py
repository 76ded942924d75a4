"""The networks behind :mod:`chansim.perceptual` (imports PyTorch; only that module imports this one).

Each network is defined here in the layout of the checkpoint files it reads, so the published
weights load by name and nothing else is needed at run time (no torchvision, whose PyPI wheels
need a matching PyTorch build, and no torch-fidelity, which imports torchvision):

- ``AlexNet`` / ``VGG16``: the ``features`` part of torchvision's ImageNet classifiers
  (``features.<index>.weight`` / ``.bias`` in ``alexnet-owt-7be5be79.pth``, ``vgg16-397923af.pth``);
- :class:`LPIPS`: Zhang et al. (2018), v0.1, AlexNet taps and linear layers (``lin<k>.model.1.weight``);
- :class:`DISTS`: Ding et al. (2020), VGG16 with L2 pooling and the α/β weights (``alpha``, ``beta``);
- :class:`FIDInceptionV3`: the Inception-v3 of FID (Heusel et al. 2017), TensorFlow's 2015-12-05
  graph as torch-fidelity and pytorch-fid converted it (their module names, TensorFlow 1.x bilinear
  resize to 299, pool3 features).
"""

from __future__ import annotations

import re
from typing import Dict, List

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def load_matching(module: nn.Module, path, what: str) -> None:
    """Load every tensor ``module`` has from the checkpoint at ``path`` by name (extra entries,
    such as a classifier, are ignored); ValueError naming the file when one is missing or has
    another shape (a different network, not a silently half-loaded one)."""
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"{path}: not a {what} checkpoint (no state dict)")
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or wrong:
        bad = ", ".join((missing + wrong)[:3])
        raise ValueError(f"{path}: not a {what} checkpoint ({len(missing)} tensors missing, {len(wrong)} of another "
                         f"shape: {bad}, …)")
    module.load_state_dict({k: state[k] for k in own})


class Backbone(nn.Module):
    """``features`` of a torchvision classifier (its checkpoint's key prefix), frozen."""

    def __init__(self, features: nn.Sequential):
        super().__init__()
        self.features = features
        self.requires_grad_(False)
        self.eval()


def alexnet() -> Backbone:
    """torchvision's AlexNet feature layers (ReLUs not in place: their outputs are LPIPS taps)."""
    return Backbone(nn.Sequential(
        nn.Conv2d(3, 64, 11, stride=4, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
        nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2)))


def vgg16() -> Backbone:
    """torchvision's VGG16 feature layers (configuration "D")."""
    layers: List[nn.Module] = []
    c = 3
    for v in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"):
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU()]
            c = v
    return Backbone(nn.Sequential(*layers))


def _run(features: nn.Sequential, x: torch.Tensor, taps) -> List[torch.Tensor]:
    """Outputs of ``features`` after each layer index in ``taps`` (stops at the last)."""
    out = []
    for i, layer in enumerate(features):
        x = layer(x)
        if i in taps:
            out.append(x)
            if len(out) == len(taps):
                break
    return out


class LPIPS(nn.Module):
    """LPIPS v0.1 with AlexNet: images in [-1, 1] → distance per image (0 for equal images)."""

    TAPS = (1, 4, 7, 9, 11)  # relu1 … relu5
    CHANNELS = (64, 192, 384, 256, 256)

    def __init__(self):
        super().__init__()
        self.net = alexnet()
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in self.CHANNELS)
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def load(self, backbone_path, linear_path) -> "LPIPS":
        load_matching(self.net, backbone_path, "torchvision AlexNet")
        state = torch.load(str(linear_path), map_location="cpu", weights_only=True)
        weights: Dict[int, torch.Tensor] = {}
        for k, v in (state.items() if isinstance(state, dict) else ()):
            m = re.fullmatch(r"lin(\d)\.model\.\d\.weight", k)
            if m:
                weights[int(m.group(1))] = v
        if sorted(weights) != list(range(len(self.lins))) or any(
                tuple(weights[i].shape) != tuple(lin.weight.shape) for i, lin in enumerate(self.lins)):
            raise ValueError(f"{linear_path}: not the LPIPS v0.1 AlexNet linear layers (lin0 … lin4)")
        for i, lin in enumerate(self.lins):
            lin.weight.copy_(weights[i])
        return self

    def taps(self, x: torch.Tensor) -> List[torch.Tensor]:
        """Unit-normalised (over channels) activations of x[N, 3, H, W] in [-1, 1]."""
        feats = _run(self.net.features, (x - self.shift) / self.scale, self.TAPS)
        # The reference implementation's normalisation: x / (‖x‖ + 1e-10) over channels.
        return [f / (f.pow(2).sum(1, keepdim=True).sqrt() + 1e-10) for f in feats]

    def distance(self, ta: List[torch.Tensor], tb: List[torch.Tensor]) -> torch.Tensor:
        return sum(lin((a - b) ** 2).mean((2, 3)) for lin, a, b in zip(self.lins, ta, tb)).flatten()

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.distance(self.taps(x), self.taps(y))


class L2Pool(nn.Module):
    """DISTS's L2 pooling: √(Hann-weighted 3×3 mean of x²), stride 2 (replaces VGG's max pooling)."""

    def __init__(self, channels: int):
        super().__init__()
        a = np.hanning(5)[1:-1]
        g = torch.tensor(np.outer(a, a) / np.outer(a, a).sum(), dtype=torch.float32)
        self.register_buffer("filter", g[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.conv2d(x ** 2, self.filter, stride=2, padding=1, groups=x.shape[1])
        return (out + 1e-12).sqrt()


class DISTS(nn.Module):
    """DISTS: images in [0, 1] → distance per image (0 for equal images)."""

    CHANNELS = (3, 64, 128, 256, 512, 512)
    # VGG16 layer ranges of the five stages; each stage after the first starts with L2 pooling
    # in place of the max pooling at the range's start - 1.
    STAGES = ((0, 4), (5, 9), (10, 16), (17, 23), (24, 30))

    def __init__(self):
        super().__init__()
        self.net = vgg16()
        self.pools = nn.ModuleList(L2Pool(c) for c in self.CHANNELS[1:5])
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
        self.register_buffer("alpha", torch.zeros(1, sum(self.CHANNELS), 1, 1))
        self.register_buffer("beta", torch.zeros(1, sum(self.CHANNELS), 1, 1))
        self.requires_grad_(False)
        self.eval()

    def load(self, backbone_path, weights_path) -> "DISTS":
        load_matching(self.net, backbone_path, "torchvision VGG16")
        state = torch.load(str(weights_path), map_location="cpu", weights_only=True)
        try:
            alpha, beta = state["alpha"], state["beta"]
            self.alpha.copy_(alpha.reshape(self.alpha.shape))
            self.beta.copy_(beta.reshape(self.beta.shape))
        except (KeyError, TypeError, RuntimeError, IndexError):
            raise ValueError(f"{weights_path}: not the DISTS weights (alpha and beta, "
                             f"{sum(self.CHANNELS)} each)") from None
        return self

    def stats(self, x: torch.Tensor) -> List[tuple]:
        """Per-stage (features, spatial means) of x[N, 3, H, W] in [0, 1]; the image itself is stage 0."""
        feats = [x]
        h = (x - self.mean) / self.std
        for k, (lo, hi) in enumerate(self.STAGES):
            if k:
                h = self.pools[k - 1](h)
            for i in range(lo, hi):
                h = self.net.features[i](h)
            feats.append(h)
        return [(f, f.mean((2, 3), keepdim=True)) for f in feats]

    def distance(self, sa: List[tuple], sb: List[tuple]) -> torch.Tensor:
        c1 = c2 = 1e-6
        w = self.alpha.sum() + self.beta.sum()
        alphas = torch.split(self.alpha / w, list(self.CHANNELS), dim=1)
        betas = torch.split(self.beta / w, list(self.CHANNELS), dim=1)
        structure = texture = 0.0
        for (fa, ma), (fb, mb), al, be in zip(sa, sb, alphas, betas):
            lum = (2 * ma * mb + c1) / (ma ** 2 + mb ** 2 + c1)
            va = ((fa - ma) ** 2).mean((2, 3), keepdim=True)
            vb = ((fb - mb) ** 2).mean((2, 3), keepdim=True)
            cov = (fa * fb).mean((2, 3), keepdim=True) - ma * mb
            tex = (2 * cov + c2) / (va + vb + c2)
            structure = structure + (al * lum).sum(1)
            texture = texture + (be * tex).sum(1)
        return (1 - (structure + texture)).flatten()

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.distance(self.stats(x), self.stats(y))


# ---- the FID Inception-v3 (module names of torch-fidelity's FeatureExtractorInceptionV3) ----------


class BasicConv2d(nn.Module):
    def __init__(self, cin: int, cout: int, **kw):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, bias=False, **kw)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def _avg3(x):
    # TensorFlow's average pooling divides by the pixels inside the image (count_include_pad=False).
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    def __init__(self, cin: int, pool_features: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(cin, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(cin, pool_features, kernel_size=1)

    def forward(self, x):
        return torch.cat([self.branch1x1(x), self.branch5x5_2(self.branch5x5_1(x)),
                          self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                          self.branch_pool(_avg3(x))], 1)


class InceptionB(nn.Module):
    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x):
        return torch.cat([self.branch3x3(x), self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                          F.max_pool2d(x, 3, stride=2)], 1)


class InceptionC(nn.Module):
    def __init__(self, cin: int, c7: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(cin, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(cin, 192, kernel_size=1)

    def forward(self, x):
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = x
        for k in range(1, 6):
            d = getattr(self, f"branch7x7dbl_{k}")(d)
        return torch.cat([self.branch1x1(x), b7, d, self.branch_pool(_avg3(x))], 1)


class InceptionD(nn.Module):
    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(cin, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x):
        d = x
        for k in range(1, 5):
            d = getattr(self, f"branch7x7x3_{k}")(d)
        return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), d, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionE(nn.Module):
    """The two last blocks; FID's graph pools by average in the first and by maximum in the second."""

    def __init__(self, cin: int, pool: str):
        super().__init__()
        self.pool = pool
        self.branch1x1 = BasicConv2d(cin, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(cin, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(cin, 192, kernel_size=1)

    def forward(self, x):
        b3 = self.branch3x3_1(x)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        pooled = _avg3(x) if self.pool == "avg" else F.max_pool2d(x, 3, stride=1, padding=1)
        return torch.cat([self.branch1x1(x), self.branch3x3_2a(b3), self.branch3x3_2b(b3),
                          self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d), self.branch_pool(pooled)], 1)


def resize_like_tensorflow1x(x: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize of x[N, C, H, W] to size×size as TensorFlow 1.x's ``resize_bilinear``
    (align_corners=False) computes it: source coordinate = output index × in/out, no half-pixel
    offset — the resize FID's reference graph applies, which PyTorch's modes do not reproduce."""
    def axis(n_in):
        src = torch.arange(size, dtype=torch.float32) * torch.tensor(n_in / size, dtype=torch.float32)
        lo = src.long()
        return lo, (lo + 1).clamp_max(n_in - 1), src - lo.float()

    (y0, y1, dy), (x0, x1, dx) = axis(x.shape[2]), axis(x.shape[3])
    top, bottom = x[:, :, y0, :], x[:, :, y1, :]
    top = top[:, :, :, x0] + (top[:, :, :, x1] - top[:, :, :, x0]) * dx.view(1, 1, 1, -1)
    bottom = bottom[:, :, :, x0] + (bottom[:, :, :, x1] - bottom[:, :, :, x0]) * dx.view(1, 1, 1, -1)
    return top + (bottom - top) * dy.view(1, 1, -1, 1)


class FIDInceptionV3(nn.Module):
    """uint8 images x[N, 3, H, W] → 2048 pool3 features per image (float32)."""

    SIZE = 299

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, c7=128)
        self.Mixed_6c = InceptionC(768, c7=160)
        self.Mixed_6d = InceptionC(768, c7=160)
        self.Mixed_6e = InceptionC(768, c7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, pool="avg")
        self.Mixed_7c = InceptionE(2048, pool="max")
        self.requires_grad_(False)
        self.eval()

    def load(self, path) -> "FIDInceptionV3":
        load_matching(self, path, "FID Inception-v3")
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.uint8 or x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected uint8 images [N, 3, H, W], got {x.dtype} {tuple(x.shape)}")
        x = (resize_like_tensorflow1x(x.float(), self.SIZE) - 128) / 128
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = F.max_pool2d(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x)), 3, stride=2)
        for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
            x = getattr(self, f"Mixed_{name}")(x)
        return x.mean((2, 3))


def load(kind: str, files: Dict[str, str]) -> nn.Module:
    """A network with its weights: kind "lpips", "dists" or "inception"; ``files`` from
    :func:`chansim.perceptual.locate`."""
    if kind == "lpips":
        return LPIPS().load(files["alexnet"], files["lpips_alex"])
    if kind == "dists":
        return DISTS().load(files["vgg16"], files["dists"])
    if kind == "inception":
        return FIDInceptionV3().load(files["inception"])
    raise ValueError(f"unknown network {kind!r}")


__all__ = ["DISTS", "FIDInceptionV3", "LPIPS", "alexnet", "load", "load_matching", "resize_like_tensorflow1x",
           "vgg16"]
