"""Sharpening: unsharp mask on display-encoded luma, with coring.

The detail layer is luma minus its (separable) Gaussian blur; differences smaller than ``threshold``
are left alone (coring) so noise is not amplified, and the same detail is added to R, G
and B so sharpening adds no colour fringes.
"""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt

from pipeline.errors import InvalidParameterError

_BAND_ROWS = 64


@numba.njit(cache=True, nogil=True, inline="always")
def _luma(rgb, y, x):
    return (
        np.float32(0.299) * rgb[y, x, 0]
        + np.float32(0.587) * rgb[y, x, 1]
        + np.float32(0.114) * rgb[y, x, 2]
    )


@numba.njit(cache=True, parallel=True, nogil=True)
def _halo_luma_kernel(rgb, band_rows, r, halo):
    # Luma of the r rows above and below every band, read before any band writes.
    h, w, _ = rgb.shape
    for band in numba.prange(halo.shape[0]):
        y0 = band * band_rows
        y1 = min(y0 + band_rows, h)
        for j in range(r):
            above = min(max(y0 - r + j, 0), h - 1)
            below = min(y1 + j, h - 1)
            for x in range(w):
                halo[band, j, x] = _luma(rgb, above, x)
                halo[band, r + j, x] = _luma(rgb, below, x)


@numba.njit(cache=True, parallel=True, nogil=True, fastmath=True)
def _unsharp_kernel(rgb, halo, taps, amount, threshold, band_rows):
    # Each band reads only its own rows of rgb (and the halo), so bands run in parallel
    # without a full-frame luma image and without reading a neighbour's sharpened rows.
    h, w, _ = rgb.shape
    r = taps.shape[0] // 2
    for band in numba.prange(halo.shape[0]):
        y0 = band * band_rows
        y1 = min(y0 + band_rows, h)
        n = y1 - y0 + 2 * r
        luma = np.empty((n, w), dtype=np.float32)
        for j in range(r):
            luma[j] = halo[band, j]
            luma[n - r + j] = halo[band, r + j]
        for y in range(y0, y1):
            for x in range(w):
                luma[y - y0 + r, x] = _luma(rgb, y, x)
        rows = np.empty((n, w), dtype=np.float32)
        for k in range(n):
            # Edges clamp; the interior is a branch-free loop the compiler vectorises.
            for x in range(min(r, w)):
                rows[k, x] = _clamped_tap_sum(luma, k, x, taps, r, w)
            for x in range(r, w - r):
                acc = np.float32(0.0)
                for d in range(-r, r + 1):
                    acc += taps[d + r] * luma[k, x + d]
                rows[k, x] = acc
            for x in range(max(w - r, r), w):
                rows[k, x] = _clamped_tap_sum(luma, k, x, taps, r, w)
        detail = np.empty(w, dtype=np.float32)
        for y in range(y0, y1):
            k = y - y0 + r
            # Vertical pass tap by tap, each a vectorised loop along the row; the halo
            # already repeats the frame's edge rows beyond it.
            for x in range(w):
                detail[x] = luma[k, x]
            for d in range(-r, r + 1):
                tap = taps[d + r]
                for x in range(w):
                    detail[x] -= tap * rows[k + d, x]
            for x in range(w):
                # Coring: the part of the difference beyond +-threshold (0 inside it).
                diff = detail[x]
                detail[x] = amount * (diff - min(max(diff, -threshold), threshold))
            for x in range(w):
                for c in range(3):
                    rgb[y, x, c] += detail[x]


@numba.njit(cache=True, nogil=True, inline="always")
def _clamped_tap_sum(luma, k, x, taps, r, w):
    acc = np.float32(0.0)
    for d in range(-r, r + 1):
        acc += taps[d + r] * luma[k, min(max(x + d, 0), w - 1)]
    return acc


def unsharp_mask(
    rgb: npt.NDArray[np.float32],
    amount: float,
    radius_px: float = 1.0,
    threshold: float = 0.004,
) -> npt.NDArray[np.float32]:
    """Sharpen a display-encoded (H, W, 3) float32 image in place; ``amount`` 0 is a no-op."""
    if amount < 0 or radius_px <= 0 or threshold < 0:
        raise InvalidParameterError(
            f"amount={amount}, radius_px={radius_px}, threshold={threshold}: "
            "expected amount >= 0, radius_px > 0, threshold >= 0"
        )
    if amount == 0:
        return rgb
    half = max(1, int(np.ceil(2.0 * radius_px)))
    offsets = np.arange(-half, half + 1, dtype=np.float64)
    taps = np.exp(-0.5 * (offsets / radius_px) ** 2)
    taps = (taps / taps.sum()).astype(np.float32)
    band_rows = max(_BAND_ROWS, half)
    n_bands = -(-rgb.shape[0] // band_rows)
    halo = np.empty((n_bands, 2 * half, rgb.shape[1]), dtype=np.float32)
    _halo_luma_kernel(rgb, band_rows, half, halo)
    _unsharp_kernel(rgb, halo, taps, np.float32(amount), np.float32(threshold), band_rows)
    return rgb
