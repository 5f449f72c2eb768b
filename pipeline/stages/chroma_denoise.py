"""Chroma noise reduction: smooth colour, keep luminance, follow luminance edges.

High-ISO frames show coloured speckle: per-pixel noise that differs between the colour
channels. The chroma (R - G and B - G of the white-balanced camera image) is filtered with
the guided filter using luminance as the guide (He, Sun, Tang, "Guided Image Filtering",
IEEE TPAMI 35(6), 2013, DOI 10.1109/TPAMI.2012.213): in flat areas chroma becomes its local
mean, across luminance edges it follows the edge, so colour does not bleed. The filter
runs at quarter resolution and its linear coefficients are applied at full resolution
("Fast Guided Filter", He and Sun, arXiv:1505.00996, 2015); eps comes from the frame's
noise model, and luminance is left untouched, so detail and sharpness are kept.

Small saturated detail (a red wire, a label's outline) has little luminance contrast, so
the guide cannot protect it; the noise model does. At each pixel the chroma the filter
would remove is compared with the chroma noise at the pixel's level (the raw noise of the
two channels, white-balanced): a difference of ``z`` noise sigmas is removed only in the
share ``k^2 / (z^2 + k^2)`` (the soft gate of Wiener shrinkage, as in the sharpening), so
noise is smoothed at full strength and colour that stands out of the noise stays.
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
FACTOR = 4
#: Radius of the filter window on that grid (a 12x12 full-resolution window).
RADIUS_PX = 1
#: Chroma noise (standard deviation, white = 1) at which the filter works at full strength
#: (without a noise model for the gate).
FULL_STRENGTH_SIGMA = 0.01
#: Chroma that differs from the smoothed chroma by this many noise sigmas is half kept.
CHROMA_GATE_SIGMAS = 3.0
#: Image rows per parallel task of the apply kernel (a task upsamples each grid row once).
ROWS_PER_TASK = 32


@numba.njit(cache=True, parallel=True, nogil=True)
def _grid_kernel(rgb, factor, planes):
    """The filter's inputs on a grid ``factor`` times coarser, from the means of
    ``factor`` x ``factor`` blocks of each channel: into the (6, h, w) float32 ``planes``
    the guide Y = (R + G + B) / 3, the chroma C1 = R - G and C2 = B - G, and the products
    Y Y, Y C1, Y C2 whose window means the fit needs."""
    _, h, w = planes.shape
    norm = np.float32(1.0 / (factor * factor))
    width = rgb.shape[1]
    for y in numba.prange(h):
        # The block's rows added (R, G, B interleaved), split into channels, then each
        # channel's ``factor`` neighbours added: loops along the row, in cache.
        rows = np.empty(3 * width, dtype=np.float32)
        first = rgb[y * factor].reshape(3 * width)
        for i in range(3 * width):
            rows[i] = first[i]
        for dy in range(1, factor):
            pixels = rgb[y * factor + dy].reshape(3 * width)
            for i in range(3 * width):
                rows[i] += pixels[i]
        channels = np.empty((3, width), dtype=np.float32)
        for x in range(width):
            channels[0, x] = rows[3 * x]
            channels[1, x] = rows[3 * x + 1]
            channels[2, x] = rows[3 * x + 2]
        sums = np.zeros((3, w), dtype=np.float32)
        for c in range(3):
            total = sums[c]
            for dx in range(factor):
                channel = channels[c, dx:]
                for x in range(w):
                    total[x] += channel[factor * x]
        for x in range(w):
            red = sums[0, x] * norm
            green = sums[1, x] * norm
            blue = sums[2, x] * norm
            guide = (red + green + blue) / np.float32(3.0)
            red_chroma = red - green
            blue_chroma = blue - green
            planes[0, y, x] = guide
            planes[1, y, x] = red_chroma
            planes[2, y, x] = blue_chroma
            planes[3, y, x] = guide * guide
            planes[4, y, x] = guide * red_chroma
            planes[5, y, x] = guide * blue_chroma


@numba.njit(cache=True, parallel=True, nogil=True, error_model="numpy")
def _chroma_fit_kernel(planes, radius, eps, out):
    """Guided filter of the chroma (C1, C2) with the grey Y as guide, from
    :func:`_grid_kernel`'s planes: each window's coefficients (a, b) of C1 and of C2, then
    averaged over each window, into the (4, h, w) ``out`` (a1, b1, a2, b2). Window means
    are kept in float32 (the inputs' sums in float64, for the variances), which keeps the
    working set small."""
    _, h, w = planes.shape
    column_scale = window_reciprocals(w, radius)
    coefficients = np.empty_like(out)
    for y in numba.prange(h):
        columns = np.zeros(w + 2 * radius, dtype=np.float64)
        sums = np.empty(w, dtype=np.float64)
        means = np.empty((6, w), dtype=np.float32)  # Y, C1, C2, YY, YC1, YC2
        for k in range(6):
            box_mean_row(planes[k], y, radius, column_scale, columns, sums, means[k])
        for k in range(2):
            for x in range(w):
                mean_y = means[0, x]
                var_y = max(means[3, x] - mean_y * mean_y, 0.0)
                cov = means[4 + k, x] - mean_y * means[1 + k, x]
                a = cov / (var_y + eps)
                coefficients[2 * k, y, x] = a
                coefficients[2 * k + 1, y, x] = means[1 + k, x] - coefficients[2 * k, y, x] * mean_y
    for k in range(4):
        box_mean_direct_kernel(coefficients[k], radius, out[k])


@numba.njit(cache=True, nogil=True, inline="always")
def _chroma_fit(lum, d_red, d_green, d_blue):
    """Largest t in [0, 1] with lum + t * d >= 0 for each channel's chroma term d."""
    lowest = min(d_red, min(d_green, d_blue))  # the channel that reaches zero first
    if lowest >= np.float32(0.0) or lum >= -lowest:
        return np.float32(1.0)
    return max(lum, np.float32(0.0)) / -lowest


@numba.njit(cache=True, parallel=True, nogil=True, fastmath=True, error_model="numpy")
def _apply_kernel(rgb, coefficients, factor, strength, noise_scale, noise_offset, gains, gate,
                  rows_per_task):
    h, w, _ = rgb.shape
    third = np.float32(1.0 / 3.0)
    for task in numba.prange((h + rows_per_task - 1) // rows_per_task):
        rows = np.empty((2, 4, w), dtype=np.float32)
        held = np.full(2, -1, dtype=np.int64)
        for y in range(task * rows_per_task, min((task + 1) * rows_per_task, h)):
            # The grid (a_red, b_red, a_blue, b_blue) upsampled along the grid rows above
            # and below this row, then between them.
            above, below, weight = upsample_grid_rows(coefficients, y, factor, rows, held)
            pixels = rgb[y].reshape(3 * w)  # a view of the row: R, G, B interleaved
            for x in range(w):
                a_red = above[0, x] + weight * (below[0, x] - above[0, x])
                b_red = above[1, x] + weight * (below[1, x] - above[1, x])
                a_blue = above[2, x] + weight * (below[2, x] - above[2, x])
                b_blue = above[3, x] + weight * (below[3, x] - above[3, x])
                r = pixels[3 * x]
                g = pixels[3 * x + 1]
                bl = pixels[3 * x + 2]
                lum = (r + g + bl) * third
                red = a_red * lum + b_red
                blue = a_blue * lum + b_blue
                # The noise of R - G and B - G at this level (white-balanced raw noise of
                # each channel), and how many sigmas the filter would move the chroma.
                level = max(lum, np.float32(0.0))
                var_red = (noise_scale * level * (gains[0] + gains[1])
                           + noise_offset * (gains[0] * gains[0] + gains[1] * gains[1]))
                var_blue = (noise_scale * level * (gains[2] + gains[1])
                            + noise_offset * (gains[2] * gains[2] + gains[1] * gains[1]))
                d_red = red - (r - g)
                d_blue = blue - (bl - g)
                z2 = d_red * d_red / var_red + d_blue * d_blue / var_blue
                share = strength * gate * gate / (z2 + gate * gate)
                c1 = (r - g) + share * d_red
                c2 = (bl - g) + share * d_blue
                # Only colours the pixel's luminance allows: near a luminance edge the
                # filter's offset b carries some of the bright side's chroma, which on a
                # dark pixel would be a coloured glow (and a negative channel); scale the
                # chroma until no channel is negative.
                fit = _chroma_fit(lum, (c1 + c1 - c2) * third, -(c1 + c2) * third,
                                  (c2 + c2 - c1) * third)
                c1 *= fit
                c2 *= fit
                # Keep luminance (R + G + B) / 3 exactly: solve for G from the new chroma.
                g_new = lum - (c1 + c2) * third
                pixels[3 * x] = g_new + c1
                pixels[3 * x + 1] = g_new
                pixels[3 * x + 2] = g_new + c2


def chroma_noise_sigma(
    noise_scale: float, noise_offset: float, gains: npt.ArrayLike, level: float = 0.18
) -> float:
    """Standard deviation of R - G (white-balanced) at ``level``, from the raw noise model."""
    gains = np.asarray(gains, dtype=np.float64)
    raw_variance = noise_scale * level + noise_offset
    return float(np.sqrt(raw_variance * (gains[0] ** 2 + gains[1] ** 2)))


def reduce_chroma_noise(
    rgb: npt.NDArray[np.float32],
    sigma: float,
    strength: float = 1.0,
    noise: NoiseModel | None = None,
    gains: npt.ArrayLike | None = None,
) -> npt.NDArray[np.float32]:
    """Reduce chroma noise of a white-balanced, scene-linear (H, W, 3) float32 image in place.

    Parameters
    ----------
    rgb : (H, W, 3) float32, C-contiguous
        Demosaiced camera RGB after white balance (white = 1).
    sigma : float
        Chroma noise (standard deviation of R - G) of the frame, from
        :func:`chroma_noise_sigma`. Clean frames (small ``sigma``) are barely touched.
    strength : float in [0, 1]
        The look's or the user's scale on top of the noise-driven strength.
    noise, gains : NoiseModel and (3,) white-balance gains, optional
        The frame's raw noise model and the gains applied to it: chroma is then smoothed
        only within its noise at each pixel (the gate), at full ``strength``. Without
        them, no gate, and the strength scales with ``sigma``.
    """
    if not rgb.flags.c_contiguous:
        raise InvalidParameterError("rgb: expected a C-contiguous (H, W, 3) array")
    if noise is not None:
        gain = np.asarray(gains if gains is not None else np.ones(3), dtype=np.float32)
        scale, offset = np.float32(noise.scale), np.float32(max(noise.offset, 1e-12))
        effective = float(np.clip(strength, 0.0, 1.0))
        gate = np.float32(CHROMA_GATE_SIGMAS)
    else:  # no gate: an infinite one, and the strength from the frame's noise
        gain = np.ones(3, dtype=np.float32)
        scale, offset, gate = np.float32(0.0), np.float32(1.0), np.float32(1e15)
        effective = float(np.clip(strength * sigma / FULL_STRENGTH_SIGMA, 0.0, 1.0))
    if effective <= 0.02 or min(rgb.shape[:2]) < 2 * FACTOR:
        return rgb
    shape = (rgb.shape[0] // FACTOR, rgb.shape[1] // FACTOR)
    planes = np.empty((6, *shape), dtype=np.float32)
    _grid_kernel(rgb, FACTOR, planes)
    # eps = full-resolution chroma variance: many times the guide's own noise variance on
    # the downsampled grid, so noise alone never reads as a luminance edge.
    coefficients = np.empty((4, *shape), dtype=np.float32)
    _chroma_fit_kernel(planes, RADIUS_PX, sigma * sigma, coefficients)
    _apply_kernel(rgb, coefficients, FACTOR, np.float32(effective), scale, offset, gain, gate,
                  ROWS_PER_TASK)
    return rgb
