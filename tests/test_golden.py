"""Golden files (tests/expected/, made by tests/expected/regenerate.py with the shipped models):
each decodes on this machine to the recorded pixels, and encoding the source again gives the same
bytes — the formats' cross-machine promise. Regression pins, not evidence of correctness; after a
shipped model changes, regenerate them (the test says so)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
from PIL import Image  # noqa: E402

from chansim.codecs import codec_class  # noqa: E402

EXPECTED = Path(__file__).resolve().parent / "expected"
MANIFEST = json.loads((EXPECTED / "manifest.json").read_text())


def _sha(image) -> str:
    import importlib.util

    spec = importlib.util.spec_from_file_location("regenerate", EXPECTED / "regenerate.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.pixels_sha256(image)


@pytest.fixture(scope="module")
def source():
    return np.asarray(Image.open(EXPECTED / "source.png").convert("RGB"))


@pytest.mark.parametrize("fname", sorted(MANIFEST))
def test_golden_file_decodes_and_reencodes_bit_exactly(fname, source):
    entry = MANIFEST[fname]
    codec = codec_class(entry["codec"]).pretrained()
    assert codec.model_id == entry["model_id"], (
        f"the shipped {entry['codec']} model changed since {fname} was made: run tests/expected/regenerate.py")
    data = (EXPECTED / fname).read_bytes()
    assert len(data) == entry["bytes"]
    assert _sha(codec.decompress(data)) == entry["decoded_sha256"]
    assert codec.compress(source, entry["quality"]) == data
