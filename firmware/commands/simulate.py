"""``obscura simulate -o scene.dng``: an HQ camera DNG from the IMX477 simulator.

A raw file to try everything on without a camera or downloads: the simulator renders a
scene (a ColorChecker over a grey ramp, or any photo given with ``--scene``) as the HQ
camera would record it, with its noise, lens vignetting and hot pixels. ``--frames N``
writes a handheld burst, ``scene_01.dng`` to ``scene_NN.dng``, for ``obscura merge`` and
``obscura develop --mode``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from firmware.commands.demo import frame_size
from pipeline.errors import ObscuraError

#: Most frames of a simulated burst (a night shot's).
MAX_FRAMES = 15


def burst_paths(output: Path, frames: int) -> list[Path]:
    """``scene.dng`` for one frame; ``scene_01.dng``... for a burst."""
    if frames == 1:
        return [output]
    return [output.with_name(f"{output.stem}_{i:02d}{output.suffix}") for i in range(1, frames + 1)]


def read_scene(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 sRGB of an image file Pillow reads."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise ObscuraError(f"{path}: not an image Pillow reads: {exc}") from None


def run(args: argparse.Namespace) -> int:
    """Render the frames and write them as DNGs."""
    from firmware.develop_file import check_output
    from hardware.imx477_simulator import ANALOGUE_GAIN_LIMITS, Imx477Simulator, SensorSettings
    from hardware.simulated_camera import default_scene
    from hardware.storage import write_atomic
    from pipeline.formats.encoders.dng import encode_dng

    if not 1 <= args.frames <= MAX_FRAMES:
        raise ObscuraError(f"--frames {args.frames}: expected 1..{MAX_FRAMES}")
    low, high = ANALOGUE_GAIN_LIMITS
    if not low <= args.gain <= high:
        raise ObscuraError(f"--gain {args.gain:g}: expected {low:g}..{high:g} (analogue gain)")
    if not 0 <= args.motion_px <= 100:
        raise ObscuraError(f"--motion-px {args.motion_px:g}: expected 0..100")
    paths = burst_paths(Path(args.output), args.frames)
    for path in paths:
        check_output(path, {".dng"}, [Path(args.scene)] if args.scene else [])
    scene = read_scene(Path(args.scene)) if args.scene else default_scene()
    height, width = args.size
    camera = Imx477Simulator(scene, seed=args.seed, output_size=(height, width),
                             motion_px=args.motion_px)
    # White just at the clipping point, as the simulated camera's auto exposure does.
    settings = SensorSettings(camera.exposure_time_us_for(1.0, args.gain), analogue_gain=args.gain)
    for path in paths:
        write_atomic(path, encode_dng(camera.capture(settings)))
        print(path)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``simulate`` subcommand."""
    parser = subparsers.add_parser(
        "simulate", help="write HQ camera DNGs from the IMX477 simulator (no camera needed)"
    )
    parser.add_argument("-o", "--output", required=True, help="OUT.dng")
    parser.add_argument("--frames", type=int, default=1,
                        help=f"frames of a burst, 1-{MAX_FRAMES} (OUT_01.dng...)")
    parser.add_argument("--scene", default=None,
                        help="a photo to render (JPEG, PNG...; default: a ColorChecker)")
    parser.add_argument("--size", type=frame_size, default="2028x1520",
                        help="frame WIDTHxHEIGHT (the HQ camera's full frame: 4056x3040)")
    parser.add_argument("--gain", type=float, default=1.0,
                        help="analogue gain: more gain, more noise (ISO 100 x gain)")
    parser.add_argument("--motion-px", type=float, default=0.0,
                        help="handheld shake between frames, pixels")
    parser.add_argument("--seed", type=int, default=0, help="seeds noise and shake")
    parser.set_defaults(run=run)
