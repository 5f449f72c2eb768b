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
    """Compiled :func:`box_mean` into ``out`` ((H, W) float arrays): separable running
    sums, whose cost does not grow with the radius (kernels filtering with radii of a
    few pixels use :func:`box_mean_direct_kernel`)."""
    # Windows are clipped at the edges and renormalised.
    h, w = image.shape
    rows = np.empty_like(out)  # row means, in the output's precision
    for y in numba.prange(h):
        row_sum = 0.0
        for x in range(min(radius, w - 1) + 1):
            row_sum += image[y, x]
        for x in range(w):
            lo = x - radius
            hi = x + radius
            rows[y, x] = row_sum / (min(hi, w - 1) - max(lo, 0) + 1)
            if hi + 1 < w:
                row_sum += image[y, hi + 1]
            if lo >= 0:
                row_sum -= image[y, lo]
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


@numba.njit(cache=True, nogil=True, error_model="numpy")
def window_reciprocals(width, radius):
    """(width,) float64: 1 / the number of columns of each column's window, clipped at the
    edges (the renormalisation of :func:`box_mean_row`)."""
    reciprocals = np.empty(width, dtype=np.float64)
    for x in range(width):
        reciprocals[x] = 1.0 / (min(x + radius, width - 1) - max(x - radius, 0) + 1)
    return reciprocals


@numba.njit(cache=True, nogil=True, error_model="numpy")
def box_mean_row(image, y, radius, column_scale, columns, sums, out):
    """Row ``y`` of :func:`box_mean` of the (H, W) ``image`` into the (W,) ``out``, by
    direct sums: the window's rows added column by column, then the 2r + 1 shifted column
    sums; each a loop over the row that the compiler vectorises (running sums along a row
    are one long dependency chain). For radii of a few pixels.

    ``column_scale`` is :func:`window_reciprocals`; ``columns`` a (W + 2r,) scratch row
    whose first and last ``radius`` entries are zero, ``sums`` a (W,) one: their dtype is
    the sums' precision (float64 where a variance is taken from the means).
    """
    h, w = image.shape
    lo = max(y - radius, 0)
    hi = min(y + radius, h - 1)
    inner = columns[radius:radius + w]  # slices, so that no index can be negative
    first = image[lo]
    for x in range(w):
        inner[x] = first[x]
    for j in range(lo + 1, hi + 1):
        row = image[j]
        for x in range(w):
            inner[x] += row[x]
    for x in range(w):
        sums[x] = columns[x]
    for k in range(1, 2 * radius + 1):
        shifted = columns[k:k + w]
        for x in range(w):
            sums[x] += shifted[x]
    row_scale = 1.0 / (hi - lo + 1)
    for x in range(w):
        out[x] = sums[x] * column_scale[x] * row_scale


@numba.njit(cache=True, parallel=True, nogil=True)
def box_mean_direct_kernel(image, radius, out):
    """:func:`box_mean_kernel` row by row with :func:`box_mean_row`, summing in ``out``'s
    precision: faster for radii of a few pixels, equal to that precision's rounding."""
    h, w = image.shape
    column_scale = window_reciprocals(w, radius)
    for y in numba.prange(h):
        columns = np.zeros(w + 2 * radius, dtype=out.dtype)
        sums = np.empty(w, dtype=out.dtype)
        box_mean_row(image, y, radius, column_scale, columns, sums, out[y])


def box_mean(image: npt.NDArray[np.floating], radius: int) -> npt.NDArray[np.float64]:
    """(H, W) float64 mean over a (2r+1)^2 window, renormalised where it leaves the image."""
    out = np.empty(image.shape, dtype=np.float64)
    box_mean_kernel(np.ascontiguousarray(image, dtype=np.float64), int(radius), out)
    return out


@numba.njit(cache=True, nogil=True, inline="always", error_model="numpy")
def grid_neighbours(i, grid_size, factor):
    """Image row (or column) ``i``'s two grid rows on a grid ``factor`` times coarser
    (the one at or before its centre, the next) and the weight of the next one."""
    half = np.float32(0.5)
    position = min(max((np.float32(i) + half) / np.float32(factor) - half, np.float32(0.0)),
                   np.float32(grid_size - 1))
    before = min(int(position), max(grid_size - 2, 0))
    return before, min(before + 1, grid_size - 1), position - np.float32(before)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def upsample_row(grid_row, factor, out):
    """One grid row (gw,) interpolated bilinearly at each of the (W,) ``out``'s columns.

    Away from the ends, the columns ``factor i + j`` of one phase ``j`` share their
    weight and their grid columns' offset: one loop over ``i`` per phase, with no index
    table to gather through.
    """
    gw = grid_row.size
    w = out.size
    for j in range(factor):
        before, _, weight = grid_neighbours(factor + j, gw, factor)
        source = grid_row[before:]  # the grid columns left of columns factor (i + 1) + j
        target = out[factor + j:]
        for i in range(gw - 2):
            left = source[i]
            target[factor * i] = left + weight * (source[i + 1] - left)
    # The first and last cells' columns, where the grid's ends clamp the position.
    for x in range(min(factor, w)):
        _interpolate_column(grid_row, x, factor, out)
    for x in range(max(factor * (gw - 1), factor), w):
        _interpolate_column(grid_row, x, factor, out)


@numba.njit(cache=True, nogil=True, inline="always", error_model="numpy")
def _interpolate_column(grid_row, x, factor, out):
    before, after, weight = grid_neighbours(x, grid_row.size, factor)
    out[x] = grid_row[before] + weight * (grid_row[after] - grid_row[before])


@numba.njit(cache=True, nogil=True, error_model="numpy")
def upsample_grid_rows(grid, y, factor, rows, held):
    """The (K, gh, gw) ``grid``'s rows above and below image row ``y``, upsampled along
    the row (:func:`upsample_row`): two (K, W) float32 views of ``rows`` ((2, K, W)
    scratch), and the weight of the one below.

    ``held`` ((2,) int64, -1 at first) records which grid row each half of ``rows``
    holds, so that a caller walking down the image upsamples each grid row once.
    """
    above, below, weight = grid_neighbours(y, grid.shape[1], factor)
    upper = _held_slot(grid, above, factor, rows, held, -1)
    lower = _held_slot(grid, below, factor, rows, held, upper)
    return rows[upper], rows[lower], weight


@numba.njit(cache=True, nogil=True, inline="always", error_model="numpy")
def _held_slot(grid, grid_row, factor, rows, held, keep):
    # The half of ``rows`` that holds ``grid_row``, upsampled into the one not ``keep``
    # if neither does.
    for slot in range(2):
        if held[slot] == grid_row:
            return slot
    slot = 1 if keep == 0 else 0
    for k in range(grid.shape[0]):
        upsample_row(grid[k, grid_row], factor, rows[slot, k])
    held[slot] = grid_row
    return slot
