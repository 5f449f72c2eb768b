"""Exposure: how bright the scene-referred image should be before the tone curve."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from pipeline.stages.percentiles import percentiles

MIDDLE_GREY = 0.18
#: The brightest 1% of the scene may be lifted to at most this (1.0 = sensor clipping).
HIGHLIGHT_HEADROOM = 2.0


def auto_exposure_ev(
    luminance_small: npt.NDArray[np.float32],
    min_ev: float = -1.0,
    max_ev: float = 4.0,
) -> float:
    """EV that brings the scene's key to middle grey.

    The key is the log-average luminance (Reinhard et al., "Photographic Tone Reproduction
    for Digital Images", SIGGRAPH 2002, eq. 1), taken over the middle 98% of pixels so
    that a few specular highlights or black borders do not steer it, and with the image
    centre weighted double, as a camera's centre-weighted meter does. The result is capped
    so the brightest 1% of the scene lands at most at ``HIGHLIGHT_HEADROOM`` times the
    sensor's clipping level: a dark surround (a chart on black, a stage) must not push the
    subject itself into white.

    Parameters
    ----------
    luminance_small : (h, w) float32
        Linear luminance of a downsampled image (1.0 = sensor clipping).
    """
    h, w = luminance_small.shape
    yy, xx = np.mgrid[0:h, 0:w]
    centre = (np.abs(yy - h / 2) < h / 4) & (np.abs(xx - w / 2) < w / 4)
    log_y = np.log2(np.maximum(luminance_small, 2.0**-16))
    lo, hi = percentiles(log_y, [1.0, 99.0])
    keep = (log_y >= lo) & (log_y <= hi)
    weights = np.where(centre, 2.0, 1.0) * keep
    if weights.sum() == 0:
        return 0.0
    key = float(np.sum(log_y * weights) / weights.sum())
    highlight_cap = np.log2(HIGHLIGHT_HEADROOM) - hi
    return float(np.clip(min(np.log2(MIDDLE_GREY) - key, highlight_cap), min_ev, max_ev))
