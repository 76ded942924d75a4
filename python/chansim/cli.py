"""The ``chansim`` command line: compress, decompress, eval, bench, demo.

Bad input (a missing file, an unreadable image, a file that is not a valid chansim
file) prints one line on stderr and exits with status 2; ``--debug`` shows the
traceback instead. See docs/cli.md.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, Optional

#: Codec names on the command line → the class whose ``pretrained()`` gives the default model.
CODECS = {"uqdm": "chansim.codecs:UQDM", "diffc": "chansim.codecs:DiffC"}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".ppm", ".pgm", ".pnm", ".bmp", ".webp")

_codec_cache: Dict[str, Any] = {}


class UsageError(ValueError):
    """Bad command-line input (reported in one line, exit status 2)."""


# ---- codecs --------------------------------------------------------------------------


def load_codec(spec: str):
    """A codec object from a name (``uqdm``, ``diffc``) or ``package.module:Attribute``.

    The attribute is either a codec object or a class/factory; a class with a
    ``pretrained()`` classmethod is built with it (the model shipped in the package),
    anything else is called without arguments. Loaded codecs are cached per process.
    """
    if spec in _codec_cache:
        return _codec_cache[spec]
    target = CODECS.get(spec.lower(), spec)
    if ":" not in target:
        raise UsageError(f"unknown codec {spec!r}; choose one of {', '.join(CODECS)} or give package.module:Class")
    module_name, attr = target.split(":", 1)
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise UsageError(f"cannot load codec {spec!r}: {exc}") from None
    if inspect.isclass(obj) and hasattr(obj, "pretrained"):
        obj = obj.pretrained()
    elif inspect.isclass(obj) or (callable(obj) and not hasattr(obj, "compress")):
        obj = obj()
    for name in ("qualities", "compress", "decompress", "decompress_progressive"):
        if not hasattr(obj, name):
            raise UsageError(f"codec {spec!r} has no {name!r}: it does not implement the codec API")
    _codec_cache[spec] = obj
    return obj


def codec_name_of(data: bytes) -> str:
    """The codec that wrote a chansim file (FormatError if it is not a valid one)."""
    from .codecs.container import unpack

    return unpack(data).codec


def parse_quality(codec, text: Optional[str]):
    """``--quality`` as the codec's own value type; the middle of ``codec.qualities`` by default."""
    qualities = list(codec.qualities)
    if text is None:
        return qualities[len(qualities) // 2]
    for q in qualities:
        if str(q) == text:
            return q
        try:
            if isinstance(q, (int, float)) and not isinstance(q, bool) and float(text) == float(q):
                return q
        except ValueError:
            pass
    if text == "lossless" and accepts(codec.compress, "lossless"):
        return text
    raise UsageError(f"quality {text!r} is not one of this codec's qualities: {', '.join(map(str, qualities))}"
                     + (" or lossless" if accepts(codec.compress, "lossless") else ""))


def accepts(func, name: str) -> bool:
    """Whether ``func`` takes a keyword argument ``name`` (or **kwargs)."""
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == name or p.kind is p.VAR_KEYWORD for p in params)


def decode_kwargs(codec, reconstruction: Optional[str]) -> Dict[str, Any]:
    if reconstruction is None:
        return {}
    if not accepts(codec.decompress, "reconstruction"):
        raise UsageError(f"{type(codec).__name__} has no choice of reconstruction")
    return {"reconstruction": reconstruction}


# ---- images --------------------------------------------------------------------------


def read_image(path) -> "Any":
    """uint8[H, W, 3] from PNG / JPEG / TIFF / PPM / … (EXIF orientation applied, alpha dropped)."""
    import numpy as np
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise UsageError(f"{path} is a directory, not an image")
    try:
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img)
            if img.mode in ("I;16", "I;16B", "I;16L", "I"):
                # 16-bit greyscale: keep the top 8 bits rather than let convert() clip.
                arr = np.asarray(img, dtype=np.uint32) >> (8 if img.mode != "I" else 0)
                arr = np.clip(arr, 0, 255).astype(np.uint8)
                return np.ascontiguousarray(np.repeat(arr[..., None], 3, axis=2))
            return np.ascontiguousarray(np.asarray(img.convert("RGB"), dtype=np.uint8))
    except UnidentifiedImageError:
        raise UsageError(f"{path}: not an image Pillow can read (PNG, JPEG, TIFF, PPM, …)") from None
    except Image.DecompressionBombError as exc:
        raise UsageError(f"{path}: {exc}") from None
    except (OSError, SyntaxError) as exc:  # Pillow reports broken image data as either
        raise UsageError(f"{path}: cannot decode image ({exc})") from None


def write_png(path, image) -> None:
    from PIL import Image

    path = Path(path)
    if path.parent != Path("."):
        path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, format="PNG")


class Ticker:
    """An elapsed-time progress line (tqdm) for one long call that reports no progress itself.

    Appears only when the call has run for more than ``after`` seconds, so fast calls
    print nothing.
    """

    def __init__(self, desc: str, after: float = 1.0, enabled: bool = True):
        self.desc, self.after, self.enabled = desc, after, enabled
        self._stop = threading.Event()
        self._thread = None

    def _run(self):
        if self._stop.wait(self.after):
            return
        from tqdm.auto import tqdm

        with tqdm(desc=self.desc, bar_format="{desc}: {elapsed}", leave=False, file=sys.stderr) as bar:
            bar.start_t -= self.after  # count from the start of the call, not from when the line appeared
            while not self._stop.wait(0.2):
                bar.refresh()

    def __enter__(self):
        if self.enabled:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return False


# ---- compress / decompress --------------------------------------------------------------


def _compress(args) -> int:
    import numpy as np

    image = read_image(args.input)  # before the codecs' imports (PyTorch): bad input fails fast
    from .codecs.image import bpp, psnr

    codec = load_codec(args.codec)
    quality = parse_quality(codec, args.quality)
    kwargs = {"quality": quality}
    if args.seed is not None:
        if not accepts(codec.compress, "seed"):
            raise UsageError(f"{type(codec).__name__}.compress takes no seed")
        kwargs["seed"] = args.seed
    dkw = decode_kwargs(codec, args.reconstruction)
    t0 = time.perf_counter()
    with Ticker(f"compressing {Path(args.input).name} ({args.codec}, quality {quality})", enabled=not args.quiet):
        data = codec.compress(image, **kwargs)
    seconds = time.perf_counter() - t0
    out = Path(args.output)
    if out.parent != Path("."):
        out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    h, w = image.shape[:2]
    line = (f"{args.input} ({w}×{h}) -> {args.output}: {len(data):,} bytes, {bpp(data, h, w):.4f} bpp, "
            f"{args.codec} quality {quality}, {seconds:.2f} s")
    if args.check:
        # Decoding here is what the receiver will do; its PSNR is the one the rate buys.
        t0 = time.perf_counter()
        with Ticker("decoding to check", enabled=not args.quiet):
            back = codec.decompress(data, **dkw)
        if back.shape != image.shape:
            raise RuntimeError(f"decoded shape {back.shape} differs from the input {image.shape}")
        line += f"; decoded in {time.perf_counter() - t0:.2f} s, PSNR {psnr(image, np.asarray(back)):.2f} dB"
    if not args.quiet:
        print(line)
    return 0


def _read_file(path) -> bytes:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise UsageError(f"{path} is a directory, not a chansim file")
    return path.read_bytes()


def _decompress(args) -> int:
    import numpy as np

    from .codecs.container import truncate, unpack

    from .errors import FormatError

    data = _read_file(args.input)
    try:
        container = unpack(data)  # anything that is not a whole, valid chansim file stops here
    except FormatError as exc:
        raise FormatError(f"{args.input}: {exc}") from None
    codec = load_codec(args.codec or container.codec)
    dkw = decode_kwargs(codec, args.reconstruction)
    n_sections = len(container.sections)
    t0 = time.perf_counter()
    if args.preview_steps is None:
        k, what = n_sections, "full"
    else:
        if not 0 <= args.preview_steps:
            raise UsageError("--preview-steps must be ≥ 0")
        k = min(args.preview_steps, n_sections)
        # A prefix of the sections is itself a valid file (same header, fresh CRC): exactly
        # what a receiver holding only the first K steps' bytes decodes.
        data = truncate(data, k)
        what = f"preview after {k} of {n_sections} steps"
    with Ticker(f"decoding {Path(args.input).name}", enabled=not args.quiet):
        image = np.asarray(codec.decompress(data, **dkw))
    bits = 8 * len(data)
    write_png(args.output, image)
    if not args.quiet:
        h, w = image.shape[:2]
        print(f"{args.input} -> {args.output} ({w}×{h}, {what}, {bits / (h * w):.4f} bpp used, "
              f"{time.perf_counter() - t0:.2f} s)")
    return 0


# ---- parser -------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS keeps a --debug given before the command from being reset by the subparser default.
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the full traceback on errors")
    common.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                        help="print nothing but errors")

    parser = argparse.ArgumentParser(
        prog="chansim", description="Exact channel simulation and diffusion image codecs (UQDM, DiffC).",
        epilog="Run 'chansim COMMAND --help' for a command's options. Documentation: docs/cli.md.")
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    parser.add_argument("--version", action="version", version=f"chansim {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("compress", parents=[common], help="compress an image into a chansim file",
                       description="Compress a PNG / JPEG / TIFF / PPM image with a diffusion codec.")
    p.add_argument("input", metavar="IN", help="input image")
    p.add_argument("output", metavar="OUT", help="output chansim file (e.g. image.chsm)")
    p.add_argument("--codec", default="uqdm",
                   help="uqdm (default), diffc, or package.module:Class for a codec of your own")
    p.add_argument("--quality", default=None,
                   help="one of the codec's qualities (lowest rate first; UQDM also 'lossless'); "
                        "default: the middle one")
    p.add_argument("--reconstruction", default=None,
                   help="reconstruction used by --check (codec-specific, e.g. DiffC: flow, ancestral, mmse)")
    p.add_argument("--seed", type=int, default=None, help="shared-randomness seed (default: derived from the image)")
    p.add_argument("--check", action="store_true", help="decode the file again and report its PSNR")
    p.set_defaults(func=_compress)

    p = sub.add_parser("decompress", parents=[common], help="decode a chansim file to PNG",
                       description="Decode a chansim file (any codec; the file names it) into a PNG.")
    p.add_argument("input", metavar="IN", help="chansim file")
    p.add_argument("output", metavar="OUT", help="output PNG")
    p.add_argument("--preview-steps", type=int, default=None, metavar="K",
                   help="decode only the first K steps (sections): the preview a prefix of the file gives; "
                        "0 = no coded step")
    p.add_argument("--reconstruction", default=None,
                   help="how to reconstruct (codec-specific, e.g. flow, ancestral, mmse, denoise)")
    p.add_argument("--codec", default=None,
                   help="codec override (package.module:Class); by default the one named in the file")
    p.set_defaults(func=_decompress)

    from . import cli_bench, cli_demo, cli_eval

    cli_eval.add_parser(sub, common)
    cli_bench.add_parser(sub, common)
    cli_demo.add_parser(sub, common)
    return parser


def _version() -> str:
    from . import __version__

    return __version__


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.debug = getattr(args, "debug", False)
    args.quiet = getattr(args, "quiet", False)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print(f"chansim {args.command}: interrupted", file=sys.stderr)
        return 130
    except (OSError, ValueError) as exc:  # bad input: missing files, unreadable images, FormatError, bad options
        if args.debug:
            raise
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"chansim {args.command}: error: {msg}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug, not bad input: still one line, but say how to see more
        if args.debug:
            raise
        print(f"chansim {args.command}: internal error: {type(exc).__name__}: {exc} (run with --debug for the "
              f"traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
