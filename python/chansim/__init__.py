"""chansim: exact channel simulation and diffusion-based generative image codecs.

Layers, bottom to top: ``prng`` (addressed common randomness), entropy coding,
channel simulation, diffusion models and codecs. See DESIGN.md for the contract.
"""

from . import dq, grc, pfr, prng, rans
from ._core import num_threads, set_num_threads
from .errors import FormatError

__version__ = "0.1.0"

__all__ = ["FormatError", "dq", "grc", "pfr", "num_threads", "prng", "rans", "set_num_threads", "__version__"]
