"""Exposure planning for burst capture: how many frames, each at what exposure and gain.

Pure functions for the camera daemon: given what the viewfinder metered, return the
burst to capture.

- "burst": HDR+-style, several frames at the metered exposure (the merge removes noise).
- "hdr": the same count, underexposed by the metered highlight headroom so highlights do
  not clip; the merge restores the shadows' SNR and exposure fusion lifts them (Hasinoff
  et al., ACM TOG 35(6), 2016, DOI 10.1145/2980179.2980254, sec. 2 and 6).
- "night": Night Sight's motion metering (Liba et al., "Handheld Mobile Photography in
  Very Low Light", ACM TOG 38(6), 2019, DOI 10.1145/3355089.3356508, sec. 2): each frame
  is as long as the measured motion allows without blurring more than a pixel, at most
  333 ms handheld and 1 s on a tripod, with as little gain as that permits; the frame
  count fills a total capture time of about 6 s, up to 15 frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pipeline.errors import InvalidParameterError


@dataclass(frozen=True)
class Metering:
    """What the viewfinder measured before the shutter was pressed.

    Attributes
    ----------
    exposure_time_us, analogue_gain : float
        The single-frame exposure the auto exposure chose (the "metered exposure").
    motion_px_per_s : float
        Image motion (hand shake and subject), pixels per second, from viewfinder frames.
    highlight_headroom_ev : float
        How far above clipping the brightest 0.5% of the scene sits at the metered
        exposure (0 when nothing clips).
    """

    exposure_time_us: float
    analogue_gain: float = 1.0
    motion_px_per_s: float = 0.0
    highlight_headroom_ev: float = 0.0

    def __post_init__(self) -> None:
        if not self.exposure_time_us > 0 or not self.analogue_gain >= 1.0:
            raise InvalidParameterError(
                f"exposure_time_us={self.exposure_time_us}, analogue_gain={self.analogue_gain}:"
                " expected > 0 and >= 1"
            )
        if self.motion_px_per_s < 0 or self.highlight_headroom_ev < 0:
            raise InvalidParameterError(
                f"motion_px_per_s={self.motion_px_per_s}, highlight_headroom_ev="
                f"{self.highlight_headroom_ev}: expected >= 0"
            )


@dataclass(frozen=True)
class CaptureLimits:
    """What the sensor and the photographer allow (IMX477 full-resolution mode defaults)."""

    min_exposure_us: float = 114.0
    max_analogue_gain: float = 16.0
    burst_frames: int = 8
    max_underexposure_ev: float = 3.0
    night_max_frames: int = 15
    night_min_frames: int = 6
    night_handheld_max_us: float = 333_000.0
    night_tripod_max_us: float = 1_000_000.0
    night_total_s: float = 6.0
    blur_limit_px: float = 1.0
    static_below_px_per_s: float = 0.5


def _split(product_us: float, longest_us: float, limits: CaptureLimits) -> tuple[float, float]:
    """Exposure time and gain giving ``product_us`` = time x gain, time first (less noise)."""
    time_us = min(max(product_us, limits.min_exposure_us), longest_us)
    gain = min(max(product_us / time_us, 1.0), limits.max_analogue_gain)
    return (float(round(time_us)), float(gain))


def plan_capture(
    mode: str, metering: Metering, limits: CaptureLimits | None = None
) -> list[tuple[float, float]]:
    """The burst to capture: one ``(exposure_time_us, analogue_gain)`` per frame.

    Parameters
    ----------
    mode : {"burst", "hdr", "night"}
    metering : Metering
    limits : CaptureLimits, optional

    Returns
    -------
    list of (float, float)
        In capture order; the merge picks its reference among the first three.
    """
    limits = limits or CaptureLimits()
    product = metering.exposure_time_us * metering.analogue_gain
    if mode == "burst":
        return [_split(product, metering.exposure_time_us, limits)] * limits.burst_frames
    if mode == "hdr":
        under_ev = min(metering.highlight_headroom_ev, limits.max_underexposure_ev)
        frame = _split(product * 2.0**-under_ev, metering.exposure_time_us, limits)
        return [frame] * limits.burst_frames
    if mode == "night":
        is_static = metering.motion_px_per_s < limits.static_below_px_per_s
        longest = limits.night_tripod_max_us if is_static else limits.night_handheld_max_us
        if metering.motion_px_per_s > 0:
            longest = min(longest, 1e6 * limits.blur_limit_px / metering.motion_px_per_s)
        longest = max(longest, limits.min_exposure_us)
        frame = _split(product, longest, limits)
        count = math.floor(limits.night_total_s * 1e6 / frame[0])
        count = min(max(count, limits.night_min_frames), limits.night_max_frames)
        return [frame] * count
    raise InvalidParameterError(f"mode={mode!r}: expected 'burst', 'hdr' or 'night'")
