"""White balance: the scene white's camera response, and gains that make it neutral."""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt

from pipeline.cfa import CfaPattern
from pipeline.errors import InvalidParameterError
from pipeline.raw_frame import CLIP_FRACTION


def gains_from_neutral(neutral: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """(3,) float32 gains for R, G, B that map ``neutral`` to grey, the smallest being 1.

    With the smallest gain at 1, every channel clips at 1.0 or above after balancing, so
    clipping all of them at 1.0 (see :mod:`pipeline.stages.highlights`) leaves blown areas white.
    """
    neutral = np.asarray(neutral, dtype=np.float64)
    if neutral.shape != (3,) or not np.all(np.isfinite(neutral)) or np.any(neutral <= 0):
        raise InvalidParameterError(f"neutral={neutral.tolist()}: expected three positive numbers")
    gains = 1.0 / neutral
    return (gains / gains.min()).astype(np.float32)


@numba.njit(cache=True, nogil=True)
def _shades_of_grey_sums(cfa, channels, p, low, high, step):
    h, w = cfa.shape
    sums = np.zeros(3, dtype=np.float64)
    count = 0
    for y in range(0, h - 1, 2 * step):
        for x in range(0, w - 1, 2 * step):
            rgb = np.zeros(3, dtype=np.float64)
            n = np.zeros(3, dtype=np.float64)
            peak = 0.0
            for dy in range(2):
                for dx in range(2):
                    v = cfa[y + dy, x + dx]
                    c = channels[dy, dx]
                    rgb[c] += v
                    n[c] += 1.0
                    peak = max(peak, v)
            if peak >= high:
                continue
            rgb /= n
            if rgb[1] <= low:
                continue
            for c in range(3):
                sums[c] += max(rgb[c], 0.0) ** p
            count += 1
    return sums, count


def estimate_neutral_shades_of_grey(
    cfa: npt.NDArray[np.float32],
    pattern: CfaPattern,
    p: float = 6.0,
    max_samples: int = 250_000,
) -> npt.NDArray[np.float64]:
    """Estimate the scene white's camera response from a normalised mosaic.

    Shades of Grey: the Minkowski p-norm mean of each channel is taken as the illuminant
    (Finlayson and Trezzi, "Shades of Gray and Colour Constancy", Color and Imaging
    Conference 2004; p = 6 is their best setting). Clipped and near-black 2x2 tiles are
    left out. Returns (3,) float64 normalised to green = 1; grey if nothing usable.
    """
    tiles = (cfa.shape[0] // 2) * (cfa.shape[1] // 2)
    step = max(1, int(np.sqrt(tiles / max_samples)))
    sums, count = _shades_of_grey_sums(cfa, pattern.channels, p, 1e-3, CLIP_FRACTION, step)
    if count == 0 or np.any(sums <= 0):
        return np.ones(3)
    neutral = (sums / count) ** (1.0 / p)
    return neutral / neutral[1]


@numba.njit(cache=True, parallel=True, nogil=True)
def _apply_gains_kernel(cfa, site_gains, out):
    h, w = cfa.shape
    for y in numba.prange(h):
        for x in range(w):
            out[y, x] = cfa[y, x] * site_gains[y & 1, x & 1]


def apply(
    cfa: npt.NDArray[np.float32],
    pattern: CfaPattern,
    gains: npt.NDArray[np.float32],
    out: npt.NDArray[np.float32] | None = None,
) -> npt.NDArray[np.float32]:
    """Multiply each site of an (H, W) float32 mosaic by its channel's gain (R, G, B)."""
    site_gains = np.asarray(gains, dtype=np.float32)[pattern.channels]
    if out is None:
        out = np.empty_like(cfa)
    _apply_gains_kernel(cfa, site_gains, out)
    return out
