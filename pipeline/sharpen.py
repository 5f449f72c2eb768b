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


@numba.njit(cache=True, parallel=True, nogil=True)
def _luma_kernel(rgb, out):
    h, w, _ = rgb.shape
    for y in numba.prange(h):
        for x in range(w):
            out[y, x] = (
                np.float32(0.299) * rgb[y, x, 0]
                + np.float32(0.587) * rgb[y, x, 1]
                + np.float32(0.114) * rgb[y, x, 2]
            )


@numba.njit(cache=True, parallel=True, nogil=True)
def _blur_rows_kernel(luma, taps, out):
    h, w = luma.shape
    r = taps.shape[0] // 2
    for y in numba.prange(h):
        for x in range(w):
            acc = np.float32(0.0)
            for d in range(-r, r + 1):
                acc += taps[d + r] * luma[y, min(max(x + d, 0), w - 1)]
            out[y, x] = acc


@numba.njit(cache=True, parallel=True, nogil=True)
def _unsharp_kernel(rgb, luma, row_blurred, taps, amount, threshold):
    h, w, _ = rgb.shape
    r = taps.shape[0] // 2
    for y in numba.prange(h):
        for x in range(w):
            blur = np.float32(0.0)
            for d in range(-r, r + 1):
                blur += taps[d + r] * row_blurred[min(max(y + d, 0), h - 1), x]
            diff = luma[y, x] - blur
            if diff > threshold:
                detail = amount * (diff - threshold)
            elif diff < -threshold:
                detail = amount * (diff + threshold)
            else:
                continue
            for c in range(3):
                rgb[y, x, c] += detail


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
    half = max(1, int(np.ceil(2.5 * radius_px)))
    offsets = np.arange(-half, half + 1, dtype=np.float64)
    taps = np.exp(-0.5 * (offsets / radius_px) ** 2)
    taps = (taps / taps.sum()).astype(np.float32)
    luma = np.empty(rgb.shape[:2], dtype=np.float32)
    _luma_kernel(rgb, luma)
    row_blurred = np.empty_like(luma)
    _blur_rows_kernel(luma, taps, row_blurred)
    _unsharp_kernel(rgb, luma, row_blurred, taps, np.float32(amount), np.float32(threshold))
    return rgb
