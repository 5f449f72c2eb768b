"""The daemon's seams to the burst pipeline: plans from pipeline.burst.plan_capture, shots
developed as pipeline.burst.modes develops them, and journaled frames keep their shading."""

from __future__ import annotations

import dataclasses
import os
import sys
import threading
import time

import numpy as np
import pytest

from firmware import processing
from firmware.processing import ShotSettings, develop_shot, plan_shot, read_journal_frames
from hardware.camera import CameraMetering
from hardware.imx477_simulator import Imx477Simulator, SensorSettings
from hardware.storage import PhotoStore
from pipeline.burst import StreamedBurst
from pipeline.burst import CaptureLimits
from pipeline.formats.encoders.dng import encode_dng

LIMITS = CaptureLimits(burst_frames=5)
METERED = CameraMetering(exposure_time_us=20_000.0, analogue_gain=2.0)


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


def test_journaled_frames_come_back_exactly(tmp_path) -> None:
    """Packed frames: the same mosaic bit for bit, equal metadata, the shot's shading table."""
    camera = Imx477Simulator(np.full((8, 8, 3), 120, np.uint8), seed=2, output_size=(32, 48))
    frames = [camera.capture(SensorSettings(exposure_time_us=1000, analogue_gain=gain))
              for gain in (1.0, 2.5)]
    store = PhotoStore(tmp_path, reserve_bytes=0).open()
    entry = processing.journal_frames(store, store.reserve_name(), frames,
                                      ShotSettings().to_manifest())
    assert [p.name for p in entry.frame_paths] == ["frame_00.raw", "frame_01.raw"]
    assert all(p.stat().st_size == 32 * 48 * 3 // 2 for p in entry.frame_paths)  # 12-bit
    (resumed,) = store.pending()  # as after a restart: the manifest read back from the card
    read = read_journal_frames(resumed)
    for back, frame in zip(read, frames, strict=True):
        np.testing.assert_array_equal(back.cfa, frame.cfa)
        assert back.metadata == frame.metadata
        # Exactly: a shot resumed from the journal develops as it would have from memory.
        np.testing.assert_array_equal(back.metadata.lens_shading.gains,
                                      frame.metadata.lens_shading.gains)
    assert ShotSettings.from_manifest(resumed.manifest) == ShotSettings()
    bare_metadata = dataclasses.replace(frames[0].metadata, lens_shading=None)
    bare = dataclasses.replace(frames[0], metadata=bare_metadata)
    assert processing.shading_manifest(bare) == {}


def test_a_journaled_burst_streams_from_the_card(tmp_path) -> None:
    """Long shots are developed from the journal a frame at a time, with the metadata the
    merge needs read from the manifest alone; the result is the in-memory one's."""
    camera = Imx477Simulator(np.full((8, 8, 3), 120, np.uint8), seed=3, output_size=(48, 64))
    frames = [camera.capture(SensorSettings(exposure_time_us=4000, analogue_gain=4.0))
              for _ in range(4)]
    store = PhotoStore(tmp_path, reserve_bytes=0).open()
    processing.journal_frames(store, store.reserve_name(), frames, ShotSettings().to_manifest())
    (entry,) = store.pending()
    burst = processing.journal_burst(entry)
    assert isinstance(burst, StreamedBurst) and len(burst) == 4 and burst.shape == (48, 64)
    assert list(burst.metadata) == [f.metadata for f in frames]
    np.testing.assert_array_equal(burst[2].cfa, frames[2].cfa)
    settings = ShotSettings(mode="night", keep=("merged_dng",))
    assert develop_shot(burst, settings) == develop_shot(frames, settings)
    legacy = _legacy_journal(tmp_path / "old", frames[0], ShotSettings().to_manifest())
    assert isinstance(processing.journal_burst(legacy), tuple)


def _legacy_journal(tmp_path, frame, manifest):
    """A shot journaled by earlier firmware: DNG frames (without GainMap opcodes)."""
    tmp_path.mkdir()
    store = PhotoStore(tmp_path, reserve_bytes=0).open()
    bare = dataclasses.replace(frame, metadata=dataclasses.replace(frame.metadata,
                                                                   lens_shading=None))
    store.journal_shot(store.reserve_name(), [encode_dng(bare)], manifest, suffix=".dng")
    (entry,) = store.pending()
    return entry


def test_dng_journals_of_earlier_firmware_still_read(tmp_path) -> None:
    """A card may hold shots journaled as DNGs, with the shading table and the fields the
    DNG lacks in the manifest, or (older still) without them."""
    camera = Imx477Simulator(np.full((8, 8, 3), 120, np.uint8), seed=2, output_size=(32, 48))
    frame = camera.capture(SensorSettings(exposure_time_us=1000, analogue_gain=2.0))
    legacy = {processing.FRAMES_FIELD: [{"analogue_gain": 2.0, "sensor_timestamp_ns": 77}],
              **processing.shading_manifest(frame)}
    entry = _legacy_journal(tmp_path / "a", frame, {**ShotSettings().to_manifest(), **legacy})
    assert entry.frame_paths[0].name == "frame_00.dng"
    (read,) = read_journal_frames(entry)
    np.testing.assert_array_equal(read.cfa, frame.cfa)
    assert read.metadata.analogue_gain == 2.0 and read.metadata.sensor_timestamp_ns == 77
    np.testing.assert_array_equal(read.metadata.lens_shading.gains,
                                  frame.metadata.lens_shading.gains)
    (older,) = read_journal_frames(_legacy_journal(tmp_path / "b", frame,
                                                   ShotSettings().to_manifest()))
    np.testing.assert_array_equal(older.cfa, frame.cfa)
    assert older.metadata.lens_shading is None and older.metadata.analogue_gain is None


def test_worker_rejects_a_negative_memory_bound(tmp_path) -> None:
    store = PhotoStore(tmp_path, reserve_bytes=0)
    with pytest.raises(ValueError, match="max_shots_in_memory=-1"):
        processing.ProcessingWorker(store, lambda event: None, max_shots_in_memory=-1)


def test_night_frames_follow_the_configured_limit() -> None:
    from firmware.config import default_config
    from firmware.daemon import capture_limits

    limits = capture_limits(default_config().with_value("capture.night_max_frames", 4))
    assert limits.night_max_frames == 4 and limits.night_min_frames == 4
    dark = CameraMetering(exposure_time_us=200_000.0, analogue_gain=16.0)
    assert plan_shot("night", dark, limits).frames == 4


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")
def test_the_worker_yields_the_cpu_to_capture(tmp_path) -> None:
    def nice_of(thread_id: int) -> int:
        return os.getpriority(os.PRIO_PROCESS, thread_id)

    before = nice_of(threading.get_native_id())
    worker = processing.ProcessingWorker(PhotoStore(tmp_path, reserve_bytes=0), lambda e: None)
    try:
        expected = min(19, before + processing.WORKER_NICE_INCREMENT)
        deadline = time.monotonic() + 10
        while nice_of(worker._thread.native_id) != expected and time.monotonic() < deadline:
            time.sleep(0.01)
        assert nice_of(worker._thread.native_id) == expected
        assert nice_of(threading.get_native_id()) == before  # the caller's is unchanged
    finally:
        worker.close()
