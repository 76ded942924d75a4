"""Deprecated (one release): the diffusers adapter moved to :mod:`chansim.diffusion.pretrained`.

``DiffusersDenoiser`` is :class:`~chansim.diffusion.pretrained.UNetDenoiser`;
``DiffusersDenoiser.from_pretrained(path)`` is :func:`chansim.diffusion.pretrained.load`.
"""

from __future__ import annotations

import warnings

from .pretrained import UNetDenoiser, gammas_from_alphas_cumprod, load

__all__ = ["DiffusersDenoiser", "gammas_from_alphas_cumprod"]


class DiffusersDenoiser(UNetDenoiser):
    """Deprecated alias of :class:`~chansim.diffusion.pretrained.UNetDenoiser`."""

    @staticmethod
    def from_pretrained(path, **kw):
        warnings.warn("chansim.diffusion.diffusers_adapter is deprecated: use chansim.diffusion.pretrained.load",
                      DeprecationWarning, stacklevel=2)
        return load(path, **kw)
