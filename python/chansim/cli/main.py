"""The ``chansim`` command: the parser of every subcommand and :func:`main`.

Bad input (a missing file, an unreadable image, a file that is not a valid chansim file,
a missing optional dependency) prints one line on stderr and exits with status 2;
``--debug`` shows the traceback instead. See docs/cli.md.
"""

from __future__ import annotations

import argparse
import sys

from . import bench, compress, demo
from . import eval as eval_cmd
from .common import Parser, extra_for, module_name, version


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS keeps a --debug given before the command from being reset by the subparser default.
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the full traceback on errors")
    common.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                        help="print nothing but errors")

    parser = Parser(
        prog="chansim", description="Exact channel simulation and generative image codecs.",
        epilog="Run 'chansim COMMAND --help' for a command's options. Documentation: docs/cli.md.")
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    parser.add_argument("--version", action="version", version=f"chansim {version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
    compress.add_parsers(sub, common)
    eval_cmd.add_parser(sub, common)
    bench.add_parser(sub, common)
    demo.add_parser(sub, common)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.debug = getattr(args, "debug", False)
    args.quiet = getattr(args, "quiet", False)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print(f"chansim {args.command}: interrupted", file=sys.stderr)
        return 130
    except ModuleNotFoundError as exc:  # an optional dependency: name the extra that installs it
        if args.debug:
            raise
        fix = extra_for(exc.name)
        if fix is None:
            print(f"chansim {args.command}: internal error: {type(exc).__name__}: {exc} (run with --debug for "
                  f"the traceback)", file=sys.stderr)
            return 1
        print(f"chansim {args.command}: error: this needs {module_name(exc.name)}: {fix}",
              file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:  # bad input: missing files, unreadable images, FormatError, bad options
        if args.debug:
            raise
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"chansim {args.command}: error: {msg}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug, not bad input: still one line, but say how to see more
        if args.debug:
            raise
        print(f"chansim {args.command}: internal error: {type(exc).__name__}: {exc} (run with --debug for the "
              f"traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
