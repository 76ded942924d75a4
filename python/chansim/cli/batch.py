"""Several inputs in one ``compress`` / ``decompress`` call: ``chansim compress *.png --out-dir D``.

The whole plan is checked before any file is touched — every input exists and is given once,
no two inputs map to the same output name, no output is an input, an existing output is
refused without ``--force`` — then each file is done on its own: one result line each, a
failure is one error line and the others still run, and the exit status is 2 if any failed.
Each output is written atomically, so an interrupted batch leaves whole files only.

``--jobs N`` (N > 1) runs N files at a time on a local Dask cluster of N single-threaded
process workers (the ``eval`` extra); each worker loads the codec once.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable, List, Tuple

from .common import UsageError, check_output, is_stdio, replace_args


def plan(inputs: List[str], out_dir, suffix: str, *, force: bool, mkdir: bool) -> List[Tuple[Path, Path]]:
    """(input, output) pairs, output = ``out_dir / (input stem + suffix)``; raises UsageError on any
    conflict, before anything is written."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out-dir {out_dir} is a file, not a directory")
    if not out_dir.exists() and not mkdir:
        raise UsageError(f"--out-dir {out_dir} does not exist (use --mkdir / -p to create it)")
    if any(is_stdio(p) for p in inputs):
        raise UsageError("- (standard input) cannot be one of several inputs; give file names with --out-dir")
    seen, pairs = {}, []
    for text in inputs:
        src = Path(text)
        if not src.is_file():
            raise UsageError(f"{src}: no such file" if not src.exists() else f"{src} is not a file")
        key = src.resolve()
        if key in seen:
            raise UsageError(f"{src} is given twice")
        out = out_dir / (src.stem + suffix)
        clash = next((s for s, o in seen.values() if o == out), None)
        if clash is not None:
            raise UsageError(f"{clash} and {src} would both be written to {out}; run them separately")
        seen[key] = (src, out)
        pairs.append((src, out))
    for _, out in pairs:
        check_output(out, inputs, force=force, mkdir=True)   # out_dir itself was checked above
    return pairs


def run(pairs: List[Tuple[Path, Path]], one: Callable, args, jobs: int, command: str) -> int:
    """Run ``one(args, src, out) -> result line`` for every pair; returns the exit status."""
    failed = 0

    def report(src, ok: bool, text: str) -> None:
        nonlocal failed
        if ok:
            if not args.quiet:
                print(text, flush=True)
        else:
            failed += 1
            where = "" if text.startswith(str(src)) else f"{src}: "   # most messages already name the file
            print(f"chansim {command}: error: {where}{text}", file=sys.stderr, flush=True)

    if jobs <= 1:
        for src, out in pairs:
            ok, text = attempt(one, args, src, out)
            report(src, ok, text)
    else:
        from .eval import make_client

        client, cluster = make_client("processes", min(jobs, len(pairs)), 1)
        try:
            from distributed import as_completed

            quiet = replace_args(args, quiet=True)   # no progress tickers from the workers
            futures = {client.submit(attempt, one, quiet, src, out, pure=False): src for src, out in pairs}
            for fut in as_completed(futures):
                report(futures[fut], *fut.result())
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    if len(pairs) > 1 and not args.quiet:
        print(f"{len(pairs) - failed} of {len(pairs)} files done" + (f", {failed} failed" if failed else ""),
              file=sys.stderr)
    return 2 if failed else 0


def attempt(one: Callable, args, src: Path, out: Path) -> Tuple[bool, str]:
    """``(True, result line)`` or ``(False, the one-line reason)`` for bad input; bugs propagate."""
    try:
        return True, one(args, src, out)
    except (OSError, ValueError) as exc:       # the CLI's bad-input family (FormatError is a ValueError)
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return False, msg
