"""Motion metering for night mode: how fast the image moves, from two viewfinder frames.

Night Sight chooses its exposure time from the motion it measures in the viewfinder stream
before the shot: the longer the exposure, the fewer frames and the less noise, as long as
hand shake and moving subjects blur by no more than about a pixel (Liba et al., "Handheld
Mobile Photography in Very Low Light", ACM TOG 38(6), 2019, DOI 10.1145/3355089.3356508,
sec. 2). Here the two frames are aligned tile by tile with the burst's own alignment
(:func:`pipeline.burst.align.align_tiles_hasinoff2016`) at a quarter of the raw
resolution, and the motion is a high percentile of the tiles' displacements, so a moving
subject counts as well as the shake of the whole frame, over the time between the frames.
"""

from __future__ import annotations

import numpy as np

from pipeline.burst.align import AlignParams, align_tiles_hasinoff2016, bayer_grey, downsample_grey, grey_pyramid
from pipeline.raw_frame import RawFrame

#: Displacement percentile taken as the image's motion (a subject in a tenth of the frame
#: counts).
MOTION_PERCENTILE = 90.0
#: Grey pixels per raw pixel after bayer_grey (2x2 tiles) and the extra 2x downsampling.
_RAW_PX_PER_GREY_PX = 4


def image_motion_px_per_s(older: RawFrame, newer: RawFrame) -> float | None:
    """Image motion between two frames of the stream, raw pixels per second.

    None when their sensor timestamps are missing or equal (the time between them is
    unknown), so the caller falls back to assuming a handheld camera.
    """
    if older.metadata.sensor_timestamp_ns is None or newer.metadata.sensor_timestamp_ns is None:
        return None
    seconds = abs(newer.metadata.sensor_timestamp_ns - older.metadata.sensor_timestamp_ns) / 1e9
    if seconds <= 0 or older.shape != newer.shape:
        return None
    params = AlignParams()
    reference = grey_pyramid(downsample_grey(bayer_grey(older), 2), params)
    flow = align_tiles_hasinoff2016(reference, downsample_grey(bayer_grey(newer), 2), params)
    distance = np.hypot(flow.flow[..., 0], flow.flow[..., 1]) * _RAW_PX_PER_GREY_PX
    return float(np.percentile(distance, MOTION_PERCENTILE)) / seconds
