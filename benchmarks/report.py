"""Turn pytest-benchmark JSON into the markdown rows of BENCHMARKS.md.

Each benchmark sets ``extra_info``: ``items`` (work per call, for a rate),
``peer`` (row label) and ``baseline`` (the row ratios are taken against, one per
group). Usage: ``python benchmarks/report.py results.json [more.json ...]``.
"""

from __future__ import annotations

import json
import platform
import sys
from collections import defaultdict


def machine_line(info: dict) -> str:
    cpu = info.get("cpu", {})
    return (f"{cpu.get('brand_raw', platform.processor())}, {cpu.get('count', '?')} logical cores, "
            f"Python {info.get('python_version', platform.python_version())}, {info.get('system', '')} "
            f"{info.get('release', '')}".strip())


def rows(data: dict) -> str:
    groups = defaultdict(list)
    for b in data["benchmarks"]:
        groups[b["group"]].append(b)
    out = []
    for group, items in groups.items():
        base = next((b for b in items if b["extra_info"].get("baseline")), None)
        out.append(f"\n**{group}**\n")
        out.append("| implementation | median time | rate | ratio vs baseline |")
        out.append("|---|---:|---:|---:|")
        for b in sorted(items, key=lambda b: b["stats"]["median"]):
            med = b["stats"]["median"]
            n = b["extra_info"].get("items")
            rate = f"{n / med / 1e6:,.1f} M/s" if n else ""
            ratio = f"{base['stats']['median'] / med:.2f}×" if base else ""
            label = b["extra_info"].get("peer", b["name"])
            out.append(f"| {label} | {med * 1e3:,.2f} ms | {rate} | {ratio} |")
    return "\n".join(out)


def main(paths: list[str]) -> None:
    for p in paths:
        with open(p) as f:
            data = json.load(f)
        print(f"Machine: {machine_line(data.get('machine_info', {}))}")
        print(rows(data))


if __name__ == "__main__":
    main(sys.argv[1:])
