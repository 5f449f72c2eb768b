"""Focus measure from the raw stream, for focusing manual lenses without a screen.

The Tenengrad measure (the mean squared Sobel gradient; Krotkov, "Focusing", IJCV 1(3),
1988; ranked among the most reliable by Pertuz, Puig, Garcia, "Analysis of focus measure
operators for shape-from-focus", Pattern Recognition 46(5), 2013) on the green sites of a
region, divided by the squared mean level so that it does not change with exposure.
"""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt

from pipeline.errors import InvalidParameterError
from pipeline.raw_frame import RawFrame

Region = tuple[float, float, float, float]
CENTRE: Region = (1 / 3, 1 / 3, 1 / 3, 1 / 3)


@numba.njit(cache=True, nogil=True, inline="always")
def sobel_squared(image, y, x):
    """Squared Sobel gradient magnitude of ``image`` at interior pixel (y, x)."""
    gx = (image[y - 1, x + 1] + 2 * image[y, x + 1] + image[y + 1, x + 1]) - (
        image[y - 1, x - 1] + 2 * image[y, x - 1] + image[y + 1, x - 1]
    )
    gy = (image[y + 1, x - 1] + 2 * image[y + 1, x] + image[y + 1, x + 1]) - (
        image[y - 1, x - 1] + 2 * image[y - 1, x] + image[y - 1, x + 1]
    )
    return gx * gx + gy * gy


@numba.njit(cache=True, nogil=True)
def _tenengrad_kernel(grey):
    h, w = grey.shape
    total = 0.0
    for y in range(1, h - 1):
        for x in range(1, w - 1):
            total += sobel_squared(grey, y, x)
    return total / max((h - 2) * (w - 2), 1)


@numba.njit(cache=True, nogil=True)
def _binned_grey_kernel(cfa, black, block, out):
    oh, ow = out.shape
    norm = np.float32(1.0 / (block * block))
    for oy in range(oh):
        for ox in range(ow):
            acc = np.float32(0.0)
            for dy in range(block):
                for dx in range(block):
                    acc += np.float32(cfa[oy * block + dy, ox * block + dx])
            out[oy, ox] = acc * norm - black


def binned_grey(
    cfa: npt.NDArray[np.uint16], black: float, factor: int = 1
) -> npt.NDArray[np.float32]:
    """A grey image from a Bayer mosaic: means of (2 factor x 2 factor) blocks of sites
    less ``black``, as (H // (2 factor), W // (2 factor)) float32.

    A block of whole 2x2 tiles holds every colour equally, so the result is the same for
    every Bayer pattern; ``factor`` > 1 also downscales (live previews).
    """
    if factor < 1:
        raise InvalidParameterError(f"factor={factor}: expected a positive integer")
    block = 2 * int(factor)
    out = np.empty((cfa.shape[0] // block, cfa.shape[1] // block), dtype=np.float32)
    _binned_grey_kernel(cfa, np.float32(black), block, out)
    return out


def focus_measure(frame: RawFrame, region: Region = CENTRE) -> float:
    """Sharpness of ``region`` of a raw frame: higher is sharper; 0 for a flat region.

    Parameters
    ----------
    frame : RawFrame
    region : (top, left, height, width)
        Fractions of the frame; the default is the central ninth.
    """
    top, left, rh, rw = region
    if not (0 <= top < 1 and 0 <= left < 1 and 0 < rh <= 1 - top and 0 < rw <= 1 - left):
        raise InvalidParameterError(f"region={region}: expected fractions inside the frame")
    height, width = frame.shape
    y0, y1 = int(top * height) & ~1, int((top + rh) * height) & ~1
    x0, x1 = int(left * width) & ~1, int((left + rw) * width) & ~1
    if y1 - y0 < 8 or x1 - x0 < 8:
        raise InvalidParameterError(f"region={region} is smaller than 8x8 pixels")
    black = float(np.mean(frame.metadata.black_level))
    grey = binned_grey(frame.cfa[y0:y1, x0:x1], black)
    level = float(grey.mean())
    if level <= 0:
        return 0.0
    return float(_tenengrad_kernel(grey)) / (level * level)
