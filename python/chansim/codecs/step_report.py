"""Bits per diffusion step: where a diffusion codec's rate and time go, step by step.

:func:`bits_per_step` encodes one image and returns one row per transmitted step with the
columns of :data:`COLUMNS`; ``chansim bench --bits-per-step`` prints them and
``benchmarks/bench_bits_per_step.py`` records them. DiffC rows come from the encoder's own
diagnostics (:data:`chansim.codecs.diffc.STEP_KEYS`). UQDM sends every coordinate by dithered
quantization against its own model, so its rows carry the coded bits of each section and the
step's γ values; KL, shift fraction and candidates are DiffC quantities, and UQDM's encoder does
not time its steps separately, so those columns stay empty there.
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence

#: (key, header) of a row, in print order.
COLUMNS = (("step", "step"), ("gamma_t", "γ_t"), ("gamma_s", "γ_s"), ("kl_bits", "KL bits"),
           ("bits", "coded bits"), ("bits_per_kl", "bits/KL"), ("shift_fraction", "shift frac"),
           ("candidates", "candidates"), ("network_seconds", "network s"), ("seconds", "channel s"))


def bits_per_step(codec, image, quality=None, *, seed: Optional[int] = None) -> List[Dict[str, float]]:
    """One dict per step of ``codec.compress(image, quality)`` with the keys of :data:`COLUMNS`."""
    from . import container

    if codec.name == "diffc":
        ev = codec.evaluate(image, [codec.default_quality if quality is None else quality], reconstructions=(),
                            seed=seed)[0]
        rows = []
        for s in ev.info["steps"]:
            row = {k: s.get(k, math.nan) for k, _ in COLUMNS}
            row["bits_per_kl"] = s["bits"] / s["kl_bits"] if s["kl_bits"] > 0 else math.nan
            rows.append(row)
        return rows
    if codec.name == "uqdm":
        # UQDM's encoder does not time its steps separately: the rows carry bits and γ only.
        data = codec.compress(image, codec.default_quality if quality is None else quality, seed=seed)
        c = container.unpack(data)
        g = [float(v) for v in codec.model.gammas()]
        return [{**{k: math.nan for k, _ in COLUMNS}, "step": i, "gamma_t": g[i], "gamma_s": g[i + 1],
                 "bits": 8 * len(sec)} for i, sec in enumerate(c.sections[: len(g) - 1])]
    raise ValueError(f"the {codec.name} codec has no diffusion steps (bits per step is for diffc and uqdm)")


def format_rows(rows: Sequence[Dict[str, float]]) -> str:
    """A fixed-width table of :func:`bits_per_step` rows with a total line."""
    def cell(key, v):
        if isinstance(v, float) and math.isnan(v):
            return "–"
        if key in ("step", "bits", "candidates"):
            return f"{int(v)}"
        if key in ("network_seconds", "seconds"):
            return f"{v:.3f}"
        return f"{v:.3f}" if key in ("shift_fraction", "bits_per_kl") else f"{v:.2f}"

    head = [h for _, h in COLUMNS]
    body = [[cell(k, r.get(k, math.nan)) for k, _ in COLUMNS] for r in rows]
    total = {"step": math.nan, "gamma_t": math.nan, "gamma_s": math.nan}
    for k in ("kl_bits", "bits", "candidates", "network_seconds", "seconds"):
        vals = [r.get(k, math.nan) for r in rows]
        total[k] = math.nan if any(isinstance(v, float) and math.isnan(v) for v in vals) else sum(vals)
    kl = total["kl_bits"]
    total["bits_per_kl"] = total["bits"] / kl if isinstance(kl, float) and kl > 0 else math.nan
    total["shift_fraction"] = math.nan
    last = ["total"] + [cell(k, total.get(k, math.nan)) for k, _ in COLUMNS[1:]]
    widths = [max(len(x) for x in col) for col in zip(head, *body, last)]
    fmt = lambda cells: "  ".join(c.rjust(w) for c, w in zip(cells, widths))  # noqa: E731
    return "\n".join([fmt(head)] + [fmt(b) for b in body] + [fmt(last)])
