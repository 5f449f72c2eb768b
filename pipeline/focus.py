"""Focus measure from the raw stream, for focusing manual lenses without a screen.

The Tenengrad measure (the mean squared Sobel gradient; Krotkov, "Focusing", IJCV 1(3),
1988; ranked among the most reliable by Pertuz, Puig, Garcia, "Analysis of focus measure
operators for shape-from-focus", Pattern Recognition 46(5), 2013) on the green sites of a
region, divided by the squared mean level so that it does not change with exposure.
"""

from __future__ import annotations

import numba
import numpy as np

from pipeline.errors import InvalidParameterError
from pipeline.raw_frame import RawFrame

Region = tuple[float, float, float, float]
CENTRE: Region = (1 / 3, 1 / 3, 1 / 3, 1 / 3)


@numba.njit(cache=True, nogil=True)
def _tenengrad_kernel(grey):
    h, w = grey.shape
    total = 0.0
    for y in range(1, h - 1):
        for x in range(1, w - 1):
            gx = (grey[y - 1, x + 1] + 2 * grey[y, x + 1] + grey[y + 1, x + 1]) - (
                grey[y - 1, x - 1] + 2 * grey[y, x - 1] + grey[y + 1, x - 1]
            )
            gy = (grey[y + 1, x - 1] + 2 * grey[y + 1, x] + grey[y + 1, x + 1]) - (
                grey[y - 1, x - 1] + 2 * grey[y - 1, x] + grey[y - 1, x + 1]
            )
            total += gx * gx + gy * gy
    return total / max((h - 2) * (w - 2), 1)


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
    crop = frame.cfa[y0:y1, x0:x1].astype(np.float32)
    black = float(np.mean(frame.metadata.black_level))
    # The 2x2 mean is a grey image at half resolution, the same for every Bayer pattern.
    grey = 0.25 * (crop[0::2, 0::2] + crop[0::2, 1::2] + crop[1::2, 0::2] + crop[1::2, 1::2])
    grey -= black
    level = float(grey.mean())
    if level <= 0:
        return 0.0
    return float(_tenengrad_kernel(grey)) / (level * level)
