"""Colour transforms on (H, W, 3) float32 images, in place."""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt

from pipeline.errors import InvalidParameterError
from pipeline.planar_rows import merge_row, split_row

# Rec. 709 / sRGB luminance weights for linear RGB.
LUMINANCE_WEIGHTS = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)


@numba.njit(cache=True, nogil=True, inline="always")
def matrix_row(planes, m):
    """Multiply every pixel of ``planes`` (one row as (3, W) float32 planes, see
    :mod:`pipeline.planar_rows`) by the (3, 3) float32 matrix ``m``, in place."""
    m00, m01, m02 = m[0, 0], m[0, 1], m[0, 2]
    m10, m11, m12 = m[1, 0], m[1, 1], m[1, 2]
    m20, m21, m22 = m[2, 0], m[2, 1], m[2, 2]
    for x in range(planes.shape[1]):
        r = planes[0, x]
        g = planes[1, x]
        b = planes[2, x]
        planes[0, x] = m00 * r + m01 * g + m02 * b
        planes[1, x] = m10 * r + m11 * g + m12 * b
        planes[2, x] = m20 * r + m21 * g + m22 * b


@numba.njit(cache=True, parallel=True, nogil=True)
def _apply_matrix_kernel(rgb, m):
    h, w, _ = rgb.shape
    for y in numba.prange(h):
        planes = np.empty((3, w), np.float32)
        split_row(rgb, y, planes)
        matrix_row(planes, m)
        merge_row(planes, rgb, y)


def apply_matrix(rgb: npt.NDArray[np.float32], matrix: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """Multiply every pixel of an (H, W, 3) float32 image (rows contiguous) by a (3, 3)
    matrix, in place."""
    m = np.asarray(matrix, dtype=np.float32)
    if m.shape != (3, 3):
        raise InvalidParameterError(f"matrix has shape {m.shape}: expected (3, 3)")
    _apply_matrix_kernel(rgb, m)
    return rgb


@numba.njit(cache=True, parallel=True, nogil=True)
def _box_downsample_kernel(rgb, factor, out):
    # Per output row: the factor rows summed as 3W contiguous values (a vectorised loop),
    # then each block's factor pixels.
    oh, ow, _ = out.shape
    norm = np.float32(1.0 / (factor * factor))
    for oy in numba.prange(oh):
        column_sums = np.zeros(3 * ow * factor, dtype=np.float32)
        for dy in range(factor):
            values = rgb[oy * factor + dy].reshape(-1)
            for i in range(column_sums.shape[0]):
                column_sums[i] += values[i]
        means = out[oy].reshape(-1)
        for ox in range(ow):
            for c in range(3):
                acc = np.float32(0.0)
                for dx in range(factor):
                    acc += column_sums[3 * (ox * factor + dx) + c]
                means[3 * ox + c] = acc * norm


def box_downsample(rgb: npt.NDArray[np.float32], factor: int) -> npt.NDArray[np.float32]:
    """(H // factor, W // factor, 3) float32 means of factor x factor blocks (rows of
    ``rgb`` contiguous)."""
    if factor < 1:
        raise InvalidParameterError(f"factor={factor}: expected a positive integer")
    out = np.empty((rgb.shape[0] // factor, rgb.shape[1] // factor, 3), dtype=np.float32)
    _box_downsample_kernel(rgb, factor, out)
    return out


def luminance(rgb: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """(H, W) float32 relative luminance of linear sRGB (small images: it allocates)."""
    return (rgb @ LUMINANCE_WEIGHTS).astype(np.float32)
