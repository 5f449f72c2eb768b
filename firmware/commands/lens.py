"""``obscura lens list|add`` and ``obscura calibrate flat``: manual lenses."""

from __future__ import annotations

import argparse
from pathlib import Path


def _list(args: argparse.Namespace) -> int:
    from firmware.lens_profiles import LensLibrary

    library = LensLibrary(args.lens_dir)
    for lens in library.lenses().values():
        calibrated = "flat-field calibrated" if library.shading(lens.name) else ""
        print(
            f"{lens.name:<36} {lens.focal_length_mm:>6g} mm  f/{lens.max_f_number:<4g} "
            f"{lens.mount:<5} ({lens.focal_length_35mm:.0f} mm equiv.) {calibrated}"
        )
    return 0


def _add(args: argparse.Namespace) -> int:
    from firmware.lens_profiles import LensLibrary, LensProfile

    lens = LensProfile(args.name, args.focal_length, args.max_aperture, args.mount)
    LensLibrary(args.lens_dir).add(lens)
    print(f"added {lens.name} ({lens.focal_length_35mm:.0f} mm equivalent on the HQ camera)")
    return 0


def _calibrate_flat(args: argparse.Namespace) -> int:
    from firmware.lens_profiles import LensLibrary
    from pipeline.dng_reader import read_dng
    from pipeline.flat_field import lens_shading_from_flat

    library = LensLibrary(args.lens_dir)
    library.get(args.lens)
    shading = lens_shading_from_flat([read_dng(Path(p)) for p in args.frames])
    path = library.save_shading(args.lens, shading)
    corner = float(shading.gains[:, 0, 0].mean())
    print(f"{args.lens}: lens shading saved to {path} (corner gain {corner:.2f})")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``lens`` and ``calibrate`` subcommands."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--lens-dir", type=Path, default=None, help="lens library folder")

    lens = subparsers.add_parser("lens", help="lens profiles for manual lenses")
    actions = lens.add_subparsers(dest="lens_command", required=True)
    actions.add_parser("list", parents=[common], help="list known lenses").set_defaults(run=_list)
    add = actions.add_parser("add", parents=[common], help="add a lens profile")
    add.add_argument("name")
    add.add_argument("--focal-length", type=float, required=True, help="mm")
    add.add_argument("--max-aperture", type=float, required=True, help="widest f-number")
    add.add_argument("--mount", default="C", help="C, CS, M, M42 or other")
    add.set_defaults(run=_add)

    calibrate = subparsers.add_parser("calibrate", help="calibrate the lens in use")
    kinds = calibrate.add_subparsers(dest="calibrate_command", required=True)
    flat = kinds.add_parser(
        "flat", parents=[common], help="lens shading from DNGs of an evenly lit white surface"
    )
    flat.add_argument("frames", nargs="+", help="DNG frames of the flat field")
    flat.add_argument("--lens", required=True, help="the lens profile to store it in")
    flat.set_defaults(run=_calibrate_flat)
