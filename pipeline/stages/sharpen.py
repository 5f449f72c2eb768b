"""Sharpening: unsharp mask on display-encoded luma, gated by the noise.

The detail layer is luma minus its (separable) Gaussian blur; the same detail is added to
R, G and B so sharpening adds no colour fringes. Detail is amplified only where it stands
out of the noise: with ``sigma`` the noise of luma at the pixel's level (from the raw noise
model carried through the develop, :func:`pipeline.noise_model.display_luma_sigma`), a
detail ``d`` gains ``amount * d^2 / (d^2 + (k sigma)^2)``: nearly nothing within the noise,
the full amount on real edges (the soft coring of wavelet shrinkage: Donoho and
Johnstone, "Ideal spatial adaptation by wavelet shrinkage", Biometrika 81(3), 1994; a
Wiener-like gain, as in the noise-aware sharpening of camera ISPs). Without a noise table
a fixed ``threshold`` plays ``k sigma``.
"""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt

from pipeline.errors import InvalidParameterError

_BAND_ROWS = 64
#: Detail this many noise sigmas tall is sharpened at half the amount (3 sigma: the
#: threshold that noise alone almost never reaches).
NOISE_GATE = 3.0
#: Share of the finest detail kept where it is all noise: the rest is the luminance noise
#: reduction that comes with the gate (detail within the noise is shrunk, not amplified).
KEPT_NOISE = 0.4


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
def _unsharp_kernel(rgb, halo, taps, amount, gate, kept_noise, band_rows):
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
        level = np.empty(w, dtype=np.int32)
        top = gate.shape[0] - 1
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
                # The pixel's level: its blurred luma (luma minus detail), on the gate table.
                blurred = luma[k, x] - detail[x]
                level[x] = int(min(max(blurred, np.float32(0.0)), np.float32(1.0)) * top + 0.5)
            for x in range(w):
                diff = detail[x]
                t = gate[level[x]]
                signal = diff * diff / (diff * diff + t * t + np.float32(1e-12))
                detail[x] = diff * (kept_noise - np.float32(1.0)
                                    + (np.float32(1.0) + amount - kept_noise) * signal)
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
    noise_sigma: npt.NDArray[np.float32] | None = None,
    noise_gate: float = NOISE_GATE,
) -> npt.NDArray[np.float32]:
    """Sharpen a display-encoded (H, W, 3) float32 image in place; ``amount`` 0 is a no-op.

    Parameters
    ----------
    rgb : (H, W, 3) float32
    amount, radius_px : float
        Gain of the detail and the Gaussian's sigma.
    threshold : float
        Detail that counts as half signal, half noise, when there is no noise table.
    noise_sigma : (n,) float32, optional
        Noise of luma at display levels ``0, 1/(n-1), ..., 1``; detail below ``noise_gate``
        times it is barely amplified. The larger of it and ``threshold`` applies.
    """
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
    gate = np.full(1, threshold, dtype=np.float32)
    if noise_sigma is not None:
        gate = np.maximum(np.asarray(noise_sigma, dtype=np.float32) * np.float32(noise_gate),
                          np.float32(threshold))
    _unsharp_kernel(rgb, halo, taps, np.float32(amount), gate, np.float32(KEPT_NOISE if noise_sigma is not None else 1.0), band_rows)
    return rgb
