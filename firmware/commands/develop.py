"""``obscura develop IN.dng -o OUT.jpg|OUT.tif``: develop a raw file."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.errors import ObscuraError

OUTPUT_SUFFIXES = {".jpg": "jpeg", ".jpeg": "jpeg", ".tif": "tiff", ".tiff": "tiff"}


def run(args: argparse.Namespace) -> int:
    """Develop ``args.input`` into ``args.output``."""
    from firmware.develop_file import develop_file
    from pipeline.develop import DevelopParams

    output = Path(args.output)
    if output.suffix.lower() not in OUTPUT_SUFFIXES:
        raise ObscuraError(f"{output}: unknown output type; use .jpg or .tif")
    params = DevelopParams(
        look=args.look, white_balance=args.white_balance, exposure_compensation_ev=args.ev
    )
    develop_file(Path(args.input), output, params, jpeg_quality=args.quality)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``develop`` subcommand."""
    parser = subparsers.add_parser("develop", help="develop a DNG into a JPEG or 16-bit TIFF")
    parser.add_argument("input", help="a DNG file")
    parser.add_argument("-o", "--output", required=True, help="OUT.jpg or OUT.tif")
    parser.add_argument("--look", default="standard", help="see `obscura looks`")
    parser.add_argument("--quality", type=int, default=92, help="JPEG quality 1-100")
    parser.add_argument(
        "--white-balance", choices=("as-shot", "auto"), default="as-shot", help="white balance"
    )
    parser.add_argument("--ev", type=float, default=0.0, help="exposure compensation (EV)")
    parser.set_defaults(run=run)
