"""``obscura develop IN.dng [IN2.dng ...] -o OUT.jpg|OUT.tif``: develop a raw file or a burst.

Inputs are DNGs or any other Bayer camera raw LibRaw reads (CR2, NEF, ARW...).

Several inputs are a burst: aligned and merged (HDR+), then developed. ``--mode`` picks
how: ``burst`` (the default for several inputs), ``hdr`` (exposure fusion lifts the
shadows of an underexposed or bracketed burst) or ``night``.

``--lens NAME`` develops the input as shot through a lens of the library (``obscura lens
list``): its EXIF fields and its shading table (``obscura calibrate flat`` or ``pi-jpeg``),
which replaces any the file carries.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from firmware.commands.merge import add_merge_option
from pipeline.burst import BURST_MODES
from pipeline.errors import ObscuraError

if TYPE_CHECKING:
    from firmware.lens_profiles import LensInUse

#: JPEG quality when ``--quality`` is not given (the camera's ``output.jpeg_quality``).
DEFAULT_JPEG_QUALITY = 92


def lens_of(args: argparse.Namespace) -> LensInUse | None:
    """The lens ``--lens`` names in the library (``--lens-dir``), None without ``--lens``.

    Raises
    ------
    LensError
        No such lens, or its shading table is unreadable.
    """
    if args.lens is None:
        return None
    from firmware.lens_profiles import LensInUse, LensLibrary

    library = LensLibrary(args.lens_dir)
    profile = library.get(args.lens)
    return LensInUse(profile.name, profile.focal_length_mm, profile,
                     shading=library.shading(args.lens))


def add_lens_options(parser: argparse.ArgumentParser) -> None:
    """``--lens NAME`` and ``--lens-dir``: develop as shot through a lens of the library."""
    parser.add_argument("--lens", default=None, metavar="NAME",
                        help="a lens of the library: its EXIF fields and shading table")
    parser.add_argument("--lens-dir", type=Path, default=None,
                        help="the lens library folder (default: the camera's)")


def run(args: argparse.Namespace) -> int:
    """Develop ``args.inputs`` (one frame, or a burst) into ``args.output``."""
    from firmware.develop_file import (
        IMAGE_SUFFIXES, check_output, develop_burst_files, develop_file,
    )
    from firmware.progress import Progress
    from pipeline.develop import DevelopParams

    output = Path(args.output)
    inputs = [Path(p) for p in args.inputs]
    check_output(output, IMAGE_SUFFIXES, inputs)
    if args.quality is not None and IMAGE_SUFFIXES[output.suffix.lower()] != "jpeg":
        raise ObscuraError(f"{output}: --quality {args.quality} is for JPEG; a TIFF is lossless")
    # Checked against the camera's own range (capture.exposure_compensation_ev), so both
    # agree; no compensation needs no check, nor the configuration's 14-23 ms of imports.
    ev = args.ev
    if ev:
        from firmware.config import KEYS

        ev = KEYS["capture.exposure_compensation_ev"].validate(ev, "--ev")
    lens = lens_of(args)
    quality = DEFAULT_JPEG_QUALITY if args.quality is None else args.quality
    params = DevelopParams(
        look=args.look, white_balance=args.white_balance, exposure_compensation_ev=ev
    )
    if args.mode is None and len(inputs) == 1:
        with Progress(f"developing {inputs[0].name}") as progress:
            develop_file(inputs[0], output, params, jpeg_quality=quality, timer=progress,
                         lens=lens)
        return 0
    if len(inputs) < 2:
        raise ObscuraError(f"--mode {args.mode} merges a burst: give at least 2 raw files, not 1")
    mode = args.mode or "burst"
    with Progress(f"developing a {len(inputs)}-frame {mode}") as progress:
        develop_burst_files(inputs, output, params, mode, jpeg_quality=quality, timer=progress,
                            merge=args.merge, lens=lens)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``develop`` subcommand."""
    parser = subparsers.add_parser(
        "develop", help="develop a raw file (DNG, CR2, NEF...), or merge a burst and develop it"
    )
    parser.add_argument("inputs", nargs="+", metavar="input", help="a raw file, or a burst's")
    parser.add_argument("-o", "--output", required=True, help="OUT.jpg or OUT.tif")
    parser.add_argument(
        "--mode", choices=BURST_MODES, default=None,
        help="burst processing (default: burst when several inputs are given)",
    )  # fmt: skip
    add_merge_option(parser)
    parser.add_argument("--look", default="standard", help="see `obscura looks`")
    parser.add_argument("--quality", type=int, default=None,
                        help=f"JPEG quality 1-100 (default: {DEFAULT_JPEG_QUALITY}; JPEG only)")
    parser.add_argument(
        "--white-balance", choices=("as-shot", "auto"), default="as-shot", help="white balance"
    )
    parser.add_argument("--ev", type=float, default=0.0,
                        help="exposure compensation, -4 to 4 EV as the camera's")
    add_lens_options(parser)
    parser.set_defaults(run=run)
