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

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numba
import numpy as np
import numpy.typing as npt

from pipeline.errors import InvalidParameterError, ObscuraError
from pipeline.parameters import bounded, check_bounds

MAX_CUBE_SIZE = 256


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
        if np.any(self.domain_max <= self.domain_min):
            raise InvalidParameterError(
                f"domain_min={self.domain_min}, domain_max={self.domain_max}: max must exceed min"
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
    if len(words) != count:
        raise CubeFormatError(f"{path}:{number}: expected {count} numbers, got {len(words)}")
    try:
        return [float(w) for w in words]
    except ValueError:
        raise CubeFormatError(f"{path}:{number}: {' '.join(words)!r} is not numbers") from None


def read_cube(path: Path) -> Lut3D:
    """Read a 3D ``.cube`` LUT.

    Raises
    ------
    CubeFormatError
        Naming the file and line: unknown keyword, a 1D LUT, missing or repeated size,
        wrong number of values, non-numeric or non-finite data.
    """
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise CubeFormatError(f"{path}: {exc}") from None
    size = 0
    title = ""
    domain = [[0.0] * 3, [1.0] * 3]
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
            rows.append(_floats(path, number, words, 3))
            if len(rows) > size**3:
                raise CubeFormatError(f"{path}:{number}: more than {size}^3 = {size**3} rows")
        elif rows:
            raise CubeFormatError(f"{path}:{number}: keyword {words[0]} after the data")
        elif keyword == "TITLE":
            title = line[len(words[0]) :].strip().strip('"')
        elif keyword == "LUT_3D_SIZE":
            (value,) = _floats(path, number, words[1:], 1)
            if size or value != int(value) or not 2 <= value <= MAX_CUBE_SIZE:
                raise CubeFormatError(
                    f"{path}:{number}: LUT_3D_SIZE {words[1:]} (expected one, 2..{MAX_CUBE_SIZE})"
                )
            size = int(value)
        elif keyword in ("DOMAIN_MIN", "DOMAIN_MAX"):
            domain[keyword == "DOMAIN_MAX"] = _floats(path, number, words[1:], 3)
        elif keyword == "LUT_3D_INPUT_RANGE":
            low, high = _floats(path, number, words[1:], 2)
            domain = [[low] * 3, [high] * 3]
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
    values = np.asarray(rows, dtype=np.float32)
    if not np.all(np.isfinite(values)):
        bad = int(np.flatnonzero(~np.all(np.isfinite(values), axis=1))[0])
        raise CubeFormatError(f"{path}: data row {bad + 1} is not finite")
    low, high = (np.asarray(d, dtype=np.float32) for d in domain)
    if np.any(high <= low):
        raise CubeFormatError(f"{path}: DOMAIN_MAX {high} must exceed DOMAIN_MIN {low}")
    # File order: red fastest, i.e. [b, g, r]; stored as [r, g, b].
    table = np.ascontiguousarray(values.reshape(size, size, size, 3).transpose(2, 1, 0, 3))
    return Lut3D(table, low, high, title)


@numba.njit(cache=True, nogil=True, inline="always")
def sample_tetrahedral(flat, size, scale, offset, r, g, b):
    """Interpolate a LUT at one (r, g, b); grid coordinate = value * scale + offset.

    ``flat`` is the (N, N, N, 3) table raveled, ``size`` is N. Branch-free: the
    tetrahedron is chosen by the largest and smallest fractional part (ties resolved so
    the two corners are always nested), so noisy images do not stall on mispredictions.
    """
    top = size - 1
    fr = min(max(r * scale[0] + offset[0], np.float32(0.0)), np.float32(top))
    fg = min(max(g * scale[1] + offset[1], np.float32(0.0)), np.float32(top))
    fb = min(max(b * scale[2] + offset[2], np.float32(0.0)), np.float32(top))
    ir = min(int(fr), top - 1)
    ig = min(int(fg), top - 1)
    ib = min(int(fb), top - 1)
    # Keep the fractions float32: subtracting a plain int would promote them to float64.
    fr -= np.float32(ir)
    fg -= np.float32(ig)
    fb -= np.float32(ib)
    sr = 3 * size * size
    sg = 3 * size
    sb = 3
    # Step 1 goes along the largest fraction, step 3 along the smallest.
    big_r = fr >= fg and fr >= fb
    big_g = not big_r and fg >= fb
    small_b = fb <= fg and fb <= fr
    small_g = not small_b and fg <= fr
    small_r = not small_b and not small_g
    w1 = max(fr, max(fg, fb))
    w3 = min(fr, min(fg, fb))
    w2 = fr + fg + fb - w1 - w3
    step_a = sr if big_r else (sg if big_g else sb)
    step_b = sr + sg + sb - (sr if small_r else (sg if small_g else sb))
    base = ir * sr + ig * sg + ib * sb
    w0 = np.float32(1.0) - w1
    wa = w1 - w2
    wb = w2 - w3
    c000 = base
    ca = base + step_a
    cb = base + step_b
    c111 = base + sr + sg + sb
    out_r = w0 * flat[c000] + wa * flat[ca] + wb * flat[cb] + w3 * flat[c111]
    out_g = w0 * flat[c000 + 1] + wa * flat[ca + 1] + wb * flat[cb + 1] + w3 * flat[c111 + 1]
    out_b = w0 * flat[c000 + 2] + wa * flat[ca + 2] + wb * flat[cb + 2] + w3 * flat[c111 + 2]
    return out_r, out_g, out_b


def grid_transform(lut: Lut3D) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """(scale, offset), (3,) float32 each, mapping input values to grid coordinates."""
    scale = (lut.size - 1) / (lut.domain_max - lut.domain_min)
    return scale.astype(np.float32), (-lut.domain_min * scale).astype(np.float32)


@numba.njit(cache=True, nogil=True, inline="always")
def apply_row(rgb, y, flat, size, scale, offset):
    """Map row ``y`` of an (H, W, 3) image through a LUT in place (see sample_tetrahedral)."""
    for x in range(rgb.shape[1]):
        r, g, b = sample_tetrahedral(
            flat, size, scale, offset, rgb[y, x, 0], rgb[y, x, 1], rgb[y, x, 2]
        )
        rgb[y, x, 0] = r
        rgb[y, x, 1] = g
        rgb[y, x, 2] = b


@numba.njit(cache=True, parallel=True, nogil=True)
def _apply_kernel(rgb, flat, size, scale, offset):
    for y in numba.prange(rgb.shape[0]):
        apply_row(rgb, y, flat, size, scale, offset)


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
