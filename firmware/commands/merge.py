"""``obscura merge IN1.dng IN2.dng ... -o MERGED.dng``: align and merge a burst into one DNG.

The merged DNG has the reference frame's geometry and metadata, a 16-bit white level and
a NoiseProfile lowered by the frames merged; any raw converter opens it. The default
merge, ``kernel``, merges every raw sample at its true position (Wronski et al. 2019);
``--merge resample`` resamples each frame first: about 0.7x the time and memory, less gain
on scenes sharp to the pixel. The kernel merge demosaics as it merges: the DNG keeps each
site's own colour of it (a mosaic, which ``obscura develop`` reads), or, with
``--linear-raw``, all three colours as a LinearRaw DNG (LibRaw, darktable and Lightroom
read it; ``obscura develop`` reads mosaics only).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.burst import MERGE_METHODS


def run(args: argparse.Namespace) -> int:
    """Merge ``args.inputs`` into ``args.output``."""
    from firmware.develop_file import merge_files
    from firmware.progress import Progress

    inputs = [Path(p) for p in args.inputs]
    with Progress(f"merging {len(inputs)} frames") as progress:
        merge_files(inputs, Path(args.output), timer=progress, merge=args.merge,
                    linear_raw=args.linear_raw)
    return 0


def add_merge_option(parser: argparse.ArgumentParser) -> None:
    """``--merge kernel|resample`` (:data:`pipeline.burst.MERGE_METHODS`)."""
    parser.add_argument(
        "--merge", choices=MERGE_METHODS, default="kernel",
        help="kernel: every raw sample at its true position (Wronski et al. 2019); or "
             "resample each frame, then merge (about 0.7x the time and memory)",
    )  # fmt: skip


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``merge`` subcommand."""
    parser = subparsers.add_parser("merge", help="align and merge a burst of raw files into one DNG")
    parser.add_argument("inputs", nargs="+", metavar="input", help="the burst's raw files (DNG, CR2, NEF...)")
    parser.add_argument("-o", "--output", required=True, help="MERGED.dng")
    add_merge_option(parser)
    parser.add_argument(
        "--linear-raw", action="store_true",
        help="write the kernel merge's full colour as a LinearRaw DNG (for other raw "
             "converters; obscura develop reads mosaics only)",
    )  # fmt: skip
    parser.set_defaults(run=run)
