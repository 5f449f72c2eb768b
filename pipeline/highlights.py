"""Highlight handling: blown highlights stay neutral, never magenta.

When the green channel clips first, white-balance gains lift the unclipped red and blue
above it and clipped areas turn magenta. Clipping every channel at the level where the
first one clips (1.0 after :func:`pipeline.white_balance.gains_from_neutral`) makes them
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
