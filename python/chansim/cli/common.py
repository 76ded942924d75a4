"""What every ``chansim`` subcommand shares: codecs from the registry, images and files in and
out (validated before anything is written, written atomically), errors and progress lines.

Imports without PyTorch: the codec classes (and so PyTorch) load only when a command needs one.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
import textwrap
import threading
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

#: Image files ``compress`` and ``eval`` read (anything Pillow opens; these suffixes select files in a directory).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".ppm", ".pgm", ".pnm", ".bmp", ".webp")
#: Image files ``decompress`` writes: lossless formats only, chosen by the output's suffix.
WRITE_FORMATS: Dict[str, tuple] = {
    ".png": ("PNG", {}), ".tif": ("TIFF", {}), ".tiff": ("TIFF", {}), ".webp": ("WEBP", {"lossless": True}),
    ".ppm": ("PPM", {}), ".pnm": ("PPM", {}), ".bmp": ("BMP", {}),
}
#: Old reconstruction names the codecs still accept (deprecated): old → contract name.
RECONSTRUCTION_ALIASES = {"denoise": "mmse", "ddim": "flow"}
#: A missing module → the extra that installs it (for the one-line error of ``main``).
EXTRAS = {"torch": "codecs", "distributed": "eval", "dask": "eval", "matplotlib": "eval", "skimage": "demo",
          "pytest_benchmark": "bench", "constriction": "bench", "triton": "triton", "diffusers": "diffusers"}

#: How messages name those modules.
MODULE_NAMES = {"torch": "PyTorch", "distributed": "Dask distributed", "dask": "Dask", "skimage": "scikit-image",
                "pytest_benchmark": "pytest-benchmark"}

_codec_cache: Dict[str, Any] = {}


class UsageError(ValueError):
    """Bad command-line input (reported in one line, exit status 2)."""


class Parser(argparse.ArgumentParser):
    """ArgumentParser whose epilog may be computed when help is shown (``epilog_fn``), so that
    costly help (the codecs' qualities need their models) costs nothing otherwise."""

    epilog_fn = None

    def format_help(self) -> str:
        if self.epilog_fn is not None and self.epilog is None:
            self.epilog = self.epilog_fn()
        return super().format_help()


Bound = Union[int, None, Callable[[], int]]


def int_range(low: Bound = None, high: Bound = None, *, off: Optional[Tuple[int, str]] = None,
              base: int = 10) -> Callable[[str], int]:
    """An argparse ``type=`` for an integer option in ``low``…``high`` (None: no bound on that side).

    ``off = (value, meaning)`` admits one value outside the range that switches something off
    (``--tile 0``: no tiling). ``base=0`` also reads ``0x…`` (seeds). A bound may be a function,
    called only when the option is given, so a limit defined beside a costly import (NTC's
    ``MAX_REFINE`` needs PyTorch) costs nothing otherwise. The message names the valid range;
    argparse puts the option before it: ``argument --jobs: must be ≥ 1, got 0``.
    """

    def parse(text: str) -> int:
        try:
            n = int(text, base)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        lo, hi = (b() if callable(b) else b for b in (low, high))
        if off is not None and n == off[0]:
            return n
        if (lo is None or n >= lo) and (hi is None or n <= hi):
            return n
        span = (f"{lo}…{hi}" if hi is not None else f"≥ {lo}") if lo is not None else f"≤ {hi}"
        if off is not None:
            span = f"{off[0]} ({off[1]}) or {span}"
        elif lo is not None and hi is not None:
            span = f"in {span}"
        raise argparse.ArgumentTypeError(f"must be {span}, got {text}")

    return parse


def float_range(low: float, high: float) -> Callable[[str], float]:
    """An argparse ``type=`` for a number in the closed interval [``low``, ``high``] (``--lam``);
    NaN is refused with the rest."""

    def parse(text: str) -> float:
        try:
            x = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not low <= x <= high:
            raise argparse.ArgumentTypeError(f"must be in [{low:g}, {high:g}], got {text}")
        return x

    return parse


#: ``--seed``: any seed the codecs take (< 2**64), decimal or 0x… hexadecimal.
seed_type = int_range(0, (1 << 64) - 1, base=0)


def replace_args(args: argparse.Namespace, **changes) -> argparse.Namespace:
    """A copy of parsed arguments with ``changes`` applied (as :func:`dataclasses.replace`): one
    file of a batch gets its own IN and OUT, workers a quiet copy, and the caller's ``args`` stay
    as parsed."""
    return argparse.Namespace(**{**vars(args), **changes})


def version() -> str:
    from .. import __version__

    return __version__


def module_name(module: Optional[str]) -> str:
    """How a message names a (missing) module: "PyTorch" for torch, and so on."""
    top = (module or "").split(".")[0]
    return MODULE_NAMES.get(top, top)


def extra_for(module: Optional[str]) -> Optional[str]:
    """``pip install "chansim[…]"`` for a missing top-level module, or None if no extra provides it."""
    extra = EXTRAS.get((module or "").split(".")[0])
    return f'pip install "chansim[{extra}]"' if extra else None


# ---- codecs ----------------------------------------------------------------------------


def registered_codecs() -> List[str]:
    """Codec names of the registry (:data:`chansim.codecs.base.CODECS`), in its order."""
    from ..codecs.base import codec_names

    return codec_names()


def default_codec() -> str:
    from ..codecs.base import DEFAULT_CODEC

    return DEFAULT_CODEC


def check_codec_spec(spec: str) -> str:
    """A registered codec name (case-insensitive) or ``package.module:Class``; UsageError otherwise.

    Checked from the name alone, before any codec (or PyTorch) is imported.
    """
    name = spec.strip()
    if name.lower() in registered_codecs():
        return name.lower()
    if ":" in name:
        return name
    raise UsageError(f"unknown codec {spec!r}; choose one of {', '.join(registered_codecs())} "
                     f"or give package.module:Class (a chansim.codecs.base.Codec)")


def load_codec(spec: str):
    """The codec for a registry name (its ``pretrained()`` model, shipped in the package) or for
    ``package.module:Attribute``: a :class:`~chansim.codecs.base.Codec` instance, or a Codec
    class (built with ``pretrained()``). Cached per process.
    """
    from ..codecs.base import Codec, codec_class

    name = check_codec_spec(spec)
    if name in _codec_cache:
        return _codec_cache[name]
    if ":" not in name:
        try:
            codec = codec_class(name).pretrained()
        except ImportError as exc:  # PyTorch (or another extra) missing: name what to install
            fix = extra_for(getattr(exc, "name", None)) if isinstance(exc, ModuleNotFoundError) else None
            raise UsageError(f"the {name} codec needs {module_name(exc.name)}: {fix}" if fix else str(exc)) from None
    else:
        module, attr = name.split(":", 1)
        try:
            obj = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise UsageError(f"cannot load codec {spec!r}: {exc}") from None
        codec = obj.pretrained() if isinstance(obj, type) and issubclass(obj, Codec) else obj
        if not isinstance(codec, Codec):
            raise UsageError(f"codec {spec!r} is not a chansim.codecs.base.Codec (class or instance)")
    _codec_cache[name] = codec
    return codec


def codec_label(codec) -> str:
    """The codec's name (``codec.name``): what files, tables and file names call it."""
    return codec.name


def offers_lossless(codec) -> bool:
    """Whether ``quality="lossless"`` is valid: listed in ``codec.qualities``, or (UQDM, which
    accepts it beside its numbered qualities) until the contract names such extra qualities."""
    return "lossless" in [str(q) for q in codec.qualities] or codec.name == "uqdm"


def parse_quality(codec, text: Optional[str]):
    """``--quality`` as one of ``codec.qualities`` (its own value type); ``codec.default_quality`` when None."""
    qualities = list(codec.qualities)
    if text is None:
        return codec.default_quality
    text = str(text).strip()
    for q in qualities:
        if str(q) == text:
            return q
        try:
            if isinstance(q, (int, float)) and not isinstance(q, bool) and float(text) == float(q):
                return q
        except ValueError:
            pass
    if text == "lossless" and offers_lossless(codec):
        return text
    extra = ["lossless"] if offers_lossless(codec) and "lossless" not in map(str, qualities) else []
    raise UsageError(f"quality {text!r} is not one of this codec's qualities: "
                     f"{', '.join(map(str, qualities + extra))}")


def check_reconstruction(codec, name: Optional[str]) -> Optional[str]:
    """``--reconstruction`` validated against ``codec.reconstructions`` (None: the codec's default).

    A deprecated old name (``denoise``, ``ddim``) is accepted for its contract name, with a warning.
    """
    if name is None:
        return None
    name = name.strip()
    offered = tuple(codec.reconstructions)
    if name in offered:
        return name
    new = RECONSTRUCTION_ALIASES.get(name)
    if new in offered:
        print(f"chansim: warning: reconstruction {name!r} is deprecated; use {new!r}", file=sys.stderr)
        return new
    raise UsageError(f"{codec.name} has no reconstruction {name!r}; it offers {', '.join(offered)}")


def codecs_help() -> str:
    """One paragraph per registered codec: its qualities and reconstructions (from the contract).

    Loads each codec's shipped model (and so PyTorch); without PyTorch only the names are listed.
    """
    lines = ["codecs (--codec; qualities lowest rate first, * = default):"]
    for name in registered_codecs():
        try:
            codec = load_codec(name)
        except Exception as exc:  # missing torch or model: say so, still list the name
            lines.append(f"  {name:<6} ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})")
            continue
        # Typical Kodak rates, measured with this very model (benchmarks/card_rd.py writes them to its card).
        rd = ((getattr(codec, "card", None) or {}).get("kodak_rd") or {}).get("points", {})
        qs = [(f"{q}*" if q == codec.default_quality else str(q)) +
              (f"\u00a0({rd[str(q)]['bpp']:.2f})" if str(q) in rd else "") for q in codec.qualities]
        if offers_lossless(codec) and "lossless" not in qs:
            qs.append("lossless")
        recs = list(codec.reconstructions)
        recs[0] += "*"
        if rd:
            lines.append(f"  {name:<6} qualities (typical bpp on Kodak, measured with this model):")
            body = textwrap.wrap(" ".join(qs), 78, initial_indent=" " * 9, subsequent_indent=" " * 9)
        else:
            body = textwrap.wrap(" ".join(qs), 78, initial_indent=f"  {name:<6} qualities: ", subsequent_indent=" " * 20)
        lines.extend(line.replace("\u00a0", " ") for line in body)   # no break inside "q (bpp)"
        lines.append(f"  {'':<6} reconstructions: {', '.join(recs)}")
    return "\n".join(lines)


# ---- input files ---------------------------------------------------------------------------


#: The path that means standard input (as IN) or standard output (as OUT).
STDIO = "-"
#: Pillow modes of one-channel (grayscale) images.
GRAY_MODES = ("1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")


def is_stdio(path) -> bool:
    return str(path) == STDIO


def _name(path) -> str:
    return "stdin" if is_stdio(path) else str(path)


class LoadedImage:
    """An input image as the codecs take it (``array``: uint8[H, W, 3]) and what the reader did to it:
    ``gray`` (the source had one channel: R = G = B exactly) and ``notes`` (warnings to print)."""

    def __init__(self, array, gray: bool = False, notes: Sequence[str] = ()):
        self.array, self.gray, self.notes = array, gray, list(notes)


def load_image(path) -> LoadedImage:
    """Read an image file (``-``: standard input) for a codec.

    Colour comes as RGB (alpha dropped, EXIF orientation applied); a one-channel image
    comes as R = G = B exactly with ``gray`` set; 16-bit samples keep their top 8 bits,
    with a note saying so; 32-bit float images are refused.
    """
    import io

    import numpy as np
    from PIL import Image, ImageOps, UnidentifiedImageError

    name = _name(path)
    if is_stdio(path):
        raw = sys.stdin.buffer.read()
        if not raw:
            raise UsageError("stdin: no data (give an image on standard input, or a file name)")
        source = io.BytesIO(raw)
    else:
        p = Path(path)
        if not p.exists():
            raise FileNotFoundError(f"{p}: no such file")
        if p.is_dir():
            raise UsageError(f"{p} is a directory, not an image")
        source = p
    notes = []
    try:
        with Image.open(source) as img:
            deep = any(";16" in str(getattr(t, "args", t[3] if len(t) > 3 else "")) for t in (img.tile or []))
            img = ImageOps.exif_transpose(img)
            mode = img.mode
            if mode == "F":
                raise UsageError(f"{name}: 32-bit floating-point images are not supported; convert to 8 or 16 bits")
            if mode.startswith("I"):
                arr = np.asarray(img, dtype=np.int64)
                if mode.startswith("I;16") or arr.max(initial=0) > 255:
                    # 16-bit grayscale: keep the top 8 bits rather than let convert() clip.
                    arr = arr >> 8
                    deep = True
                arr = np.clip(arr, 0, 255).astype(np.uint8)
                array = np.repeat(arr[..., None], 3, axis=2)
            elif mode == "P":
                array = np.asarray(img.convert("RGB"), dtype=np.uint8)
                mode = "L" if (array[..., 0] == array[..., 1]).all() and (array[..., 1] == array[..., 2]).all() else mode
            else:
                array = np.asarray(img.convert("L" if mode in GRAY_MODES else "RGB"), dtype=np.uint8)
                if array.ndim == 2:
                    array = np.repeat(array[..., None], 3, axis=2)
    except UnidentifiedImageError:
        raise UsageError(f"{name}: not an image Pillow can read (PNG, JPEG, TIFF, PPM, …)") from None
    except Image.DecompressionBombError as exc:
        raise UsageError(f"{name}: {exc}") from None
    except (OSError, SyntaxError) as exc:  # Pillow reports broken image data as either
        raise UsageError(f"{name}: cannot decode image ({exc})") from None
    if deep:
        notes.append(f"{name}: 16-bit samples; coded at 8 bits (the top 8 bits of each sample kept)")
    return LoadedImage(np.ascontiguousarray(array), gray=mode in GRAY_MODES, notes=notes)


def read_image(path):
    """uint8[H, W, 3] from PNG / JPEG / TIFF / PPM / … (see :func:`load_image`; ``-`` is stdin)."""
    return load_image(path).array


def read_file(path) -> bytes:
    """The bytes of a file, or of standard input for ``-``."""
    if is_stdio(path):
        data = sys.stdin.buffer.read()
        if not data:
            raise UsageError("stdin: no data (give a chansim file on standard input, or a file name)")
        return data
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise UsageError(f"{path} is a directory, not a chansim file")
    return path.read_bytes()


def warn(message: str, quiet: bool = False) -> None:
    if not quiet:
        print(f"chansim: warning: {message}", file=sys.stderr)


# ---- output files: checked first, written atomically --------------------------------------


def image_format(path) -> tuple:
    """(Pillow format, save options) for an output image path, from its suffix (``-``, standard
    output: PNG); UsageError if unsupported."""
    if is_stdio(path):
        return WRITE_FORMATS[".png"]
    suffix = Path(path).suffix.lower()
    if suffix not in WRITE_FORMATS:
        raise UsageError(f"{path}: cannot write images as {suffix or 'a file without a suffix'!r}; "
                         f"supported (lossless): {', '.join(WRITE_FORMATS)}")
    return WRITE_FORMATS[suffix]


def check_output(path, inputs: Iterable = (), *, force: bool = False, mkdir: bool = False) -> Path:
    """Validate an output path before any work: never one of ``inputs``, not an existing file
    unless ``force``, its directory present unless ``mkdir`` (then created at write time).

    ``-`` is standard output: accepted unless it is a terminal (binary data would garble it).
    """
    if is_stdio(path):
        if sys.stdout.isatty():
            raise UsageError("refusing to write binary data to a terminal; redirect standard output "
                             "(… > file) or give an output file name")
        return STDIO
    out = Path(path)
    for src in inputs:
        if is_stdio(src):
            continue
        src = Path(src)
        same = out.resolve() == src.resolve()
        if not same and out.exists() and src.exists():
            try:
                same = os.path.samefile(out, src)
            except OSError:
                same = False
        if same:
            raise UsageError(f"{out}: the output is the input file; choose another output name")
    if out.is_dir():
        raise UsageError(f"{out} is a directory; give an output file name")
    if out.exists() and not force:
        raise UsageError(f"{out} exists; use --force (-f) to overwrite it")
    parent = out.parent
    if not parent.exists() and not mkdir:
        raise UsageError(f"{out}: directory {parent} does not exist (use --mkdir / -p to create it)")
    if parent.exists() and not parent.is_dir():
        raise UsageError(f"{out}: {parent} is not a directory")
    return out


def write_atomic(path, write) -> None:
    """Create ``path`` through ``write(file)`` on a temporary file in its directory, renamed into
    place only when ``write`` succeeded: a reader never sees a partial file, a failure leaves
    any old file untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # what a plain open() would have made, not mkstemp's 0600
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_output(path, write, stdout=None) -> None:
    """:func:`write_atomic`, or for ``-`` the whole payload at once on ``stdout`` (a binary
    file: the real standard output that :func:`reserved_stdout` set aside)."""
    if is_stdio(path):
        import io

        buf = io.BytesIO()
        write(buf)
        out = stdout if stdout is not None else sys.stdout.buffer
        out.write(buf.getvalue())
        out.flush()
    else:
        write_atomic(path, write)


def write_bytes(path, data: bytes, stdout=None) -> None:
    write_output(path, lambda f: f.write(data), stdout)


def write_image(path, image, stdout=None) -> None:
    """Write uint8[H, W, 3] (or uint8[H, W], grayscale) in the lossless format its suffix names
    (see :data:`WRITE_FORMATS`; PNG for ``-``)."""
    from PIL import Image

    fmt, opts = image_format(path)
    write_output(path, lambda f: Image.fromarray(image).save(f, format=fmt, **opts), stdout)


class reserved_stdout:
    """Keep standard output for the payload alone while a command works.

    Inside the block, file descriptor 1 (and so ``print``, tqdm and anything a library writes,
    even from C) goes to standard error; the block gets a binary file on the real standard
    output (``as out``), where only the payload is written. Without a real descriptor (output
    captured in-process) only Python-level ``sys.stdout`` is redirected.
    """

    def __init__(self, active: bool = True):
        self.active = active
        self._saved = self._old = None

    def __enter__(self):
        if not self.active:
            return None
        sys.stdout.flush()
        try:
            fd = sys.stdout.fileno()
            err_fd = sys.stderr.fileno()
        except (AttributeError, OSError, ValueError):  # e.g. captured in-process, or a notebook
            fd = err_fd = None
        self._old = sys.stdout
        if fd is None:
            out = getattr(sys.stdout, "buffer", sys.stdout)
            sys.stdout = sys.stderr
            return out
        self._fd = fd
        self._saved = os.dup(fd)
        sys.stderr.flush()
        os.dup2(err_fd, fd)
        self._out = os.fdopen(os.dup(self._saved), "wb")
        return self._out

    def __exit__(self, *exc):
        if not self.active:
            return False
        if self._saved is None:
            sys.stdout = self._old
            return False
        sys.stdout.flush()
        try:
            self._out.close()
        except OSError:  # the reader went away (broken pipe): already reported by the write
            pass
        os.dup2(self._saved, self._fd)
        os.close(self._saved)
        return False


def write_png(path, image) -> None:
    """A PNG (demo and eval outputs in their own directory), written atomically."""
    from PIL import Image

    write_atomic(path, lambda f: Image.fromarray(image).save(f, format="PNG"))


# ---- progress -------------------------------------------------------------------------------


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


def split_list(text: Optional[str]) -> List[str]:
    """A comma-separated option as a list of non-empty stripped items."""
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def unique(items: Sequence) -> list:
    return list(dict.fromkeys(items))
