"""Box means for the guided filter (He, Sun, Tang, IEEE TPAMI 35(6), 2013), and the
bilinear upsampling of coefficients fitted on a coarser grid ("Fast Guided Filter", He and
Sun, arXiv:1505.00996, 2015), for the kernels that apply them."""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt


#: Columns summed together in the vertical pass (a few cache lines of a row).
_COLUMN_BLOCK = 64


@numba.njit(cache=True, parallel=True, nogil=True)
def box_mean_kernel(image, radius, out):
    """Compiled :func:`box_mean` into ``out``, for other kernels ((H, W) float arrays)."""
    # Separable running sums; windows are clipped at the edges and renormalised.
    h, w = image.shape
    rows = np.empty_like(out)  # row means, in the output's precision
    for y in numba.prange(h):
        acc = 0.0
        for x in range(min(radius, w - 1) + 1):
            acc += image[y, x]
        for x in range(w):
            lo = x - radius
            hi = x + radius
            rows[y, x] = acc / (min(hi, w - 1) - max(lo, 0) + 1)
            if hi + 1 < w:
                acc += image[y, hi + 1]
            if lo >= 0:
                acc -= image[y, lo]
    # Down the columns a block of them at a time, walking the rows in memory order.
    blocks = (w + _COLUMN_BLOCK - 1) // _COLUMN_BLOCK
    for block in numba.prange(blocks):
        x0 = block * _COLUMN_BLOCK
        x1 = min(x0 + _COLUMN_BLOCK, w)
        acc = np.zeros(x1 - x0, dtype=np.float64)
        for y in range(min(radius, h - 1) + 1):
            for x in range(x0, x1):
                acc[x - x0] += rows[y, x]
        for y in range(h):
            lo = y - radius
            hi = y + radius
            inv = 1.0 / (min(hi, h - 1) - max(lo, 0) + 1)
            for x in range(x0, x1):
                out[y, x] = acc[x - x0] * inv
            if hi + 1 < h:
                for x in range(x0, x1):
                    acc[x - x0] += rows[hi + 1, x]
            if lo >= 0:
                for x in range(x0, x1):
                    acc[x - x0] -= rows[lo, x]


def box_mean(image: npt.NDArray[np.floating], radius: int) -> npt.NDArray[np.float64]:
    """(H, W) float64 mean over a (2r+1)^2 window, renormalised where it leaves the image."""
    out = np.empty(image.shape, dtype=np.float64)
    box_mean_kernel(np.ascontiguousarray(image, dtype=np.float64), int(radius), out)
    return out


@numba.njit(cache=True, nogil=True)
def grid_columns(width, grid_width, factor):
    """For each of ``width`` columns: the grid column at or left of its centre on a grid
    ``factor`` times coarser (``int32``), and the weight of the next one (``float32``)."""
    inv = np.float32(1.0) / np.float32(factor)
    half = np.float32(0.5)
    column = np.empty(width, dtype=np.int32)
    weight = np.empty(width, dtype=np.float32)
    for x in range(width):
        position = min(max((x + half) * inv - half, np.float32(0.0)), np.float32(grid_width - 1))
        left = min(int(position), max(grid_width - 2, 0))
        column[x] = left
        weight[x] = position - left
    return column, weight


@numba.njit(cache=True, nogil=True, inline="always")
def grid_rows(y, grid_height, factor):
    """Row ``y``'s two grid rows (above, below) and the weight of the one below."""
    position = min(max((y + np.float32(0.5)) / np.float32(factor) - np.float32(0.5),
                       np.float32(0.0)), np.float32(grid_height - 1))
    above = min(int(position), max(grid_height - 2, 0))
    return above, min(above + 1, grid_height - 1), position - above
