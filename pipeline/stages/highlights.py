"""Highlight handling: blown highlights stay neutral, never magenta.

When the green channel clips first, white-balance gains lift the unclipped red and blue
above it and clipped areas turn magenta. Clipping every channel at the level where the
first one clips (1.0 after :func:`pipeline.stages.white_balance.gains_from_neutral`) makes them
white instead (dcraw's and LibRaw's default highlight mode, "-H 0"). The tone curve then
rolls the approach to white off smoothly.
"""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt


@numba.njit(cache=True, parallel=True, nogil=True)
def _clip_kernel(image, level):
    flat = image.reshape(-1)
    n = flat.size
    for i in numba.prange(n):
        if flat[i] > level:
            flat[i] = level


def clip_to_neutral(image: npt.NDArray[np.float32], level: float = 1.0) -> npt.NDArray[np.float32]:
    """Clip a white-balanced mosaic (any shape, float32, contiguous) at ``level`` in place."""
    _clip_kernel(image, np.float32(level))
    return image


#: Where the approach to clipping starts to pull a colour towards white (1.0 = clipped).
DESATURATE_FROM = 0.9


@numba.njit(cache=True, parallel=True, nogil=True)
def _towards_white_kernel(rgb, knee):
    h, w, _ = rgb.shape
    inv_span = np.float32(1.0) / (np.float32(1.0) - knee)
    for y in numba.prange(h):
        for x in range(w):
            r, g, b = rgb[y, x, 0], rgb[y, x, 1], rgb[y, x, 2]
            peak = max(r, max(g, b))
            if peak <= knee:
                continue
            t = min((peak - knee) * inv_span, np.float32(1.0))
            t = t * t * (np.float32(3.0) - np.float32(2.0) * t)
            rgb[y, x, 0] = r + t * (peak - r)
            rgb[y, x, 1] = g + t * (peak - g)
            rgb[y, x, 2] = b + t * (peak - b)


def desaturate_near_clipping(
    rgb: npt.NDArray[np.float32], knee: float = DESATURATE_FROM
) -> npt.NDArray[np.float32]:
    """Pull colours towards white as their brightest channel nears clipping, in place.

    Where one channel has clipped, the others are real but the clipped one is unknown
    (only known to be at least 1.0): a screen where green alone clipped comes out mint, a
    lamp where red alone clipped comes out salmon. The least the raw allows is that the
    light was white, which is how a camera's JPEG and film render it; between ``knee`` and
    1.0 the pull grows smoothly (smoothstep), so a bright colour that did not clip keeps
    most of its colour and no edge shows where clipping starts.

    Parameters
    ----------
    rgb : (H, W, 3) float32
        Demosaiced camera RGB after white balance and :func:`clip_to_neutral` (1.0 = the
        level where the first channel clips).
    """
    _towards_white_kernel(rgb, np.float32(knee))
    return rgb
