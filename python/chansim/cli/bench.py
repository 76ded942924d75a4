"""``chansim bench``: microbenchmarks of the core primitives, with a peer in the same run.

By default a quick built-in table (about half a minute): each primitive timed as the
best of a few repeats, next to a peer doing comparable work in the same process — the
pure-NumPy Philox reference, plain rounding, constriction's rANS coder when installed.
``--suite DIR`` runs a repository's pytest-benchmark files (``benchmarks/``, which is not
installed with the package) instead and prints pytest-benchmark's table.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, List, Optional

import numpy as np

from .common import UsageError, int_range, seed_type, version


def best_of(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up: first-call costs (imports, table builds) are not the steady state
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _rows(scale: float, repeats: int, progress) -> List[tuple]:
    """(operation, elements, seconds, peer name or None, peer seconds or None)."""
    from .. import dq, grc, pfr, prng, rans

    rows = []
    seed = 2026
    s = prng.stream_id("user", 0, 0)

    n = int(4_000_000 * scale)
    t = best_of(lambda: prng.normal(seed, s, 0, n), repeats)
    m = min(n, 200_000)  # the NumPy reference is ~100× slower: time a slice, scale per element
    tr = best_of(lambda: prng.reference.normal(seed, s, 0, m), 1) * n / m
    rows.append(("Philox normals (float32)", n, t, "NumPy reference", tr))
    progress()

    x = prng.normal(seed, s, 0, n)
    t = best_of(lambda: dq.quantize(x, 0.5, seed, s), repeats)
    tr = best_of(lambda: np.round(x / 0.5).astype(np.int32), repeats)
    rows.append(("dithered quantization", n, t, "np.round (no dither)", tr))
    progress()

    n = int(1_000_000 * scale)
    k = np.round(prng.normal(seed, s, 0, n, dtype=np.float64) * 3.0).astype(np.int32)

    def enc():
        e = rans.Encoder()
        e.encode_gaussian(k, 0.0, 3.0)
        return e.finish()

    data = enc()
    t_enc = best_of(enc, repeats)
    t_dec = best_of(lambda: rans.Decoder(data).decode_gaussian(0.0, 3.0, shape=k.shape), repeats)
    peer_enc = peer_dec = None
    try:
        import constriction

        model = constriction.stream.model.QuantizedGaussian(-2**15, 2**15 - 1, 0.0, 3.0)

        def c_enc():
            coder = constriction.stream.stack.AnsCoder()
            coder.encode_reverse(k, model)
            return coder.get_compressed()

        comp = c_enc()
        peer_enc = best_of(c_enc, repeats)
        peer_dec = best_of(lambda: constriction.stream.stack.AnsCoder(comp).decode(model, n), repeats)
        peer = "constriction"
    except ImportError:
        peer = None
    rows.append(("rANS encode, Gaussian", n, t_enc, peer, peer_enc))
    rows.append(("rANS decode, Gaussian", n, t_dec, peer, peer_dec))
    progress()

    d = int(4096 * max(scale, 0.25))
    mu_q = np.random.default_rng(0).normal(0.0, 0.5, d)
    st = prng.stream_id("pfr_candidates", 0, 0)
    kw = dict(mode="exact", chunk_bits=16.0)
    _, msg = pfr.encode_gaussian(mu_q, 0.5, 0.0, 1.0, seed, st, **kw)
    rows.append(("PFR encode, exact, 16-bit chunks", d,
                 best_of(lambda: pfr.encode_gaussian(mu_q, 0.5, 0.0, 1.0, seed, st, **kw), max(1, repeats // 2)),
                 None, None))
    rows.append(("PFR decode", d, best_of(lambda: pfr.decode_gaussian(msg, 0.0, np.ones(d), seed, st), repeats),
                 None, None))
    progress()

    c = int(10_000 * scale)
    mu = np.full(c, 1.5)
    sg = prng.stream_id("grc", 0, 0)
    _, gmsg = grc.encode_gaussian(mu, 0.25, 0.0, 1.0, seed, sg)
    rows.append(("GPRS encode, 1-D channels", c, best_of(lambda: grc.encode_gaussian(mu, 0.25, 0.0, 1.0, seed, sg),
                                                          repeats), None, None))
    rows.append(("GPRS decode", c, best_of(lambda: grc.decode_gaussian(gmsg, 0.0, np.ones(c), seed, sg), repeats),
                 None, None))
    progress()
    return rows


def _table(rows: List[tuple]) -> str:
    lines = [f"{'operation':<34} {'elements':>10} {'time':>10} {'M elem/s':>9}   {'peer':<22} {'speed-up':>8}",
             "-" * 100]
    for op, n, t, peer, tp in rows:
        ratio = f"{tp / t:7.1f}×" if tp else ""
        lines.append(f"{op:<34} {n:>10,} {t * 1e3:8.2f}ms {n / t / 1e6:9.2f}   {peer or '':<22} {ratio:>8}")
    return "\n".join(lines)


def _suite(path: Path, extra: Optional[str]) -> int:
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such benchmark directory")
    try:
        import pytest_benchmark  # noqa: F401
    except ImportError:
        raise UsageError("--suite needs pytest-benchmark (pip install 'chansim[bench]')") from None
    cmd = [sys.executable, "-m", "pytest", str(path), "--benchmark-only", "-q", "-p", "no:cacheprovider"]
    if extra:
        cmd += ["-k", extra]
    print("running:", " ".join(cmd), flush=True)
    return subprocess.call(cmd)


def _bits_per_step(args) -> int:
    """Per-step rate and time of a diffusion codec on one image (``--bits-per-step IMAGE``)."""
    from ..codecs.step_report import bits_per_step, format_rows
    from .common import check_codec_spec, load_codec, parse_quality, read_image

    image = read_image(args.bits_per_step)
    codec_name = check_codec_spec(args.codec)
    if args.model is not None:
        if codec_name != "diffc":
            raise UsageError("--model (a diffusers model directory or hub id) is for --codec diffc")
        from ..codecs import DiffC

        try:
            codec = DiffC.from_diffusers(args.model, prompt=args.prompt, guidance=args.guidance, device=args.device,
                                         dtype=args.dtype)
        except (FileNotFoundError, ValueError) as exc:
            raise UsageError(f"--model {args.model}: {exc}") from None
    else:
        if args.prompt or args.guidance is not None:
            raise UsageError("--prompt and --guidance need --model (the shipped models are unconditional)")
        codec = load_codec(codec_name)
    quality = parse_quality(codec, args.quality)
    try:
        rows = bits_per_step(codec, image, quality, seed=args.seed)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    h, w = image.shape[:2]
    model = args.model or "shipped model"
    print(f"chansim {version()} · {codec.name} · {model} · {w}×{h} · quality {quality}"
          f" · {sum(r['bits'] for r in rows) / (h * w):.4f} bpp in the steps")
    print(format_rows(rows))
    return 0


def run_bench(args) -> int:
    from tqdm.auto import tqdm

    from .. import num_threads, prng, set_num_threads

    if args.suite is not None:
        return _suite(Path(args.suite), args.k)
    if args.bits_per_step is not None:
        return _bits_per_step(args)
    if args.threads is not None:
        set_num_threads(args.threads)
    with tqdm(total=5, desc="benchmarking", unit="group", disable=args.quiet, leave=False, file=sys.stderr) as bar:
        rows = _rows(args.scale, args.repeats, lambda: bar.update(1))
    print(f"chansim {version()} · {num_threads()} threads · ISA {prng.isa()} · best of {args.repeats}")
    print(_table(rows))
    return 0


def add_parser(sub, common) -> None:
    p = sub.add_parser("bench", parents=[common], help="microbenchmarks of the core primitives",
                       description=" ".join(__doc__.replace("``", "").split("\n\n")[1].split()))
    p.add_argument("--repeats", type=int_range(1), default=5,
                   help="timed repeats per row; the best is shown (default 5)")
    p.add_argument("--scale", type=float, default=1.0, help="problem-size multiplier (default 1)")
    p.add_argument("--threads", type=int_range(1), default=None,
                   help="chansim threads (default: CHANSIM_NUM_THREADS or all)")
    p.add_argument("--suite", default=None, metavar="DIR",
                   help="run the pytest-benchmark files in DIR (e.g. the repository's benchmarks/) instead")
    p.add_argument("-k", default=None, help="with --suite: pytest -k expression selecting benchmarks")
    g = p.add_argument_group("bits per step (--bits-per-step IMAGE)")
    g.add_argument("--bits-per-step", default=None, metavar="IMAGE",
                   help="encode IMAGE and print, per diffusion step, γ_t → γ_s, KL bits, coded bits, bits/KL, "
                        "shift fraction, candidates examined, network and channel seconds")
    g.add_argument("--codec", default="diffc", help="diffc (default) or uqdm")
    g.add_argument("--model", default=None, help="diffc on a diffusers model directory (or hub id) instead of the "
                                                 "shipped one")
    g.add_argument("--quality", default=None, help="steps to send (default: the codec's default quality)")
    g.add_argument("--prompt", default="", help="caption to condition on (stored in the file)")
    g.add_argument("--guidance", type=float, default=None, help="classifier-free guidance scale")
    g.add_argument("--device", default="cpu", help="cpu, cuda or mps (default cpu)")
    g.add_argument("--dtype", default="float32", choices=("float32", "float16", "bfloat16"))
    g.add_argument("--seed", type=seed_type, default=None, help="file seed (default: derived from image and model)")
    p.set_defaults(func=run_bench)
