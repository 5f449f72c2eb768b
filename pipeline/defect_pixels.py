"""Hot and dead pixel correction on the mosaic.

A pixel is replaced by the median of its eight same-colour neighbours (two sites away)
when it stands far outside their range: brighter than ``hot_ratio`` times the brightest
of them plus ``margin``, or darker than the darkest divided by ``dead_ratio`` minus
``margin``. Optics spread any real point of light over several sites, so an isolated
single-site outlier is a defect (the classic approach of dcraw's and LibRaw's
"pixel median" filters; see also Ramanath et al., "Color image processing pipeline",
IEEE Signal Processing Magazine 22(1), 2005, sec. "Defective pixels").
"""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt


@numba.njit(cache=True, nogil=True, inline="always")
def _median8(v):
    # Insertion sort of eight values; the median is the mean of the middle two.
    for i in range(1, 8):
        key = v[i]
        j = i - 1
        while j >= 0 and v[j] > key:
            v[j + 1] = v[j]
            j -= 1
        v[j + 1] = key
    return np.float32(0.5) * (v[3] + v[4])


@numba.njit(cache=True, parallel=True, nogil=True)
def _correct_kernel(cfa, hot_ratio, dead_ratio, margin, out):
    h, w = cfa.shape
    for y in numba.prange(h):
        if y < 2 or y >= h - 2 or w < 5:
            for x in range(w):
                out[y, x] = cfa[y, x]
            continue
        # The test is a branch-free loop the compiler vectorises; defects are rare, so
        # their medians are a second pass over the few flagged sites.
        flagged = np.empty(w, dtype=np.bool_)
        for x in range(w):
            flagged[x] = False
        for x in range(2, w - 2):
            a, b, c, d = cfa[y - 2, x - 2], cfa[y - 2, x], cfa[y - 2, x + 2], cfa[y, x - 2]
            e, f, g, k = cfa[y, x + 2], cfa[y + 2, x - 2], cfa[y + 2, x], cfa[y + 2, x + 2]
            lo = min(min(min(a, b), min(c, d)), min(min(e, f), min(g, k)))
            hi = max(max(max(a, b), max(c, d)), max(max(e, f), max(g, k)))
            centre = cfa[y, x]
            flagged[x] = (centre > hi * hot_ratio + margin) | (centre < lo / dead_ratio - margin)
        for x in range(w):
            out[y, x] = cfa[y, x]
        v = np.empty(8, dtype=np.float32)
        for x in range(2, w - 2):
            if flagged[x]:
                v[0] = cfa[y - 2, x - 2]
                v[1] = cfa[y - 2, x]
                v[2] = cfa[y - 2, x + 2]
                v[3] = cfa[y, x - 2]
                v[4] = cfa[y, x + 2]
                v[5] = cfa[y + 2, x - 2]
                v[6] = cfa[y + 2, x]
                v[7] = cfa[y + 2, x + 2]
                out[y, x] = _median8(v)


def correct_hot_and_dead(
    cfa: npt.NDArray[np.float32],
    hot_ratio: float = 2.0,
    dead_ratio: float = 2.0,
    margin: float = 0.02,
    out: npt.NDArray[np.float32] | None = None,
) -> npt.NDArray[np.float32]:
    """Replace isolated defective sites of a normalised (H, W) float32 mosaic.

    Works for every Bayer pattern: the eight neighbours two sites away always share the
    centre's colour. ``margin`` is in normalised units (1.0 = white).
    """
    if out is None:
        out = np.empty_like(cfa)
    _correct_kernel(cfa, np.float32(hot_ratio), np.float32(dead_ratio), np.float32(margin), out)
    return out
