"""Long fuzzing job for every decoder: coverage-guided with atheris (libFuzzer), or a
seeded random-mutation loop when atheris is not installed.

Targets and their contract are those of tests/test_fuzz_decoders.py (rANS, PFR, GRC/GPRS
messages, the codec container, UQDM and DiffC files): an input must decode or raise
chansim.FormatError; any other exception, a crash, an input running longer than
--timeout seconds (a hang) or RSS above --rss-mb is a failure. The first input byte
chooses whether the rest is fed as is or with its trailing CRC-32 recomputed, so the
fuzzer reaches the parsers behind the checksums too.

    python benchmarks/fuzz_decoders.py                     # every target, default budgets
    python benchmarks/fuzz_decoders.py --targets rans,pfr --runs 50000
    python benchmarks/fuzz_decoders.py --engine random     # without atheris

Each target runs in its own process (libFuzzer owns the process it runs in); the
summary table (inputs tried, crashes, hangs, peak RSS per target) goes to stdout and,
with --json, to a file. Reproducers of failures are written to --artifacts.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

# Inputs per target by default: the fast parsers get most of the budget; the codecs run a
# diffusion network per accepted step, so fewer.
DEFAULT_RUNS = {"rans": 30000, "rans-segments": 15000, "pfr": 20000, "grc-dyadic": 15000, "grc-sample": 15000,
                "container": 20000, "uqdm": 1500, "diffc": 1000}


def _load(name):
    import test_fuzz_decoders as fz

    return fz, fz.target(name)


def _prepare(fz, t, data: bytes) -> bytes:
    if not data:
        return data
    return fz.fix_crc(data[1:]) if (t.crc and data[0] & 1) else data[1:]


# ---- worker: one target in this process -----------------------------------------------------------


def run_atheris(name: str, runs: int, timeout: int, rss_mb: int, artifacts: Path, max_time: int) -> None:
    import atheris
    import numpy  # noqa: F401  (not instrumented: only chansim's own Python is)

    try:
        import torch  # noqa: F401
    except ImportError:
        pass
    with atheris.instrument_imports(include=["chansim", "test_fuzz_decoders"]):
        fz, t = _load(name)
    from chansim import FormatError

    def one(data: bytes) -> None:
        try:
            t.decode(_prepare(fz, t, data))
        except FormatError:
            pass

    corpus = Path(tempfile.mkdtemp(prefix=f"fuzz-{name}-"))
    for i, s in enumerate(t.seeds):
        (corpus / f"seed{i}a").write_bytes(b"\0" + s)
        (corpus / f"seed{i}b").write_bytes(b"\1" + s)
    artifacts.mkdir(parents=True, exist_ok=True)
    argv = [sys.argv[0], str(corpus), f"-runs={runs}", f"-timeout={timeout}", f"-rss_limit_mb={rss_mb}",
            # Only chansim's Python is coverage-instrumented (the C++ core is built by gcc, without
            # -fsanitize=fuzzer), so coverage says little about the native parsers: keep the valid
            # seeds and full lengths in play rather than let libFuzzer shrink the corpus to a few bytes.
            "-reduce_inputs=0", "-len_control=0", "-use_value_profile=1",
            "-seed=1", "-max_len=4096", f"-max_total_time={max_time}", "-print_final_stats=1",
            f"-artifact_prefix={artifacts}/{name}-"]
    atheris.Setup(argv, one)
    atheris.Fuzz()


def run_random(name: str, runs: int, timeout: int, rss_mb: int, artifacts: Path, max_time: int) -> None:
    """Seeded mutation loop: the same input families as the CI tests, for many more inputs."""
    import numpy as np

    fz, t = _load(name)
    from chansim import FormatError

    if "asan" not in os.environ.get("LD_PRELOAD", ""):  # ASan's shadow memory needs terabytes of address space
        resource.setrlimit(resource.RLIMIT_AS, (rss_mb * 2**20 * 4, resource.RLIM_INFINITY))
    rng = np.random.default_rng(1)

    def on_alarm(signum, frame):
        raise TimeoutError("hang")

    signal.signal(signal.SIGALRM, on_alarm)
    done = crashes = hangs = 0
    t0 = time.time()
    while done < runs and time.time() - t0 < max_time:
        s = bytearray(t.seeds[int(rng.integers(len(t.seeds)))])
        kind = rng.integers(4)
        if kind == 0:
            s = s[: int(rng.integers(len(s) + 1))]
        elif kind == 1:
            for _ in range(int(rng.integers(1, 4))):
                if s:
                    i = int(rng.integers(8 * len(s)))
                    s[i // 8] ^= 1 << (i % 8)
        elif kind == 2:
            s = bytearray(rng.bytes(int(rng.integers(0, 600))))
        else:
            for _ in range(int(rng.integers(1, 6))):
                i = int(rng.integers(len(s) + 1))
                op = rng.integers(3)
                if op == 0 and i < len(s):
                    s[i] = int(rng.integers(256))
                elif op == 1:
                    s.insert(i, int(rng.integers(256)))
                elif i < len(s):
                    del s[i]
        data = bytes([int(rng.integers(2))]) + bytes(s)
        signal.alarm(timeout)
        try:
            t.decode(_prepare(fz, t, data))
        except FormatError:
            pass
        except TimeoutError:
            hangs += 1
            (artifacts / f"{name}-hang-{hangs}").write_bytes(data)
        except Exception as exc:  # noqa: BLE001 — every other exception is a finding
            crashes += 1
            artifacts.mkdir(parents=True, exist_ok=True)
            (artifacts / f"{name}-crash-{crashes}").write_bytes(data)
            print(f"crash: {type(exc).__name__}: {exc}", file=sys.stderr)
        finally:
            signal.alarm(0)
        done += 1
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(f"stat::number_of_executed_units: {done}\nstat::peak_rss_mb: {rss}\nrandom::crashes: {crashes}\n"
          f"random::hangs: {hangs}")


# ---- driver ---------------------------------------------------------------------------------------


def drive(name: str, engine: str, runs: int, timeout: int, rss_mb: int, artifacts: Path, max_time: int) -> dict:
    cmd = [sys.executable, __file__, "--worker", name, "--engine", engine, "--runs", str(runs), "--timeout",
           str(timeout), "--rss-mb", str(rss_mb), "--artifacts", str(artifacts), "--max-time", str(max_time)]
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True)
    log = p.stdout + p.stderr
    (artifacts / f"{name}.log").write_text(log)
    execs = re.findall(r"stat::number_of_executed_units:\s*(\d+)", log)
    rss = re.findall(r"stat::peak_rss_mb:\s*(\d+)", log)
    hang = len(re.findall(r"libFuzzer: timeout", log)) + sum(int(x) for x in re.findall(r"random::hangs: (\d+)", log))
    oom = len(re.findall(r"libFuzzer: out-of-memory", log))
    crash = (len(re.findall(r"Uncaught Python exception|libFuzzer: deadly signal|AddressSanitizer", log))
             + sum(int(x) for x in re.findall(r"random::crashes: (\d+)", log)))
    if p.returncode != 0 and not (crash or hang or oom):
        crash = 1  # died some other way: count it, the log says how
    return dict(target=name, engine=engine, inputs=int(execs[-1]) if execs else 0, crashes=crash, hangs=hang,
                ooms=oom, peak_rss_mb=int(rss[-1]) if rss else None, seconds=round(time.time() - t0, 1),
                exit_status=p.returncode)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--targets", default=",".join(DEFAULT_RUNS), help="comma-separated targets")
    ap.add_argument("--engine", choices=["atheris", "random"], default=None,
                    help="atheris if installed (default), else random")
    ap.add_argument("--runs", type=int, default=None, help="inputs per target (default: per-target budgets)")
    ap.add_argument("--timeout", type=int, default=10, help="seconds after which one input counts as a hang")
    ap.add_argument("--rss-mb", type=int, default=4096, help="RSS limit per target process")
    ap.add_argument("--max-time", type=int, default=1200, help="wall-time cap per target in seconds")
    ap.add_argument("--artifacts", default=str(ROOT / "build" / "fuzz"), help="logs and reproducers")
    ap.add_argument("--json", default=None, help="write the summary here")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    artifacts = Path(a.artifacts)
    artifacts.mkdir(parents=True, exist_ok=True)
    engine = a.engine
    if engine is None:
        try:
            import atheris  # noqa: F401

            engine = "atheris"
        except ImportError:
            engine = "random"
    if a.worker:
        (run_atheris if engine == "atheris" else run_random)(a.worker, a.runs, a.timeout, a.rss_mb, artifacts,
                                                              a.max_time)
        return 0
    os.environ.setdefault("CHANSIM_NUM_THREADS", "1")
    rows = []
    for name in [n.strip() for n in a.targets.split(",") if n.strip()]:
        runs = a.runs or DEFAULT_RUNS.get(name, 10000)
        r = drive(name, engine, runs, a.timeout, a.rss_mb, artifacts, a.max_time)
        rows.append(r)
        print(f"{name:<14} {r['engine']:<8} inputs {r['inputs']:>7,}  crashes {r['crashes']}  hangs {r['hangs']}  "
              f"OOM {r['ooms']}  peak RSS {r['peak_rss_mb']} MB  {r['seconds']:.0f} s", flush=True)
    total = sum(r["inputs"] for r in rows)
    bad = sum(r["crashes"] + r["hangs"] + r["ooms"] for r in rows)
    print(f"total: {total:,} inputs, {bad} failures")
    if a.json:
        Path(a.json).write_text(json.dumps(dict(rows=rows, total_inputs=total, failures=bad), indent=1))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
