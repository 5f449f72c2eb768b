"""Focus peaking: the in-focus edges of a live preview painted in a colour.

As camera electronic viewfinders do for manual lenses, pixels of strong local contrast are
marked on an overlay above the preview; turning the focus ring, the marks crowd onto the
subject that is in focus. Contrast is the Sobel gradient magnitude (Sobel and Feldman,
"A 3x3 isotropic gradient operator for image processing", 1968; the operator the Tenengrad
focus measure of :mod:`pipeline.focus.measure` sums) of the square root of the linear signal,
which evens out photon noise across levels (Anscombe, Biometrika 35(3/4), 1948) and is
close to a display's tone curve. It is divided by the image's mean, so the same scene
gives the same marks at any exposure. The threshold is the larger of a high percentile
of the image's own gradients (a detailed sharp scene is marked only on its strongest
edges) and a floor a defocused edge does not reach (a blurred scene stays unmarked).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numba
import numpy as np
import numpy.typing as npt

from pipeline.errors import InvalidParameterError
from pipeline.focus.measure import binned_grey, sobel_squared
from pipeline.raw_frame import RawFrame

#: Percentile of the gradient magnitudes above which pixels may be marked.
PEAKING_PERCENTILE = 97.0
#: Relative contrast (Sobel magnitude over the mean, square-root signal) a pixel needs at
#: least: a sharp black-to-white edge reaches about 2, the same edge blurred by a Gaussian
#: of 3 px about 0.4.
PEAKING_MIN_CONTRAST = 0.5
#: Default colour of the marks (RGB).
PEAKING_COLOUR = (255, 0, 0)


@numba.njit(cache=True, nogil=True)
def _sobel_magnitude_kernel(tone, scale, out):
    h, w = out.shape
    for y in range(h):
        out[y, 0] = 0.0
        out[y, w - 1] = 0.0
    for x in range(w):
        out[0, x] = 0.0
        out[h - 1, x] = 0.0
    for y in range(1, h - 1):
        for x in range(1, w - 1):
            out[y, x] = np.sqrt(sobel_squared(tone, y, x)) * scale


@numba.njit(cache=True, nogil=True)
def _mark_kernel(magnitude, threshold, red, green, blue, out):
    h, w = magnitude.shape
    for y in range(h):
        for x in range(w):
            if magnitude[y, x] >= threshold:
                out[y, x, 0] = red
                out[y, x, 1] = green
                out[y, x, 2] = blue
                out[y, x, 3] = 255
            else:
                out[y, x, 0] = 0
                out[y, x, 1] = 0
                out[y, x, 2] = 0
                out[y, x, 3] = 0


def relative_contrast(grey: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """(h, w) float32 Sobel magnitude of ``sqrt(grey)`` over its mean (0 on the border);
    a sharp step from 0 to white gives about 2. All zeros for a black image."""
    tone = np.sqrt(np.maximum(grey, np.float32(0.0)), dtype=np.float32)
    level = float(tone.mean())
    out = np.empty(tone.shape, dtype=np.float32)
    # /4: a step of height d between two columns gives d; /level: any exposure alike.
    scale = 0.25 / level if level > 0 else 0.0
    _sobel_magnitude_kernel(tone, np.float32(scale), out)
    return out


def focus_peaking_overlay(
    grey: npt.NDArray[np.float32],
    threshold: float | None = None,
    colour: Sequence[int] = PEAKING_COLOUR,
) -> npt.NDArray[np.uint8]:
    """An RGBA overlay marking the sharp edges of ``grey`` in ``colour``, clear elsewhere.

    Parameters
    ----------
    grey : (h, w) float32
        Linear signal, black at 0 (:func:`grey_preview_from_raw`).
    threshold : float, optional
        Relative contrast (see :func:`relative_contrast`) from which a pixel is marked;
        default: the larger of the :data:`PEAKING_PERCENTILE` percentile of the image's
        contrasts and :data:`PEAKING_MIN_CONTRAST`.
    colour : (int, int, int)
        RGB of the marks, 0..255.

    Returns
    -------
    (h, w, 4) uint8
        Marked pixels ``(*colour, 255)``, others ``(0, 0, 0, 0)``.
    """
    grey = np.asarray(grey)
    if grey.ndim != 2 or grey.shape[0] < 3 or grey.shape[1] < 3:
        raise InvalidParameterError(f"grey has shape {grey.shape}: expected (h, w), at least 3x3")
    rgb = tuple(colour)
    if len(rgb) != 3 or not all(isinstance(c, (int, np.integer)) and 0 <= c <= 255 for c in rgb):
        raise InvalidParameterError(f"colour={colour!r}: expected three integers 0..255")
    if threshold is not None and not (math.isfinite(threshold) and threshold > 0):
        raise InvalidParameterError(f"threshold={threshold}: expected a number > 0")
    contrast = relative_contrast(grey.astype(np.float32, copy=False))
    if threshold is None:
        inner = contrast[1:-1, 1:-1]
        threshold = max(float(np.percentile(inner, PEAKING_PERCENTILE)), PEAKING_MIN_CONTRAST)
    out = np.empty((*grey.shape, 4), dtype=np.uint8)
    _mark_kernel(contrast, np.float32(threshold), np.uint8(rgb[0]), np.uint8(rgb[1]),
                 np.uint8(rgb[2]), out)
    return out


def grey_preview_from_raw(frame: RawFrame, size: tuple[int, int]) -> npt.NDArray[np.float32]:
    """A grey preview of a raw frame, no larger than ``size``: 2x2 Bayer tiles averaged,
    black level subtracted, then box-downscaled by the smallest whole factor that fits.

    Parameters
    ----------
    frame : RawFrame
    size : (int, int)
        (height, width) the preview may take at most.

    Returns
    -------
    (h, w) float32
        Linear signal in DN above black; the frame's aspect ratio is kept.
    """
    height, width = (int(v) for v in size)
    if height < 1 or width < 1:
        raise InvalidParameterError(f"size={size}: expected a positive (height, width)")
    binned_h, binned_w = frame.shape[0] // 2, frame.shape[1] // 2
    factor = max(1, math.ceil(binned_h / height), math.ceil(binned_w / width))
    return binned_grey(frame.cfa, float(np.mean(frame.metadata.black_level)), factor)
