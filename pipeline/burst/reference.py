"""Choosing the reference frame of a burst: the sharpest of the first few ("lucky imaging").

HDR+ picks the sharpest of the first three frames, sharpness measured by gradients of the
green channel (Hasinoff et al., "Burst photography for high dynamic range and low-light
imaging on mobile cameras", ACM TOG 35(6), 2016, DOI 10.1145/2980179.2980254, sec. 4):
early frames are closest to the shutter press, and a sharp reference keeps the merge
sharp. In a bracketed burst only the longest exposures compete, so the reference is the
best-exposed frame and shorter ones fill its clipped highlights.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from pipeline.burst.align import bayer_grey, downsample_grey
from pipeline.burst.frames import burst_metadata
from pipeline.raw_frame import CameraMetadata, RawFrame

#: Frames within this factor of the longest exposure count as equally exposed.
_EQUAL_EXPOSURE_TOLERANCE = 1.01


def exposure_product(meta: CameraMetadata) -> float:
    """Exposure time (s) times analogue gain; 1.0 for what the metadata does not say."""
    return float(meta.exposure_time_s or 1.0) * float(meta.analogue_gain or 1.0)


def gradient_energy(grey: npt.NDArray[np.float32]) -> float:
    """Mean squared finite-difference gradient of a (small) grey image."""
    gy = np.diff(grey, axis=0)
    gx = np.diff(grey, axis=1)
    return float(np.mean(gy * gy) + np.mean(gx * gx))


def select_reference_hasinoff2016(frames: Sequence[RawFrame], candidates: int = 3) -> int:
    """Index of the sharpest of the first ``candidates`` longest-exposed frames.

    Sharpness is the gradient energy of the 2x2-Bayer-averaged grey image downsampled
    once more by 2 (which keeps edges but averages noise, so noisy frames do not win).
    Only the candidates' pixels are read (see :class:`pipeline.burst.frames.StreamedBurst`).
    """
    exposures = [exposure_product(meta) for _, meta in burst_metadata(frames)]
    longest = max(exposures)
    eligible = [
        i for i, exposure in enumerate(exposures)
        if exposure * _EQUAL_EXPOSURE_TOLERANCE >= longest
    ][:candidates]  # fmt: skip
    if len(eligible) == 1:
        return eligible[0]
    scores = [gradient_energy(downsample_grey(bayer_grey(frames[i]), 2)) for i in eligible]
    return eligible[int(np.argmax(scores))]
