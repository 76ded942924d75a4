"""Triton kernels (installed as ``chansim.kernels``).

Each kernel has a PyTorch or NumPy reference and is tested under
``TRITON_INTERPRET=1`` on CPU. The library never imports Triton unless a kernel
is asked for, so CPU-only installs need neither Triton nor CUDA.
"""
