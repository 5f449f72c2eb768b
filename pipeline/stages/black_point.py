"""Black point: the veiling glare taken out of the scene, so that blacks render black.

Light scattered in the lens and the camera (veiling glare, flare) lays a nearly uniform
layer of light over the whole image: a few tenths of a percent to a few percent of the
scene's highlights for a good lens, more for a simple one or with a bright window in the
frame (ISO 18844:2017; McCann and Rizzi, "Veiling glare: the dynamic range limit of HDR
images", Proc. SPIE 6492, 2007). It lifts every black to grey and washes colours out in
the shadows; a print or a screen shows it as murky blacks.

The glare level is read off the scene itself: the darkest 0.1 % of a downsampled luminance
(the downsampling has averaged the sensor noise away), which no real scene has darker than
the glare. It is capped at a fraction of the scene's median, so that a scene with nothing
dark in it (fog, a white wall) is not stretched. It is taken out with a soft toe on each
channel (glare is light added to each channel alike, so its removal restores the shadows'
colour too): ``x - b`` above ``2 b``, ``x^2 / 4b`` below, which meets it with the same slope,
so the darkest tones go smoothly to black and noise around black is not clipped into grain.
"""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt

from pipeline.stages.percentiles import percentiles

#: Percentile of the downsampled luminance taken as the glare level.
GLARE_PERCENTILE = 0.1
#: The glare level is at most this fraction of the scene's median luminance.
MAX_FRACTION_OF_MEDIAN = 0.25


def estimate_glare(luminance_small: npt.NDArray[np.float32]) -> float:
    """The glare level of a scene: linear luminance, same units as ``luminance_small``.

    Parameters
    ----------
    luminance_small : (h, w) float32
        Linear luminance of the downsampled image (a few hundred pixels a side).
    """
    darkest, median = percentiles(luminance_small, [GLARE_PERCENTILE, 50.0])
    return float(np.clip(darkest, 0.0, MAX_FRACTION_OF_MEDIAN * max(float(median), 0.0)))


@numba.njit(cache=True, nogil=True, inline="always")
def _toe(value, black):
    if value >= 2 * black:
        return value - black
    if value <= 0:
        return value * np.float32(0.0)
    return value * value / (4 * black)


@numba.njit(cache=True, nogil=True, inline="always")
def toe_row(values, black):
    """The soft toe on ``values`` ((n,) float32, one plane of a row), in place."""
    for x in range(values.shape[0]):
        values[x] = _toe(values[x], black)


@numba.njit(cache=True, parallel=True, nogil=True)
def _remove_kernel(flat, black):
    for i in numba.prange(flat.size):
        flat[i] = _toe(flat[i], black)


def soft_toe(scene: npt.NDArray[np.float64], black: float) -> npt.NDArray[np.float64]:
    """The toe of :func:`remove_glare` on any array (a reference, and for the noise
    model's propagation), not in place."""
    scene = np.asarray(scene, dtype=np.float64)
    if black <= 0:
        return scene.copy()
    positive = np.maximum(scene, 0.0)
    return np.where(scene >= 2 * black, scene - black, positive * positive / (4 * black))


def remove_glare(image: npt.NDArray[np.float32], black: float) -> npt.NDArray[np.float32]:
    """Take a glare level ``black`` out of a scene-linear float32 image (any shape, C
    order), in place, with the soft toe; ``black <= 0`` leaves it alone."""
    if black > 0:
        _remove_kernel(image.reshape(-1), np.float32(black))
    return image
