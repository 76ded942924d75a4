"""The ``chansim`` command line."""

from __future__ import annotations

import argparse
import sys
import time


def _demo(args) -> int:
    """Common randomness end to end: generate, regenerate by random access, check against the reference."""
    import numpy as np

    from . import prng

    seed, stream, n = 2026, prng.stream_id("user", 0, 0), args.n
    print(f"chansim demo: {n:,} addressed normals, seed={seed}, stream={stream:#x}, isa={prng.isa()}")
    t0 = time.perf_counter()
    z = prng.normal(seed, stream, 0, n)
    dt = time.perf_counter() - t0
    print(f"  native core    : {n / dt / 1e6:8.1f} M normals/s  mean={z.mean():+.5f} var={z.var():.5f}")
    t0 = time.perf_counter()
    ref = prng.reference.normal(seed, stream, 0, min(n, 200_000))
    dt = time.perf_counter() - t0
    same = np.array_equal(ref.view(np.uint32), z[: ref.size].view(np.uint32))
    print(f"  NumPy reference: {ref.size / dt / 1e6:8.1f} M normals/s  bit-identical on first {ref.size:,}: {same}")
    idx = np.array([0, 1, n // 3, n - 1])
    again = np.concatenate([prng.normal(seed, stream, int(i), 1) for i in idx])
    ok = np.array_equal(again.view(np.uint32), z[idx].view(np.uint32))
    print(f"  random access  : elements {idx.tolist()} regenerated alone, identical: {ok}")
    return 0 if (same and ok) else 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="chansim", description=__doc__)
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the end-to-end demo on embedded defaults")
    demo.add_argument("--n", type=int, default=10_000_000, help="number of variates (default 10M)")
    demo.set_defaults(func=_demo)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except Exception as exc:  # one line on stderr, exit status 2; --debug shows the traceback
        if args.debug:
            raise
        print(f"chansim {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
