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
def _luma_row(rgb, y, out):
    # Row y's luma; the row read as 3W contiguous values, which the compiler vectorises.
    values = rgb[y].reshape(-1)
    for x in range(out.shape[0]):
        out[x] = (np.float32(0.299) * values[3 * x] + np.float32(0.587) * values[3 * x + 1]
                  + np.float32(0.114) * values[3 * x + 2])


@numba.njit(cache=True, nogil=True, inline="always")
def _blur_row(luma, taps, out):
    # Horizontal pass, tap by tap (each a vectorised loop along the row); the edges clamp.
    w = luma.shape[0]
    r = taps.shape[0] // 2
    for x in range(min(r, w)):
        out[x] = _clamped_tap_sum(luma, x, taps, r, w)
    # Slices, so that the loops index from 0 with no negative-index check to hinder them.
    inner = out[r : w - r]
    for x in range(inner.shape[0]):
        inner[x] = np.float32(0.0)
    for d in range(2 * r + 1):
        tap = taps[d]
        shifted = luma[d : d + inner.shape[0]]
        for x in range(inner.shape[0]):
            inner[x] += tap * shifted[x]
    for x in range(max(w - r, r), w):
        out[x] = _clamped_tap_sum(luma, x, taps, r, w)


@numba.njit(cache=True, nogil=True, inline="always")
def _clamped_tap_sum(luma, x, taps, r, w):
    acc = np.float32(0.0)
    for d in range(-r, r + 1):
        acc += taps[d + r] * luma[min(max(x + d, 0), w - 1)]
    return acc


@numba.njit(cache=True, parallel=True, nogil=True)
def _halo_luma_kernel(rgb, band_rows, r, halo):
    # Luma of the r rows above and below every band, read before any band writes.
    h = rgb.shape[0]
    for band in numba.prange(halo.shape[0]):
        y0 = band * band_rows
        y1 = min(y0 + band_rows, h)
        for j in range(r):
            _luma_row(rgb, min(max(y0 - r + j, 0), h - 1), halo[band, j])
            _luma_row(rgb, min(y1 + j, h - 1), halo[band, r + j])


@numba.njit(cache=True, parallel=True, nogil=True, fastmath=True)
def _unsharp_kernel(rgb, halo, taps, amount, gate_squared, kept_noise, band_rows):
    # Each band reads only its own rows of rgb (and the halo), so bands run in parallel
    # without a full-frame luma image and without reading a neighbour's sharpened rows.
    # Within a band, rows go top to bottom through a window of the 2r + 1 rows the
    # vertical pass needs (row y in slot (y - y0 + r) % (2r + 1)): a row's luma is taken
    # before the row is sharpened, and the window stays in cache.
    h, w, _ = rgb.shape
    r = taps.shape[0] // 2
    span = 2 * r + 1
    top = gate_squared.shape[0] - 1
    for band in numba.prange(halo.shape[0]):
        y0 = band * band_rows
        y1 = min(y0 + band_rows, h)
        luma = np.empty((span, w), dtype=np.float32)
        blurred = np.empty((span, w), dtype=np.float32)
        detail = np.empty(w, dtype=np.float32)
        level = np.empty(w, dtype=np.int32)
        gate_sq = np.empty(w, dtype=np.float32)
        for y in range(y0 - r, y1 + r):
            # Bring row y into the window (from the halo beyond the band's rows) ...
            slot = (y - y0 + r) % span
            if y < y0:
                luma[slot] = halo[band, y - y0 + r]
            elif y >= y1:
                luma[slot] = halo[band, r + y - y1]
            else:
                _luma_row(rgb, y, luma[slot])
            _blur_row(luma[slot], taps, blurred[slot])
            # ... then sharpen row y - r, whose window is complete.
            yc = y - r
            if yc < y0:
                continue
            centre = luma[(yc - y0 + r) % span]
            for x in range(w):
                detail[x] = centre[x]
            for d in range(-r, r + 1):
                tap = taps[d + r]
                row = blurred[(yc - y0 + r + d) % span]
                for x in range(w):
                    detail[x] -= tap * row[x]
            for x in range(w):
                # The pixel's level: its blurred luma (luma minus detail), on the gate table.
                blur = centre[x] - detail[x]
                level[x] = int(min(max(blur, np.float32(0.0)), np.float32(1.0)) * top + 0.5)
            for x in range(w):
                # The table lookups in a loop of their own: the arithmetic around them
                # vectorises.
                gate_sq[x] = gate_squared[level[x]]
            for x in range(w):
                diff = detail[x]
                signal = diff * diff / (diff * diff + gate_sq[x] + np.float32(1e-12))
                detail[x] = diff * (kept_noise - np.float32(1.0)
                                    + (np.float32(1.0) + amount - kept_noise) * signal)
            values = rgb[yc].reshape(-1)
            for x in range(w):
                for c in range(3):
                    values[3 * x + c] += detail[x]


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
    _unsharp_kernel(rgb, halo, taps, np.float32(amount), gate * gate,
                    np.float32(KEPT_NOISE if noise_sigma is not None else 1.0), band_rows)
    return rgb
