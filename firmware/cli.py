"""The ``obscura`` command-line tool."""

from __future__ import annotations

import argparse
import logging
import sys

from firmware.commands import (
    config,
    contact_sheet,
    demo,
    develop,
    focus,
    lens,
    logs,
    looks,
    ls,
    merge,
    run,
    shoot,
    status,
    warm_cache,
)
from pipeline.errors import ObscuraError

logger = logging.getLogger("obscura")

SUBCOMMANDS = (
    config, contact_sheet, demo, develop, focus, lens, logs, looks, ls, merge, run, shoot,
    status, warm_cache,
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="obscura", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module in SUBCOMMANDS:
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; errors are one line on stderr, never a traceback."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        # tifffile warns about every oddity it meets; our reader turns real problems into errors.
        logging.getLogger("tifffile").setLevel(logging.ERROR)
    try:
        return args.run(args)
    except (ObscuraError, OSError) as exc:
        print(f"obscura: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
