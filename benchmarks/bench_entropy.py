"""rANS entropy coding: chansim.rans against constriction 0.5 and CompressAI's
rANS coder, in the same process, on the same symbols.

Workloads
  gaussian n=1M / n=10M: per-symbol quantized Gaussians, mean ~ U(-5, 5), scale
      log-uniform on [0.2, 10]; symbols drawn from the model.
  categorical-256 n=1M: one fixed 256-entry table (Dirichlet(0.5)).

Peers
  chansim: rans.Encoder / rans.Decoder at 24-bit precision, all threads (the
      default) and one thread.
  constriction: stream.stack.AnsCoder with stream.model.QuantizedGaussian
      (support [-128, 127]) / stream.model.Categorical, 24-bit, one thread.
  CompressAI: compressai.ans.RansEncoder / RansDecoder with its GaussianConditional
      scale table (64 scales, 16-bit CDFs) built beforehand, symbols x - round(mean)
      as in its conditional models; the timed calls take prebuilt Python lists.

Each row records Msym/s, the ratio against constriction and the size over the
ideal cross-entropy -sum log2 P(x) under the unquantized model.

Run:  python -m pytest benchmarks/bench_entropy.py --benchmark-json=entropy.json
      python benchmarks/bench_entropy.py entropy.json   # markdown for BENCHMARKS.md
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
import types

import numpy as np
import pytest

import chansim
from chansim import rans

SIZES = {"1M": 1_000_000, "10M": 10_000_000}
ROUNDS = {"1M": 5, "10M": 3}


# ---- workloads -------------------------------------------------------------------


class Gaussians:
    def __init__(self, n: int):
        st = pytest.importorskip("scipy.stats")
        rng = np.random.default_rng(20240607)
        self.n = n
        self.mu = rng.uniform(-5, 5, n)
        self.sigma = np.exp(rng.uniform(np.log(0.2), np.log(10), n))
        self.x = np.round(rng.normal(self.mu, self.sigma)).astype(np.int32)
        a, b = self.x - 0.5, self.x + 0.5
        upper = self.x > self.mu  # difference on the survival side above the mode
        p = np.where(upper, st.norm.sf(a, self.mu, self.sigma) - st.norm.sf(b, self.mu, self.sigma),
                     st.norm.cdf(b, self.mu, self.sigma) - st.norm.cdf(a, self.mu, self.sigma))
        self.ideal_bits = float(-np.log2(p).sum())


class Categorical:
    def __init__(self, n: int):
        rng = np.random.default_rng(7)
        self.n = n
        self.p = rng.dirichlet(np.full(256, 0.5))
        self.x = rng.choice(256, n, p=self.p).astype(np.int32)
        self.ideal_bits = float(-np.log2(self.p[self.x]).sum())


_cache: dict = {}


def workload(kind: str, size: str):
    key = (kind, size)
    if key not in _cache:
        _cache.clear()  # keep one workload in memory at a time
        _cache[key] = (Gaussians if kind == "gaussian" else Categorical)(SIZES[size])
    return _cache[key]


def _record(benchmark, w, group, peer, nbytes, baseline=False):
    benchmark.group = group
    benchmark.extra_info.update(items=w.n, peer=peer, baseline=baseline, bytes=nbytes,
                                over_ideal_pct=100.0 * (8 * nbytes / w.ideal_bits - 1.0))


def _run(benchmark, size, fn):
    return benchmark.pedantic(fn, rounds=ROUNDS[size], iterations=1, warmup_rounds=1)


def _threads_label(threads):
    return f"{threads} thread{'s' if threads > 1 else ''}"


# ---- chansim -----------------------------------------------------------------------


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("threads", [0, 1], ids=["all-threads", "1-thread"])
@pytest.mark.parametrize("op", ["encode", "decode"])
def test_chansim_gaussian(benchmark, size, threads, op):
    w = workload("gaussian", size)

    def encode():
        enc = rans.Encoder()
        enc.encode_gaussian(w.x, w.mu, w.sigma)
        return enc.finish()

    data = encode()
    chansim.set_num_threads(threads)
    try:
        label = f"chansim ({_threads_label(chansim.num_threads())})"
        _record(benchmark, w, f"gaussian {op}, n={size}", label, len(data))
        if op == "encode":
            _run(benchmark, size, encode)
        else:
            out = _run(benchmark, size, lambda: rans.Decoder(data).decode_gaussian(w.mu, w.sigma))
            np.testing.assert_array_equal(out, w.x)
    finally:
        chansim.set_num_threads(0)


@pytest.mark.parametrize("threads", [0, 1], ids=["all-threads", "1-thread"])
@pytest.mark.parametrize("op", ["encode", "decode"])
def test_chansim_categorical(benchmark, threads, op):
    w = workload("categorical", "1M")

    def encode():
        enc = rans.Encoder()
        enc.encode_categorical(w.x, w.p)
        return enc.finish()

    data = encode()
    chansim.set_num_threads(threads)
    try:
        _record(benchmark, w, f"categorical-256 {op}, n=1M", f"chansim ({_threads_label(chansim.num_threads())})",
                len(data))
        if op == "encode":
            _run(benchmark, "1M", encode)
        else:
            out = _run(benchmark, "1M", lambda: rans.Decoder(data).decode_categorical(w.p, shape=w.n))
            np.testing.assert_array_equal(out, w.x)
    finally:
        chansim.set_num_threads(0)


# ---- constriction --------------------------------------------------------------------


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("op", ["encode", "decode"])
def test_constriction_gaussian(benchmark, size, op):
    constriction = pytest.importorskip("constriction")
    w = workload("gaussian", size)
    model = constriction.stream.model.QuantizedGaussian(-128, 127)

    def encode():
        coder = constriction.stream.stack.AnsCoder()
        coder.encode_reverse(w.x, model, w.mu, w.sigma)
        return coder.get_compressed()

    data = encode()
    _record(benchmark, w, f"gaussian {op}, n={size}", "constriction 0.5 (1 thread)", 4 * len(data), baseline=True)
    if op == "encode":
        _run(benchmark, size, encode)
    else:
        out = _run(benchmark, size, lambda: constriction.stream.stack.AnsCoder(data).decode(model, w.mu, w.sigma))
        np.testing.assert_array_equal(out, w.x)


@pytest.mark.parametrize("op", ["encode", "decode"])
def test_constriction_categorical(benchmark, op):
    constriction = pytest.importorskip("constriction")
    w = workload("categorical", "1M")
    model = constriction.stream.model.Categorical(w.p, perfect=False)

    def encode():
        coder = constriction.stream.stack.AnsCoder()
        coder.encode_reverse(w.x, model)
        return coder.get_compressed()

    data = encode()
    _record(benchmark, w, f"categorical-256 {op}, n=1M", "constriction 0.5 (1 thread)", 4 * len(data), baseline=True)
    if op == "encode":
        _run(benchmark, "1M", encode)
    else:
        out = _run(benchmark, "1M", lambda: constriction.stream.stack.AnsCoder(data).decode(model, w.n))
        np.testing.assert_array_equal(out, w.x)


# ---- CompressAI ------------------------------------------------------------------------


def _compressai():
    """compressai.ans and compressai._CXX without compressai/__init__.py (which
    imports its training stack); skip when CompressAI is absent."""
    if "compressai.ans" in sys.modules:
        return sys.modules["compressai.ans"], sys.modules["compressai._CXX"]
    spec = importlib.util.find_spec("compressai")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("CompressAI is not installed")
    stub = types.ModuleType("compressai")
    stub.__path__ = list(spec.submodule_search_locations)
    saved = sys.modules.get("compressai")
    sys.modules["compressai"] = stub
    try:
        return importlib.import_module("compressai.ans"), importlib.import_module("compressai._CXX")
    except ImportError as e:
        pytest.skip(f"CompressAI's extension modules are unavailable: {e}")
    finally:
        if saved is not None:
            sys.modules["compressai"] = saved


def _compressai_tables(cxx, scale_table, precision=16, tail_mass=1e-9):
    """GaussianConditional.update() of CompressAI 1.2, in NumPy."""
    from scipy.special import ndtr, ndtri

    multiplier = -ndtri(tail_mass / 2)
    pmf_center = np.ceil(scale_table * multiplier).astype(np.int64)
    cdfs, lengths, offsets = [], [], []
    for s, c in zip(scale_table, pmf_center):
        samples = np.abs(np.arange(2 * c + 1) - c)
        pmf = ndtr((0.5 - samples) / s) - ndtr((-0.5 - samples) / s)
        tail = 2 * ndtr((-0.5 - c) / s)
        cdf = cxx.pmf_to_quantized_cdf(np.append(pmf, tail).tolist(), precision)
        cdfs.append(cdf)
        lengths.append(len(cdf))
        offsets.append(-int(c))
    return cdfs, lengths, offsets


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("op", ["encode", "decode"])
def test_compressai_gaussian(benchmark, size, op):
    ans, cxx = _compressai()
    w = workload("gaussian", size)
    scale_table = np.exp(np.linspace(np.log(0.11), np.log(256), 64))
    cdfs, lengths, offsets = _compressai_tables(cxx, scale_table)
    # GaussianConditional.build_indexes: the smallest table scale >= sigma.
    indexes = np.minimum(np.searchsorted(scale_table, w.sigma), len(scale_table) - 1).astype(np.int32).tolist()
    symbols = (w.x - np.round(w.mu)).astype(np.int32).tolist()

    def encode():
        return ans.RansEncoder().encode_with_indexes(symbols, indexes, cdfs, lengths, offsets)

    data = encode()
    _record(benchmark, w, f"gaussian {op}, n={size}", "CompressAI 1.2 (1 thread, tables prebuilt)", len(data))
    if op == "encode":
        _run(benchmark, size, encode)
    else:
        decoder = ans.RansDecoder()
        out = _run(benchmark, size, lambda: decoder.decode_with_indexes(data, indexes, cdfs, lengths, offsets))
        assert out == symbols


# ---- report ------------------------------------------------------------------------------


def report(path: str) -> str:
    """Markdown rows per workload and implementation: encode and decode Msym/s,
    ratios against constriction, size over the ideal."""
    with open(path) as f:
        data = json.load(f)
    sys.path.insert(0, __file__.rsplit("/", 1)[0])
    from report import machine_line

    rows: dict = {}  # (workload, peer) -> {op: (median, extra)}
    base: dict = {}  # (workload, op) -> constriction median
    for b in data["benchmarks"]:
        op = b["group"].split(", ")[0].rsplit(" ", 1)[1]
        workload = b["group"].replace(f" {op}", "")
        e = b["extra_info"]
        rows.setdefault((workload, e["peer"]), {})[op] = (b["stats"]["median"], e)
        if e.get("baseline"):
            base[(workload, op)] = b["stats"]["median"]
    lines = [f"Machine: {machine_line(data.get('machine_info', {}))}", ""]
    lines.append("| workload | implementation | encode Msym/s | × constriction | decode Msym/s | × constriction "
                 "| size over ideal |")
    lines.append("|---|---|---:|---:|---:|---:|---:|")
    def order(kv):  # by workload, then fastest decoder first
        (workload, _), ops = kv
        return workload, -(ops["decode"][1]["items"] / ops["decode"][0] if "decode" in ops else 0.0)

    for (workload, peer), ops in sorted(rows.items(), key=order):
        cells = []
        for op in ("encode", "decode"):
            if op not in ops:
                cells += ["", ""]
                continue
            median, e = ops[op]
            ratio = base.get((workload, op))
            cells += [f"{e['items'] / median / 1e6:,.1f}", f"{ratio / median:.2f}×" if ratio else ""]
        over = next(iter(ops.values()))[1]["over_ideal_pct"]
        lines.append(f"| {workload} | {peer} | " + " | ".join(cells) + f" | {over:+.4f} % |")
    return "\n".join(lines)


if __name__ == "__main__":
    for p in sys.argv[1:]:
        print(report(p))
