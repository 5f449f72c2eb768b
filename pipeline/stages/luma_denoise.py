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

from pipeline.guided_filter import box_mean_kernel, grid_columns, grid_rows
from pipeline.noise_model import NoiseModel

#: Downsampling of the filter's grid.
FACTOR = 2
#: Radius of the filter window on that grid (a 10x10 full-resolution window).
RADIUS_PX = 2
#: ``eps`` in units of the window's noise variance: 2 keeps a third of a window whose
#: variance is all noise and 5/6 of one at 10x the noise (a = var / (var + eps)).
EPS_NOISE_VARIANCES = 2.0


@numba.njit(cache=True, parallel=True, nogil=True)
def _grid_kernel(rgb, factor, lum, square):
    """Luminance (R + G + B) / 3 of ``factor`` x ``factor`` blocks, and its square."""
    h, w = lum.shape
    norm = np.float32(1.0 / (3 * factor * factor))
    for y in numba.prange(h):
        for x in range(w):
            total = np.float32(0.0)
            for dy in range(factor):
                for dx in range(factor):
                    pixel = rgb[y * factor + dy, x * factor + dx]
                    total += pixel[0] + pixel[1] + pixel[2]
            value = total * norm
            lum[y, x] = value
            square[y, x] = value * value


@numba.njit(cache=True, parallel=True, nogil=True)
def _coefficients_kernel(mean, mean_square, noise_scale, noise_offset, gain_sum, gain_sq_sum,
                         downsampling, eps_noise_variances, a, b):
    """Each window's guided-filter coefficients (into ``a``, ``b``)."""
    h, w = mean.shape
    for y in numba.prange(h):
        for x in range(w):
            level = max(np.float64(mean[y, x]), 0.0)
            # (R + G + B) / 3 of white-balanced raw channels at this level: each channel's
            # variance is g^2 (scale * level / g + offset); a grid cell averages
            # ``downsampling`` pixels.
            noise_var = (noise_scale * level * gain_sum + noise_offset * gain_sq_sum) / 9.0
            eps = eps_noise_variances * noise_var / downsampling
            var = max(np.float64(mean_square[y, x]) - level * level, 0.0)
            coefficient = var / (var + eps + 1e-20)
            a[y, x] = coefficient
            b[y, x] = mean[y, x] * (1.0 - coefficient)


@numba.njit(cache=True, parallel=True, nogil=True)
def _apply_kernel(rgb, a, b, factor, strength):
    h, w, _ = rgb.shape
    gh, gw = a.shape
    third = np.float32(1.0 / 3.0)
    tiny = np.float32(1e-6)
    column, column_t = grid_columns(w, gw, factor)
    for y in numba.prange(h):
        y0, y1, ty = grid_rows(y, gh, factor)
        a_row = np.empty(gw, dtype=np.float32)
        b_row = np.empty(gw, dtype=np.float32)
        for i in range(gw):
            a_row[i] = a[y0, i] + ty * (a[y1, i] - a[y0, i])
            b_row[i] = b[y0, i] + ty * (b[y1, i] - b[y0, i])
        for x in range(w):
            x0 = column[x]
            tx = column_t[x]
            ax = a_row[x0] + tx * (a_row[x0 + 1] - a_row[x0])
            bx = b_row[x0] + tx * (b_row[x0 + 1] - b_row[x0])
            lum = (rgb[y, x, 0] + rgb[y, x, 1] + rgb[y, x, 2]) * third
            if lum > tiny:
                ratio = max(np.float32(1.0) + strength * (ax + bx / lum - np.float32(1.0)),
                            np.float32(0.0))
                rgb[y, x, 0] *= ratio
                rgb[y, x, 1] *= ratio
                rgb[y, x, 2] *= ratio


def reduce_luma_noise(
    rgb: npt.NDArray[np.float32],
    noise: NoiseModel,
    gains: npt.ArrayLike,
    strength: float,
) -> npt.NDArray[np.float32]:
    """Reduce the luminance noise of a white-balanced, scene-linear image in place.

    Parameters
    ----------
    rgb : (H, W, 3) float32
        Demosaiced camera RGB after white balance (white = 1).
    noise : NoiseModel
        The frame's raw noise model (normalised units).
    gains : (3,) array
        The white-balance gains applied to the raw channels.
    strength : float in [0, 1]
        0 leaves the image as it is; 1 is the filter's full output.
    """
    strength = float(np.clip(strength, 0.0, 1.0))
    if strength <= 0.0 or min(rgb.shape[:2]) < 4 * FACTOR:
        return rgb
    g = np.asarray(gains, dtype=np.float64)
    shape = (rgb.shape[0] // FACTOR, rgb.shape[1] // FACTOR)
    lum, square, a, b = (np.empty(shape, dtype=np.float32) for _ in range(4))
    _grid_kernel(rgb, FACTOR, lum, square)
    box_mean_kernel(lum, RADIUS_PX, a)  # the windows' mean and mean square, for now
    box_mean_kernel(square, RADIUS_PX, b)
    _coefficients_kernel(a, b, float(noise.scale), float(max(noise.offset, 0.0)),
                         float(g.sum()), float((g * g).sum()), float(FACTOR * FACTOR),
                         EPS_NOISE_VARIANCES, lum, square)
    box_mean_kernel(lum, RADIUS_PX, a)  # then the coefficients averaged over each window
    box_mean_kernel(square, RADIUS_PX, b)
    _apply_kernel(rgb, a, b, FACTOR, np.float32(strength))
    return rgb
