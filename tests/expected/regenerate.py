"""Regenerate the golden files of tests/test_golden.py (run when a shipped model changes).

    python tests/expected/regenerate.py            # every case
    python tests/expected/regenerate.py ntc        # only the named codecs' cases; the others' entries stay

Regenerate only the codecs whose model changed: UQDM's and DiffC's pins hold only on the CPU that
made them, so regenerating them on another CPU would move those pins for no reason.

Writes ``source.png`` (a 64×48 synthetic photo, tests/images.disc_image), one chansim file per
entry of :data:`CASES` made from it by the shipped model, and ``manifest.json`` with each file's
codec, quality, model id, the SHA-256 of the pixels it decodes to and the CPU it was made on. The
test then checks, on whatever machine runs it, that these files decode to exactly those pixels and
that encoding the source again gives the same bytes: the cross-machine promise of the formats (for
UQDM and DiffC only on the CPU recorded; tests/test_golden.py says why). They are regression
pins made by this implementation, not independent evidence of correctness (the codecs' own tests
are that).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

#: (codec, quality) pairs: NTC's lowest and highest rate, a middle UQDM quality, DiffC's default.
CASES = [("ntc", "first"), ("ntc", "last"), ("uqdm", 6), ("diffc", "default")]


def pixels_sha256(image: np.ndarray) -> str:
    image = np.ascontiguousarray(image, dtype=np.uint8)
    return hashlib.sha256(repr(image.shape).encode() + image.tobytes()).hexdigest()


def resolve(codec, quality):
    qs = list(codec.qualities)
    return {"first": qs[0], "last": qs[-1], "default": codec.default_quality}.get(quality, quality)


def main(only=()) -> None:
    from images import disc_image

    from chansim.codecs import codec_class
    from chansim.machine import cpu_name

    unknown = set(only) - {name for name, _ in CASES}
    if unknown:          # before anything is written
        raise SystemExit(f"unknown codec(s) {sorted(unknown)}; the cases are {sorted({n for n, _ in CASES})}")
    source = disc_image(48, 64, seed=3)
    Image.fromarray(source).save(HERE / "source.png")
    manifest_path = HERE / "manifest.json"
    old = json.loads(manifest_path.read_text()) if only and manifest_path.is_file() else {}
    manifest = {}
    for name, q in CASES:
        if only and name not in only:
            manifest.update({f: e for f, e in old.items() if e["codec"] == name})
            continue
        codec = codec_class(name).pretrained()
        quality = resolve(codec, q)
        data = codec.compress(source, quality)
        fname = f"{name}_q{quality}.chsm"
        (HERE / fname).write_bytes(data)
        manifest[fname] = {"codec": name, "quality": quality, "model_id": codec.model_id, "bytes": len(data),
                           "decoded_sha256": pixels_sha256(codec.decompress(data)), "made_on": cpu_name()}
        print(fname, len(data), "bytes")
    manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")


if __name__ == "__main__":
    main(tuple(sys.argv[1:]))
