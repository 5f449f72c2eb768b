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
from pipeline.encoders.dng import encode_dng
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
