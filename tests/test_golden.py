"""Golden files (tests/expected/, made by tests/expected/regenerate.py with the shipped models):
each decodes on this machine to the recorded pixels, and encoding the source again gives the same
bytes — the formats' cross-machine promise (for UQDM and DiffC, which rerun the sender's network,
on CPUs with the same float32 kernels; elsewhere the file must be refused by name or decode).
Regression pins, not evidence of correctness; after a shipped model changes, regenerate them (the
test says so)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
from PIL import Image  # noqa: E402

from chansim.codecs import codec_class  # noqa: E402
from chansim.errors import FormatError  # noqa: E402
from chansim.machine import cpu_name  # noqa: E402

EXPECTED = Path(__file__).resolve().parent / "expected"
MANIFEST = json.loads((EXPECTED / "manifest.json").read_text())


#: Codecs whose decoding runs the sender's network again and needs its float32 bits: those differ
#: between CPUs' kernels (AVX2 / AVX-512 / AMX paths), so off the golden CPU a file must decode to an
#: image of the right shape or be refused by the codec's checksum — never crash. NTC snaps its
#: entropy parameters to a grid (docs/format.md §9): its goldens held on both CPUs tried (an Intel
#: Xeon with AMX, an AMD EPYC) and stay pinned everywhere.
NETWORK_BOUND = {"uqdm", "diffc"}


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
    cpu = cpu_name()
    if entry["codec"] in NETWORK_BOUND and cpu != entry["made_on"]:
        try:
            image = codec.decompress(data)
        except FormatError as e:                       # UQDM's latent checksum caught the other kernels' bits
            assert "network output differs" in str(e), e
        else:
            assert image.shape == source.shape and image.dtype == np.uint8
        pytest.skip(f"{fname} was made on {entry['made_on']!r}; this CPU ({cpu!r}) runs other float32 kernels, "
                    f"so {entry['codec']}'s pixels and bytes are not pinned here (chansim.diffusion.determinism)")
    assert _sha(codec.decompress(data)) == entry["decoded_sha256"]
    assert codec.compress(source, entry["quality"]) == data
