"""Motion metering from two viewfinder frames (night mode's exposure choice)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hardware.imx477_simulator import Imx477Simulator, SensorSettings
from pipeline.burst import CaptureLimits
from pipeline.burst.motion import image_motion_px_per_s
from pipeline.raw_frame import RawFrame
from tests.test_burst_merge import _scene


def _ends(motion_px: float, gain: float) -> tuple[RawFrame, RawFrame]:
    """The first and eighth frame of a stream (0.7 s apart), as a ring's ends."""
    camera = Imx477Simulator(_scene(np.random.default_rng(1)), seed=4, output_size=(512, 768),
                             motion_px=motion_px, hot_pixel_count=0)
    settings = SensorSettings(camera.exposure_time_us_for(1.0, gain), analogue_gain=gain)
    frames = [camera.capture(settings) for _ in range(8)]
    return frames[0], frames[-1]


@pytest.mark.parametrize("gain", [1.0, 16.0])
def test_a_still_camera_reads_as_a_tripod_even_in_noise(gain: float) -> None:
    motion = image_motion_px_per_s(*_ends(0.0, gain))
    assert motion is not None and motion < CaptureLimits().static_below_px_per_s


def test_hand_shake_reads_as_its_speed() -> None:
    older, newer = _ends(10.0, 4.0)
    # The simulator's shake moved the frame this far in the 0.7 s between them.
    motion = image_motion_px_per_s(older, newer)
    assert motion is not None and motion > 3.0


def test_without_timestamps_the_motion_is_unknown() -> None:
    older, newer = _ends(0.0, 1.0)
    bare = RawFrame(newer.cfa, dataclasses.replace(newer.metadata, sensor_timestamp_ns=None))
    assert image_motion_px_per_s(older, bare) is None
    assert image_motion_px_per_s(older, older) is None  # one frame in the ring
