"""``obscura contact-sheet IN.dng -o sheet.jpg``: every look side by side, labelled."""

from __future__ import annotations

import argparse
from pathlib import Path

from typing import TYPE_CHECKING

import numpy as np

from pipeline.errors import InvalidParameterError

if TYPE_CHECKING:
    from pipeline.stage_timer import Timer
    from pipeline.raw_frame import RawFrame

LABEL_HEIGHT_PX = 18
#: Widest tile: the HQ camera's full frame width; a wider tile only upscales.
MAX_TILE_WIDTH_PX = 4056
#: Most tiles in a row.
MAX_COLUMNS = 12


def check_layout(tile_width_px: int, columns: int) -> None:
    """Refuse a tile width outside 16..``MAX_TILE_WIDTH_PX`` or columns outside
    1..``MAX_COLUMNS`` (a sheet of a few hundred megapixels at most)."""
    if not 16 <= tile_width_px <= MAX_TILE_WIDTH_PX:
        raise InvalidParameterError(
            f"tile_width_px={tile_width_px}: expected 16..{MAX_TILE_WIDTH_PX}"
        )
    if not 1 <= columns <= MAX_COLUMNS:
        raise InvalidParameterError(f"columns={columns}: expected 1..{MAX_COLUMNS}")


def contact_sheet(frame: RawFrame, tile_width_px: int = 480, columns: int = 3,
                  timer: Timer | None = None) -> np.ndarray:
    """(H, W, 3) uint8: ``frame`` developed with every look, downscaled, in a labelled grid.

    Each look develops the full frame, so the tiles show exactly what ``obscura develop``
    gives (grain is rendered at full size and averages out in the downscale, as it does
    in a print of that size). ``timer`` (a stage timer) sees one stage per look.
    """
    from PIL import Image, ImageDraw

    from pipeline.stage_timer import untimed
    from pipeline.colour.output_transform import quantize
    from pipeline.develop import DevelopParams, develop
    from pipeline.looks.look import available_looks

    check_layout(tile_width_px, columns)
    stage = timer or untimed
    looks, _ = available_looks()
    tiles = []
    # The references first (neutral, standard), then the rest by name.
    order = sorted(looks.values(), key=lambda k: (k.name not in ("neutral", "standard"), k.name))
    for number, look in enumerate(order, 1):
        with stage(f"look {number} of {len(order)}, {look.name}"):
            developed = develop(frame, DevelopParams(look=look))
        image = Image.fromarray(quantize(developed, np.uint8))
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
    from firmware.develop_file import check_output
    from firmware.progress import Progress
    from hardware.storage import write_atomic
    from pipeline.formats.encoders.jpeg import encode_jpeg
    from pipeline.formats.raw_files import read_raw

    output, source = Path(args.output), Path(args.input)
    check_output(output, (".jpg", ".jpeg"), [source])
    check_layout(args.tile_width, args.columns)
    with Progress(f"contact sheet of {source.name}") as progress:
        progress.step("reading")
        frame = read_raw(source)
        sheet = contact_sheet(frame, args.tile_width, args.columns, timer=progress)
        progress.step("writing")
        data = encode_jpeg(np.ascontiguousarray(sheet), frame.metadata, args.quality)
        write_atomic(output, data)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``contact-sheet`` subcommand."""
    parser = subparsers.add_parser(
        "contact-sheet", help="every look on one frame, side by side, labelled"
    )
    parser.add_argument("input", help="a raw file (DNG, CR2, NEF...)")
    parser.add_argument("-o", "--output", required=True, help="OUT.jpg")
    parser.add_argument("--tile-width", type=int, default=480,
                        help=f"width of each tile, px (16-{MAX_TILE_WIDTH_PX})")
    parser.add_argument("--columns", type=int, default=3, help=f"tiles per row (1-{MAX_COLUMNS})")
    parser.add_argument("--quality", type=int, default=85, help="JPEG quality 1-100")
    parser.set_defaults(run=run)
