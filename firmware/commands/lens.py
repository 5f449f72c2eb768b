"""``obscura lens list|add|set`` and ``obscura calibrate flat|pi-jpeg``: manual lenses.

``list``, ``add``, ``calibrate flat DNG...`` and ``calibrate pi-jpeg`` work on the lens
library folder:
``--lens-dir``, else ``$OBSCURA_LENS_DIR``, else the configuration's ``lens.library_dir``,
the folder the camera itself uses. ``set``, and ``calibrate flat`` without DNGs, ask the
running camera.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from firmware.control_client import add_client_arguments, connect


def _list(args: argparse.Namespace) -> int:
    """Print every lens; broken entries of the library's file are listed as such."""
    from firmware.lens_profiles import LensError, LensLibrary

    library = LensLibrary(args.lens_dir)
    lenses, problems = library.load()
    for lens in lenses.values():
        if lens.name in problems:
            continue
        try:
            calibration = library.calibration(lens.name)
            calibrated = f"{calibration[1]} calibrated" if calibration else ""
        except LensError as exc:
            calibrated = f"BROKEN flat-field table: {exc}"
        print(
            f"{lens.name:<36} {lens.focal_length_mm:>6g} mm  f/{lens.max_f_number:<4g} "
            f"{lens.mount:<5} ({lens.focal_length_35mm:.0f} mm equiv.) {calibrated}"
        )
    for name, problem in problems.items():
        print(f"{name:<36} BROKEN: {problem}")
    return 0


def _add(args: argparse.Namespace) -> int:
    from firmware.lens_profiles import LensLibrary, LensProfile

    lens = LensProfile(args.name, args.focal_length, args.max_aperture, args.mount)
    LensLibrary(args.lens_dir).add(lens, replace=args.replace)
    print(f"added {lens.name} ({lens.focal_length_35mm:.0f} mm equivalent on the HQ camera)")
    return 0


def _set(args: argparse.Namespace) -> int:
    """Put a lens in use on the running camera (validated against its lens library)."""
    with connect(args) as client:
        values = client.request("lens.set", name=args.name, f_number=args.f_number)
    if args.json:
        print(json.dumps(values, indent=2))
    else:
        f_number = values.get("lens.f_number") or 0
        print(f"lens in use: {values['lens.name']}"
              + (f" at f/{f_number:g}" if f_number else ""))
    return 0


def _calibrate_flat(args: argparse.Namespace) -> int:
    if not args.frames:
        return _calibrate_flat_on_camera(args)
    from firmware.lens_profiles import LensLibrary
    from pipeline.formats.dng_reader import read_dng
    from pipeline.stages.flat_field import FlatFieldError, lens_shading_from_flat

    library = LensLibrary(args.lens_dir)
    library.get(args.lens)
    frames = []
    for path in map(Path, args.frames):
        frame = read_dng(path)
        try:  # each frame on its own, so a scene among flats is named, not averaged away
            lens_shading_from_flat([frame])
        except FlatFieldError as exc:
            raise FlatFieldError(f"{path}: {exc}; nothing saved") from None
        frames.append(frame)
    shading = lens_shading_from_flat(frames)
    path = library.save_shading(args.lens, shading)
    corner = float(shading.gains[:, 0, 0].mean())
    print(f"{args.lens}: lens shading saved to {path} (corner gain {corner:.2f})")
    return 0


def _calibrate_pi_jpeg(args: argparse.Namespace) -> int:
    """Store the colour shading the Pi's ISP applied to a raw frame in making its JPEG."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    from firmware.lens_profiles import LensLibrary
    from pipeline.errors import ObscuraError
    from pipeline.formats.raw_files import read_raw
    from pipeline.raw_frame import LensShadingMap
    from pipeline.stages.colour_shading import tuning_centre_gains
    from pipeline.stages.isp_colour_shading import fit_isp_colour_shading

    library = LensLibrary(args.lens_dir)
    library.get(args.lens)
    frame = read_raw(Path(args.raw))
    try:
        with Image.open(args.jpeg) as image:
            jpeg = np.asarray(image.convert("RGB"))
    except (OSError, UnidentifiedImageError) as exc:
        raise ObscuraError(f"{args.jpeg}: not a readable JPEG: {exc}") from None
    try:
        fit = fit_isp_colour_shading(frame, jpeg)
    except ObscuraError as exc:
        raise type(exc)(f"{args.raw}, {args.jpeg}: {exc}; nothing saved") from None
    # Stored as a flat field is: for a sensor whose tuning ships, relative to the tuning's
    # centre gains, which the camera and `develop --lens` multiply back in.
    gains = fit.shading.gains / tuning_centre_gains(frame.metadata, frame.shape)[:, None, None]
    path = library.save_shading(args.lens, LensShadingMap(gains=gains.astype(np.float32)),
                                source="pi-jpeg")
    red, blue = fit.centre_gains
    print(f"{args.lens}: colour shading saved to {path} (centre: red x{red:.3f}, blue "
          f"x{blue:.3f} over green; {fit.blocks} blocks, {fit.residual_levels:.1f} levels RMS)")
    return 0


def _calibrate_flat_on_camera(args: argparse.Namespace) -> int:
    """The running camera shoots the flat field and stores the table in its library."""
    with connect(args) as client:
        result = client.request("calibrate.flat", lens=args.lens, frames=args.count)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{result['lens']}: lens shading from {result['frames']} frames saved to "
              f"{result['path']} (corner gain {result['corner_gain']:.2f})")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``lens`` and ``calibrate`` subcommands."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--lens-dir", type=Path, default=None, help="lens library folder")

    lens = subparsers.add_parser("lens", help="lens profiles for manual lenses")
    actions = lens.add_subparsers(dest="lens_command", required=True)
    actions.add_parser("list", parents=[common], help="list known lenses").set_defaults(run=_list)
    add = actions.add_parser("add", parents=[common], help="add a lens profile")
    add.add_argument("name", help="the lens's name, as EXIF LensModel will show it")
    add.add_argument("--focal-length", type=float, required=True, help="focal length, mm")
    add.add_argument("--max-aperture", type=float, required=True, help="widest f-number")
    add.add_argument("--mount", default="C", help="C, CS, M, M42 or other")
    add.add_argument("--replace", action="store_true", help="replace a lens of that name")
    add.set_defaults(run=_add)
    set_ = actions.add_parser("set", help="the lens on the running camera (EXIF, shading)")
    set_.add_argument("name", help="a lens of the camera's library (obscura lens list)")
    set_.add_argument("--f-number", type=float, default=None, help="the aperture in use")
    add_client_arguments(set_)
    set_.set_defaults(run=_set)

    calibrate = subparsers.add_parser("calibrate", help="calibrate the lens in use")
    kinds = calibrate.add_subparsers(dest="calibrate_command", required=True)
    flat = kinds.add_parser(
        "flat", parents=[common],
        help="lens shading of an evenly lit white surface: from DNGs, or shot by the camera",
    )
    flat.add_argument("frames", nargs="*",
                      help="DNG frames of the flat field (none: the running camera shoots them)")
    flat.add_argument("--lens", required=True, help="the lens profile to store it in")
    flat.add_argument("--count", type=int, default=4,
                      help="frames the camera shoots (without DNGs)")
    flat.add_argument("--socket", help="the daemon's control socket (without DNGs)")
    flat.add_argument("--json", action="store_true", help="print JSON (without DNGs)")
    flat.set_defaults(run=_calibrate_flat)
    pi_jpeg = kinds.add_parser(
        "pi-jpeg", parents=[common],
        help="the colour shading the Pi's ISP applied, from a raw frame and its JPEG of it "
             "(for a sensor whose tuning Obscura does not ship)",
    )
    pi_jpeg.add_argument("raw", help="the raw frame (DNG), as the camera recorded it")
    pi_jpeg.add_argument("jpeg", help="the Pi ISP's JPEG of exactly that frame, full size")
    pi_jpeg.add_argument("--lens", required=True, help="the lens profile to store it in")
    pi_jpeg.set_defaults(run=_calibrate_pi_jpeg)
