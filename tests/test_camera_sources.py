"""Camera sources: ZSL ring buffer, manual exposures, picamera2 (fake), replay, failures."""

from __future__ import annotations

import ast
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from hardware.camera import (
    CameraMissingError,
    CameraTimeoutError,
    ExposurePlan,
    ExposureSettings,
    ring_capacity,
    take_shot,
)
from hardware.picamera2_camera import Picamera2Camera, choose_raw_mode, import_picamera2
from hardware.replay_camera import ReplayCamera
from hardware.simulated_camera import SimulatedCamera, SimulatedFaults
from pipeline.formats.encoders.dng import encode_dng
from tests import fake_picamera2

ROOT = Path(__file__).resolve().parents[1]


def small_simulator(**kwargs: object) -> SimulatedCamera:
    return SimulatedCamera(output_size=(128, 192), frame_interval_s=0.02, **kwargs)  # type: ignore[arg-type]


def test_zsl_burst_contains_the_frame_at_the_press() -> None:
    with small_simulator(ring_frames=6) as camera:
        camera.metering()
        time.sleep(0.15)
        pressed = time.monotonic_ns()
        shot = camera.grab_zsl(4, pressed)
    assert len(shot.frames) == 4 and camera.frame_shape == (128, 192)
    ref = shot.reference
    # The reference is the frame nearest the press: the one being exposed, the last begun
    # before it, or the next one when that is nearer.
    def distance(frame) -> float:
        return abs((frame.exposure_start_ns + frame.exposure_end_ns) / 2 - pressed)
    assert all(distance(ref) <= distance(f) for f in shot.frames)
    assert ref.exposure_end_ns >= pressed - 30_000_000
    assert ref.exposure_start_ns <= pressed + 30_000_000
    sequences = [f.sequence for f in shot.frames]
    assert sequences == sorted(sequences) and len(set(sequences)) == 4
    assert shot.shutter_lag_s is not None and shot.shutter_lag_s < 0.05
    assert shot.reference.frame.cfa.shape == (128, 192)


def test_ring_is_bounded_and_short_ring_fills_with_later_frames() -> None:
    with small_simulator(ring_frames=2) as camera:
        camera.metering()
        time.sleep(0.1)
        assert camera.ring_frames == 2
        shot = camera.grab_zsl(5, time.monotonic_ns())
    assert len(shot.frames) == 5
    assert [f.sequence for f in shot.frames] == list(
        range(shot.frames[0].sequence, shot.frames[0].sequence + 5)
    )


def test_ring_capacity_is_limited_by_memory() -> None:
    assert ring_capacity(8, 18_580_000, 2_000_000_000) == 8
    assert ring_capacity(8, 18_580_000, 300_000_000) == 4
    assert ring_capacity(8, 18_580_000, 10_000_000) == 1
    assert ring_capacity(8, 18_580_000, None) == 8


def test_manual_exposures_are_applied_then_auto_restored() -> None:
    with small_simulator() as camera:
        auto = camera.metering()
        plan = ExposurePlan(count=1, exposures=(ExposureSettings(auto.exposure_time_us / 4, 2.0),))
        shot = take_shot(camera, plan, time.monotonic_ns())
        assert shot.reference_index == 0
        short = shot.frames[1].frame.metadata
        assert short.analogue_gain == pytest.approx(2.0)
        assert short.exposure_time_s == pytest.approx(auto.exposure_time_us / 4e6, rel=0.01)
        time.sleep(0.1)
        assert camera.grab_zsl(1).reference.frame.metadata.analogue_gain == pytest.approx(1.0)


def test_missing_and_stalled_simulator_raise_camera_errors() -> None:
    faults = SimulatedFaults(missing=True)
    camera = small_simulator(faults=faults, frame_timeout_s=0.3)
    with pytest.raises(CameraMissingError):
        camera.start()
    faults.missing = False
    camera.start()
    try:
        camera.metering()
        faults.stalled = True
        time.sleep(0.3)
        with pytest.raises(CameraTimeoutError):
            camera.grab_zsl(1, time.monotonic_ns() + 10**9)
        faults.stalled = False
        camera.restart()
        assert camera.grab_zsl(1).frames
    finally:
        camera.close()
        camera.close()  # idempotent


# ---------------------------------------------------------------------- picamera2 (fake)
@pytest.mark.parametrize("raw_format", ["SBGGR12_CSI2P", "BGGR_PISP_COMP1"])
def test_picamera2_backend_streams_decodes_and_releases(raw_format: str) -> None:
    module = fake_picamera2.make_module(raw_format=raw_format)
    camera = Picamera2Camera(picamera2_module=module, ring_frames=4)
    with camera:
        shot = camera.grab_zsl(2, time.monotonic_ns())
        picam2 = module.instances[0]
        config = picam2.camera_config
        assert config["raw"]["size"] == (192, 128) and config["sensor"]["bit_depth"] == 12
        assert config["buffer_count"] >= 2
    frame = shot.reference.frame
    assert frame.cfa.shape == (128, 192) and camera.frame_shape == (128, 192)
    assert frame.metadata.model == "imx477" and frame.metadata.cfa_pattern.value == "BGGR"
    bits = 12 if raw_format.endswith("CSI2P") else 16
    assert frame.metadata.white_level == 2**bits - 1
    assert frame.metadata.black_level[0] == pytest.approx(256 * 2 ** (bits - 12))
    assert picam2.outstanding == 0, "every request was released"
    assert not picam2.is_open


def test_picamera2_manual_exposure_sets_real_control_names() -> None:
    module = fake_picamera2.make_module()
    with Picamera2Camera(picamera2_module=module) as camera:
        auto = camera.metering()
        settings = ExposureSettings(round(auto.exposure_time_us / 2), 4.0)
        shot = camera.capture_exposures([settings])
        log = module.instances[0].control_log
    manual = [c for c in log if c.get("AeEnable") is False]
    assert manual and manual[0]["ExposureTime"] == settings.exposure_time_us
    assert manual[0]["AnalogueGain"] == 4.0
    assert log[-1].get("AeEnable") is True, "auto exposure restored"
    assert shot.reference.frame.metadata.analogue_gain == pytest.approx(4.0)


def test_picamera2_missing_camera_and_timeout() -> None:
    with pytest.raises(CameraMissingError):
        Picamera2Camera(picamera2_module=fake_picamera2.make_module(cameras=0)).start()
    module = fake_picamera2.make_module(stalled=True)
    camera = Picamera2Camera(picamera2_module=module, frame_timeout_s=0.2)
    with camera, pytest.raises(CameraTimeoutError):
        camera.metering(timeout_s=1.0)


def test_picamera2_missing_library_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "picamera2", None)  # makes `import picamera2` fail
    with pytest.raises(CameraMissingError, match="python3-picamera2"):
        import_picamera2()


def test_choose_raw_mode_prefers_largest_12_bit() -> None:
    modes = fake_picamera2.make_module().Picamera2().sensor_modes
    assert choose_raw_mode(modes)["bit_depth"] == 12


def test_only_one_module_imports_picamera2_and_one_gpiozero() -> None:
    importers: dict[str, list[str]] = {"picamera2": [], "gpiozero": []}
    for package in ("pipeline", "hardware", "firmware"):
        for path in (ROOT / package).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                names = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                for name in names:
                    root = name.split(".")[0]
                    if root in importers:
                        importers[root].append(path.relative_to(ROOT).as_posix())
    assert set(importers["picamera2"]) <= {"hardware/picamera2_camera.py"}
    assert set(importers["gpiozero"]) == {"hardware/controls.py"}
    # and picamera2 is only imported by name, lazily (importlib), never at module level
    source = (ROOT / "hardware/picamera2_camera.py").read_text(encoding="utf-8")
    assert 'import_module("picamera2")' in source


# ---------------------------------------------------------------------------- replay
def test_replay_serves_a_folder_of_dngs_as_bursts(tmp_path: Path) -> None:
    with small_simulator() as camera:
        camera.metering()
        frames = [camera.next_frames(1).reference.frame for _ in range(3)]
    for i, frame in enumerate(frames):
        (tmp_path / f"frame_{i}.dng").write_bytes(encode_dng(frame))
    with ReplayCamera(tmp_path, frame_interval_s=0.02) as replay:
        shot = replay.grab_zsl(3, time.monotonic_ns())
        bracket = replay.capture_exposures([ExposureSettings(1000.0)] * 2)
    assert len(shot.frames) == 3 and len(bracket.frames) == 2
    served = {f.frame.cfa.tobytes() for f in shot.frames}
    assert served <= {f.cfa.tobytes() for f in frames}
    assert np.array_equal(shot.reference.frame.cfa.shape, (128, 192))


def test_replay_of_missing_or_empty_folder_is_no_camera(tmp_path: Path) -> None:
    with pytest.raises(CameraMissingError):
        ReplayCamera(tmp_path / "nope").start()
    with pytest.raises(CameraMissingError):
        ReplayCamera(tmp_path).start()


# ------------------------------------------------- the fake picamera2 behaves as the real one
def _started_fake(module, buffer_count: int = 4, queue: bool = False):
    picam2 = module.Picamera2()
    full = max(picam2.sensor_modes, key=lambda m: m["size"][0] * m["size"][1])
    picam2.configure(picam2.create_still_configuration(
        raw={"format": full["format"], "size": full["size"]}, buffer_count=buffer_count,
        queue=queue))
    picam2.start()
    return picam2


def _next_metadata(picam2) -> dict:
    with picam2.captured_request(wait=1.0) as request:
        return request.get_metadata()


def test_fake_picamera2_lists_the_four_imx477_modes_by_reconfiguring() -> None:
    picam2 = fake_picamera2.make_module().Picamera2()
    assert picam2.configure_count == 0
    modes = picam2.sensor_modes
    assert picam2.configure_count == 4, "each mode is configured to read its limits"
    assert [(m["bit_depth"], m["fps"]) for m in modes] == [
        (12, 10.0), (12, 40.0), (12, 50.0), (10, 120.0)]
    assert modes[0]["size"] == (192, 128) and modes[0]["exposure_limits"][0] == 114
    assert {m["format"] for m in modes} == {"SBGGR12_CSI2P", "SBGGR10_CSI2P"}
    assert picam2.sensor_modes is modes and picam2.configure_count == 4  # cached
    started = _started_fake(fake_picamera2.make_module())
    started.sensor_modes_ = []
    with pytest.raises(RuntimeError, match="stopped before configuring"):
        started.sensor_modes  # noqa: B018 - reading it reconfigures the camera


def test_fake_picamera2_fails_as_picamera2_does() -> None:
    module = fake_picamera2.make_module(cameras=0)
    assert module.Picamera2.global_camera_info() == []
    with pytest.raises(IndexError):
        module.Picamera2()
    picam2 = fake_picamera2.make_module().Picamera2()
    with pytest.raises(RuntimeError, match="ExposureTimeMode is not advertised"):
        picam2.set_controls({"ExposureTimeMode": 1})


def test_fake_picamera2_exposes_in_whole_lines_5_to_7_frames_late() -> None:
    interval_ns = 30_000_000
    picam2 = _started_fake(fake_picamera2.make_module(frame_interval_s=interval_ns / 1e9))
    try:
        auto = _next_metadata(picam2)
        picam2.set_controls({"AeEnable": False, "ExposureTime": 250, "AnalogueGain": 1.5})
        frames = [_next_metadata(picam2) for _ in range(10)]
    finally:
        picam2.close()
    exposures = [m["ExposureTime"] for m in frames]
    first = exposures.index(228)  # 8 lines of 24000 px at 840 MHz = 228.57 us, truncated
    # Counted in sensor frames (a frame nobody waited for is dropped, not late).
    late = round((frames[first]["SensorTimestamp"] - auto["SensorTimestamp"]) / interval_ns)
    assert 5 <= late <= 7, exposures
    assert set(exposures[:first]) == {auto["ExposureTime"]} and set(exposures[first:]) == {228}
    assert all(type(e) is int for e in exposures)
    assert frames[-1]["AnalogueGain"] == pytest.approx(1024 / 683)  # gain code 341
    # AeEnable is the request's control: it turns False before the exposure changes.
    assert [m["AeEnable"] for m in frames[first - 2 : first]] == [False, False]


def test_fake_picamera2_drops_frames_nobody_waits_for() -> None:
    module = fake_picamera2.make_module(frame_interval_s=0.02)
    picam2 = _started_fake(module)
    try:
        first = _next_metadata(picam2)
        time.sleep(0.1)
        second = _next_metadata(picam2)
        delivered_ns = time.monotonic_ns()
    finally:
        picam2.close()
    gap_frames = (second["SensorTimestamp"] - first["SensorTimestamp"]) / 20e6
    assert gap_frames >= 5 and picam2.dropped >= 4
    # SensorTimestamp is the start of readout: before the frame is delivered.
    assert 0 < delivered_ns - second["SensorTimestamp"] < 60_000_000


# ------------------------------------------------------- manual exposures on the real sensor
def _picamera2_camera() -> Picamera2Camera:
    return Picamera2Camera(picamera2_module=fake_picamera2.make_module(), ring_frames=8)


def test_picamera2_hdr_bracket_in_bright_light_matches_line_truncated_exposures() -> None:
    with _picamera2_camera() as camera:
        camera.metering()
        shot = camera.capture_exposures([ExposureSettings(250, 1.0), ExposureSettings(500, 1.5)])
    short, long = (f.frame.metadata for f in shot.frames)
    assert short.exposure_time_s == pytest.approx(228e-6)   # 8 lines
    assert long.exposure_time_s == pytest.approx(485e-6)    # 17 lines
    assert long.analogue_gain == pytest.approx(1024 / 683)


@pytest.mark.parametrize("source", ["picamera2", "simulator"])
def test_no_manual_frame_is_metered_or_taken_by_the_next_zsl_shot(source: str) -> None:
    camera = _picamera2_camera() if source == "picamera2" else small_simulator(ring_frames=8)
    with camera:
        auto = camera.metering()
        manual = ExposureSettings(auto.exposure_time_us / 8, 2.0)
        bracket = camera.capture_exposures([manual])
        meterings = []
        for _ in range(12):  # the frames that still carry the manual exposure, and more
            time.sleep(0.01)
            meterings.append(camera.metering())
        zsl = camera.grab_zsl(4, time.monotonic_ns())
    assert bracket.frames[0].metering.analogue_gain == pytest.approx(2.0)
    assert {m.analogue_gain for m in meterings} == {1.0}
    assert [f.metering.analogue_gain for f in zsl.frames] == [1.0] * 4
    assert all(f.metering.exposure_time_us == auto.exposure_time_us for f in zsl.frames)


def test_zsl_shot_right_after_a_bracket_waits_for_auto_exposed_frames() -> None:
    with _picamera2_camera() as camera:
        auto = camera.metering()
        camera.capture_exposures([ExposureSettings(auto.exposure_time_us / 4, 2.0)])
        pressed = time.monotonic_ns()
        shot = camera.grab_zsl(2, pressed)
    assert [f.metering.analogue_gain for f in shot.frames] == [1.0, 1.0]
    assert shot.reference.exposure_end_ns >= pressed, "the press fell on manual frames"


def test_simulator_applies_exposures_as_the_hq_camera() -> None:
    with small_simulator() as camera:
        auto = camera.metering()
        shot = camera.capture_exposures([ExposureSettings(250, 1.5)])
    assert auto.exposure_time_us == int(auto.exposure_time_us)
    assert shot.frames[0].frame.metadata.exposure_time_s == pytest.approx(228e-6)
    assert shot.frames[0].frame.metadata.analogue_gain == pytest.approx(1024 / 683)


def test_choose_raw_mode_binned_is_the_whole_field_at_half_size() -> None:
    from hardware.picamera2_metadata import IMX477_MODES

    modes = [{"size": m.size, "bit_depth": m.bit_depth} for m in IMX477_MODES]
    assert choose_raw_mode(modes)["size"] == (4056, 3040)
    assert choose_raw_mode(modes, resolution="binned")["size"] == (2028, 1520)  # not 2028x1080


def test_picamera2_backend_streams_the_binned_mode_when_asked() -> None:
    module = fake_picamera2.make_module()
    with Picamera2Camera(picamera2_module=module) as full:
        full.latest_frame()
        full_shape = full.frame_shape
    with Picamera2Camera(picamera2_module=module, resolution="binned") as binned:
        frame = binned.latest_frame()
    assert frame.cfa.shape == binned.frame_shape
    assert abs(2 * binned.frame_shape[0] - full_shape[0]) <= 8
    assert abs(2 * binned.frame_shape[1] - full_shape[1]) <= 8


def test_a_pi_5_reports_its_own_tunings_gains_and_grey_stays_grey() -> None:
    from hardware.imx477_simulator import awb_gains
    from pipeline.develop import DevelopParams, develop

    results = {}
    for raw_format in ("SBGGR12_CSI2P", "BGGR_PISP_COMP1"):
        module = fake_picamera2.make_module(raw_format=raw_format)
        with Picamera2Camera(picamera2_module=module) as camera:
            module.instances[0].set_scene(np.full((64, 96, 3), 128, dtype=np.uint8))
            camera.latest_frame()
            frame = camera.grab_zsl(1, time.monotonic_ns() + 200_000_000).reference.frame
        neutral = frame.metadata.as_shot_neutral
        rgb = develop(frame, DevelopParams(look="neutral"))[16:-16, 16:-16].reshape(-1, 3)
        results[raw_format] = neutral
        mean = rgb.mean(axis=0)
        assert np.ptp(mean) < 0.02 * mean.mean(), (raw_format, mean)  # grey stays grey
    vc4, pisp = awb_gains(6500.0, "vc4"), awb_gains(6500.0, "pisp")
    assert results["SBGGR12_CSI2P"][0] == pytest.approx(1 / vc4[0], rel=1e-3)
    assert results["BGGR_PISP_COMP1"][0] == pytest.approx(1 / pisp[0], rel=1e-3)
    assert abs(vc4[0] - pisp[0]) > 0.1  # the two tunings do differ
