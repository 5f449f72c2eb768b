"""``obscura contact-sheet IN.dng -o sheet.jpg``: every look side by side, labelled."""

from __future__ import annotations

import argparse
from pathlib import Path

from typing import TYPE_CHECKING

import numpy as np

from pipeline.errors import InvalidParameterError

if TYPE_CHECKING:
    from pipeline.raw_frame import RawFrame

LABEL_HEIGHT_PX = 18


def contact_sheet(frame: RawFrame, tile_width_px: int = 480, columns: int = 3) -> np.ndarray:
    """(H, W, 3) uint8: ``frame`` developed with every look, downscaled, in a labelled grid.

    Each look develops the full frame, so the tiles show exactly what ``obscura develop``
    gives (grain is rendered at full size and averages out in the downscale, as it does
    in a print of that size).
    """
    from PIL import Image, ImageDraw

    from pipeline.develop import DevelopParams, develop
    from pipeline.look import available_looks
    from pipeline.output_transform import quantize

    if tile_width_px < 16 or columns < 1:
        raise InvalidParameterError(
            f"tile_width_px={tile_width_px}, columns={columns}: expected >= 16 and >= 1"
        )
    looks, _ = available_looks()
    tiles = []
    # The references first (neutral, standard), then the rest by name.
    order = sorted(looks.values(), key=lambda k: (k.name not in ("neutral", "standard"), k.name))
    for look in order:
        image = Image.fromarray(quantize(develop(frame, DevelopParams(look=look)), np.uint8))
        height = round(image.height * tile_width_px / image.width)
        tiles.append((look.name, image.resize((tile_width_px, height), Image.Resampling.LANCZOS)))
    tile_h = tiles[0][1].height + LABEL_HEIGHT_PX
    rows = -(-len(tiles) // columns)
    sheet = Image.new("RGB", (columns * tile_width_px, rows * tile_h), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    for i, (name, tile) in enumerate(tiles):
        x, y = (i % columns) * tile_width_px, (i // columns) * tile_h
        sheet.paste(tile, (x, y))
        draw.text((x + 6, y + tile.height + 3), name, fill=(235, 235, 235))
    return np.asarray(sheet)


def run(args: argparse.Namespace) -> int:
    """Write the contact sheet of ``args.input`` to ``args.output`` (JPEG)."""
    from hardware.storage import write_atomic
    from pipeline.raw_files import read_raw
    from pipeline.encoders.jpeg import encode_jpeg

    output = Path(args.output)
    if output.suffix.lower() not in (".jpg", ".jpeg"):
        raise InvalidParameterError(f"{output}: the contact sheet is a JPEG; use .jpg")
    frame = read_raw(Path(args.input))
    sheet = contact_sheet(frame, args.tile_width, args.columns)
    write_atomic(output, encode_jpeg(np.ascontiguousarray(sheet), frame.metadata, args.quality))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``contact-sheet`` subcommand."""
    parser = subparsers.add_parser(
        "contact-sheet", help="every look on one frame, side by side, labelled"
    )
    parser.add_argument("input", help="a raw file (DNG, CR2, NEF...)")
    parser.add_argument("-o", "--output", required=True, help="OUT.jpg")
    parser.add_argument("--tile-width", type=int, default=480, help="width of each tile, px")
    parser.add_argument("--columns", type=int, default=3, help="tiles per row")
    parser.add_argument("--quality", type=int, default=85, help="JPEG quality 1-100")
    parser.set_defaults(run=run)
