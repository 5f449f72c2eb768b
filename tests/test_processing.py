"""The daemon's seams to the burst pipeline: plans from pipeline.burst.plan_capture, shots
developed as pipeline.burst.modes develops them, and journaled frames keep their shading."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from firmware import processing
from firmware.processing import ShotSettings, develop_shot, plan_shot, read_journal_frames
from hardware.camera import Metering
from hardware.imx477_simulator import Imx477Simulator, SensorSettings
from hardware.storage import PhotoStore
from pipeline.burst import CaptureLimits
from pipeline.encoders.dng import encode_dng

LIMITS = CaptureLimits(burst_frames=5)
METERED = Metering(exposure_time_us=20_000.0, analogue_gain=2.0)


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


def test_night_trades_gain_for_handheld_time() -> None:
    dark = Metering(exposure_time_us=50_000.0, analogue_gain=16.0)
    night = plan_shot("night", dark, LIMITS)
    assert night.count == 0 and LIMITS.night_min_frames <= night.frames <= LIMITS.night_max_frames
    first = night.exposures[0]
    assert first.exposure_time_us <= LIMITS.night_handheld_max_us  # never a tripod's 1 s
    assert first.exposure_time_us * first.analogue_gain == pytest.approx(50_000 * 16.0, rel=0.01)


@pytest.mark.parametrize("mode", ["burst", "hdr", "night"])
def test_bursts_are_finished_by_their_mode(mode: str, monkeypatch) -> None:
    finished = []
    real = processing.finish_burst

    def spy(merged, mode_, params):
        finished.append(mode_)
        return real(merged, mode_, params)

    monkeypatch.setattr(processing, "finish_burst", spy)
    camera = Imx477Simulator(np.full((8, 8, 3), 120, np.uint8), seed=2, output_size=(64, 96))
    settings = SensorSettings(exposure_time_us=camera.exposure_time_us_for(1.0))
    frames = [camera.capture(settings) for _ in range(3)]
    outputs = develop_shot(frames, ShotSettings(mode=mode, keep=("jpeg", "merged_dng")))
    assert finished == [mode] and set(outputs) == {"jpeg", "merged_dng"}
    single = develop_shot(frames[:1], ShotSettings(mode="single", keep=("jpeg",)))
    assert finished == [mode] and set(single) == {"jpeg"}


def test_journaled_frames_keep_their_lens_shading_and_gain(tmp_path) -> None:
    camera = Imx477Simulator(np.full((8, 8, 3), 120, np.uint8), seed=2, output_size=(32, 48))
    frames = [camera.capture(SensorSettings(exposure_time_us=1000, analogue_gain=gain))
              for gain in (1.0, 2.5)]
    store = PhotoStore(tmp_path, reserve_bytes=0).open()
    manifest = {**ShotSettings().to_manifest(), **processing.frames_manifest(frames)}
    entry = store.journal_shot(store.reserve_name(), [encode_dng(f) for f in frames], manifest)
    read = read_journal_frames(entry)
    for back, frame in zip(read, frames, strict=True):
        np.testing.assert_array_equal(back.cfa, frame.cfa)
        # Exactly: a shot resumed from the journal develops as it would have from memory.
        np.testing.assert_array_equal(back.metadata.lens_shading.gains,
                                      frame.metadata.lens_shading.gains)
        assert back.metadata.analogue_gain == frame.metadata.analogue_gain
        assert back.metadata.sensor_timestamp_ns == frame.metadata.sensor_timestamp_ns
    bare_metadata = dataclasses.replace(frames[0].metadata, lens_shading=None)
    bare = dataclasses.replace(frames[0], metadata=bare_metadata)
    assert processing.shading_manifest(bare) == {}


def test_journals_without_frame_metadata_still_read(tmp_path) -> None:
    """Shots journaled before the per-frame fields existed resume as before."""
    camera = Imx477Simulator(np.full((8, 8, 3), 120, np.uint8), seed=2, output_size=(32, 48))
    frame = camera.capture(SensorSettings(exposure_time_us=1000, analogue_gain=2.0))
    store = PhotoStore(tmp_path, reserve_bytes=0).open()
    entry = store.journal_shot(store.reserve_name(), [encode_dng(frame)],
                               ShotSettings().to_manifest())
    (read,) = read_journal_frames(entry)
    np.testing.assert_array_equal(read.cfa, frame.cfa)
    assert read.metadata.lens_shading is None and read.metadata.analogue_gain is None


def test_worker_rejects_a_negative_memory_bound(tmp_path) -> None:
    store = PhotoStore(tmp_path, reserve_bytes=0)
    with pytest.raises(ValueError, match="max_shots_in_memory=-1"):
        processing.ProcessingWorker(store, lambda event: None, max_shots_in_memory=-1)


def test_night_frames_follow_the_configured_limit() -> None:
    from firmware.config import default_config
    from firmware.daemon import capture_limits

    limits = capture_limits(default_config().with_value("capture.night_max_frames", 4))
    assert limits.night_max_frames == 4 and limits.night_min_frames == 4
    dark = Metering(exposure_time_us=200_000.0, analogue_gain=16.0)
    assert plan_shot("night", dark, limits).frames == 4
