"""The ``obscura`` command-line tool."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from pipeline.errors import ObscuraError

logger = logging.getLogger("obscura")

OUTPUT_SUFFIXES = {".jpg": "jpeg", ".jpeg": "jpeg", ".tif": "tiff", ".tiff": "tiff"}


def _develop(args: argparse.Namespace) -> int:
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


def _looks(args: argparse.Namespace) -> int:
    from pipeline.look import builtin_looks

    for look in builtin_looks().values():
        print(f"{look.name:<14} {look.description}")
    return 0


def _warm_cache(args: argparse.Namespace) -> int:
    from firmware.warmup import warm_numba_cache

    warm_numba_cache()
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="obscura", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    sub = parser.add_subparsers(dest="command", required=True)

    develop = sub.add_parser("develop", help="develop a DNG into a JPEG or 16-bit TIFF")
    develop.add_argument("input", help="a DNG file")
    develop.add_argument("-o", "--output", required=True, help="OUT.jpg or OUT.tif")
    develop.add_argument("--look", default="standard", help="see `obscura looks`")
    develop.add_argument("--quality", type=int, default=92, help="JPEG quality 1-100")
    develop.add_argument(
        "--white-balance", choices=("as-shot", "auto"), default="as-shot", help="white balance"
    )
    develop.add_argument("--ev", type=float, default=0.0, help="exposure compensation (EV)")
    develop.set_defaults(run=_develop)

    looks = sub.add_parser("looks", help="list the looks")
    looks.set_defaults(run=_looks)

    warm = sub.add_parser("warm-cache", help="compile the numba kernels once (set-up does this)")
    warm.set_defaults(run=_warm_cache)
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
