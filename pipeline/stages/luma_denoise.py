"""Luminance noise reduction: smooth what the noise model calls noise, keep what stands out.

Luminance is filtered by the guided filter with itself as the guide (He, Sun, Tang,
"Guided Image Filtering", IEEE TPAMI 35(6), 2013, DOI 10.1109/TPAMI.2012.213, sec. 3.4:
edge-preserving smoothing), with a per-window ``eps`` from the frame's noise model: the
luminance variance its noise alone would give at the window's level. A window whose
variance is within the noise is flattened towards its mean (``a -> 0``); an edge or a
texture well above it is kept (``a -> 1``). As in the chroma stage, the coefficients are
fitted on a half-resolution grid and applied at full resolution ("Fast Guided Filter",
He and Sun, arXiv:1505.00996, 2015). Each pixel's RGB is scaled by its new luminance over
its old, so colour is untouched.

``strength`` blends the filtered luminance with the original: below 1 some of the grain
stays, which reads as texture rather than the plastic look of a full denoise.
"""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt

from pipeline.guided_filter import (
    box_mean_direct_kernel,
    box_mean_row,
    upsample_grid_rows,
    window_reciprocals,
)
from pipeline.errors import InvalidParameterError
from pipeline.noise_model import NoiseModel

#: Downsampling of the filter's grid.
FACTOR = 2
#: Radius of the filter window on that grid (a 10x10 full-resolution window).
RADIUS_PX = 2
#: ``eps`` in units of the window's noise variance: 2 keeps a third of a window whose
#: variance is all noise and 5/6 of one at 10x the noise (a = var / (var + eps)).
EPS_NOISE_VARIANCES = 2.0
#: Image rows per parallel task of the apply kernel (a task upsamples each grid row once).
ROWS_PER_TASK = 32


@numba.njit(cache=True, parallel=True, nogil=True)
def _grid_kernel(rgb, factor, lum, square):
    """Luminance (R + G + B) / 3 of ``factor`` x ``factor`` blocks, and its square."""
    h, w = lum.shape
    norm = np.float32(1.0 / (3 * factor * factor))
    for y in numba.prange(h):
        # Each pixel's R + G + B, then the blocks' sums pixel by pixel (rows in order,
        # left to right): loops along the row, which the compiler vectorises.
        pixel_sums = np.empty((factor, w * factor), dtype=np.float32)
        for dy in range(factor):
            pixels = rgb[y * factor + dy].reshape(3 * rgb.shape[1])  # R, G, B interleaved
            sums = pixel_sums[dy]
            for x in range(w * factor):
                sums[x] = pixels[3 * x] + pixels[3 * x + 1] + pixels[3 * x + 2]
        total = np.zeros(w, dtype=np.float32)
        for dy in range(factor):
            for dx in range(factor):
                column = pixel_sums[dy, dx:]
                for x in range(w):
                    total[x] += column[x * factor]
        for x in range(w):
            value = total[x] * norm
            lum[y, x] = value
            square[y, x] = value * value


@numba.njit(cache=True, parallel=True, nogil=True, error_model="numpy")
def _coefficients_kernel(lum, square, radius, noise_scale, noise_offset, gain_sum, gain_sq_sum,
                         downsampling, eps_noise_variances, a, b):
    """Each window's guided-filter coefficients (into ``a``, ``b``), from the window means
    of the grid's luminance and its square (a row of each at a time)."""
    h, w = lum.shape
    column_scale = window_reciprocals(w, radius)
    # eps = eps_noise_variances * the noise variance of (R + G + B) / 3 of white-balanced
    # raw channels at the window's level: each channel's variance is g^2 (scale * level / g
    # + offset), and a grid cell averages ``downsampling`` pixels.
    eps_scale = eps_noise_variances / (9.0 * downsampling)
    eps_per_level = eps_scale * noise_scale * gain_sum
    eps_floor = eps_scale * noise_offset * gain_sq_sum
    for y in numba.prange(h):
        columns = np.zeros(w + 2 * radius, dtype=np.float64)
        sums = np.empty(w, dtype=np.float64)
        mean = np.empty(w, dtype=np.float32)
        mean_square = np.empty(w, dtype=np.float32)
        box_mean_row(lum, y, radius, column_scale, columns, sums, mean)
        box_mean_row(square, y, radius, column_scale, columns, sums, mean_square)
        for x in range(w):
            level = max(np.float64(mean[x]), 0.0)
            eps = eps_per_level * level + eps_floor
            var = max(np.float64(mean_square[x]) - level * level, 0.0)
            coefficient = var / (var + eps + 1e-20)
            a[y, x] = coefficient
            b[y, x] = mean[x] * (1.0 - coefficient)


@numba.njit(cache=True, parallel=True, nogil=True, error_model="numpy")
def _apply_kernel(rgb, coefficients, factor, strength, rows_per_task):
    """Scale each pixel's RGB by its filtered luminance over its own, blended with 1 by
    ``strength``; ``coefficients`` is the grid's (a, b), (2, gh, gw), upsampled
    bilinearly."""
    h, w, _ = rgb.shape
    third = np.float32(1.0 / 3.0)
    tiny = np.float32(1e-6)
    one = np.float32(1.0)
    for task in numba.prange((h + rows_per_task - 1) // rows_per_task):
        rows = np.empty((2, 2, w), dtype=np.float32)
        held = np.full(2, -1, dtype=np.int64)
        ratio = np.empty(w, dtype=np.float32)
        for y in range(task * rows_per_task, min((task + 1) * rows_per_task, h)):
            above, below, weight = upsample_grid_rows(coefficients, y, factor, rows, held)
            a_above, b_above, a_below, b_below = above[0], above[1], below[0], below[1]
            pixels = rgb[y].reshape(3 * w)  # a view of the row: R, G, B interleaved
            for x in range(w):
                a = a_above[x] + weight * (a_below[x] - a_above[x])
                b = b_above[x] + weight * (b_below[x] - b_above[x])
                lum = (pixels[3 * x] + pixels[3 * x + 1] + pixels[3 * x + 2]) * third
                scale = max(one + strength * (a + b / lum - one), np.float32(0.0))
                ratio[x] = scale if lum > tiny else one  # black (or NaN) stays as it is
            for x in range(w):
                pixels[3 * x] *= ratio[x]
                pixels[3 * x + 1] *= ratio[x]
                pixels[3 * x + 2] *= ratio[x]


def reduce_luma_noise(
    rgb: npt.NDArray[np.float32],
    noise: NoiseModel,
    gains: npt.ArrayLike,
    strength: float,
) -> npt.NDArray[np.float32]:
    """Reduce the luminance noise of a white-balanced, scene-linear image in place.

    Parameters
    ----------
    rgb : (H, W, 3) float32, C-contiguous
        Demosaiced camera RGB after white balance (white = 1).
    noise : NoiseModel
        The frame's raw noise model (normalised units).
    gains : (3,) array
        The white-balance gains applied to the raw channels.
    strength : float in [0, 1]
        0 leaves the image as it is; 1 is the filter's full output.
    """
    if not rgb.flags.c_contiguous:
        raise InvalidParameterError("rgb: expected a C-contiguous (H, W, 3) array")
    strength = float(np.clip(strength, 0.0, 1.0))
    if strength <= 0.0 or min(rgb.shape[:2]) < 4 * FACTOR:
        return rgb
    g = np.asarray(gains, dtype=np.float64)
    shape = (rgb.shape[0] // FACTOR, rgb.shape[1] // FACTOR)
    grid = np.empty((2, *shape), dtype=np.float32)  # luminance and its square, for now
    coefficients = np.empty_like(grid)
    _grid_kernel(rgb, FACTOR, grid[0], grid[1])
    _coefficients_kernel(grid[0], grid[1], RADIUS_PX, float(noise.scale),
                         float(max(noise.offset, 0.0)), float(g.sum()), float((g * g).sum()),
                         float(FACTOR * FACTOR), EPS_NOISE_VARIANCES, coefficients[0],
                         coefficients[1])
    for k in range(2):  # then the coefficients averaged over each window
        box_mean_direct_kernel(coefficients[k], RADIUS_PX, grid[k])
    _apply_kernel(rgb, grid, FACTOR, np.float32(strength), ROWS_PER_TASK)
    return rgb
