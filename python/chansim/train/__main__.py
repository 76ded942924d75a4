"""Command line: train a default model, resume it, or export a checkpoint as a shipped model.

Examples::

    python -m chansim.train uqdm --out runs/uqdm --steps 2400 --export-dir python/chansim/models
    python -m chansim.train uqdm --out runs/uqdm --resume           # continue after an interruption
    python -m chansim.train export runs/uqdm --dest python/chansim/models --name uqdm_default
    python -m chansim.train ntc --out runs/ntc --time-budget 115     # the NTC hyperprior, every quality at once
    python -m chansim.train export runs/ntc --dest python/chansim/models --name ntc_default
    python -m chansim.train ntc-decoder --out runs/ntcdec --time-budget 60   # NTC's generative decoder
    python -m chansim.train ntc-decoder --out runs/ntcdec2 --init-from python/chansim/models/ntc_generative.pt \
        --lr 1.5e-4 --time-budget 95                                   # … continued from the shipped one
    python -m chansim.train export runs/ntcdec --dest python/chansim/models --name ntc_generative

Training uses ``--threads`` CPU threads (default 1, so a two-core machine keeps a
core free) and stops at ``--steps`` or ``--time-limit`` minutes, whichever is first.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

DEFAULT_NAMES = {"uqdm": "uqdm_default", "diffc": "diffc_default"}

# Defaults sized so each default model trains in about an hour on one CPU thread.
DEFAULTS = {
    "uqdm": dict(steps=2400, batch=8, crop=64),
    "diffc": dict(steps=6000, batch=12, crop=64),
}


def _train_parser(kind: str, sub) -> None:
    p = sub.add_parser(kind, help=f"train the {kind} model")
    p.add_argument("--out", required=True, type=Path, help="run directory (checkpoint, log, exported model)")
    p.add_argument("--resume", action="store_true", help="continue from <out>/checkpoint.pt")
    p.add_argument("--steps", type=int, default=None, help=f"optimizer steps (default {DEFAULTS[kind]['steps']})")
    p.add_argument("--batch", type=int, default=DEFAULTS[kind]["batch"])
    p.add_argument("--crop", type=int, default=DEFAULTS[kind]["crop"])
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--lr-final", type=float, default=0.1, help="final LR as a fraction of --lr (cosine decay)")
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--grad-clip", type=float, default=1.0)
    p.add_argument("--ema", type=float, default=0.999, help="EMA decay")
    p.add_argument("--widths", type=int, nargs="+", default=[32, 48, 64, 96])
    p.add_argument("--schedule", choices=["learned_linear", "fixed_linear"], default="learned_linear")
    if kind == "uqdm":
        p.add_argument("--uqdm-steps", type=int, default=4, help="number of diffusion steps T")
    p.add_argument("--init-from", type=Path, default=None,
                   help="start from the network of an exported model file (same widths; e.g. UQDM from the DiffC model)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default 1)")
    p.add_argument("--time-limit", type=float, default=None, help="stop after this many minutes of this session")
    p.add_argument("--session-steps", type=int, default=None,
                   help="stop after this many steps of this session (resume later with --resume)")
    p.add_argument("--checkpoint-minutes", type=float, default=3.0)
    p.add_argument("--eval-minutes", type=float, default=10.0)
    p.add_argument("--log-every", type=int, default=20)
    p.add_argument("--data-dir", type=Path, default=None, help="shared data directory (default: shared_data_dir())")
    p.add_argument("--export-dir", type=Path, default=None, help="when done, write the model + card here")
    p.add_argument("--name", default=DEFAULT_NAMES[kind], help="file stem of the exported model")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chansim.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for kind in ("uqdm", "diffc"):
        _train_parser(kind, sub)
    from . import ntc as _ntc
    from . import ntc_decoder as _ntc_decoder

    _ntc.add_parser(sub)
    _ntc_decoder.add_parser(sub)
    e = sub.add_parser("export", help="export a run's EMA weights + model card")
    e.add_argument("run", type=Path)
    e.add_argument("--dest", type=Path, required=True)
    e.add_argument("--name", required=True)
    e.add_argument("--data-dir", type=Path, default=None)
    e.add_argument("--threads", type=int, default=None)
    e.add_argument("--calibration-side", type=_ntc_decoder.crop_side, default=_ntc_decoder.CALIBRATION_SIDE,
                   help="generative decoders: side of the training-photo crops the temperatures are calibrated on")
    e.add_argument("--calibration-images", type=int, default=_ntc_decoder.CALIBRATION_IMAGES,
                   help="generative decoders: how many training photos calibrate the temperatures")
    args = parser.parse_args(argv)
    command = "python -m chansim.train " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    if args.command == "ntc":
        return _ntc.main(args)
    if args.command == "ntc-decoder":
        return _ntc_decoder.main(args)
    if args.command == "export" and _ntc_decoder.is_decoder_run(args.run):
        import torch

        torch.set_num_threads(args.threads or 2)
        path = _ntc_decoder.export(args.run, args.dest, args.name, command, args.data_dir,
                                   calibration_side=args.calibration_side, calibration_count=args.calibration_images)
        print(f"wrote {path} and {path.with_suffix('.json')}")
        return 0
    if args.command == "export" and _ntc.is_ntc_run(args.run):
        import torch

        torch.set_num_threads(args.threads or 2)
        try:
            path = _ntc.export(args.run, args.dest, args.name, command, args.data_dir)
        except ValueError as e:         # an encoder-only run whose export would change the decoder
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(f"wrote {path} and {path.with_suffix('.json')}")
        return 0

    import torch

    torch.set_num_threads(args.threads or 1)
    from .data import CropSampler, kodak_heldout
    from .export import export

    if args.command == "export":
        heldout = kodak_heldout(root=args.data_dir)
        path = export(args.run, args.dest, args.name, heldout, command)
        print(f"wrote {path} and {path.with_suffix('.json')}")
        return 0

    from .loop import Trainer, resume_args

    if args.resume:
        args = resume_args(args.out, {k: getattr(args, k) for k in
                                      ("steps", "threads", "time_limit", "session_steps", "export_dir")})
    else:
        args.kind = args.command
        args.steps = args.steps or DEFAULTS[args.kind]["steps"]
        args.threads = args.threads or 1
        if args.kind != "uqdm":
            args.uqdm_steps = 4
        args.net_gamma_range = None
        if args.init_from is not None:
            from ..diffusion.io import load_model

            src_model, src_id = load_model(args.init_from)
            src = src_model.net.config()
            args.widths, args.net_gamma_range = src["widths"], src["gamma_range"]
            args.init_from_id = src_id
    sampler = CropSampler.from_shared(args.crop, seed=args.seed, root=args.data_dir)
    heldout = kodak_heldout(root=args.data_dir)
    trainer = Trainer(args, sampler, heldout)
    if args.resume:
        trainer.load_checkpoint()
        print(f"resumed {args.out} at step {trainer.step} ({trainer.elapsed / 60:.1f} min trained)", file=sys.stderr)
    trainer.run()
    if trainer.step >= args.steps and args.export_dir is not None:
        path = export(args.out, args.export_dir, args.name, heldout, command)
        print(f"exported {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
