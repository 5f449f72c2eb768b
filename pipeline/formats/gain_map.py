"""Lens shading as DNG files carry it: GainMap opcodes in OpcodeList2, read and written.

Phones (Android's DngCreator, so every burst of the HDR+ dataset), Adobe's converter and
many cameras store lens shading not in the mosaic but as GainMap opcodes (DNG 1.6, sec.
7.4, opcode 9) in OpcodeList2 (tag 51009), applied to the raw once it is mapped to linear
values: for a Bayer sensor, four maps, one per site of the 2x2 tile (``Top``/``Left`` 0 or 1,
``RowPitch`` = ``ColPitch`` = 2), each a grid of gains interpolated bilinearly. A reader
that ignores them shows dark corners and colour-shaded corners.

A map point at index (i, j) sits at relative position ``(MapOriginV + i * MapSpacingV,
MapOriginH + j * MapSpacingH)`` of the image, pixel centres at ``(row + 0.5) / height``,
and positions beyond the grid take its edge values (as the DNG SDK's
``dng_gain_map_interpolator`` does). :func:`lens_shading_from_opcodes` samples them on a
:class:`~pipeline.raw_frame.LensShadingMap` grid, four times as dense, which the develop's
lens shading stage applies; :func:`gain_map_opcodes` writes a LensShadingMap as four
opcodes whose points sit exactly on its grid points, so the round trip is exact.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pipeline.errors import RawFormatError
from pipeline.raw_frame import LensShadingMap

logger = logging.getLogger(__name__)

OPCODE_LIST_2 = 51009
GAIN_MAP = 9
#: DNG version an opcode needs, written in its header (GainMap: 1.3).
_GAIN_MAP_VERSION = bytes((1, 3, 0, 0))
_HEADER = struct.Struct(">IIII")  # opcode id, DNG version, flags, parameter bytes
_PARAMETERS = struct.Struct(">IIIIIIIIIIddddI")  # area, pitch, points, spacing, origin, planes
#: Density of the LensShadingMap grid against an opcode's grid, and its largest size.
_OVERSAMPLING = 4
_MAX_GRID_POINTS = 257


@dataclass(frozen=True)
class GainMap:
    """One GainMap opcode: the pixels it covers and its grid (``gains`` (V, H, planes))."""

    top: int
    left: int
    bottom: int
    right: int
    plane: int
    planes: int
    row_pitch: int
    col_pitch: int
    spacing: tuple[float, float]
    origin: tuple[float, float]
    gains: npt.NDArray[np.float32]

    def sample(self, rows: npt.NDArray[np.float64], cols: npt.NDArray[np.float64],
               height: int, width: int) -> npt.NDArray[np.float64]:
        """Gains of map plane 0 at pixel positions ``rows`` x ``cols`` (len(rows), len(cols))."""
        grid = self.gains[:, :, 0].astype(np.float64)

        def indices(position, origin, spacing, points):
            index = np.clip((position - origin) / spacing, 0.0, points - 1)
            low = np.minimum(index.astype(np.int64), max(points - 2, 0))
            return low, np.minimum(low + 1, points - 1), index - low

        y0, y1, ty = indices((rows + 0.5) / height, self.origin[0], self.spacing[0], grid.shape[0])
        x0, x1, tx = indices((cols + 0.5) / width, self.origin[1], self.spacing[1], grid.shape[1])
        top = grid[y0][:, x0] * (1 - tx) + grid[y0][:, x1] * tx
        bottom = grid[y1][:, x0] * (1 - tx) + grid[y1][:, x1] * tx
        return top * (1 - ty[:, None]) + bottom * ty[:, None]


def read_gain_maps(data: bytes) -> list[GainMap]:
    """The GainMap opcodes of an OpcodeList (other opcodes are skipped)."""
    try:
        (count,) = struct.unpack_from(">I", data, 0)
        offset = 4
        maps = []
        for _ in range(count):
            opcode, _version, _flags, size = _HEADER.unpack_from(data, offset)
            offset += _HEADER.size
            if opcode == GAIN_MAP:
                maps.append(_read_gain_map(data[offset : offset + size]))
            else:
                logger.debug("OpcodeList2: opcode %d not applied", opcode)
            offset += size
        return maps
    except struct.error as exc:
        raise RawFormatError(f"OpcodeList2 truncated or malformed: {exc}") from None


def _read_gain_map(params: bytes) -> GainMap:
    (top, left, bottom, right, plane, planes, row_pitch, col_pitch, points_v, points_h,
     spacing_v, spacing_h, origin_v, origin_h, map_planes) = _PARAMETERS.unpack_from(params, 0)
    if points_v < 1 or points_h < 1 or map_planes < 1 or row_pitch < 1 or col_pitch < 1:
        raise RawFormatError(f"GainMap with {points_v}x{points_h} points, {map_planes} planes, "
                             f"pitch {row_pitch}x{col_pitch}")
    if points_v == 1:
        spacing_v, origin_v = 1.0, 0.0
    if points_h == 1:
        spacing_h, origin_h = 1.0, 0.0
    if spacing_v <= 0 or spacing_h <= 0:
        raise RawFormatError(f"GainMap spacing {spacing_v}, {spacing_h}: expected > 0")
    count = points_v * points_h * map_planes
    if len(params) < _PARAMETERS.size + 4 * count:
        raise RawFormatError(f"OpcodeList2: a GainMap of {count} gains is truncated")
    gains = np.frombuffer(params, dtype=">f4", count=count, offset=_PARAMETERS.size)
    return GainMap(top, left, bottom, right, plane, planes, row_pitch, col_pitch,
                   (spacing_v, spacing_h), (origin_v, origin_h),
                   gains.astype(np.float32).reshape(points_v, points_h, map_planes))


def lens_shading_from_opcodes(data: bytes, shape: tuple[int, int]) -> LensShadingMap | None:
    """The lens shading the GainMaps of an OpcodeList2 apply to a Bayer mosaic of ``shape``.

    Each site of the 2x2 tile gets the product of the maps covering it; a map that covers
    only part of the frame or another colour plane cannot be a LensShadingMap and is
    skipped with a warning. None if no map applies.
    """
    height, width = shape
    maps = []
    for gain_map in read_gain_maps(data):
        covers_frame = (gain_map.top <= 1 and gain_map.left <= 1
                        and gain_map.bottom >= height - 1 and gain_map.right >= width - 1)
        if not covers_frame or gain_map.plane != 0 or gain_map.row_pitch > 2 \
                or gain_map.col_pitch > 2:
            logger.warning("a GainMap over rows %d-%d, columns %d-%d, plane %d, pitch %dx%d "
                           "is not applied", gain_map.top, gain_map.bottom, gain_map.left,
                           gain_map.right, gain_map.plane, gain_map.row_pitch, gain_map.col_pitch)
            continue
        maps.append(gain_map)
    if not maps:
        return None
    points_v = max(m.gains.shape[0] for m in maps)
    points_h = max(m.gains.shape[1] for m in maps)
    grid_v = min(max(_OVERSAMPLING * (points_v - 1) + 1, 2), _MAX_GRID_POINTS)
    grid_h = min(max(_OVERSAMPLING * (points_h - 1) + 1, 2), _MAX_GRID_POINTS)
    rows = np.linspace(0.0, height - 1, grid_v)
    cols = np.linspace(0.0, width - 1, grid_h)
    gains = np.ones((4, grid_v, grid_h))
    for gain_map in maps:
        sampled = gain_map.sample(rows, cols, height, width)
        for site in range(4):
            dy, dx = divmod(site, 2)
            if (dy - gain_map.top) % gain_map.row_pitch == 0 and \
                    (dx - gain_map.left) % gain_map.col_pitch == 0:
                gains[site] *= sampled
    return LensShadingMap(gains.astype(np.float32))


def gain_map_opcodes(shading: LensShadingMap, shape: tuple[int, int]) -> bytes:
    """An OpcodeList2 of four GainMaps (one per site) that applies ``shading`` exactly."""
    height, width = shape
    gains = np.asarray(shading.gains, dtype=np.float32)
    _, grid_v, grid_h = gains.shape
    # Point k on pixel row k (H - 1) / (gv - 1), i.e. at relative (row + 0.5) / H.
    spacing = ((height - 1) / ((grid_v - 1) * height), (width - 1) / ((grid_h - 1) * width))
    origin = (0.5 / height, 0.5 / width)
    out = [struct.pack(">I", 4)]
    for site in range(4):
        dy, dx = divmod(site, 2)
        params = _PARAMETERS.pack(dy, dx, height, width, 0, 1, 2, 2, grid_v, grid_h,
                                  spacing[0], spacing[1], origin[0], origin[1], 1)
        params += gains[site].astype(">f4").tobytes()
        out.append(_HEADER.pack(GAIN_MAP, int.from_bytes(_GAIN_MAP_VERSION, "big"), 0,
                                len(params)) + params)
    return b"".join(out)
