"""Property-based testing of channel simulators: checks and Hypothesis strategies.

The checks (this module) judge a simulator given as callables — ``encode(seed) -> (sample,
message)`` and ``decode(message, seed) -> sample`` — against a target law q and a prior p:

- :func:`check_exact`: samples follow q (KS per marginal + χ² on random projections, and
  optionally χ² of the law given covariates such as the input, Bonferroni) and the decoder
  reproduces the encoder's sample bit for bit;
- :func:`check_code_length`: mean bits ≤ KL + log₂(KL + 1) + c (one-sided confidence limit);
- :func:`check_bias`: shift fraction and variance along the shift of a budgeted scheme,
  with standard errors, against expected values;
- :func:`check_deterministic`: the same bytes at every thread count and in fresh processes;
- :func:`check_decoder_robust`: truncations, bit flips and random bytes give a value or a
  declared exception, never a crash or a hang (child processes).

Each returns a result object (``statistic``, ``p_value``, ``n``, ``alpha``, ``passed``,
``message`` and check-specific fields) and raises :class:`CheckFailed` (an ``AssertionError``)
on failure. Every check is derandomized: fixed seeds by default, so a CI that uses them is never
flaky. Laws: ``Gaussian(mean, std)`` (or a ``(mean, std)`` tuple) for diagonal Gaussians,
``Uniform(low, high)`` / ``Uniform.around(center, width)`` for dithered quantizers, or a frozen
SciPy distribution. Strategies for Hypothesis live in :mod:`chansim.testing.strategies`.
Needs SciPy (and Hypothesis for the strategies): ``pip install "chansim[testing]"``; no PyTorch.

Ten lines to check a simulator (here chansim's own PFR in exact mode):

>>> from chansim import pfr
>>> from chansim.testing import Gaussian, check_exact
>>> q, p = Gaussian([0.5, -0.3], [0.6, 0.8]), Gaussian(0.0, 1.0)
>>> def encode(seed):
...     return pfr.encode_gaussian(q.mean, q.std, 0.0, 1.0, seed, stream=1)
>>> def decode(message, seed):
...     return pfr.decode_gaussian(message, 0.0, 1.0, seed, stream=1, shape=(2,))
>>> result = check_exact(encode, decode, q, p, n=300)
>>> result.passed, result.n, result.alpha
(True, 300, 0.001)
"""

from ._laws import Gaussian, Uniform, dinf_bits, kl_bits
from .checks import (BiasResult, CheckFailed, CheckResult, CodeLengthResult, ExactResult, check_bias,
                     check_code_length, check_exact)
from .process import (DeterministicResult, RobustResult, canonical_bytes, check_decoder_robust,
                      check_deterministic)

__all__ = ["BiasResult", "CheckFailed", "CheckResult", "CodeLengthResult", "DeterministicResult", "ExactResult",
           "Gaussian", "RobustResult", "Uniform", "canonical_bytes", "check_bias", "check_code_length",
           "check_decoder_robust", "check_deterministic", "check_exact", "dinf_bits", "kl_bits"]
