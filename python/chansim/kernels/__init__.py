"""Triton kernels (``chansim.kernels``; the source lives in ``python/chansim/kernels``).

- :mod:`chansim.kernels.diffusion_steps`: the fused per-step math of the DiffC and
  UQDM denoiser steps, used by the codecs (reference path on CPU).
- :mod:`chansim.kernels.prng`: the Triton Philox4x32-10 PRNG, bit-identical to the
  native core and to :mod:`chansim.prng.reference`. The library itself does not
  call it; it is tested (``tests/test_kernels_prng.py``) and offered to GPU
  integrators who need chansim's addressed randomness inside their own kernels.

Each kernel has a PyTorch or NumPy reference and is tested under
``TRITON_INTERPRET=1`` on CPU. The library never imports Triton unless a kernel
is asked for, so CPU-only installs need neither Triton nor CUDA.
"""
