"""Deprecated (one release): the per-step codec math moved next to its codec.

- ``diffc_coefficients`` → :func:`chansim.codecs.diffc_channel.coefficients`
- ``uqdm_coefficients`` → :func:`chansim.codecs.uqdm_step.coefficients`
- ``scale_boundaries`` → :func:`chansim.codecs.uqdm_step.scale_boundaries`
- ``uqdm_encode_step`` / ``uqdm_decode_step`` → :func:`chansim.codecs.uqdm_step.run` /
  :func:`~chansim.codecs.uqdm_step.decode` (or the kernels of :mod:`chansim.kernels.diffusion_steps`)

``diffc_encode_step`` / ``diffc_decode_step`` (never called) are gone. Every name here warns
(DeprecationWarning) and is resolved on first use.
"""

from __future__ import annotations

import importlib
import warnings

_MOVED = {
    "diffc_coefficients": ("chansim.codecs.diffc_channel", "coefficients"),
    "uqdm_coefficients": ("chansim.codecs.uqdm_step", "coefficients"),
    "scale_boundaries": ("chansim.codecs.uqdm_step", "scale_boundaries"),
}


def _uqdm_step(model, z_t, gamma_t, gamma_s):
    import torch

    from .gaussian import step_coefficients
    from .uqdm import scale_factor

    u = importlib.import_module("chansim.codecs.uqdm_step")
    out = model.net(z_t, torch.as_tensor(gamma_t, dtype=z_t.dtype))
    c = z_t.shape[1]
    coefs = u.coefficients(step_coefficients(gamma_s, gamma_t), z_t.device)
    return out[:, :c] + z_t, scale_factor(out[:, c:]), coefs, u.scale_boundaries(z_t.device)


def _uqdm_encode_step(model, z_t, x, u, gamma_t, gamma_s, backend: str = "auto"):
    """Sender side of UQDM step t → s: (x̂, μ_p, k, scale index, z_s); ``u`` is the dither in (−½, ½)."""
    import torch

    from ..kernels import diffusion_steps as K

    with torch.no_grad():
        eps, f, coefs, bounds = _uqdm_step(model, z_t, gamma_t, gamma_s)
        return K.uqdm_encode(z_t, eps, f, x, u, coefs, bounds, model.clip_denoised, backend)


def _uqdm_decode_step(model, z_t, k, u, gamma_t, gamma_s, backend: str = "auto"):
    """Receiver side: (x̂, μ_p, scale index, z_s) from the received indices k."""
    import torch

    from ..kernels import diffusion_steps as K

    with torch.no_grad():
        eps, f, coefs, bounds = _uqdm_step(model, z_t, gamma_t, gamma_s)
        return K.uqdm_decode(z_t, eps, f, k, u, coefs, bounds, model.clip_denoised, backend)


def __getattr__(name):
    if name in _MOVED:
        module, new = _MOVED[name]
        warnings.warn(f"chansim.diffusion.steps.{name} moved to {module}.{new}", DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module(module), new)
    if name in ("uqdm_encode_step", "uqdm_decode_step"):
        warnings.warn(f"chansim.diffusion.steps.{name} is deprecated: use chansim.codecs.uqdm_step "
                      "(run / decode) or chansim.kernels.diffusion_steps", DeprecationWarning, stacklevel=2)
        return _uqdm_encode_step if name == "uqdm_encode_step" else _uqdm_decode_step
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
