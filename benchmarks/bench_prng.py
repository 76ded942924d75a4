"""Normals per second: chansim at 1 and 2 threads against NumPy (PCG64 ziggurat)
and torch.randn, in the same run. chansim's numbers are bit-exact and addressed
(random access); NumPy's and torch's are neither.

Run: python -m pytest benchmarks/bench_prng.py --benchmark-json=prng.json
     python benchmarks/report.py prng.json
"""

import numpy as np
import pytest

import chansim
from chansim import prng

N = 10_000_000


@pytest.fixture(params=[np.float32, np.float64], ids=["float32", "float64"])
def dtype(request):
    return request.param


def _group(benchmark, dtype, name, baseline=False):
    benchmark.group = f"normal {np.dtype(dtype).name}, n={N:,}"
    benchmark.extra_info.update(items=N, baseline=baseline, peer=name)


@pytest.mark.parametrize("threads", [1, 2])
def test_chansim_normal(benchmark, dtype, threads):
    out = np.empty(N, dtype)
    _group(benchmark, dtype, f"chansim ({threads} thread{'s' if threads > 1 else ''}, {prng.isa()})")
    chansim.set_num_threads(threads)
    try:
        benchmark(prng.normal, 1, 2, 0, N, dtype, out=out)
    finally:
        chansim.set_num_threads(0)


def test_numpy_pcg64_standard_normal(benchmark, dtype):
    out = np.empty(N, dtype)
    g = np.random.Generator(np.random.PCG64(1))
    _group(benchmark, dtype, "NumPy PCG64 standard_normal (1 thread)", baseline=True)
    benchmark(g.standard_normal, N, dtype=dtype, out=out)


@pytest.mark.parametrize("threads", [1, 2])
def test_torch_randn(benchmark, dtype, threads):
    torch = pytest.importorskip("torch")
    tdt = torch.float32 if dtype == np.float32 else torch.float64
    out = torch.empty(N, dtype=tdt)
    _group(benchmark, dtype, f"torch.randn ({threads} thread{'s' if threads > 1 else ''})")
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        benchmark(torch.randn, N, dtype=tdt, out=out)
    finally:
        torch.set_num_threads(old)


@pytest.mark.parametrize("variate", ["uniform", "exponential"])
def test_chansim_other_variates(benchmark, dtype, variate):
    out = np.empty(N, dtype)
    benchmark.group = f"{variate} {np.dtype(dtype).name}, n={N:,}"
    benchmark.extra_info.update(items=N, baseline=False, peer="chansim (default threads)")
    benchmark(getattr(prng, variate), 1, 2, 0, N, dtype, out=out)
