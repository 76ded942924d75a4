"""``chansim eval``: rate–distortion evaluation of the codecs on a directory of images.

Every (image, codec, quality) pair and every (image, classical format) pair is one task
on a Dask cluster — a local one with process workers by default, or any running
scheduler (``--scheduler tcp://host:8786``). Images travel to the workers as arrays, so
remote workers need no shared file system. Results: per-image and mean bpp / PSNR /
MS-SSIM / high-frequency energy ratio / timings as CSV and JSON, R-D plots against JPEG /
WebP / AVIF, BD-PSNR over JPEG, and side-by-side crops at the lowest rate. With
``--perceptual``, LPIPS and DISTS per image and FID and KID per setting over image patches,
from local weights only.
"""

from __future__ import annotations

import csv
import json
import math
import os
import platform
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from .. import perceptual as _perceptual
from ..evaluation import (BASELINE_FORMATS, BASELINE_QUALITIES, available_baselines, baseline_rows, bd_table,
                          crop_box, image_metrics, plot_rd, side_by_side, summarize)
from ..machine import cpu_name
from .common import (IMAGE_SUFFIXES, UsageError, check_codec_spec, check_reconstruction, default_codec, int_range,
                     load_codec, parse_quality, read_image, registered_codecs, split_list, unique, version, write_bytes, write_png)

FIELDS = ["image", "method", "codec", "quality", "reconstruction", "width", "height", "bytes", "bpp", "psnr",
          "ms_ssim", "hf_ratio", "encode_s", "decode_s"]
SUMMARY_FIELDS = ["method", "codec", "quality", "reconstruction", "images", "bytes", "bpp", "psnr", "ms_ssim",
                  "hf_ratio", "encode_s", "decode_s"]
#: Per-image perceptual columns (after FIELDS) and set-level ones (after SUMMARY_FIELDS), when measured.
PERCEPTUAL_FIELDS = list(_perceptual.PER_IMAGE)
SET_FIELDS = list(_perceptual.PER_SET) + ["patches"]


def _worker_threads(threads: Optional[int]) -> None:
    """Pin the per-worker thread counts so workers do not oversubscribe the machine
    (None: thread workers sharing the caller's process, whose settings stay as they are)."""
    import chansim

    if threads is None:
        return
    chansim.set_num_threads(threads)
    torch = sys.modules.get("torch")  # imported by the codecs, never by the classical formats
    if torch is not None and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def _perceptual_extra(perceptual: Optional["_perceptual.Perceptual"], image: np.ndarray):
    """decoded → its perceptual items for a row: LPIPS / DISTS against ``image`` and, for FID / KID,
    the Inception features of its patches (under ``_features``, gathered per setting at the end);
    None without ``--perceptual``."""
    if perceptual is None:
        return None
    score = perceptual.scorer(image)

    def extra(decoded: np.ndarray) -> dict:
        out = score(decoded)
        if perceptual.per_set:
            out["_features"] = perceptual.features(decoded)
        return out

    return extra


def codec_task(image_name: str, image: np.ndarray, codec_spec: str, quality_text: str,
               reconstructions: Sequence[Optional[str]], keep_crop: bool,
               perceptual: Optional["_perceptual.Perceptual"], threads: Optional[int]) -> List[dict]:
    """Compress one image at one quality, decode the file with each reconstruction (what a
    receiver does, timed separately); rows (+ crops)."""
    codec = load_codec(codec_spec)
    _worker_threads(threads)
    extra = _perceptual_extra(perceptual, image)
    quality = parse_quality(codec, quality_text)
    h, w = image.shape[:2]
    t0 = time.perf_counter()
    data = codec.compress(image, quality)
    enc = time.perf_counter() - t0
    rows = []
    top, left, s = crop_box(h, w)
    for rec in reconstructions:
        t0 = time.perf_counter()
        decoded = np.asarray(codec.decompress(data, rec))
        dec = time.perf_counter() - t0
        label = codec.name if rec is None else f"{codec.name} ({rec})"
        row = dict(image=image_name, method=label, codec=codec.name, quality=str(quality),
                   reconstruction=rec or codec.reconstructions[0], width=w, height=h, bytes=len(data),
                   bpp=8.0 * len(data) / (h * w), encode_s=enc, decode_s=dec, **image_metrics(image, decoded))
        if extra is not None:
            row.update(extra(decoded))
        if keep_crop:
            row["_crop"] = decoded[top:top + s, left:left + s].copy()
        rows.append(row)
    return rows


def baseline_task(image_name: str, image: np.ndarray, fmt: str, qualities: Sequence[int], keep_crop: bool,
                  perceptual: Optional["_perceptual.Perceptual"], threads: Optional[int]) -> List[dict]:
    """One classical format over its quality sweep on one image (a Dask task)."""
    _worker_threads(threads)
    return baseline_rows(image_name, image, fmt, qualities, keep_crop, extra=_perceptual_extra(perceptual, image))


def reference_task(image_name: str, image: np.ndarray, perceptual: "_perceptual.Perceptual",
                   threads: Optional[int]) -> List[dict]:
    """The Inception features of the original's patches, the real set of FID / KID (a Dask task)."""
    _worker_threads(threads)
    return [dict(image=image_name, _features=perceptual.features(image))]


# ---- set-level metrics ------------------------------------------------------------------------


def add_set_metrics(summary: List[dict], rows: List[dict], references: Dict[str, np.ndarray],
                    perceptual: "_perceptual.Perceptual") -> None:
    """FID / KID of each summary entry: the patches of its reconstructions (every image of the
    entry) against the patches of the same originals; ``patches`` = how many per set."""
    groups: Dict[tuple, List[dict]] = defaultdict(list)
    for r in rows:
        if "_features" in r and r["image"] in references:
            groups[(r["method"], r["codec"], r["quality"], r["reconstruction"])].append(r)
    for e in summary:
        rs = groups.get((e["method"], e["codec"], e["quality"], e["reconstruction"]), [])
        dim = (0, 2048)
        fake = np.concatenate([r["_features"] for r in rs]) if rs else np.zeros(dim, np.float32)
        real = np.concatenate([references[r["image"]] for r in rs]) if rs else np.zeros(dim, np.float32)
        e.update(perceptual.set_metrics(real, fake))
        e["patches"] = int(len(fake))


# ---- outputs --------------------------------------------------------------------------------


def write_crops(images: Dict[str, np.ndarray], rows: List[dict], out: Path) -> List[str]:
    """For each image: the original, each codec at its lowest rate, and each classical
    format at the smallest rate not below that codec's (so the classical file is never smaller)."""
    written = []
    by_image: Dict[str, List[dict]] = defaultdict(list)
    for r in rows:
        if "_crop" in r:
            by_image[r["image"]].append(r)
    for name, rs in by_image.items():
        img = images[name]
        top, left, s = crop_box(*img.shape[:2])
        panels = [("original", img[top:top + s, left:left + s])]
        codec_rows = [r for r in rs if r["codec"] not in BASELINE_FORMATS]
        if not codec_rows:
            continue
        target = min(r["bpp"] for r in codec_rows)
        for r in sorted(codec_rows, key=lambda r: r["method"]):
            panels.append((f"{r['method']} {r['bpp']:.3f} bpp", r["_crop"]))
        for fmt in BASELINE_FORMATS:
            cand = sorted((r for r in rs if r["codec"] == fmt), key=lambda r: r["bpp"])
            above = [r for r in cand if r["bpp"] >= target]
            if cand:
                r = above[0] if above else cand[-1]
                panels.append((f"{r['method']} {r['bpp']:.3f} bpp", r["_crop"]))
        path = out / "crops" / f"{Path(name).stem}.png"
        side_by_side(panels, path)
        written.append(str(path))
    return written


def write_results(rows: List[dict], summary: List[dict], meta: dict, out: Path) -> None:
    """results.csv, summary.csv and results.json, each written atomically (a Ctrl-C while writing
    leaves the previous version, never half a file). The perceptual columns appear when measured."""
    import io

    out.mkdir(parents=True, exist_ok=True)
    clean = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
    clean.sort(key=lambda r: (r["image"], r["method"], r["bpp"]))

    def csv_bytes(fields, items) -> bytes:
        buf = io.StringIO(newline="")
        w = csv.DictWriter(buf, fieldnames=fields, restval="")
        w.writeheader()
        w.writerows(items)
        return buf.getvalue().encode()

    measured = {k for r in clean for k in r} | {k for e in summary for k in e}
    fields = FIELDS + [f for f in PERCEPTUAL_FIELDS if f in measured]
    sfields = SUMMARY_FIELDS + [f for f in PERCEPTUAL_FIELDS + SET_FIELDS if f in measured]
    doc = {"meta": meta, "summary": [{k: _finite(v) for k, v in e.items()} for e in summary],
           "images": [{k: _finite(v) for k, v in r.items()} for r in clean]}
    write_bytes(out / "results.csv", csv_bytes(fields, clean))
    write_bytes(out / "summary.csv", csv_bytes(sfields, summary))
    write_bytes(out / "results.json", json.dumps(doc, indent=1).encode())


def print_summary(summary: List[dict], bd: Dict[str, Optional[float]]) -> None:
    extra = [f for f in PERCEPTUAL_FIELDS + list(_perceptual.PER_SET) if any(f in e for e in summary)]

    def num(v, fmt):
        return "n/a" if v is None or math.isnan(v) else format(v, fmt)

    print(f"{'method':<22} {'quality':>8} {'bpp':>8} {'PSNR':>7} {'MS-SSIM':>8} {'HF':>6} "
          + "".join(f"{f.upper():>8} " for f in extra) + f"{'enc s':>7} {'dec s':>7}")
    for e in summary:
        print(f"{e['method']:<22} {e['quality']:>8} {e['bpp']:8.4f} {e['psnr']:7.2f} {num(e['ms_ssim'], '.4f'):>8} "
              f"{num(e.get('hf_ratio', math.nan), '.3f'):>6} "
              + "".join(f"{num(e.get(f, math.nan), '.4f'):>8} " for f in extra)
              + f"{e['encode_s']:7.2f} {e['decode_s']:7.3f}")
    for method, v in bd.items():
        if v is not None and method not in ("WebP", "AVIF"):
            print(f"BD-PSNR of {method} over JPEG: {v:+.2f} dB")


# ---- the journal: every finished task on disk at once ----------------------------------------

JOURNAL = "results.jsonl"


def task_key(**fields) -> str:
    """A task's identity in the journal: what it computes (image, crop, codec and its model,
    quality, reconstructions — or a classical format), so a resumed run redoes a task whose
    inputs changed."""
    return json.dumps(fields, sort_keys=True)


def _finite(x):
    return None if isinstance(x, float) and not math.isfinite(x) else x


def _unfinite(row: dict) -> dict:
    # JSON has no inf: a lossless PSNR is written null and read back as inf (as the rows hold it).
    if "psnr" in row and row["psnr"] is None:
        row["psnr"] = math.inf
    for key in ("ms_ssim", "hf_ratio", *PERCEPTUAL_FIELDS):
        if key in row and row[key] is None:
            row[key] = math.nan
    return row


class Journal:
    """``OUT/results.jsonl``: one line per finished task — its key and rows — appended, flushed
    and fsynced as the task completes, so a kill loses at most the tasks still running.
    Crops travel as PNG files beside it (``crops/parts/``), FID/KID features as ``.npy`` files
    (``features/parts/``)."""

    def __init__(self, out: Path):
        self.out = out
        self.path = out / JOURNAL
        self._f = None

    def load(self) -> Dict[str, List[dict]]:
        """Finished tasks: key → rows (crops read back). A last line cut short by a kill is dropped
        and the file rewritten without it, so appends start on a fresh line."""
        done: Dict[str, List[dict]] = {}
        if not self.path.exists():
            return done
        from PIL import Image

        lines = self.path.read_bytes().split(b"\n")
        good = []
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                key, rows = rec["key"], rec["rows"]
                for r in rows:
                    _unfinite(r)
                    if r.get("_crop_file"):
                        with Image.open(self.out / r.pop("_crop_file")) as im:
                            r["_crop"] = np.asarray(im.convert("RGB"))
                    if r.get("_features_file"):
                        r["_features"] = np.load(self.out / r.pop("_features_file"), allow_pickle=False)
            except (ValueError, KeyError, TypeError, OSError) as exc:
                if i >= len(lines) - 2:  # the last record, cut short by a kill: redo that task
                    break
                raise UsageError(f"{self.path}: line {i + 1} is not a result record ({exc}); "
                                 f"remove the file (or use --force) to start over") from None
            done[key] = rows
            good.append(line)
        data = b"".join(g + b"\n" for g in good)
        if data != self.path.read_bytes():
            tmp = self.path.with_name(self.path.name + ".repair")
            tmp.write_bytes(data)
            os.replace(tmp, self.path)
        return done

    def append(self, key: str, rows: List[dict]) -> None:
        import hashlib
        import io

        if self._f is None:
            self.out.mkdir(parents=True, exist_ok=True)
            self._f = open(self.path, "ab")
        clean = []
        for i, r in enumerate(rows):
            c = {k: _finite(v) for k, v in r.items() if not k.startswith("_")}
            if "_crop" in r:
                rel = Path("crops") / "parts" / f"{hashlib.sha1(key.encode()).hexdigest()[:16]}-{i}.png"
                (self.out / rel).parent.mkdir(parents=True, exist_ok=True)
                write_png(self.out / rel, r["_crop"])
                c["_crop_file"] = str(rel)
            if "_features" in r:
                rel = Path("features") / "parts" / f"{hashlib.sha1(key.encode()).hexdigest()[:16]}-{i}.npy"
                (self.out / rel).parent.mkdir(parents=True, exist_ok=True)
                buf = io.BytesIO()
                np.save(buf, np.asarray(r["_features"], np.float32), allow_pickle=False)
                write_bytes(self.out / rel, buf.getvalue())
                c["_features_file"] = str(rel)
            clean.append(c)
        self._f.write(json.dumps({"key": key, "rows": clean}).encode() + b"\n")
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None


# ---- the command ------------------------------------------------------------------------------


class _StopOnInterrupt:
    """While active, SIGINT (Ctrl-C) only sets an event that the result loop checks every 0.1 s:
    the interrupt can never land inside the Dask client or a journal write and be lost there."""

    def __enter__(self):
        import signal
        import threading

        self.event = threading.Event()
        self._old = None
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, lambda *_: self.event.set())
        return self.event

    def __exit__(self, *exc):
        import signal

        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
        return False



def list_images(directory: Path, limit: Optional[int]) -> List[Path]:
    if not directory.exists():
        raise FileNotFoundError(f"{directory}: no such directory")
    if directory.is_file():
        files = [directory]
    else:
        files = sorted(p for p in directory.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if limit is not None:
        files = files[:limit]
    if not files:
        raise UsageError(f"{directory}: no images ({', '.join(IMAGE_SUFFIXES)})")
    return files


def center_crop(image: np.ndarray, size: Optional[int]) -> np.ndarray:
    if size is None:
        return image
    h, w = image.shape[:2]
    sh, sw = min(size, h), min(size, w)
    top, left = (h - sh) // 2, (w - sw) // 2
    return np.ascontiguousarray(image[top:top + sh, left:left + sw])


def make_client(scheduler: str, workers: int, threads: int):
    """A Dask client: a local cluster of process workers ('processes', the default) or of
    threads in this process ('threads'), or a connection to a running scheduler address."""
    from distributed import Client, LocalCluster

    if scheduler in ("processes", "local", "threads"):
        cluster = LocalCluster(n_workers=workers, threads_per_worker=threads, processes=scheduler != "threads",
                               dashboard_address=None, silence_logs=40)
        return Client(cluster), cluster
    return Client(scheduler, timeout="30s"), None


def check_perceptual(args) -> Optional["_perceptual.Perceptual"]:
    """--perceptual / --perceptual-weights / --fid-patch, checked before any work: metric names,
    PyTorch installed, every weight file present (a usage error naming the missing file)."""
    names = split_list(args.perceptual)
    if not names:
        if args.perceptual_weights is not None:
            raise UsageError("--perceptual-weights without --perceptual (which metrics?)")
        return None
    try:
        return _perceptual.Perceptual.from_dir(names, args.perceptual_weights, args.fid_patch)
    except ModuleNotFoundError:
        raise UsageError('--perceptual needs PyTorch: pip install "chansim[perceptual]"') from None
    except (FileNotFoundError, ValueError) as exc:
        raise UsageError(str(exc)) from None


def run_eval(args) -> int:
    from tqdm.auto import tqdm

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a directory")
    specs = unique(check_codec_spec(c) for c in split_list(args.codec))
    if not specs:
        raise UsageError("--codec names no codec")
    recs = split_list(args.reconstruction) or [None]
    baselines = [b.lower() for b in split_list(args.baselines)]
    for b in baselines:
        if b not in BASELINE_FORMATS:
            raise UsageError(f"unknown baseline {b!r}; choose from {', '.join(BASELINE_FORMATS)}")
    files = list_images(Path(args.dir), args.limit)
    perceptual = check_perceptual(args)
    import distributed  # noqa: F401  (before any work: a missing extra is a one-line error naming it)

    have = available_baselines()
    skipped = [b for b in baselines if b not in have]
    baselines = [b for b in baselines if b in have]
    # Codecs, qualities and reconstructions are validated here, before any worker starts.
    plan = []
    for spec in specs:
        codec = load_codec(spec)
        kinds = unique(check_reconstruction(codec, r) for r in recs)
        qs = split_list(args.qualities) or [str(q) for q in codec.qualities]
        qs = [str(parse_quality(codec, q)) for q in qs]
        plan.append((spec, codec, qs, kinds))
    images = {p.name: center_crop(read_image(p), args.crop) for p in files}
    n_images = len(images)
    # Every task, keyed; the journal of an earlier run says which are done.
    tasks = []
    # Perceptual metrics change a task's rows, so their settings join its key (absent without them,
    # so the keys of a run without --perceptual are those of earlier versions).
    pkey = {} if perceptual is None else {"perceptual": perceptual.key()}
    ref_keys = set()
    for k, name in enumerate(images):
        keep = k < args.crops
        for spec, codec, qs, kinds in plan:
            for i, q in enumerate(qs):
                key = task_key(task="codec", image=name, crop=args.crop, codec=spec, model=codec.model_id,
                               quality=q, reconstructions=kinds, crop_panel=keep and i == 0, **pkey)
                tasks.append((key, name, (codec_task, spec, q, kinds, keep and i == 0, perceptual)))
        for fmt in baselines:
            key = task_key(task="baseline", image=name, crop=args.crop, format=fmt, qualities=BASELINE_QUALITIES,
                           crop_panel=keep, **pkey)
            tasks.append((key, name, (baseline_task, fmt, BASELINE_QUALITIES, keep, perceptual)))
        if perceptual is not None and perceptual.per_set:
            key = task_key(task="reference", image=name, crop=args.crop, **pkey)
            ref_keys.add(key)
            tasks.append((key, name, (reference_task, perceptual)))
    journal = Journal(out)
    if journal.path.exists() and not args.resume:
        if not args.force:
            raise UsageError(f"{journal.path} holds results of an earlier run; use --resume to continue it "
                             f"or --force to start over")
        journal.path.unlink()
    done = journal.load() if args.resume else {}
    wanted = {key for key, _, _ in tasks}
    rows: List[dict] = [r for key, rs in done.items() if key in wanted - ref_keys for r in rs]
    # The originals' patch features (FID / KID's real set), apart from the result rows.
    references: Dict[str, np.ndarray] = {r["image"]: r["_features"] for key, rs in done.items() if key in ref_keys
                                         for r in rs}
    todo = [t for t in tasks if t[0] not in done]
    n_done = len(tasks) - len(todo)
    if args.resume and not args.quiet:
        print(f"resuming: {n_done} of {len(tasks)} tasks done in {journal.path}", file=sys.stderr)
    t_start = time.perf_counter()
    pin = None if args.scheduler == "threads" else args.threads
    interrupted = False
    workers, n_new = 0, 0
    client = cluster = None
    try:
        if todo:
            client, cluster = make_client(args.scheduler, args.workers, args.threads)
            remote = {}
            futures = {}
            for key, name, (fn, *fargs) in todo:
                if name not in remote:
                    remote[name] = client.scatter(images[name])
                futures[client.submit(fn, name, remote[name], *fargs, pin, pure=False)] = key
            # done/total and an ETA from the mean rate of this run (smoothing=0: steady on uneven tasks).
            with tqdm(total=len(tasks), initial=n_done, desc=f"eval on {n_images} images", unit="task",
                      disable=args.quiet, file=sys.stderr, smoothing=0) as bar, _StopOnInterrupt() as stop:
                pending = dict(futures)
                while pending:
                    finished = [f for f in pending if f.done()]
                    if stop.is_set():
                        raise KeyboardInterrupt
                    if not finished:
                        stop.wait(0.1)
                        continue
                    for fut in finished:
                        result = fut.result()
                        key = pending.pop(fut)
                        journal.append(key, result)
                        if key in ref_keys:
                            references.update((r["image"], r["_features"]) for r in result)
                        else:
                            rows.extend(result)
                        n_new += 1
                        bar.update(1)
            workers = len(client.scheduler_info().get("workers", {}))
    except KeyboardInterrupt:
        interrupted = True
    finally:
        journal.close()
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    wall = time.perf_counter() - t_start
    summary = summarize(rows)
    if perceptual is not None and perceptual.per_set:
        add_set_metrics(summary, rows, references, perceptual)
    bd = bd_table(summary)
    meta = dict(chansim=version(), python=platform.python_version(), machine=platform.machine(),
                processor=cpu_name(), cpus=os.cpu_count(), scheduler=args.scheduler, workers=workers,
                threads_per_worker=args.threads, images=sorted(images), crop=args.crop, wall_s=wall,
                codecs=[dict(spec=spec, name=c.name, model_id=c.model_id, qualities=qs, reconstructions=kinds)
                        for spec, c, qs, kinds in plan],
                baselines=baselines, baselines_unavailable=skipped, bd_psnr_over_jpeg=bd,
                bd_method="PCHIP over log rate (chansim.evaluation.bd_psnr)",
                tasks=len(tasks), tasks_done=n_done + n_new, partial=interrupted, resumed_tasks=n_done,
                journal=JOURNAL, hf_ratio="high-frequency energy ratio above 0.25 cycles/pixel, reconstruction over "
                                          "original (chansim.metrics.hf_energy_ratio)")
    if perceptual is not None:
        meta["perceptual"] = dict(metrics=list(perceptual.metrics), weights=dict(sorted(perceptual.files.items())),
                                  fid_patch=perceptual.patch if perceptual.per_set else None,
                                  protocol="LPIPS v0.1 (AlexNet) and DISTS on whole images; FID and KID on the "
                                           "2048 pool3 features of the FID Inception-v3 over non-overlapping "
                                           "fid_patch-square patches, reconstructions against originals")
    write_results(rows, summary, meta, out)
    if interrupted:
        print(f"chansim eval: interrupted after {meta['tasks_done']} of {len(tasks)} tasks; partial report in "
              f"{out} (results.csv, summary.csv, results.json); run again with --resume to finish",
              file=sys.stderr)
        return 130
    max_bpp = max([e["bpp"] for e in summary if e["codec"] not in BASELINE_FORMATS] or [2.0]) * 1.15
    plots = [p for p, m, t in ((out / "rd_psnr.png", "psnr", "PSNR"), (out / "rd_ms_ssim.png", "ms_ssim", "MS-SSIM"))
             if plot_rd(summary, p, m, f"{t} on {n_images} images ({Path(args.dir).name})", max_bpp)]
    crops = write_crops(images, rows, out)
    if not args.quiet:
        print_summary(summary, bd)
        if skipped:
            print(f"skipped (not supported by this Pillow): {', '.join(skipped)}")
        print(f"{len(rows)} rows in {wall:.1f} s on {workers} workers -> {out / 'results.csv'}, "
              f"{out / 'summary.csv'}, {out / 'results.json'}, {len(plots)} plots, {len(crops)} crops")
    return 0


def add_parser(sub, common) -> None:
    p = sub.add_parser("eval", parents=[common], help="rate-distortion evaluation on a directory of images",
                       description=" ".join(__doc__.replace("``", "").split("\n\n", 1)[1].split()))
    p.add_argument("dir", metavar="DIR", help="directory of images (PNG, JPEG, TIFF, PPM, …) or one image")
    p.add_argument("--codec", default=default_codec(),
                   help=f"comma-separated codecs: {', '.join(registered_codecs())} or package.module:Class "
                        f"(default {default_codec()})")
    p.add_argument("--out", required=True, help="output directory for CSV, JSON, plots and crops")
    p.add_argument("--qualities", default=None, help="comma-separated qualities (default: all of each codec's)")
    p.add_argument("--reconstruction", default=None,
                   help="comma-separated reconstructions to decode each file with (default: each codec's first; "
                        "chansim compress --help lists them)")
    p.add_argument("--baselines", default="jpeg,webp,avif",
                   help="classical formats measured in the same run (default jpeg,webp,avif; '' for none)")
    p.add_argument("--scheduler", default="processes",
                   help="'processes' (default: a local Dask cluster of process workers), 'threads', or the "
                        "address of a running Dask scheduler (tcp://host:8786)")
    p.add_argument("--workers", type=int_range(1), default=max(1, (os.cpu_count() or 2)), help="local workers (default: CPUs)")
    p.add_argument("--threads", type=int_range(1), default=1, help="threads per worker (default 1)")
    p.add_argument("--limit", type=int_range(1), default=None, help="use only the first N images (sorted by name)")
    p.add_argument("--crop", type=int_range(1), default=None, metavar="S",
                   help="evaluate the central S×S crop of each image (faster)")
    p.add_argument("--resume", action="store_true",
                   help="continue an earlier run into the same --out: tasks recorded in OUT/results.jsonl are "
                        "not run again")
    p.add_argument("-f", "--force", action="store_true",
                   help="start over, discarding the results of an earlier run in --out")
    p.add_argument("--crops", type=int_range(0), default=4, metavar="N",
                   help="write side-by-side crops at the lowest rate for the first N images (default 4)")
    p.add_argument("--perceptual", default=None, metavar="LIST",
                   help="also measure these perceptual metrics: comma-separated lpips, dists (per image), fid, kid "
                        "(per method and quality, over image patches); needs chansim[perceptual] and local weights")
    p.add_argument("--perceptual-weights", default=None, metavar="DIR",
                   help="directory holding the weight files (or a TORCH_HOME); default $TORCH_HOME/hub/checkpoints. "
                        "Nothing is downloaded: a missing file is an error naming it")
    p.add_argument("--fid-patch", type=int_range(16), default=_perceptual.FID_PATCH, metavar="S",
                   help=f"side of the non-overlapping patches FID and KID use (default {_perceptual.FID_PATCH})")
    p.set_defaults(func=run_eval)
