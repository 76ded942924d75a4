"""Bits per diffusion step (``chansim.codecs.step_report``): the shipped pixel DiffC model on a Kodak
crop, and each pretrained architecture as a tiny random model of the real classes (these check the
plumbing and the per-step costs' structure, not quality).

    pytest benchmarks/bench_bits_per_step.py --benchmark-only       # rows in benchmark extra_info + results/
    python benchmarks/bench_bits_per_step.py                        # Markdown tables from results/bits_per_step.json
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

RESULTS = Path(__file__).parent / "results" / "bits_per_step.json"
TINY = ("sd15", "sd21v", "sdxl", "sd3", "flux", "unet2d", "ldm")


def _record(name: str, meta: dict, rows: list) -> None:
    data = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    data[name] = {"meta": meta, "rows": rows}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(data, indent=1, default=float))


def _kodak_crop(size: int = 256) -> np.ndarray:
    from PIL import Image

    from chansim.data import shared_path

    kodak = shared_path("kodak")
    if kodak is None:
        pytest.skip("no shared data directory: Kodak is needed (set CHANSIM_SHARED_DATA)")
    img = np.asarray(Image.open(kodak / "kodim23.png").convert("RGB"))
    h, w = img.shape[:2]
    return np.ascontiguousarray(img[(h - size) // 2:(h + size) // 2, (w - size) // 2:(w + size) // 2])


def test_bits_per_step_shipped_pixel_model(benchmark):
    from chansim.codecs import DiffC
    from chansim.codecs.step_report import bits_per_step

    codec, img = DiffC.pretrained(), _kodak_crop()
    rows = benchmark.pedantic(bits_per_step, args=(codec, img, 12), kwargs={"seed": 1}, rounds=1, iterations=1)
    benchmark.extra_info["rows"] = rows
    _record("diffc_default", {"image": "kodim23 centre 256×256", "quality": 12}, rows)


@pytest.mark.parametrize("family", TINY)
def test_bits_per_step_tiny_architecture(benchmark, family):
    pytest.importorskip("transformers")
    sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
    from images import pattern_image
    from tiny_diffusers import make_tiny_pipeline

    from chansim.codecs import DiffC
    from chansim.codecs.step_report import bits_per_step

    img = pattern_image(64, 64)
    with tempfile.TemporaryDirectory() as d:
        codec = DiffC.from_diffusers(make_tiny_pipeline(family, d), prompt="" if family in ("unet2d", "ldm") else "a photo")
        q = min(6, codec.qualities[-1])
        rows = benchmark.pedantic(bits_per_step, args=(codec, img, q), kwargs={"seed": 1}, rounds=1, iterations=1)
    benchmark.extra_info["rows"] = rows
    _record(f"tiny_{family}", {"image": "64×64 synthetic", "quality": q, "family": codec.model.family}, rows)


def main() -> None:
    from chansim.codecs.step_report import format_rows

    data = json.loads(RESULTS.read_text())
    for name, entry in data.items():
        meta = entry["meta"]
        rows = [{k: (math.nan if v is None else v) for k, v in r.items()} for r in entry["rows"]]
        print(f"\n**{name}** — {meta['image']}, quality {meta['quality']}\n")
        print("```\n" + format_rows(rows) + "\n```")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    main()
