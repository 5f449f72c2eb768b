"""``obscura merge IN1.dng IN2.dng ... -o MERGED.dng``: align and merge a burst into one DNG.

The merged DNG has the reference frame's geometry and metadata, a 16-bit white level and
a NoiseProfile lowered by the frames merged; any raw converter opens it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.errors import ObscuraError


def run(args: argparse.Namespace) -> int:
    """Merge ``args.inputs`` into ``args.output``."""
    from firmware.develop_file import merge_files

    output = Path(args.output)
    if output.suffix.lower() != ".dng":
        raise ObscuraError(f"{output}: unknown output type; use .dng")
    merge_files([Path(p) for p in args.inputs], output)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``merge`` subcommand."""
    parser = subparsers.add_parser("merge", help="align and merge a burst of raw files into one DNG")
    parser.add_argument("inputs", nargs="+", metavar="input", help="the burst's raw files (DNG, CR2, NEF...)")
    parser.add_argument("-o", "--output", required=True, help="MERGED.dng")
    parser.set_defaults(run=run)
