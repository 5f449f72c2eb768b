"""The capture modes' table: what each meters and which frames it plans
(pipeline.burst.plan_capture's, from the ring buffer when they are at the auto exposure)."""

from __future__ import annotations

from typing import get_args

import numpy as np
import pytest

from firmware.capture_mode import CAPTURE_MODES, MODE_NAMES, CaptureModeName, capture_mode
from hardware.camera import CameraMetering
from hardware.imx477_simulator import Imx477Simulator, SensorSettings
from pipeline.burst import BURST_MODES, CaptureLimits

LIMITS = CaptureLimits(burst_frames=5)
METERED = CameraMetering(exposure_time_us=20_000.0, analogue_gain=2.0)


def plan_shot(mode: str, *args, **kwargs):
    return capture_mode(mode).plan(*args, **kwargs)


def test_one_table_names_every_mode_in_button_order() -> None:
    assert MODE_NAMES == ("single", "burst", "hdr", "night") == get_args(CaptureModeName)
    assert {m.name for m in CAPTURE_MODES.values() if m.merges} == set(BURST_MODES)
    with pytest.raises(ValueError, match="mode='panorama'"):
        capture_mode("panorama")


def _frame(white_share: float):
    """A simulated frame whose brightest ``white_share`` of the scene clips."""
    rng = np.random.default_rng(3)
    scene = rng.uniform(0.1, 0.6, size=(64, 64, 3)).astype(np.float32)
    scene[: int(64 * white_share)] = 2.0
    camera = Imx477Simulator(scene, seed=3, output_size=(64, 64))
    return camera.capture(SensorSettings(exposure_time_us=camera.exposure_time_us_for(1.0)))


def test_single_and_burst_come_from_the_ring_at_the_metered_exposure() -> None:
    assert plan_shot("single", METERED, LIMITS).frames == 1
    burst = plan_shot("burst", METERED, LIMITS)
    assert (burst.count, burst.exposures) == (5, ())


def test_hdr_underexposes_only_when_highlights_clip() -> None:
    unclipped = plan_shot("hdr", METERED, LIMITS, _frame(0.0))
    assert (unclipped.count, unclipped.exposures) == (5, ())
    clipped = plan_shot("hdr", METERED, LIMITS, _frame(0.1))
    assert clipped.count == 0 and len(clipped.exposures) == 5
    product = clipped.exposures[0].exposure_time_us * clipped.exposures[0].analogue_gain
    assert product == pytest.approx(20_000 * 2.0 / 2**LIMITS.max_underexposure_ev, rel=0.01)


def test_night_exposures_follow_the_measured_motion() -> None:
    dark = CameraMetering(exposure_time_us=50_000.0, analogue_gain=16.0)
    tripod = plan_shot("night", dark, LIMITS, motion_px_per_s=0.1).exposures[0]
    handheld = plan_shot("night", dark, LIMITS).exposures[0]
    shaky = plan_shot("night", dark, LIMITS, motion_px_per_s=100.0).exposures[0]
    assert tripod.exposure_time_us > LIMITS.night_handheld_max_us >= handheld.exposure_time_us
    assert shaky.exposure_time_us <= 1e6 * LIMITS.blur_limit_px / 100.0  # a pixel of blur
    assert tripod.analogue_gain < handheld.analogue_gain <= shaky.analogue_gain


def test_night_trades_gain_for_handheld_time() -> None:
    dark = CameraMetering(exposure_time_us=50_000.0, analogue_gain=16.0)
    night = plan_shot("night", dark, LIMITS)
    assert night.count == 0 and LIMITS.night_min_frames <= night.frames <= LIMITS.night_max_frames
    first = night.exposures[0]
    assert first.exposure_time_us <= LIMITS.night_handheld_max_us  # never a tripod's 1 s
    assert first.exposure_time_us * first.analogue_gain == pytest.approx(50_000 * 16.0, rel=0.01)


def test_night_frames_follow_the_configured_limit() -> None:
    from firmware.config import default_config
    from firmware.capture import capture_limits

    limits = capture_limits(default_config().with_value("capture.night_max_frames", 4))
    assert limits.night_max_frames == 4 and limits.night_min_frames == 4
    dark = CameraMetering(exposure_time_us=200_000.0, analogue_gain=16.0)
    assert plan_shot("night", dark, limits).frames == 4
