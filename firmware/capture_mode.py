"""The capture modes, in one table: what each meters, which frames it plans, how it finishes.

=========  ==========================  ====================================  ===============
mode       meters                      plans                                 finishes
=========  ==========================  ====================================  ===============
single     the auto exposure           the frame at the press (ZSL)          develop
burst      the auto exposure           :func:`pipeline.burst.plan_capture`   merge, develop
hdr        + highlight headroom        underexposed frames if highlights     merge, fuse
           (the newest frame)          clip (HDR+ sec. 2)                    exposures
night      + image motion (the ring)   long frames, as few as motion allows  merge, fuse
=========  ==========================  ====================================  ===============

The mode button cycles through :data:`CAPTURE_MODES` in this order; the configuration
(``capture.mode``) and ``obscura shoot --mode`` accept these names. The burst modes'
finishing is :func:`pipeline.burst.modes.finish_burst`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from hardware.camera import EXPOSURE_TOLERANCE, CameraMetering, ExposurePlan, ExposureSettings
from pipeline.burst import CaptureLimits, Metering, plan_capture
from pipeline.errors import InvalidParameterError
from pipeline.raw_frame import CLIP_FRACTION, RawFrame

#: The brightest share of the frame whose clipping means the highlights need headroom
#: (the 0.5% of :class:`pipeline.burst.Metering`'s ``highlight_headroom_ev``).
HIGHLIGHT_SHARE = 0.005


@dataclass(frozen=True)
class CaptureMode:
    """One row of the table in the module's docstring.

    Attributes
    ----------
    name : str
    merges : bool
        Several frames merged by :func:`pipeline.burst.align_and_merge`, then finished by
        :func:`pipeline.burst.modes.finish_burst` in this mode; else the single-frame
        develop of the reference frame.
    meters_highlights : bool
        The plan needs the highlight headroom of the newest streamed frame.
    meters_motion : bool
        The plan needs the image motion measured across the ring buffer.
    """

    name: str
    merges: bool
    meters_highlights: bool = False
    meters_motion: bool = False

    def plan(self, metering: CameraMetering, limits: CaptureLimits,
             newest: RawFrame | None = None, motion_px_per_s: float | None = None
             ) -> ExposurePlan:
        """Which frames a shot in this mode takes.

        single: the frame at the press (zero shutter lag). The others:
        :func:`pipeline.burst.plan_capture`'s frames; when they are all at the auto
        exposure they come from the ring buffer, ending at the press (zero shutter lag),
        else they are captured as manual exposures after it.
        """
        if not self.merges:
            return ExposurePlan(count=1)
        metered = burst_metering(metering, newest if self.meters_highlights else None, limits,
                                 motion_px_per_s if self.meters_motion else None)
        frames = plan_capture(self.name, metered, limits)
        if all(_is_metered(time_us, gain, metering) for time_us, gain in frames):
            return ExposurePlan(count=len(frames))
        return ExposurePlan(count=0, exposures=tuple(ExposureSettings(t, g) for t, g in frames))


#: A mode's name, as the configuration's type checker sees it (the table's keys: a test
#: holds them equal).
CaptureModeName = Literal["single", "burst", "hdr", "night"]
#: The modes, in the order the mode button cycles through them.
CAPTURE_MODES: dict[str, CaptureMode] = {
    mode.name: mode
    for mode in (
        CaptureMode("single", merges=False),
        CaptureMode("burst", merges=True),
        CaptureMode("hdr", merges=True, meters_highlights=True),
        CaptureMode("night", merges=True, meters_motion=True),
    )
}
#: Their names, for choices and cycling.
MODE_NAMES: tuple[str, ...] = tuple(CAPTURE_MODES)


def capture_mode(name: str) -> CaptureMode:
    """The mode called ``name``."""
    try:
        return CAPTURE_MODES[name]
    except KeyError:
        raise InvalidParameterError(
            f"mode={name!r}: expected one of {', '.join(MODE_NAMES)}") from None


def highlight_headroom_ev(frame: RawFrame | None, limits: CaptureLimits) -> float:
    """How far the brightest :data:`HIGHLIGHT_SHARE` of ``frame`` sits above clipping, EV.

    A frame only shows whether those highlights clip, not by how much: 0 when they do not,
    else the deepest underexposure ``limits`` allow (HDR+ then keeps them, sec. 2).
    """
    if frame is None:
        return 0.0
    black = float(np.mean(frame.metadata.black_level))
    white = float(frame.metadata.white_level)
    sample = frame.cfa[::4, ::4]  # every CFA site still sampled (4 is even)
    bright = float(np.quantile(sample, 1.0 - HIGHLIGHT_SHARE))
    return limits.max_underexposure_ev if bright >= black + CLIP_FRACTION * (white - black) else 0.0


def burst_metering(metering: CameraMetering, newest: RawFrame | None, limits: CaptureLimits,
                   motion_px_per_s: float | None = None) -> Metering:
    """The camera's metering as :func:`pipeline.burst.plan_capture` wants it.

    ``motion_px_per_s`` is the image motion measured on the stream
    (:func:`pipeline.burst.motion.image_motion_px_per_s`); unknown (None), it counts as
    handheld (never a tripod's 1 s frames), i.e. just at ``limits.static_below_px_per_s``.
    """
    return Metering(
        exposure_time_us=metering.exposure_time_us,
        analogue_gain=max(metering.analogue_gain, 1.0),
        motion_px_per_s=limits.static_below_px_per_s if motion_px_per_s is None
        else motion_px_per_s,
        highlight_headroom_ev=highlight_headroom_ev(newest, limits),
    )


def _is_metered(time_us: float, gain: float, metering: CameraMetering) -> bool:
    return (abs(time_us - metering.exposure_time_us) <= EXPOSURE_TOLERANCE * time_us + 1
            and abs(gain - metering.analogue_gain) <= EXPOSURE_TOLERANCE * gain)
