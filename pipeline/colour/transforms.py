"""Colour transforms on (H, W, 3) float32 images, in place."""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt

from pipeline.errors import InvalidParameterError

# Rec. 709 / sRGB luminance weights for linear RGB.
LUMINANCE_WEIGHTS = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)


@numba.njit(cache=True, parallel=True, nogil=True)
def _apply_matrix_kernel(rgb, m):
    h, w, _ = rgb.shape
    for y in numba.prange(h):
        for x in range(w):
            r = rgb[y, x, 0]
            g = rgb[y, x, 1]
            b = rgb[y, x, 2]
            rgb[y, x, 0] = m[0, 0] * r + m[0, 1] * g + m[0, 2] * b
            rgb[y, x, 1] = m[1, 0] * r + m[1, 1] * g + m[1, 2] * b
            rgb[y, x, 2] = m[2, 0] * r + m[2, 1] * g + m[2, 2] * b


def apply_matrix(rgb: npt.NDArray[np.float32], matrix: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """Multiply every pixel of an (H, W, 3) float32 image by a (3, 3) matrix, in place."""
    m = np.asarray(matrix, dtype=np.float32)
    if m.shape != (3, 3):
        raise InvalidParameterError(f"matrix has shape {m.shape}: expected (3, 3)")
    _apply_matrix_kernel(rgb, m)
    return rgb


@numba.njit(cache=True, parallel=True, nogil=True)
def _box_downsample_kernel(rgb, factor, out):
    oh, ow, _ = out.shape
    norm = np.float32(1.0 / (factor * factor))
    for oy in numba.prange(oh):
        for ox in range(ow):
            for c in range(3):
                acc = np.float32(0.0)
                for dy in range(factor):
                    for dx in range(factor):
                        acc += rgb[oy * factor + dy, ox * factor + dx, c]
                out[oy, ox, c] = acc * norm


def box_downsample(rgb: npt.NDArray[np.float32], factor: int) -> npt.NDArray[np.float32]:
    """(H // factor, W // factor, 3) float32 means of factor x factor blocks."""
    if factor < 1:
        raise InvalidParameterError(f"factor={factor}: expected a positive integer")
    out = np.empty((rgb.shape[0] // factor, rgb.shape[1] // factor, 3), dtype=np.float32)
    _box_downsample_kernel(rgb, factor, out)
    return out


def luminance(rgb: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """(H, W) float32 relative luminance of linear sRGB (small images: it allocates)."""
    return (rgb @ LUMINANCE_WEIGHTS).astype(np.float32)
