"""Copy each codec's measured Kodak rate–distortion (BENCHMARKS.md's runs) into its shipped model card.

``chansim compress --help`` lists every quality with the typical Kodak bpp from the card
(``kodak_rd``), so the numbers a user sees are the measured ones, tied to the model they were
measured with: a results file whose model id differs from the card's is skipped (and any stale
``kodak_rd`` removed).

Run after the evaluations: python benchmarks/card_rd.py
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from chansim.diffusion.io import write_card

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "python" / "chansim" / "models"
RESULTS = ROOT / "benchmarks" / "results"


def ntc_points():
    d = json.loads((RESULTS / "ntc_kodak.json").read_text())
    pts = {p["q"]: (p["bpp"], p["psnr"]) for p in d["summary"]["curves"]["ntc"]}
    return d.get("model_id"), d["summary"]["images"], "benchmarks/eval_ntc.py", pts


def uqdm_points():
    d = json.loads((RESULTS / "uqdm_kodak.json").read_text())
    pts = {p["q"]: (p["bpp"], p["psnr"]) for p in d["summary"]["curves"]["uqdm"]}
    return d.get("model_id"), d["summary"]["images"], "benchmarks/eval_uqdm.py (reconstruction mmse)", pts


def diffc_points():
    d = json.loads((RESULTS / "diffc" / "rd.json").read_text())
    by_q = defaultdict(list)
    for r in d["rows"]:
        by_q[r["quality"]].append((r["bpp"], r["psnr_flow"]))
    pts = {str(q): tuple(float(np.mean(v)) for v in zip(*rows)) for q, rows in sorted(by_q.items())}
    images = len({r["image"] for r in d["rows"]})
    return d["meta"].get("model_id"), images, f"benchmarks/eval_diffc.py (preset {d['meta'].get('preset')}, " \
                                                "reconstruction flow)", pts


def main() -> None:
    for name, fn in (("ntc", ntc_points), ("uqdm", uqdm_points), ("diffc", diffc_points)):
        card_path = MODELS / f"{name}_default.json"
        card = json.loads(card_path.read_text())
        measured_with, images, source, pts = fn()
        # Results written before files recorded their model id were made with the model shipped
        # then; those are accepted only while the card says the model is the one they name.
        if measured_with is not None and measured_with != card["model_id"]:
            print(f"{name}: results are for model {measured_with[:12]}…, the card's is {card['model_id'][:12]}…: skipped")
            card.pop("kodak_rd", None)
        else:
            card["kodak_rd"] = {"images": images, "source": source,
                                "points": {q: {"bpp": round(b, 4), "psnr": round(p, 2)} for q, (b, p) in pts.items()}}
            print(f"{name}: {len(pts)} qualities from {images} Kodak images")
        write_card(card, card_path)


if __name__ == "__main__":
    main()
