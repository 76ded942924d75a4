"""Checks that run the simulator in child processes: :func:`check_deterministic` and
:func:`check_decoder_robust`.

Both pass callables to child processes started with the ``spawn`` method, so the callables must
be picklable: a function defined at the top level of an importable module (a test module
collected by pytest is fine), a ``functools.partial`` of one, or an instance of such a class.
Lambdas and nested functions are not. ``spawn`` re-imports the main module in each child, so a
script must call these checks under ``if __name__ == "__main__":`` (pytest and notebooks need
nothing).
"""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import random
from dataclasses import dataclass, field

import numpy as np

from .checks import CheckResult, _finish

__all__ = ["DeterministicResult", "RobustResult", "canonical_bytes", "check_decoder_robust", "check_deterministic"]


def canonical_bytes(value) -> bytes:
    """Bytes that identify ``value`` exactly: bytes as is; an array by dtype, shape and raw bytes;
    scalars through NumPy; tuples, lists and dicts element by element (dict keys sorted)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return b"b" + bytes(value)
    if isinstance(value, str):
        return b"s" + value.encode()
    if isinstance(value, (tuple, list)):
        return b"(" + b",".join(canonical_bytes(v) for v in value) + b")"
    if isinstance(value, dict):
        return b"{" + b",".join(canonical_bytes(k) + b":" + canonical_bytes(value[k]) for k in sorted(value)) + b"}"
    if value is None:
        return b"N"
    a = np.asarray(value)
    if a.dtype == object:
        return b"o" + repr(value).encode()
    return b"a" + a.dtype.str.encode() + repr(a.shape).encode() + np.ascontiguousarray(a).tobytes()


def _digest(value) -> str:
    return hashlib.sha256(canonical_bytes(value)).hexdigest()


@dataclass
class DeterministicResult(CheckResult):
    """:func:`check_deterministic`: ``digests`` maps each run ("threads=1", "process 0 threads=2",
    …) to the SHA-256 of its output; ``statistic`` is the number of distinct outputs."""

    digests: dict = field(default_factory=dict)


def _run_with_threads(fn, threads):
    import chansim

    before = chansim.num_threads()
    chansim.set_num_threads(threads)
    try:
        return _digest(fn())
    finally:
        chansim.set_num_threads(before)


def _child_digest(fn, threads, conn):
    try:
        conn.send(("ok", _run_with_threads(fn, threads)))
    except BaseException as e:  # noqa: BLE001 - reported to the parent
        conn.send(("error", f"{type(e).__name__}: {e}"))
    conn.close()


def check_deterministic(fn, *, threads=(1, 2), processes=2, timeout=300.0,
                        raise_on_failure=True) -> DeterministicResult:
    """Check that ``fn()`` returns the same bytes at every thread count and in fresh processes.

    ``fn`` takes no arguments (bind them with ``functools.partial``) and returns bytes, an
    array, or a tuple / list / dict of those (compared through :func:`canonical_bytes`: dtype,
    shape and raw bytes). It runs once in this process under ``chansim.set_num_threads(t)`` for
    each ``t`` in ``threads`` (restoring the previous count), then once in each of ``processes``
    child processes started with ``spawn`` (fresh interpreter: fresh hash randomisation, fresh
    thread pool), child ``i`` at ``threads[i % len(threads)]``. ``fn`` must be picklable for
    the children (module docstring). ``timeout`` bounds each child, in seconds.

    A deterministic check: ``statistic`` = number of distinct outputs, ``p_value`` = 1 if they
    agree else 0, ``alpha`` = 0 (no false alarms), ``n`` = number of runs. Detection
    (tests/test_testing_power.py): a reduction whose order follows the thread count, and a seed
    taken from Python's ``hash()`` of a string (papers.md §8 pitfall 4), are both caught.
    """
    digests = {}
    errors = []
    for t in threads:
        digests[f"threads={t}"] = _run_with_threads(fn, t)
    ctx = mp.get_context("spawn")
    for i in range(processes):
        t = threads[i % len(threads)] if threads else 0
        parent, child = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_child_digest, args=(fn, t, child), daemon=True)
        proc.start()
        child.close()
        label = f"process {i} threads={t}"
        if parent.poll(timeout):
            try:
                kind, value = parent.recv()
            except EOFError:
                kind, value = "error", "child died"
        else:
            kind, value = "error", f"no answer within {timeout:g} s"
        proc.join(5)
        if proc.is_alive():
            proc.kill()
            proc.join()
        if kind == "ok":
            digests[label] = value
        else:
            errors.append(f"{label}: {value} (exit code {proc.exitcode})")
    distinct = len(set(digests.values()))
    passed = distinct <= 1 and not errors
    n = len(digests) + len(errors)
    if passed:
        msg = f"check_deterministic passed: {n} runs ({', '.join(digests)}) gave identical bytes"
    else:
        groups = {}
        for k, v in digests.items():
            groups.setdefault(v, []).append(k)
        lines = [f"check_deterministic: expected identical bytes from {n} runs, got {distinct} distinct outputs"
                 + (f" and {len(errors)} failed runs" if errors else "")]
        lines += [f"  sha256 {h[:16]}…: {', '.join(ks)}" for h, ks in groups.items()]
        lines += [f"  {e}" for e in errors]
        lines.append("  (statistic = distinct outputs; p = 0, alpha = 0: a deterministic check)")
        msg = "\n".join(lines)
    res = DeterministicResult("check_deterministic", passed, float(distinct + len(errors)), 1.0 if passed else 0.0,
                              n, 0.0, msg, digests=digests)
    return _finish(res, raise_on_failure)


# ---- decoder robustness ----------------------------------------------------------------------

@dataclass
class RobustResult(CheckResult):
    """:func:`check_decoder_robust`: ``counts`` of outcomes ("value", "declared exception",
    "undeclared exception", "crash", "hang") and ``failures``, a list of
    ``(input description, outcome, detail)`` for every input that crashed, hung or raised an
    undeclared exception."""

    counts: dict = field(default_factory=dict)
    failures: list = field(default_factory=list)


def _robust_child(decode, inputs, declared, conn, memory_limit):
    if memory_limit:
        try:
            import resource

            resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
        except (ImportError, ValueError, OSError):  # pragma: no cover - platform dependent
            pass
    conn.send(("ready",))
    for i, data in inputs:
        try:
            decode(data)
            out = (i, "value", "")
        except declared as e:
            out = (i, "declared exception", type(e).__name__)
        except BaseException as e:  # noqa: BLE001 - reported to the parent
            out = (i, "undeclared exception", f"{type(e).__name__}: {e}"[:300])
        conn.send(out)
    conn.close()


def _mutations(good, truncations, flips, random_inputs, rng):
    """(description, bytes) pairs: truncations, single-bit flips, random byte strings, extensions."""
    n = len(good)
    cases = []
    cuts = list(range(n))
    if truncations is not None and len(cuts) > truncations:
        cuts = sorted(rng.sample(cuts, truncations))
    cases += [(f"truncated to {k} of {n} bytes", good[:k]) for k in cuts]
    bits = list(range(8 * n))
    if flips is not None and len(bits) > flips:
        bits = sorted(rng.sample(bits, flips))
    for b in bits:
        m = bytearray(good)
        m[b // 8] ^= 1 << (b % 8)
        cases.append((f"bit {b % 8} of byte {b // 8} flipped", bytes(m)))
    for j in range(random_inputs):
        length = rng.randrange(0, 2 * n + 2)
        cases.append((f"random bytes #{j} ({length} bytes)", bytes(rng.getrandbits(8) for _ in range(length))))
        if n:
            cases.append((f"good message with its tail replaced by random bytes #{j}",
                          good[:rng.randrange(n)] + bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 16)))))
    cases += [("good message + one zero byte", good + b"\0"), ("good message twice", good + good)]
    return cases


def check_decoder_robust(decode, good_message, *, exceptions=None, truncations=None, flips=512, random_inputs=32,
                         extra_inputs=(), timeout=10.0, seed=0, memory_limit=None,
                         raise_on_failure=True) -> RobustResult:
    """Check that a decoder meets damaged input with a value or a declared exception, never a
    crash, a hang or an undeclared exception.

    ``decode(message) -> anything`` (bind the seed, prior, shape… with ``functools.partial``; it
    must be picklable, see the module docstring). ``good_message`` must decode. Inputs: every
    truncation (or ``truncations`` of them, sampled), every single-bit flip (or ``flips`` of
    them, sampled; default 512, ``None`` for all), ``random_inputs`` random byte strings and as
    many good prefixes with a random tail (default 32 each), the message with a byte appended
    and doubled, plus ``extra_inputs`` (bytes). Sampling uses ``random.Random(seed)``: the
    same inputs on every run.

    Each input is decoded in a child process (``spawn``; one child runs the inputs in order
    and is restarted after a crash or a hang): an outcome is a value, a declared exception
    (``exceptions``, default ``(chansim.FormatError, ValueError)``), an undeclared exception
    (any other, including ``MemoryError``), a crash (the child died: segfault, abort,
    ``os._exit``) or a hang (no answer within ``timeout`` seconds, default 10; the child is
    killed). ``memory_limit`` (bytes) caps the child's address space (POSIX), so a decoder that
    allocates a forged huge size fails with ``MemoryError`` instead of swapping.

    A deterministic check: ``statistic`` = number of failing inputs, ``p_value`` = 1 if none
    else 0, ``alpha`` = 0, ``n`` = number of inputs. Detection (tests/test_testing_power.py):
    decoders that ``os._exit`` on a flipped header, raise ``IndexError`` on truncation, or loop
    forever on one flip are each caught.
    """
    import chansim

    declared = tuple(exceptions) if exceptions is not None else (chansim.FormatError, ValueError)
    good = bytes(good_message)
    rng = random.Random(seed)
    cases = [("the good message", good)] + _mutations(good, truncations, flips, random_inputs, rng)
    cases += [(f"extra input #{j}", bytes(b)) for j, b in enumerate(extra_inputs)]
    outcomes = [None] * len(cases)
    ctx = mp.get_context("spawn")
    start = 0
    while start < len(cases):
        parent, child = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_robust_child,
                           args=(decode, [(i, cases[i][1]) for i in range(start, len(cases))], declared, child,
                                 memory_limit), daemon=True)
        proc.start()
        child.close()
        i = start
        # The child says "ready" once it has started and unpickled the decoder (imports: allow time).
        ready = parent.poll(timeout + 120.0)
        try:
            ready = ready and parent.recv() == ("ready",)
        except EOFError:
            ready = False
        if not ready:
            proc.kill()
            proc.join()
            raise RuntimeError("check_decoder_robust: the child process could not start or unpickle the decoder "
                               f"(exit code {proc.exitcode}); decode must be picklable and importable from a "
                               "module file, and a script must call the check under "
                               "`if __name__ == \"__main__\":` (spawn re-imports the main module; see "
                               "chansim.testing.process)")
        wait = timeout
        while i < len(cases):
            if parent.poll(wait):
                try:
                    j, kind, detail = parent.recv()
                except EOFError:
                    proc.join(5)
                    outcomes[i] = ("crash", f"child process died (exit code {proc.exitcode})")
                    i += 1
                    break
                outcomes[j] = (kind, detail)
                i = j + 1
                wait = timeout
            else:
                proc.kill()
                proc.join()
                outcomes[i] = ("hang", f"no result within {timeout:g} s (killed)")
                i += 1
                break
        if proc.is_alive():
            proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join()
        parent.close()
        start = i
    counts = {}
    failures = []
    for (desc, _), (kind, detail) in zip(cases, outcomes):
        counts[kind] = counts.get(kind, 0) + 1
        if kind in ("crash", "hang", "undeclared exception"):
            failures.append((desc, kind, detail))
    good_kind = outcomes[0][0]
    if good_kind != "value":
        failures.insert(0, ("the good message", f"did not decode ({good_kind})", outcomes[0][1]))
    passed = not failures
    n = len(cases)
    names = ", ".join(e.__name__ for e in declared)
    summary = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
    if passed:
        msg = f"check_decoder_robust passed: {n} inputs: {summary}"
    else:
        lines = [f"check_decoder_robust: expected a value or a declared exception ({names}) for every input; "
                 f"{len(failures)} of {n} inputs failed ({summary}):"]
        lines += [f"  {desc}: {kind}{': ' + detail if detail else ''}" for desc, kind, detail in failures[:10]]
        if len(failures) > 10:
            lines.append(f"  … and {len(failures) - 10} more")
        lines.append("  (statistic = failing inputs; p = 0, alpha = 0: a deterministic check)")
        msg = "\n".join(lines)
    res = RobustResult("check_decoder_robust", passed, float(len(failures)), 1.0 if passed else 0.0, n, 0.0, msg,
                       counts=counts, failures=failures)
    return _finish(res, raise_on_failure)
