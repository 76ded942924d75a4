"""Bit-stable CPU inference.

Codecs need the sender's and the receiver's network outputs to agree bit for bit.
On CPU the chansim U-Net gives identical float32 bits at 1, 2, 3 and 4 threads
(tested in ``tests/test_diffusion_determinism.py``; the one thread-dependent op,
PyTorch's 1×1 convolution, is routed around in :class:`~chansim.diffusion.unet.Conv1x1`).
That is an observation about today's CPU kernels, not a promise PyTorch makes, and
third-party networks (the diffusers adapter) still contain plain 1×1 convolutions.
:func:`deterministic_inference` therefore also pins the thread count (default
:data:`CODEC_THREADS` = 2, the core count of the speed budget) for the duration of a
codec call and, when CUDA is in use, turns on ``torch.use_deterministic_algorithms``
(the CPU ops of these networks are deterministic already, and switching the flag
costs a 3-second import of ``torch._inductor`` the first time); the previous
settings are restored after. Bits still depend on the instruction set oneDNN picks
(AVX2 vs AVX-512), which is why containers carry a checksum. Measured on an Intel AVX-512
Xeon with torch 2.13: batch-1 3×3 convolutions whose input has ≤ 20480 elements go through
PyTorch's native im2col + MKL GEMM path, whose bits differ between 1 and 2 threads (a 64×96
image's lowest U-Net level); on an AMD Zen 3 they did not. Pinning the thread count from
the image shape on both sides is what makes a codec's bits independent of the machine's
core count.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, Optional, TypeVar

import torch

#: Thread count the codecs pin during inference (results then cannot depend on the machine's core count).
CODEC_THREADS = 2


@contextlib.contextmanager
def deterministic_inference(threads: Optional[int] = CODEC_THREADS,
                            deterministic_algorithms: Optional[bool] = None) -> Iterator[None]:
    """``torch.inference_mode`` + a fixed thread count (None: leave it) + deterministic algorithms.

    ``deterministic_algorithms=None`` means "if CUDA is available".
    """
    if deterministic_algorithms is None:
        deterministic_algorithms = torch.cuda.is_available()
    prev_threads = torch.get_num_threads()
    prev_det = torch.are_deterministic_algorithms_enabled()
    prev_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    try:
        if deterministic_algorithms and not prev_det:
            torch.use_deterministic_algorithms(True)
        if threads is not None:
            torch.set_num_threads(threads)
        with torch.inference_mode():
            yield
    finally:
        if torch.are_deterministic_algorithms_enabled() != prev_det:
            torch.use_deterministic_algorithms(prev_det, warn_only=prev_warn)
        torch.set_num_threads(prev_threads)


T = TypeVar("T")


def stepwise(steps: Iterator[T], threads: Optional[int] = CODEC_THREADS) -> Iterator[T]:
    """Run each step of the generator ``steps`` inside :func:`deterministic_inference` and yield
    its values *outside* it.

    A generator that yields from inside the context would leak the pinned thread count and
    inference mode into its caller between yields, and several such generators advanced in
    lockstep (a tiled file's previews) would exit their contexts out of order and leave
    inference mode switched on for the rest of the process (gradients silently off: measured
    as a later training test failing). Codecs' progressive decoders therefore write their work
    as a plain generator and wrap it here.
    """
    while True:
        with deterministic_inference(threads):
            try:
                value = next(steps)
            except StopIteration:
                return
        yield value
