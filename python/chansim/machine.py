"""What machine this is, for results files, model cards and golden manifests.

The CPU's model name matters beyond bookkeeping: a network codec's float32 kernels (and so the
bits of UQDM's and DiffC's reconstructions) can differ between CPU vendors, so a file's golden
pins record the CPU they were made on.
"""

from __future__ import annotations

import platform
from pathlib import Path


def cpu_name() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo's "model name"), else what :mod:`platform` reports."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
