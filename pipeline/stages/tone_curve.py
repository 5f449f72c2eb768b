"""Filmic tone curve: scene-linear light to sRGB-encoded display values, hue-preserving.

The curve is a log-logistic sigmoid, y = x^c / (x^c + s^c) (the Naka-Rushton form used
for photoreceptor response and by darktable's "sigmoid" module), with contrast ``c`` and
``s`` chosen so middle grey maps to middle grey, then rescaled so the scene's white point
maps to display white. It is applied to max(R, G, B) and the pixel is scaled by the
ratio, so hues do not shift; colours whose luminance approaches display white are blended
towards it
("path to white", as film and darktable's filmic do), so bright lights burn out to white
rather than to a flat saturated colour. The display-linear result is sRGB-encoded in the
same pass (:func:`pipeline.colour.output_transform.srgb_encode_row`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import numpy.typing as npt

from pipeline.colour.output_transform import (
    lookup_row,
    srgb_encode_row,
    srgb_power_polynomial,
    table_position_row,
)
from pipeline.errors import InvalidParameterError
from pipeline.planar_rows import merge_row, split_row
from pipeline.stages.exposure import MIDDLE_GREY


@dataclass(frozen=True)
class FilmicCurve:
    """Parameters of the sigmoid; ``white`` is the scene value that becomes display white."""

    contrast: float = 1.3
    white: float = 4.0
    grey_in: float = MIDDLE_GREY
    grey_out: float = MIDDLE_GREY
    desaturate_from: float = 0.8

    def __post_init__(self) -> None:
        if not 0.5 <= self.contrast <= 4.0:
            raise InvalidParameterError(f"contrast={self.contrast}: expected 0.5..4")
        if self.white <= self.grey_in:
            raise InvalidParameterError(f"white={self.white}: must be above grey_in={self.grey_in}")

    @property
    def scale_power(self) -> float:
        """s^c, from f(grey_in) = grey_out before rescaling."""
        return self.grey_in**self.contrast * (1.0 / self.grey_out - 1.0)

    def __call__(self, x: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """The curve on scalar or array input (reference implementation for tests)."""
        x = np.maximum(np.asarray(x, dtype=np.float64), 0.0)
        c, sc = self.contrast, self.scale_power
        white_out = self.white**c / (self.white**c + sc)
        return np.minimum(x**c / (x**c + sc) / white_out, 1.0)


_TABLE_SIZE = 4096


#: Rows a thread tone-maps in one go (their scratch rows are made once per band).
_BAND_ROWS = 32


@numba.njit(cache=True, nogil=True, inline="always")
def tone_scratch(w):
    """Scratch rows for :func:`tone_map_row` on rows of ``w`` pixels."""
    return (np.empty(w, np.float32), np.empty(w, np.float32), np.empty(w, np.uint32),
            np.empty(w, np.float32))


@numba.njit(cache=True, nogil=True, inline="always")
def tone_map_row(planes, table, white, desaturate_from, scratch):
    """Scene-linear ``planes`` ((3, W) float32, one row) to display-linear, in place.

    ``table`` is the curve at n = white * (i / size)^2 (dense where it bends most);
    ``scratch`` is :func:`tone_scratch`'s. The arithmetic vectorises; the table lookups are
    a loop of their own.
    """
    peak, mapped, index, fraction = scratch
    w = planes.shape[1]
    size = table.shape[0] - 1
    inv_span = np.float32(1.0) / (np.float32(1.0) - desaturate_from)
    inv_white = np.float32(1.0) / white
    for x in range(w):
        r = max(planes[0, x], np.float32(0.0))
        g = max(planes[1, x], np.float32(0.0))
        b = max(planes[2, x], np.float32(0.0))
        n = max(r, max(g, b))
        peak[x] = n
        mapped[x] = np.sqrt(n * inv_white)
    table_position_row(mapped, np.float32(size), size, index, fraction)
    lookup_row(table, index, fraction, mapped)
    for x in range(w):
        n = peak[x]
        t = mapped[x]
        ratio = t / n if n > np.float32(1e-12) else np.float32(0.0)
        r = max(planes[0, x], np.float32(0.0)) * ratio
        g = max(planes[1, x], np.float32(0.0)) * ratio
        b = max(planes[2, x], np.float32(0.0)) * ratio
        # Path to white by luminance: a saturated orange whose red channel is near the
        # top keeps its colour; only light bright overall burns out to white.
        lum = np.float32(0.2126) * r + np.float32(0.7152) * g + np.float32(0.0722) * b
        mix = min(max((lum - desaturate_from) * inv_span, np.float32(0.0)), np.float32(1.0))
        mix = mix * mix
        t = t if n > np.float32(1e-12) else np.float32(0.0)
        planes[0, x] = r * (1 - mix) + t * mix
        planes[1, x] = g * (1 - mix) + t * mix
        planes[2, x] = b * (1 - mix) + t * mix


@numba.njit(cache=True, parallel=True, nogil=True, fastmath=True)
def _apply_kernel(rgb, table, white, desaturate_from, power):
    # Per row, on planes (pipeline.planar_rows); then the row's 3W values sRGB-encoded.
    h, w, _ = rgb.shape
    for band in numba.prange((h + _BAND_ROWS - 1) // _BAND_ROWS):
        planes = np.empty((3, w), np.float32)
        scratch = tone_scratch(w)
        for y in range(band * _BAND_ROWS, min((band + 1) * _BAND_ROWS, h)):
            split_row(rgb, y, planes)
            tone_map_row(planes, table, white, desaturate_from, scratch)
            merge_row(planes, rgb, y)
            srgb_encode_row(rgb[y].reshape(-1), power)


def curve_table(curve: FilmicCurve) -> npt.NDArray[np.float32]:
    """``curve`` at 4,097 points on a square-root grid up to ``curve.white``, for
    :func:`tone_map_row`."""
    u = np.linspace(0.0, 1.0, _TABLE_SIZE + 1)
    return curve(curve.white * u * u).astype(np.float32)


def apply(rgb: npt.NDArray[np.float32], curve: FilmicCurve) -> npt.NDArray[np.float32]:
    """Tone-map a scene-linear (H, W, 3) float32 image to sRGB-encoded [0, 1], in place.

    The curve is tabulated on a square-root grid of 4,097 points up to ``curve.white``
    (beyond it the output is 1) and interpolated linearly.
    """
    _apply_kernel(rgb, curve_table(curve), np.float32(curve.white),
                  np.float32(curve.desaturate_from), srgb_power_polynomial())
    return rgb
