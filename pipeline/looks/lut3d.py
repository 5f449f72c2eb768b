"""3D colour lookup tables: the .cube format and tetrahedral interpolation.

A ``.cube`` file (Adobe "Cube LUT Specification" 1.0, 2013; also written by DaVinci
Resolve) holds ``LUT_3D_SIZE`` N, optional ``TITLE``, ``DOMAIN_MIN``/``DOMAIN_MAX`` (or
Resolve's ``LUT_3D_INPUT_RANGE``), ``#`` comments, and N**3 output triplets with red
varying fastest, then green, then blue.

Between grid points the table is interpolated tetrahedrally: the unit cube around the
input is split into six tetrahedra along its neutral diagonal, and the output is the
barycentric blend of the four corners of the one holding the input (Kasson, Nin,
Plouffe, Hafner, "Performing color space conversions with three-dimensional linear
interpolation", J. Electronic Imaging 4(3):226-250, 1995, https://doi.org/10.1117/12.206778).
It needs four lookups instead of trilinear's eight and keeps greys on the diagonal grey.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numba
import numpy as np
import numpy.typing as npt

from pipeline.errors import InvalidParameterError, ObscuraError
from pipeline.parameters import bounded, check_bounds
from pipeline.planar_rows import merge_row, split_row

#: Grid points per axis, as the Cube LUT Specification 1.0 bounds LUT_3D_SIZE.
MAX_CUBE_SIZE = 256
#: Largest output magnitude: display LUTs stay near [0, 1], log-to-scene-linear ones within
#: a few tens, and the look clips the output to [0, 1]; beyond this a value is garbage.
MAX_CUBE_VALUE = 100.0
#: Largest domain bound magnitude (log and HDR inputs stay far below).
MAX_CUBE_DOMAIN = 1e4
#: Narrowest domain axis (a narrower one has no grid spacing in float32).
MIN_CUBE_DOMAIN_WIDTH = 1e-6


class CubeFormatError(ObscuraError, ValueError):
    """A .cube file is malformed; the message names the file and the line."""


@dataclass(frozen=True, eq=False)
class Lut3D:
    """A 3D LUT.

    Attributes
    ----------
    table : (N, N, N, 3) float32
        Output colour at grid point ``table[r, g, b]`` (note: not the file's order).
    domain_min, domain_max : (3,) float32
        Input values mapped to the first and last grid point of each axis.
    title : str
        The file's ``TITLE``, or "".
    """

    table: npt.NDArray[np.float32]
    domain_min: npt.NDArray[np.float32]
    domain_max: npt.NDArray[np.float32]
    title: str = ""

    def __post_init__(self) -> None:
        n = self.table.shape[0]
        if self.table.shape != (n, n, n, 3) or not 2 <= n <= MAX_CUBE_SIZE:
            raise InvalidParameterError(
                f"table has shape {self.table.shape}: expected (N, N, N, 3), 2 <= N <= "
                f"{MAX_CUBE_SIZE}"
            )
        if not (np.all(np.isfinite(self.domain_min)) and np.all(np.isfinite(self.domain_max))
                and np.all(self.domain_max > self.domain_min)):
            raise InvalidParameterError(
                f"domain_min={self.domain_min}, domain_max={self.domain_max}: expected finite "
                "values, max above min"
            )

    @property
    def size(self) -> int:
        """Grid points per axis."""
        return self.table.shape[0]


@dataclass(frozen=True)
class LutParams:
    """A look's LUT: the file, the encoding its input and output are in, and its strength.

    ``input_space`` "srgb" (the default) feeds the LUT sRGB-encoded values, as most
    creative LUTs expect; "linear-srgb" feeds it linear light. ``strength`` blends the
    LUT's output with its input.
    """

    file: Path
    lut: Lut3D = field(repr=False)
    input_space: Literal["srgb", "linear-srgb"] = "srgb"
    strength: float = bounded(1.0, 0.0, 1.0, "blend of the LUT's output with its input")

    def __post_init__(self) -> None:
        check_bounds(self)
        if self.input_space not in ("srgb", "linear-srgb"):
            raise InvalidParameterError(
                f"input_space={self.input_space!r}: expected 'srgb' or 'linear-srgb'"
            )


def identity_lut(size: int = 33) -> Lut3D:
    """The LUT that maps every colour to itself."""
    axis = np.linspace(0.0, 1.0, size, dtype=np.float32)
    table = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1)
    return Lut3D(np.ascontiguousarray(table), np.zeros(3, np.float32), np.ones(3, np.float32))


def _floats(path: Path, number: int, words: list[str], count: int) -> list[float]:
    """``count`` finite numbers from ``words``; errors name the file and line."""
    if len(words) != count:
        raise CubeFormatError(f"{path}:{number}: expected {count} numbers, got {len(words)}")
    try:
        values = [float(w) for w in words]
    except ValueError:
        raise CubeFormatError(f"{path}:{number}: {' '.join(words)!r} is not numbers") from None
    if not all(math.isfinite(v) for v in values):
        raise CubeFormatError(f"{path}:{number}: {' '.join(words)} is not finite")
    return values


def _domain_error(path: Path, number: int, low: list[float], high: list[float]) -> str:
    """Why the domain is unusable (empty when it is usable), in float32 as it is applied."""
    if np.any(np.float32(high) - np.float32(low) < MIN_CUBE_DOMAIN_WIDTH):
        return (f"{path}:{number}: domain max {high} must exceed domain min {low} "
                f"by {MIN_CUBE_DOMAIN_WIDTH:g} or more")
    if max(map(abs, low + high)) > MAX_CUBE_DOMAIN:
        return f"{path}:{number}: domain {low}..{high} beyond +-{MAX_CUBE_DOMAIN:g}"
    return ""


def read_cube(path: Path) -> Lut3D:
    """Read a 3D ``.cube`` LUT.

    The size must be an integer in 2..:data:`MAX_CUBE_SIZE` (the specification's range),
    the domain finite with max > min on every axis, and the data exactly size**3 rows of
    three finite values within +-:data:`MAX_CUBE_VALUE`.

    Raises
    ------
    CubeFormatError
        Naming the file and line: unknown keyword, a 1D LUT, missing, repeated or
        non-integer size, an empty or non-finite domain, wrong number of values,
        non-numeric, non-finite or absurd data.
    """
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise CubeFormatError(f"{path}: {exc}") from None
    size = 0
    title = ""
    domain = [[0.0] * 3, [1.0] * 3]
    domain_line = 0
    rows: list[list[float]] = []
    for number, raw in enumerate(lines, start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        keyword = words[0].upper()
        if keyword[0].isdigit() or keyword[0] in "+-.":
            if not size:
                raise CubeFormatError(f"{path}:{number}: data before LUT_3D_SIZE")
            row = _floats(path, number, words, 3)
            if max(abs(v) for v in row) > MAX_CUBE_VALUE:
                raise CubeFormatError(
                    f"{path}:{number}: {' '.join(words)} is beyond +-{MAX_CUBE_VALUE:g}"
                )
            rows.append(row)
            if len(rows) > size**3:
                raise CubeFormatError(f"{path}:{number}: more than {size}^3 = {size**3} rows")
        elif rows:
            raise CubeFormatError(f"{path}:{number}: keyword {words[0]} after the data")
        elif keyword == "TITLE":
            title = line[len(words[0]) :].strip().strip('"')
        elif keyword == "LUT_3D_SIZE":
            text = " ".join(words[1:])
            try:
                (value,) = _floats(path, number, words[1:], 1)
            except CubeFormatError:
                value = 0.0
            if size or value != int(value) or not 2 <= value <= MAX_CUBE_SIZE:
                raise CubeFormatError(
                    f"{path}:{number}: LUT_3D_SIZE {text!r}: expected one integer in "
                    f"2..{MAX_CUBE_SIZE}{', once' if size else ''}"
                )
            size = int(value)
        elif keyword in ("DOMAIN_MIN", "DOMAIN_MAX"):
            domain[keyword == "DOMAIN_MAX"] = _floats(path, number, words[1:], 3)
            domain_line = number
        elif keyword == "LUT_3D_INPUT_RANGE":
            low, high = _floats(path, number, words[1:], 2)
            domain = [[low] * 3, [high] * 3]
            domain_line = number
        elif keyword == "LUT_1D_SIZE":
            raise CubeFormatError(f"{path}:{number}: a 1D LUT; only 3D LUTs are supported")
        else:
            raise CubeFormatError(f"{path}:{number}: unknown keyword {words[0]!r}")
    if not size:
        raise CubeFormatError(f"{path}:{len(lines)}: no LUT_3D_SIZE")
    if len(rows) != size**3:
        raise CubeFormatError(
            f"{path}:{len(lines)}: {len(rows)} rows of data, expected {size}^3 = {size**3}"
        )
    problem = _domain_error(path, domain_line, *domain)
    if problem:
        raise CubeFormatError(problem)
    values = np.asarray(rows, dtype=np.float32)
    low, high = (np.asarray(d, dtype=np.float32) for d in domain)
    # File order: red fastest, i.e. [b, g, r]; stored as [r, g, b].
    table = np.ascontiguousarray(values.reshape(size, size, size, 3).transpose(2, 1, 0, 3))
    return Lut3D(table, low, high, title)


@numba.njit(cache=True, nogil=True, inline="always")
def tetrahedra_row(planes, size, scale, offset, corners, weights):
    """For each pixel of a (3, W) planar row: its tetrahedron and barycentric weights.

    Grid coordinate = value * scale + offset, clamped to the grid. ``corners[0]`` gets the
    offset of the cell's first corner in the raveled table, ``corners[1]`` and
    ``corners[2]`` the steps to the tetrahedron's second and third corners (the fourth is
    the cell's opposite corner), ``weights`` the four weights. Branch-free: the tetrahedron
    is chosen by the largest and smallest fractional part (ties resolved so the two steps
    are always nested), which the compiler turns into vector selects.
    """
    top = np.float32(size - 1)
    last_cell = np.int32(size - 2)
    step_r = np.int32(3 * size * size)
    step_g = np.int32(3 * size)
    step_b = np.int32(3)
    for x in range(planes.shape[1]):
        fr = min(max(planes[0, x] * scale[0] + offset[0], np.float32(0.0)), top)
        fg = min(max(planes[1, x] * scale[1] + offset[1], np.float32(0.0)), top)
        fb = min(max(planes[2, x] * scale[2] + offset[2], np.float32(0.0)), top)
        # Integer clamps too: a NaN converts to any integer (see output_transform).
        ir = min(max(np.int32(fr), np.int32(0)), last_cell)
        ig = min(max(np.int32(fg), np.int32(0)), last_cell)
        ib = min(max(np.int32(fb), np.int32(0)), last_cell)
        fr -= np.float32(ir)
        fg -= np.float32(ig)
        fb -= np.float32(ib)
        w1 = max(fr, max(fg, fb))
        w3 = min(fr, min(fg, fb))
        w2 = fr + fg + fb - w1 - w3
        # Step 1 goes along the largest fraction, step 3 along the smallest.
        big_r = fr == w1
        big_g = not big_r and fg == w1
        small_b = fb == w3
        small_g = not small_b and fg == w3
        corners[0, x] = ir * step_r + ig * step_g + ib * step_b
        corners[1, x] = step_r if big_r else (step_g if big_g else step_b)
        corners[2, x] = step_r + step_g + step_b - (
            step_b if small_b else (step_g if small_g else step_r)
        )
        weights[0, x] = np.float32(1.0) - w1
        weights[1, x] = w1 - w2
        weights[2, x] = w2 - w3
        weights[3, x] = w3


@numba.njit(cache=True, nogil=True, inline="always")
def blend_row(planes, flat, size, corners, weights):
    """The LUT's output for each pixel of a planar row, from :func:`tetrahedra_row`."""
    diagonal = 3 * size * size + 3 * size + 3
    for x in range(planes.shape[1]):
        c0 = corners[0, x]
        ca = c0 + corners[1, x]
        cb = c0 + corners[2, x]
        c1 = c0 + diagonal
        w0 = weights[0, x]
        wa = weights[1, x]
        wb = weights[2, x]
        w3 = weights[3, x]
        for c in range(3):
            planes[c, x] = (
                w0 * flat[c0 + c] + wa * flat[ca + c] + wb * flat[cb + c] + w3 * flat[c1 + c]
            )


@numba.njit(cache=True, nogil=True, inline="always")
def apply_planar_row(planes, flat, size, scale, offset, corners, weights):
    """Map a (3, W) planar row through a LUT in place.

    ``flat`` is the (N, N, N, 3) table raveled, ``size`` is N; ``corners`` ((3, W) int32)
    and ``weights`` ((4, W) float32) are scratch space.
    """
    tetrahedra_row(planes, size, scale, offset, corners, weights)
    blend_row(planes, flat, size, corners, weights)


def grid_transform(lut: Lut3D) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """(scale, offset), (3,) float32 each, mapping input values to grid coordinates."""
    scale = (lut.size - 1) / (lut.domain_max - lut.domain_min)
    return scale.astype(np.float32), (-lut.domain_min * scale).astype(np.float32)


BAND_ROWS = 32


@numba.njit(cache=True, parallel=True, nogil=True)
def _apply_kernel(rgb, flat, size, scale, offset):
    h, w, _ = rgb.shape
    for band in numba.prange((h + BAND_ROWS - 1) // BAND_ROWS):
        planes = np.empty((3, w), np.float32)
        corners = np.empty((3, w), np.int32)
        weights = np.empty((4, w), np.float32)
        for y in range(band * BAND_ROWS, min((band + 1) * BAND_ROWS, h)):
            split_row(rgb, y, planes)
            apply_planar_row(planes, flat, size, scale, offset, corners, weights)
            merge_row(planes, rgb, y)


def apply(rgb: npt.NDArray[np.float32], lut: Lut3D) -> npt.NDArray[np.float32]:
    """Map every pixel of an (H, W, 3) float32 image through ``lut``, in place.

    Inputs outside the LUT's domain are clamped to it.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.float32:
        raise InvalidParameterError(
            f"rgb has shape {rgb.shape} and dtype {rgb.dtype}: expected (H, W, 3) float32"
        )
    _apply_kernel(rgb, lut.table.reshape(-1), lut.size, *grid_transform(lut))
    return rgb
