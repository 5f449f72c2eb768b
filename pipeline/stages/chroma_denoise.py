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

from pipeline.colour.transforms import box_downsample
from pipeline.guided_filter import box_mean_kernel, grid_columns, grid_rows
from pipeline.noise_model import NoiseModel
from pipeline.planar_rows import merge_row, split_row

#: Downsampling of the filter's grid.
FACTOR = 4
#: Radius of the filter window on that grid (a 12x12 full-resolution window).
RADIUS_PX = 1
#: Chroma noise (standard deviation, white = 1) at which the filter works at full strength
#: (without a noise model for the gate).
FULL_STRENGTH_SIGMA = 0.01
#: Chroma that differs from the smoothed chroma by this many noise sigmas is half kept.
CHROMA_GATE_SIGMAS = 3.0


@numba.njit(cache=True, parallel=True, nogil=True)
def _chroma_fit_kernel(small, radius, eps, a, b):
    # Guided filter of chroma (R - G, B - G) with the grey (R + G + B) / 3 as guide; float32
    # storage (the box sums accumulate in float64) keeps the working set small.
    h, w, _ = small.shape
    guide = np.empty((h, w), dtype=np.float32)
    chroma = np.empty((2, h, w), dtype=np.float32)
    for y in numba.prange(h):
        for x in range(w):
            guide[y, x] = (small[y, x, 0] + small[y, x, 1] + small[y, x, 2]) / np.float32(3.0)
            chroma[0, y, x] = small[y, x, 0] - small[y, x, 1]
            chroma[1, y, x] = small[y, x, 2] - small[y, x, 1]
    mean_y = np.empty((h, w), dtype=np.float32)
    mean_yy = np.empty((h, w), dtype=np.float32)
    box_mean_kernel(guide, radius, mean_y)
    box_mean_kernel(guide * guide, radius, mean_yy)
    mean_c = np.empty((h, w), dtype=np.float32)
    mean_yc = np.empty((h, w), dtype=np.float32)
    coeff_a = np.empty((h, w), dtype=np.float32)
    coeff_b = np.empty((h, w), dtype=np.float32)
    out = np.empty((h, w), dtype=np.float32)
    for k in range(2):
        box_mean_kernel(chroma[k], radius, mean_c)
        box_mean_kernel(guide * chroma[k], radius, mean_yc)
        for y in numba.prange(h):
            for x in range(w):
                var_y = max(mean_yy[y, x] - mean_y[y, x] * mean_y[y, x], 0.0)
                cov = mean_yc[y, x] - mean_y[y, x] * mean_c[y, x]
                coeff_a[y, x] = cov / (var_y + eps)
                coeff_b[y, x] = mean_c[y, x] - coeff_a[y, x] * mean_y[y, x]
        box_mean_kernel(coeff_a, radius, out)
        a[k] = out
        box_mean_kernel(coeff_b, radius, out)
        b[k] = out


@numba.njit(cache=True, nogil=True, inline="always")
def _chroma_fit(lum, d_red, d_green, d_blue):
    """Largest t in [0, 1] with lum + t * d >= 0 for each channel's chroma term d."""
    lowest = min(d_red, min(d_green, d_blue))  # the channel that reaches zero first
    if lowest >= np.float32(0.0) or lum >= -lowest:
        return np.float32(1.0)
    return max(lum, np.float32(0.0)) / -lowest


@numba.njit(cache=True, parallel=True, nogil=True, fastmath=True)
def _apply_kernel(rgb, a, b, factor, strength, noise_scale, noise_offset, gains, gate):
    h, w, _ = rgb.shape
    gh, gw = a.shape[1], a.shape[2]
    third = np.float32(1.0 / 3.0)
    # Where each column falls on the grid, for every row alike.
    column, column_t = grid_columns(w, gw, factor)
    for y in numba.prange(h):
        y0, y1, ty = grid_rows(y, gh, factor)
        # The grid interpolated to this row (a_red, b_red, a_blue, b_blue per grid column),
        # then to every pixel of it; then the arithmetic, on planes (pipeline.planar_rows).
        grid_row = np.empty((4, gw), dtype=np.float32)
        for i in range(gw):
            grid_row[0, i] = a[0, y0, i] + ty * (a[0, y1, i] - a[0, y0, i])
            grid_row[1, i] = b[0, y0, i] + ty * (b[0, y1, i] - b[0, y0, i])
            grid_row[2, i] = a[1, y0, i] + ty * (a[1, y1, i] - a[1, y0, i])
            grid_row[3, i] = b[1, y0, i] + ty * (b[1, y1, i] - b[1, y0, i])
        coefficients = np.empty((4, w), dtype=np.float32)
        for x in range(w):
            x0 = column[x]
            tx = column_t[x]
            for k in range(4):
                coefficients[k, x] = grid_row[k, x0] + tx * (grid_row[k, x0 + 1] - grid_row[k, x0])
        planes = np.empty((3, w), dtype=np.float32)
        split_row(rgb, y, planes)
        for x in range(w):
            r = planes[0, x]
            g = planes[1, x]
            bl = planes[2, x]
            lum = (r + g + bl) * third
            red = coefficients[0, x] * lum + coefficients[1, x]
            blue = coefficients[2, x] * lum + coefficients[3, x]
            # The noise of R - G and B - G at this level (white-balanced raw noise of each
            # channel), and how many sigmas the filter would move the chroma.
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
            # Only colours the pixel's luminance allows: near a luminance edge the filter's
            # offset b carries some of the bright side's chroma, which on a dark pixel would
            # be a coloured glow (and a negative channel); scale the chroma until no channel
            # is negative.
            fit = _chroma_fit(lum, (c1 + c1 - c2) * third, -(c1 + c2) * third,
                              (c2 + c2 - c1) * third)
            c1 *= fit
            c2 *= fit
            # Keep luminance (R + G + B) / 3 exactly: solve for G from the new chroma.
            g_new = lum - (c1 + c2) * third
            planes[0, x] = g_new + c1
            planes[1, x] = g_new
            planes[2, x] = g_new + c2
        merge_row(planes, rgb, y)


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
    rgb : (H, W, 3) float32
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
    small = box_downsample(rgb, FACTOR)
    # eps = full-resolution chroma variance: many times the guide's own noise variance on
    # the downsampled grid, so noise alone never reads as a luminance edge.
    a = np.empty((2, *small.shape[:2]), dtype=np.float32)
    b = np.empty_like(a)
    _chroma_fit_kernel(small, RADIUS_PX, sigma * sigma, a, b)
    _apply_kernel(rgb, a, b, FACTOR, np.float32(effective), scale, offset, gain, gate)
    return rgb
