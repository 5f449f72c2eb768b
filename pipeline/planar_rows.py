"""One row of an interleaved (H, W, 3) image as three planes, for per-row kernels.

The look's per-pixel loops (vignette, the LUT's tetrahedra, grain) are arithmetic that the
compiler vectorises when each channel is a contiguous run of floats, and that it leaves
scalar over interleaved RGB. A kernel copies a row into a (3, W) buffer, works on the
planes and copies it back; the row is in cache throughout.
"""

from __future__ import annotations

import numba


@numba.njit(cache=True, nogil=True, inline="always")
def split_row(rgb, y, planes):
    """Row ``y`` of the (H, W, 3) ``rgb`` (rows contiguous) into the (3, W) ``planes``."""
    values = rgb[y].reshape(-1)  # as 3W contiguous values, which the compiler vectorises
    for x in range(rgb.shape[1]):
        planes[0, x] = values[3 * x]
        planes[1, x] = values[3 * x + 1]
        planes[2, x] = values[3 * x + 2]


@numba.njit(cache=True, nogil=True, inline="always")
def merge_row(planes, rgb, y):
    """The (3, W) ``planes`` back into row ``y`` of the (H, W, 3) ``rgb`` (rows contiguous)."""
    values = rgb[y].reshape(-1)
    for x in range(rgb.shape[1]):
        values[3 * x] = planes[0, x]
        values[3 * x + 1] = planes[1, x]
        values[3 * x + 2] = planes[2, x]
