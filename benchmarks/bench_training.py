"""Seconds per training step of the NTC hyperprior and its generative decoder, float32 against
``--precision bf16`` (CPU autocast to bfloat16, with and without channels-last tensors).

::

    python benchmarks/bench_training.py [--threads 2] [--repeats 8]

Each configuration builds the trainers' own model (``HyperpriorModel(96, 128)`` with the shipped
ladder; the decoder's ``default_residual`` U-Net, widths 32/48/64/96, on a fixed x̂_mmse), runs
forward + backward + Adam on random crops, and reports the median of ``--repeats`` steps after
two warm-up steps. Run it on a quiet machine: a concurrent job on the same cores doubles the times.
The held-out figures and the codecs always run in float32; this measures the training step only.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from chansim.diffusion.models import default_residual
from chansim.ntc.model import HyperpriorModel
from chansim.train.loop import describe_machine

LADDER = (0.0001, 0.00022, 0.00048, 0.00106, 0.0023, 0.0052, 0.0113, 0.025, 0.055, 0.12)


def _time(model, loss_fn, repeats: int, bf16: bool, channels_last: bool) -> float:
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), 1e-5)
    times = []
    for i in range(repeats + 2):
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = loss_fn(model)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= 2:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=8)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    rows = []
    for what, crop, batch in (("ntc", 128, 8), ("ntc", 256, 4), ("decoder", 128, 8)):
        x = torch.rand(batch, 3, crop, crop, generator=gen)
        q = torch.randint(0, len(LADDER), (batch,), generator=gen)
        for mode, bf16, cl in (("fp32", False, False), ("bf16", True, False), ("bf16 + channels-last", True, True)):
            torch.manual_seed(0)
            if what == "ntc":
                model = HyperpriorModel(96, 128, LADDER)
                loss_fn = lambda m: m.loss(x, q)["loss"]            # noqa: E731
            else:
                model = default_residual([0.05] * len(LADDER), "bench")
                base = (x + 0.05 * torch.randn(x.shape, generator=gen)).clamp(0, 1)
                loss_fn = lambda m: m.loss(x, base, q)              # noqa: E731
            s = _time(model, loss_fn, args.repeats, bf16, cl)
            rows.append({"model": what, "crop": crop, "batch": batch, "mode": mode, "s_per_step": round(s, 4)})
            print(json.dumps(rows[-1]), flush=True)
    print(f"\n{describe_machine()}, {args.threads} threads")
    print("| model | crop × batch | fp32 (s) | bf16 (s) | bf16 + channels-last (s) | speed-up |")
    print("|---|---|---:|---:|---:|---:|")
    for i in range(0, len(rows), 3):
        a, b, c = rows[i:i + 3]
        print(f"| {a['model']} | {a['crop']}² × {a['batch']} | {a['s_per_step']:.3f} | {b['s_per_step']:.3f} | "
              f"{c['s_per_step']:.3f} | {a['s_per_step'] / c['s_per_step']:.2f}× |")


if __name__ == "__main__":
    main()
