"""Hot and dead pixel correction on the mosaic.

A pixel is replaced by the median of its eight same-colour neighbours (two sites away)
when it stands far outside their range: brighter than ``hot_ratio`` times the brightest
of them plus ``margin``, or darker than the darkest divided by ``dead_ratio`` and, by more
than ``dead_sigmas`` standard deviations of the noise at that level, below it (with the
frame's noise model; without one, ``margin`` below). In the shadows a fixed margin would
be larger than the signal itself and a dead site there would never be found; the noise
tells how far below its darkest neighbour a live site can fall (below the darkest of
eight by four more sigma: about once in ten million sites). Optics spread any real point of light over several sites, so an isolated
single-site outlier is a defect (the classic approach of dcraw's and LibRaw's
"pixel median" filters; see also Ramanath et al., "Color image processing pipeline",
IEEE Signal Processing Magazine 22(1), 2005, sec. "Defective pixels").
"""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt

from pipeline.noise_model import NoiseModel

#: A dead site lies this many noise sigmas below the darkest of its eight neighbours.
DEAD_SIGMAS = 4.0


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
def _correct_kernel(cfa, hot_ratio, dead_ratio, margin, dead_sigmas, noise_scale, noise_offset,
                    out):
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
            dead_floor = lo - dead_sigmas * np.sqrt(noise_scale * max(lo, np.float32(0.0))
                                                    + noise_offset)
            flagged[x] = (centre > hi * hot_ratio + margin) | (
                centre < min(lo / dead_ratio, dead_floor))
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
    noise: NoiseModel | None = None,
    dead_sigmas: float = DEAD_SIGMAS,
    out: npt.NDArray[np.float32] | None = None,
) -> npt.NDArray[np.float32]:
    """Replace isolated defective sites of a normalised (H, W) float32 mosaic.

    Works for every Bayer pattern: the eight neighbours two sites away always share the
    centre's colour. ``margin`` is in normalised units (1.0 = white); ``noise`` (the
    frame's noise model, normalised units) sets how far below its neighbours a dead site
    lies, else ``margin`` does.
    """
    if out is None:
        out = np.empty_like(cfa)
    scale, offset = (0.0, margin**2 / dead_sigmas**2) if noise is None else (noise.scale,
                                                                            noise.offset)
    _correct_kernel(cfa, np.float32(hot_ratio), np.float32(dead_ratio), np.float32(margin),
                    np.float32(dead_sigmas), np.float32(scale), np.float32(offset), out)
    return out
