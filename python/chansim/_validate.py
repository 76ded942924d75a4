"""Argument checks shared by the Python layer: one clear ValueError per mistake."""

from __future__ import annotations

import operator

import numpy as np

U64_LIMIT = 1 << 64
MAX_ELEMENTS = 1 << 32  # per-call limit of the native core


def u64(value, name: str) -> int:
    """A Python int in [0, 2**64) from any integer-like value."""
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be an integer in [0, 2**64), got a bool")
    try:
        v = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer in [0, 2**64), got {type(value).__name__}") from None
    if not 0 <= v < U64_LIMIT:
        raise ValueError(f"{name} must be in [0, 2**64), got {v}")
    return v


def count(value, name: str = "n", limit: int = MAX_ELEMENTS) -> int:
    """A non-negative element count no larger than ``limit``."""
    try:
        v = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be a non-negative integer, got {type(value).__name__}") from None
    if v < 0:
        raise ValueError(f"{name} must be non-negative, got {v}")
    if v > limit:
        raise ValueError(f"{name} = {v} exceeds the per-call limit of {limit}")
    return v


def float_dtype(dtype) -> np.dtype:
    """float32 or float64, nothing else."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise ValueError(f"unsupported dtype {dtype!r}: use numpy.float32 or numpy.float64") from None
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"unsupported dtype {dt}: use numpy.float32 or numpy.float64")
    return dt
