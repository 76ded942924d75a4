"""``chansim compress`` and ``chansim decompress``: one image ↔ one chansim file, or many files
into a directory (``--out-dir``, :mod:`chansim.cli.batch`).

Every argument is checked before any work and nothing is written before the work
succeeded: outputs go to a temporary file in the target directory, renamed into place.
"""

from __future__ import annotations

import argparse
import importlib
import time
from pathlib import Path

from . import batch
from .common import (Ticker, UsageError, check_codec_spec, check_output, check_reconstruction, codecs_help,
                     default_codec, float_range, image_format, int_range, is_stdio, load_codec, load_image,
                     parse_quality, read_file, registered_codecs, replace_args, reserved_stdout, seed_type, warn,
                     write_bytes, write_image, WRITE_FORMATS)


def _limit(module: str, name: str):
    """A codec's limit for :func:`~.common.int_range`, read when the option is given: the codec
    modules are not imported to build the parser (NTC's needs PyTorch)."""
    return lambda: getattr(importlib.import_module(module, __package__), name)


def _label(path, stream: str) -> str:
    return stream if is_stdio(path) else str(path)


def _single(args, command: str) -> None:
    """IN OUT (no --out-dir): sets ``args.input`` / ``args.output``."""
    if len(args.paths) != 2:
        raise UsageError(f"{command} takes IN OUT, or several inputs with --out-dir DIR "
                         f"(got {len(args.paths)} path{'s' if len(args.paths) != 1 else ''})")
    args.input, args.output = args.paths


def run_compress(args) -> int:
    spec = check_codec_spec(args.codec)
    if args.lam is not None and not args.check:
        raise UsageError("--lam weighs the reconstruction that --check decodes: give --check "
                         "--reconstruction interp with it")
    _check_lam(args)
    if args.out_dir is not None:
        pairs = batch.plan(args.paths, args.out_dir, ".chsm", force=args.force, mkdir=args.mkdir)
        codec = load_codec(spec)    # quality, reconstruction and options are checked once, before any file
        parse_quality(codec, args.quality)
        check_reconstruction(codec, args.reconstruction)
        _encoder_options(codec, args)
        _decoder_options(codec, args)
        return batch.run(pairs, compress_one, args, args.jobs, "compress")
    _single(args, "compress")
    out = check_output(args.output, [args.input], force=args.force, mkdir=args.mkdir)
    # With OUT = "-", standard output carries the file alone: messages and progress go to stderr.
    with reserved_stdout(is_stdio(out)) as stdout:
        line = _compress(args, spec, out, stdout)
        if not args.quiet:
            print(line)  # on stderr when the file went to stdout
    return 0


def compress_one(args, src, out) -> str:
    """One file of a batch: the result line."""
    return _compress(replace_args(args, input=str(src), output=str(out)), check_codec_spec(args.codec), out, None)


def _compress(args, spec, out, stdout) -> str:
    import numpy as np

    from ..codecs.container import FLAG_GRAY
    from ..codecs.image import to_gray
    from ..codecs.tiling import with_flags
    from ..metrics import bpp, psnr

    loaded = load_image(args.input)  # before the codecs' imports (PyTorch): bad input fails fast
    for note in loaded.notes:
        warn(note, args.quiet)
    image = loaded.array
    codec = load_codec(spec)
    quality = parse_quality(codec, args.quality)
    reconstruction = check_reconstruction(codec, args.reconstruction)
    options = _encoder_options(codec, args)
    decoder_options = _decoder_options(codec, args)   # refused before the encoding, not after it
    src, dst = _label(args.input, "stdin"), _label(args.output, "stdout")
    t0 = time.perf_counter()
    name = "stdin" if is_stdio(args.input) else Path(args.input).name
    with Ticker(f"compressing {name} ({codec.name}, quality {quality})", enabled=not args.quiet):
        # Images larger than the codec's tile edge are coded as tiled files (docs/format.md §6.1).
        data = codec.compress(image, quality, seed=args.seed, **options,
                              **({} if args.tile is None else {"tile": args.tile}))
    if loaded.gray:  # one container flag: decompress returns one channel (docs/format.md §6)
        data = with_flags(data, FLAG_GRAY)
    seconds = time.perf_counter() - t0
    h, w = image.shape[:2]
    line = (f"{src} ({w}×{h}{', grayscale' if loaded.gray else ''}) -> {dst}: {len(data):,} bytes, "
            f"{bpp(data, h, w):.4f} bpp, {codec.name} quality {quality}, {seconds:.2f} s")
    if args.check:
        # Decoding here is what the receiver will do; its PSNR is the one the rate buys.
        t0 = time.perf_counter()
        with Ticker("decoding to check", enabled=not args.quiet):
            back = np.asarray(codec.decompress(data, reconstruction, **decoder_options, **_workers(args, data)))
        if back.shape != image.shape:
            raise RuntimeError(f"decoded shape {back.shape} differs from the input {image.shape}")
        score = psnr(image[..., 0], to_gray(back)) if loaded.gray else psnr(image, back)
        line += f"; decoded in {time.perf_counter() - t0:.2f} s, PSNR {score:.2f} dB"
    write_bytes(out, data, stdout)
    return line


def run_decompress(args) -> int:
    if args.codec is not None:
        check_codec_spec(args.codec)
    if args.gray and args.rgb:
        raise UsageError("--gray and --rgb exclude each other")
    _check_lam(args)
    if args.out_dir is not None:
        suffix = "." + args.format.lower().lstrip(".")
        image_format(Path("image" + suffix))
        pairs = batch.plan(args.paths, args.out_dir, suffix, force=args.force, mkdir=args.mkdir)
        if args.codec is not None:  # one codec for every file: its options are checked once, before any file
            codec = load_codec(args.codec)
            check_reconstruction(codec, args.reconstruction)
            _decoder_options(codec, args)
        return batch.run(pairs, decompress_one, args, args.jobs, "decompress")
    _single(args, "decompress")
    out = check_output(args.output, [args.input], force=args.force, mkdir=args.mkdir)
    image_format(out)
    with reserved_stdout(is_stdio(out)) as stdout:
        line = _decompress(args, out, stdout)
        if not args.quiet:
            print(line)
    return 0


def decompress_one(args, src, out) -> str:
    """One file of a batch: the result line."""
    return _decompress(replace_args(args, input=str(src), output=str(out)), out, None)


def _decompress(args, out, stdout) -> str:
    import numpy as np

    from ..codecs.container import FLAG_GRAY
    from ..codecs.image import to_gray
    from ..codecs.tiling import summary, truncate
    from ..errors import FormatError

    src, dst = _label(args.input, "stdin"), _label(args.output, "stdout")
    data = read_file(args.input)
    try:
        # Anything that is not a whole, valid chansim file (plain or tiled) stops here.
        codec_name, flags, n_sections = summary(data)[:3]
    except FormatError as exc:
        raise FormatError(f"{src}: {exc}") from None
    codec = load_codec(args.codec or codec_name)
    reconstruction = check_reconstruction(codec, args.reconstruction)
    options = _decoder_options(codec, args)
    gray = (args.gray or bool(flags & FLAG_GRAY)) and not args.rgb
    t0 = time.perf_counter()
    if args.preview_steps is None:
        k, what = n_sections, "full"
    else:
        k = min(args.preview_steps, n_sections)
        # A prefix of the sections is itself a valid file (same header, fresh CRC): exactly
        # what a receiver holding only the first K steps' bytes decodes.
        data = truncate(data, k)
        what = f"preview after {k} of {n_sections} steps"
    name = "stdin" if is_stdio(args.input) else Path(args.input).name
    with Ticker(f"decoding {name}", enabled=not args.quiet):
        image = np.asarray(codec.decompress(data, reconstruction, **options, **_workers(args, data)))
    if gray:
        image = to_gray(image)
    write_image(out, image, stdout)
    h, w = image.shape[:2]
    return (f"{src} -> {dst} ({w}×{h}{', grayscale' if gray else ''}, {what}, "
            f"{8 * len(data) / (h * w):.4f} bpp used, {time.perf_counter() - t0:.2f} s)")


def _encoder_options(codec, args) -> dict:
    """Codec-specific encoder keywords asked for on the command line (``--refine``, ``--temperature``),
    checked against the loaded codec before any file is read or written."""
    options = {} if not args.refine else {"refine": args.refine}
    if args.temperature is not None:
        options["temperature"] = args.temperature
    options = _accepted(codec, "compress", options, "encoder option")
    if "temperature" in options:
        try:
            codec.check_temperature(options["temperature"])
        except ValueError as e:
            raise UsageError(f"--temperature: {e}") from None
    return options


def _decoder_options(codec, args) -> dict:
    """Codec-specific decoder keywords asked for on the command line (today ``--lam``)."""
    return _accepted(codec, "decompress", {} if args.lam is None else {"lam": args.lam}, "decoder option")


def _accepted(codec, method: str, options: dict, what: str) -> dict:
    """``options``, refused by name if ``codec.<method>`` does not take one of them: the contract
    (:class:`~chansim.codecs.base.Codec`) has no such keywords, a codec adds its own."""
    import inspect

    accepted = inspect.signature(getattr(type(codec), method)).parameters
    for key in options:
        if key not in accepted:
            raise UsageError(f"--{key}: the {codec.name} codec has no such {what}")
    return options


def _temperature(text: str):
    """argparse type of ``--temperature``: ``match`` or a positive finite number (its range is the codec's)."""
    import argparse
    import math

    if text == "match":
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'match', got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number or 'match', got {text!r}")
    return value


def _check_lam(args) -> None:
    """``--lam`` is the λ of the "interp" reconstruction alone (X̂_λ = λ X̂_realistic + (1 − λ) X̂_MMSE):
    refused with any other, from the arguments alone, so before any file is read or written.
    "interp" must be named: whether a bare ``--lam`` meant anything would hang on each codec's default."""
    if args.lam is not None and (args.reconstruction or "").strip() != "interp":
        given = "no --reconstruction" if args.reconstruction is None else f"--reconstruction {args.reconstruction}"
        raise UsageError(f"--lam is the λ of --reconstruction interp (λ × realistic + (1 − λ) × MMSE); "
                         f"got {given}")


def _workers(args, data) -> dict:
    """``workers=`` for a tiled file when asked for (a plain file decodes in one piece)."""
    from ..codecs.tiling import is_tiled

    workers = getattr(args, "workers", None)
    return {"workers": workers} if workers and workers > 1 and is_tiled(data) else {}


def _output_options(p) -> None:
    p.add_argument("-f", "--force", action="store_true", help="overwrite an existing output file")
    p.add_argument("-p", "--mkdir", action="store_true", help="create the output's directory if missing")
    p.add_argument("--out-dir", default=None, metavar="DIR",
                   help="several inputs: write each to DIR/<input name without suffix>.<suffix>, one result line "
                        "each; a failed file is reported and the others still run (exit 2 if any failed)")
    p.add_argument("--jobs", type=int_range(1), default=1, metavar="N",
                   help="with --out-dir, N files at a time on a local Dask cluster of process workers "
                        "(needs chansim[eval]; default 1: one after another in this process)")


def add_parsers(sub, common) -> None:
    names = ", ".join(registered_codecs())
    p = sub.add_parser("compress", parents=[common], help="compress an image into a chansim file",
                       usage="%(prog)s [options] IN OUT\n       %(prog)s [options] IN [IN ...] --out-dir DIR",
                       description="Compress a PNG / JPEG / TIFF / PPM / WebP image with one of the codecs. "
                                   "A grayscale image is coded as R = G = B and marked in the file, so "
                                   "decompress returns one channel; 16-bit samples keep their top 8 bits "
                                   "(with a warning).",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.epilog_fn = codecs_help  # the codecs' qualities and reconstructions, computed when --help is shown
    p.add_argument("paths", metavar="PATH", nargs="+",
                   help="IN OUT: the input image (- reads standard input) and the output chansim file (e.g. "
                        "image.chsm; - writes standard output, messages go to standard error); with --out-dir: "
                        "one or more input images, each written to DIR/<name>.chsm")
    p.add_argument("--codec", default=default_codec(),
                   help=f"{names} (default {default_codec()}), or package.module:Class for a Codec of your own")
    p.add_argument("--quality", default=None,
                   help="one of the codec's qualities (listed below, lowest rate first); default: the codec's")
    p.add_argument("--reconstruction", default=None,
                   help="reconstruction used by --check (listed below; default: the codec's first)")
    p.add_argument("--seed", type=seed_type, default=None,
                   help="shared-randomness seed < 2**64 (default: derived from the image and model)")
    p.add_argument("--check", action="store_true", help="decode the file again and report its PSNR")
    p.add_argument("--lam", type=float_range(0, 1), default=None, metavar="λ",
                   help="with --check --reconstruction interp: λ in [0, 1] of λ × realistic + (1 − λ) × MMSE, "
                        "for codecs whose decoder takes it (diffc; ntc with a generative decoder); default: the "
                        "codec's (0.5)")
    p.add_argument("--refine", type=int_range(0, _limit("..codecs.ntc", "MAX_REFINE")), default=0, metavar="N",
                   help="ntc: N gradient steps refining the latents for this image (a lower rate-distortion loss: "
                        "a smaller file, a higher PSNR or both; about 0.5 s per step at 768x512 on two cores; "
                        "decoding unchanged); default 0")
    p.add_argument("--temperature", type=_temperature, default=None, metavar="T",
                   help="ntc with a generative decoder: the sampling temperature written into the file for the "
                        "generative reconstruction — a number in (0, 2) or 'match' (the encoder tries up to 6 "
                        "draws and keeps the one whose fine detail is nearest the original's (within 5%%) at no "
                        "more than twice the MMSE image's squared error; slower encoding); "
                        "default: the decoder's calibrated one, nothing written")
    tile = int_range(_limit("..codecs.tiling", "MIN_TILE"), _limit("..codecs.container", "MAX_SIDE"),
                     off=(0, "no tiling"))
    p.add_argument("--tile", type=tile, default=None, metavar="E",
                   help="tile edge in pixels for large images (default: the codec's, 1024): an image needing more "
                        "than one E×E tile is coded as independent tiles, bounding memory; 0 = never tile")
    p.add_argument("--workers", type=int_range(1), default=1, metavar="N",
                   help="with --check, decode N tiles of a tiled file at a time (default 1)")
    _output_options(p)
    p.set_defaults(func=run_compress)

    p = sub.add_parser("decompress", parents=[common], help="decode a chansim file to an image",
                       usage="%(prog)s [options] IN OUT\n       %(prog)s [options] IN [IN ...] --out-dir DIR",
                       description="Decode a chansim file (any codec; the file names it) into a lossless image "
                                   f"whose format follows OUT's suffix ({', '.join(WRITE_FORMATS)}).")
    p.add_argument("paths", metavar="PATH", nargs="+",
                   help="IN OUT: the chansim file (- reads standard input) and the output image (.png, .tif, "
                        ".webp (lossless), .ppm, .bmp; - writes a PNG to standard output); with --out-dir: one or "
                        "more chansim files, each written to DIR/<name>.<--format>")
    p.add_argument("--format", default="png", metavar="SUFFIX",
                   help=f"with --out-dir, the image format of the outputs: {', '.join(s.lstrip('.') for s in WRITE_FORMATS)} "
                        "(default png)")
    p.add_argument("--preview-steps", type=int_range(0), default=None, metavar="K",
                   help="decode only the first K steps (sections): the preview a prefix of the file gives; "
                        "0 = no coded step")
    p.add_argument("--reconstruction", default=None,
                   help="how to reconstruct: one of the codec's reconstructions (chansim compress --help "
                        "lists them); default: the codec's first")
    p.add_argument("--lam", type=float_range(0, 1), default=None, metavar="λ",
                   help="with --reconstruction interp: λ in [0, 1] of λ × realistic + (1 − λ) × MMSE, from 1 (a "
                        "realistic sample) to 0 (the MMSE estimate), for codecs whose decoder takes it (diffc; ntc "
                        "with a generative decoder); default: the codec's (0.5)")
    p.add_argument("--codec", default=None,
                   help="codec override (a registered name or package.module:Class); by default the file's")
    p.add_argument("--gray", "--grey", action="store_true",
                   help="write a one-channel image (the rounded mean of R, G, B); the default for files whose "
                        "source was grayscale")
    p.add_argument("--rgb", action="store_true", help="write three channels even when the source was grayscale")
    p.add_argument("--workers", type=int_range(1), default=1, metavar="N",
                   help="decode N tiles of a tiled file (a large photo) at a time in threads; the image is the "
                        "same for every N, peak memory grows with N (default 1)")
    _output_options(p)
    p.set_defaults(func=run_decompress)
