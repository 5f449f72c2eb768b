"""A preview with focus peaking on an attached display: display detection from sysfs, the
picamera2 backend's preview (fake picamera2), and the daemon's peaking overlays."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from firmware.config import ConfigError, default_config
from firmware.daemon import Daemon
from firmware.devices import camera_from_config
from hardware.display import Display, connected_displays, preview_display
from hardware.picamera2_camera import Picamera2Camera
from hardware.simulated_camera import SimulatedCamera, gaussian_blur
from hardware.storage import PhotoStore
from pipeline.errors import InvalidParameterError
from tests import fake_picamera2


def fake_drm(root: Path, connectors: dict[str, tuple[str, str | None]]) -> Path:
    """A /sys/class/drm tree: connector -> (status, modes text or None)."""
    (root / "card1").mkdir(parents=True)  # the card itself: not a connector
    (root / "version").write_text("drm 1.1.0 20060810\n")
    for name, (status, modes) in connectors.items():
        folder = root / name
        folder.mkdir()
        (folder / "status").write_text(status + "\n")
        if modes is not None:
            (folder / "modes").write_text(modes)
    return root


@pytest.fixture
def hdmi(tmp_path: Path) -> Path:
    return fake_drm(tmp_path / "drm", {
        "card1-HDMI-A-1": ("connected", "1920x1080\n1280x720\n"),
        "card1-HDMI-A-2": ("disconnected", ""),
        "card1-Writeback-1": ("unknown", None),
    })


@pytest.fixture
def no_display(tmp_path: Path) -> Path:
    return fake_drm(tmp_path / "unplugged", {"card1-HDMI-A-1": ("disconnected", ""),
                                             "card1-HDMI-A-2": ("disconnected", "")})


def wait_for(predicate: Callable[[], bool], timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


# ----------------------------------------------------------------- display detection
def test_connected_displays_from_sysfs(tmp_path: Path, hdmi: Path) -> None:
    assert connected_displays(hdmi) == [Display("card1-HDMI-A-1", (1920, 1080))]
    dsi = fake_drm(tmp_path / "dsi", {"card0-DSI-1": ("connected", "800x480\n"),
                                      "card1-HDMI-A-1": ("connected", "garbage\n"),
                                      "card1-HDMI-A-2": ("connected", None)})
    assert connected_displays(dsi) == [Display("card0-DSI-1", (800, 480)),
                                       Display("card1-HDMI-A-1"), Display("card1-HDMI-A-2")]
    assert connected_displays(tmp_path / "no-drm-here") == []


def test_preview_setting_auto_on_off(hdmi: Path, no_display: Path) -> None:
    assert preview_display("auto", hdmi) == Display("card1-HDMI-A-1", (1920, 1080))
    assert preview_display("auto", no_display) is None
    assert preview_display("off", hdmi) is None
    assert preview_display("on", no_display) == Display("unknown")
    with pytest.raises(InvalidParameterError, match="display.preview='maybe'"):
        preview_display("maybe", hdmi)
    with pytest.raises(ConfigError, match="display.preview"):
        default_config().with_value("display.preview", "sometimes")
    assert default_config()["display.preview"] == "auto"


# ------------------------------------------------------------------ picamera2 (fake)
def test_picamera2_starts_a_drm_preview_on_the_connected_display(hdmi: Path) -> None:
    module = fake_picamera2.make_module()
    camera = Picamera2Camera(picamera2_module=module, preview="auto", drm_root=hdmi)
    overlay = np.zeros((32, 48, 4), np.uint8)
    overlay[4:8, 4:8] = (255, 0, 0, 255)
    with camera:
        camera.metering()
        picam2 = module.instances[0]
        assert camera.preview_active
        assert picam2.preview is module.Preview.DRM
        assert picam2.preview_options == {"x": 0, "y": 0, "width": 1920, "height": 1080}
        assert picam2.camera_config["display"] == "main"
        assert wait_for(lambda: picam2.displayed >= 2), "the preview shows the main stream"
        camera.show_overlay(overlay)
        camera.show_overlay(None)
    assert len(picam2.overlays) == 2
    assert np.array_equal(picam2.overlays[0], overlay) and picam2.overlays[1] is None
    assert picam2.preview is None and not picam2.is_open and not camera.preview_active


def test_picamera2_uses_a_qtgl_preview_inside_a_desktop(hdmi: Path, monkeypatch) -> None:
    monkeypatch.setenv("DISPLAY", ":0")
    module = fake_picamera2.make_module()
    with Picamera2Camera(picamera2_module=module, preview="on", drm_root=hdmi) as camera:
        assert camera.preview_active and module.instances[0].preview is module.Preview.QTGL


@pytest.mark.parametrize(("setting", "fails"), [("off", False), ("auto", False), ("on", True)])
def test_picamera2_without_a_preview_streams_and_ignores_overlays(
    setting: str, fails: bool, no_display: Path, hdmi: Path
) -> None:
    module = fake_picamera2.make_module(preview_fails=fails)
    root = hdmi if setting == "off" else no_display
    camera = Picamera2Camera(picamera2_module=module, preview=setting, drm_root=root)
    with camera:
        assert camera.grab_zsl(1).frames
        picam2 = module.instances[0]
        assert not camera.preview_active
        camera.show_overlay(np.zeros((4, 4, 4), np.uint8))  # a no-op
        assert picam2.overlays == [] and picam2.displayed == 0
        if fails:  # display.preview = on, but the DRM preview could not start
            assert picam2.camera_config["display"] == "main"
        else:
            assert picam2.camera_config["display"] is None
            assert picam2.preview is module.Preview.NULL  # picamera2's own, from start()
    with pytest.raises(InvalidParameterError, match="preview"):
        Picamera2Camera(picamera2_module=module, preview="yes")


# --------------------------------------------------------------------------- daemon
SENSOR = (192, 128)  # (width, height) of the fake sensor


def checker_scene() -> np.ndarray:
    """(H, W, 3) uint8: a checkerboard of 8 px squares on the left, flat grey on the right."""
    width, height = SENSOR
    yy, xx = np.mgrid[:height, :width]
    scene = np.full((height, width), 128, np.uint8)
    left = ((yy // 8 + xx // 8) % 2 == 1)[:, : width // 2]
    scene[:, : width // 2] = np.where(left, 235, 20)
    return np.repeat(scene[..., None], 3, axis=2)


def make_daemon(root: Path, camera) -> Daemon:
    root.mkdir(parents=True, exist_ok=True)
    config = default_config().with_value("output.storage_path", str(root))
    return Daemon(config, camera=camera, store=PhotoStore(root, reserve_bytes=0),
                  temperature_c=lambda: None, tick_interval_s=0.05, looks=("standard",))


def picamera2_daemon(root: Path, module, setting: str, drm_root: Path) -> Daemon:
    config = (default_config().with_value("camera.source", "picamera2")
              .with_value("display.preview", setting).with_value("capture.ring_frames", 3))
    camera = camera_from_config(config, picamera2_module=module, drm_root=drm_root)
    return make_daemon(root, camera)


def newest_overlay(picam2, scene: np.ndarray) -> np.ndarray:
    """The overlay the daemon sets once frames of ``scene`` have arrived."""
    picam2.set_scene(scene)
    shown = picam2.displayed
    assert wait_for(lambda: picam2.displayed >= shown + 3)
    count = len(picam2.overlays)
    assert wait_for(lambda: len(picam2.overlays) >= count + 2), "overlays keep coming"
    return picam2.overlays[-1]


def test_daemon_peaks_focus_on_the_preview(tmp_path: Path, no_display: Path) -> None:
    module = fake_picamera2.make_module(sensor_size=SENSOR)
    sharp = checker_scene()
    blurred = (gaussian_blur(sharp / 255.0, 6.0) * 255).astype(np.uint8)
    with picamera2_daemon(tmp_path / "card", module, "on", no_display) as daemon:
        assert daemon.wait_ready(30), daemon.status()
        picam2 = module.instances[0]
        assert picam2.preview is module.Preview.DRM and daemon.status()["preview"] is True
        in_focus = newest_overlay(picam2, sharp)
        out_of_focus = newest_overlay(picam2, blurred)
        back = newest_overlay(picam2, sharp)
    assert in_focus.shape == (64, 96, 4) and in_focus.dtype == np.uint8  # 2x2-binned frame
    marked = in_focus[..., 3] > 0
    assert marked[:, :48].sum() > 50, "the sharp checkerboard is marked"
    assert not marked[:, 50:].any(), "the flat half is not"
    assert np.all(in_focus[marked][:, :3] == (255, 0, 0))
    assert (out_of_focus[..., 3] > 0).sum() <= marked.sum() // 10, "defocused: few marks"
    assert (back[..., 3] > 0)[:, :48].sum() > 50
    assert picam2.preview is None, "the preview stopped with the daemon"


def test_daemon_never_previews_when_off(tmp_path: Path, hdmi: Path) -> None:
    module = fake_picamera2.make_module(sensor_size=SENSOR)
    with picamera2_daemon(tmp_path / "card", module, "off", hdmi) as daemon:
        assert daemon.wait_ready(30), daemon.status()
        picam2 = module.instances[0]
        frames = picam2.displayed
        time.sleep(0.3)  # several peaking intervals
        assert daemon.status()["preview"] is False
        assert picam2.preview is module.Preview.NULL and picam2.camera_config["display"] is None
        assert picam2.overlays == [] and picam2.displayed == frames == 0
    assert daemon.overlays_shown == 0


def test_simulator_ignores_the_preview_setting(tmp_path: Path) -> None:
    config = (default_config().with_value("camera.source", "simulator")
              .with_value("display.preview", "on"))
    camera = camera_from_config(config, simulator_size=(64, 96), frame_interval_s=0.02)
    assert isinstance(camera, SimulatedCamera)
    camera.show_overlay(np.zeros((4, 4, 4), np.uint8))  # the base class's no-op
    with make_daemon(tmp_path / "card", camera) as daemon:
        assert daemon.wait_ready(30), daemon.status()
        time.sleep(0.3)
        assert daemon.status()["preview"] is False and not camera.preview_active
    assert daemon.overlays_shown == 0
