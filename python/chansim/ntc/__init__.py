"""Neural transform coding models (the models layer under :class:`chansim.codecs.NTC`).

:class:`~chansim.ntc.model.HyperpriorModel` is a mean-scale hyperprior (Ballé et al.
2018, Minnen et al. 2018) with GDN transforms, an optional channel-wise context over latent
slices (Minnen & Singh 2020, :class:`~chansim.ntc.model.SliceContext`), gain units for variable
rate (Cui et al. 2021) and *universal quantization* of the latents (Agustsson & Theis 2020): training
adds U(−½, ½) noise to the gained latents, and the codec quantizes them with a shared
Philox dither (:mod:`chansim.dq`), whose error has exactly that law. The trained
density is therefore the coding density. :func:`~chansim.ntc.refine.refine_latents` is the
encoder's optional per-image refinement of the latents under that same noise law.
"""

from .model import HyperpriorModel, QUALITY_LAMBDAS, SliceContext
from .refine import refine_latents

__all__ = ["HyperpriorModel", "QUALITY_LAMBDAS", "SliceContext", "refine_latents"]
