"""Manual lenses on the running camera (issue 8), end to end on the simulator with gpiozero
mock pins and a real control socket: ``lens set``, ``calibrate flat``, lens fields and
shading in every shot, and focus assist (``obscura focus`` and the LED's blink rate)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from gpiozero.pins.mock import MockFactory
from PIL import Image

from firmware.cli import main
from firmware.config import write_config_file
from firmware.config_store import ConfigStore
from firmware.control_server import ControlServer
from firmware.control_socket import ControlHandler
from firmware.daemon import Daemon
from firmware.lens_profiles import LensLibrary, LensProfile
from hardware.imx477_simulator import Imx477Simulator
from hardware.simulated_camera import SimulatedCamera
from hardware.storage import PhotoStore
from pipeline.formats.dng_reader import read_dng
from pipeline.stages import lens_shading
from pipeline.formats.encoders.exif import (
    EXIF_IFD,
    F_NUMBER,
    FOCAL_LENGTH,
    FOCAL_LENGTH_35MM,
    LENS_MODEL,
)

LENS = "Fujinon 12.5mm"
SIZE = (192, 256)  # a flat-field fit needs 30 blocks of 16x16 sites


@pytest.fixture
def short_tmp():
    """A short directory: AF_UNIX paths are limited to 107 bytes."""
    with tempfile.TemporaryDirectory(prefix="obs") as directory:
        yield Path(directory)


@pytest.fixture
def running_camera(short_tmp, monkeypatch):
    """Factory: a daemon on a simulated camera behind a control socket (OBSCURA_SOCKET)."""
    started = []

    def start(camera: SimulatedCamera, **config_values) -> tuple[Daemon, ConfigStore]:
        lens_dir = short_tmp / "lenses"
        LensLibrary(lens_dir).add(LensProfile(LENS, 12.5, 1.4, "C"))
        config_path = short_tmp / "config.toml"
        (short_tmp / "card").mkdir(exist_ok=True)
        values = {"camera.source": "simulator", "output.storage_path": str(short_tmp / "card"),
                  "lens.library_dir": str(lens_dir), "capture.ring_frames": 4, **config_values}
        write_config_file(config_path, values)
        store = ConfigStore([config_path])
        assert store.reload(), store.error
        daemon = Daemon(
            store.config, camera=camera, store=PhotoStore(short_tmp / "card", reserve_bytes=0),
            pin_factory=MockFactory(), temperature_c=lambda: None, tick_interval_s=0.05,
            looks=("standard", "neutral"),
        )
        store.apply = daemon.apply_config
        socket = short_tmp / "control.sock"
        server = ControlServer(socket, ControlHandler(daemon, store), group=None)
        monkeypatch.setenv("OBSCURA_SOCKET", str(socket))
        daemon.start()
        started.append((daemon, server))
        assert daemon.wait_ready(30), daemon.status()
        return daemon, store

    yield start
    for daemon, server in started:
        daemon.stop()
        server.close()


def _shoot(daemon: Daemon) -> dict[str, Path]:
    result = daemon.request_shot("single")
    assert result["taken"], result
    assert daemon.wait_until(lambda s: s["pending"] == 0, 60), daemon.status()
    return {Path(f).suffix: Path(f) for f in result["files"]}


def _corner_over_centre(path: Path) -> float:
    """Mean of the four corner patches over the centre patch, in JPEG code values."""
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("L"), dtype=np.float64)
    h, w = pixels.shape
    ch, cw = h // 8, w // 8
    corners = [pixels[:ch, :cw], pixels[:ch, -cw:], pixels[-ch:, :cw], pixels[-ch:, -cw:]]
    centre = pixels[h // 2 - ch // 2 : h // 2 + ch // 2, w // 2 - cw // 2 : w // 2 + cw // 2]
    return float(np.mean([c.mean() for c in corners]) / centre.mean())


def _centre_rgb(path: Path) -> np.ndarray:
    """Mean R, G, B of the centre patch, in JPEG code values."""
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB"), dtype=np.float64)
    h, w, _ = pixels.shape
    centre = pixels[h // 2 - h // 16 : h // 2 + h // 16, w // 2 - w // 16 : w // 2 + w // 16]
    return centre.mean(axis=(0, 1))


def test_lens_set_calibrate_and_shoot(running_camera, short_tmp, capsys) -> None:
    # An evenly lit grey wall, frames without a shading table as a Pi's raw frames come.
    wall = np.full((16, 16, 3), 150, np.uint8)
    camera = SimulatedCamera(wall, output_size=SIZE, frame_interval_s=0.02, frame_timeout_s=1.0,
                             reports_lens_shading=False)
    daemon, store = running_camera(camera, **{"output.look": "neutral"})
    before = _shoot(daemon)

    # Bad requests: one clear line each, nothing changed.
    capsys.readouterr()
    assert main(["lens", "set", "Noctilux"]) == 1
    assert main(["lens", "set", LENS, "--f-number", "1.0"]) == 1
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 2
    assert errors[0].startswith("obscura: error: unknown lens 'Noctilux'")
    assert errors[1] == f"obscura: error: {LENS}: f_number=1: expected f/1.4 or narrower"
    assert store.config["lens.name"] == ""

    # The camera shoots the flat field itself and stores the table in its library.
    assert main(["calibrate", "flat", "--lens", LENS, "--count", "3"]) == 0
    assert "lens shading from 3 frames" in capsys.readouterr().out
    shading = LensLibrary(Path(store.config["lens.library_dir"])).shading(LENS)
    exact = Imx477Simulator(wall, seed=0, output_size=SIZE).lens_shading_map()
    ones = np.ones(SIZE, dtype=np.float32)
    # Pixel by pixel, to 8 %: the 32-pixel blocks of so small a frame smooth the tuning's
    # edge cells.
    np.testing.assert_allclose(lens_shading.apply(ones, shading), lens_shading.apply(ones, exact),
                               rtol=0.08)  # fmt: skip

    assert main(["lens", "set", LENS, "--f-number", "2.8", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["lens.name"] == LENS
    assert (store.config["lens.name"], store.config["lens.f_number"]) == (LENS, 2.8)
    assert 'name = "Fujinon 12.5mm"' in (short_tmp / "config.toml").read_text()
    after = _shoot(daemon)

    with Image.open(after[".JPG"]) as jpeg:
        exif = jpeg.getexif().get_ifd(EXIF_IFD)
    assert exif[LENS_MODEL] == LENS and float(exif[FOCAL_LENGTH]) == 12.5
    assert float(exif[F_NUMBER]) == 2.8 and exif[FOCAL_LENGTH_35MM] == 69
    dng = read_dng(after[".DNG"]).metadata
    assert (dng.lens_model, dng.focal_length_mm, dng.f_number, dng.focal_length_35mm) == (
        LENS, 12.5, 2.8, 69)
    # The shading table is applied: the vignetted corners come back to the centre's level.
    # (Before it, the Pi's own tuning corrected half the IMX477's vignetting, as the Pi's
    # ISP does: pipeline/stages/colour_shading.py.)
    assert _corner_over_centre(before[".JPG"]) < 0.94
    assert _corner_over_centre(after[".JPG"]) == pytest.approx(1.0, abs=0.05)
    # The table takes on the Pi's white balance: the centre stays grey.
    assert np.ptp(_centre_rgb(after[".JPG"])) < 1.0
    assert oct(after[".JPG"].stat().st_mode & 0o777) == "0o644"


def test_calibrate_flat_refuses_an_unknown_lens(running_camera, capsys) -> None:
    camera = SimulatedCamera(np.full((8, 8, 3), 150, np.uint8), output_size=SIZE,
                             frame_interval_s=0.02)
    running_camera(camera)
    assert main(["calibrate", "flat", "--lens", "Noctilux"]) == 1
    assert capsys.readouterr().err.startswith("obscura: error: unknown lens 'Noctilux'")


BLURS_PX = [3.0, 1.5, 0.0, 1.5, 3.0]  # a focus ring turned through best focus


def test_focus_assist_peaks_when_sharp_and_the_led_follows(running_camera, capsys) -> None:
    camera = SimulatedCamera(output_size=(192, 256), frame_interval_s=0.02, frame_timeout_s=1.0)
    daemon, _ = running_camera(camera)
    led_pin = daemon.controls.led.pin
    readings = []
    for blur in BLURS_PX:
        camera.set_scene_blur(blur)
        camera.next_frames(3)  # frames rendered with the new focus
        assert main(["focus", "--count", "1", "--json"]) == 0
        readings.append(json.loads(capsys.readouterr().out))
        if blur == 0.0:  # at the peak the LED blinks fastest
            assert daemon.wait_until(lambda s: s["focus_blink_hz"] == 8.0, 5), daemon.status()
            assert daemon.controls.blink_hz == 8.0
            toggles = len(led_pin.states)
            assert daemon.wait_until(lambda s: len(led_pin.states) >= toggles + 2, 5)
    measures = [r["measure"] for r in readings]
    best = BLURS_PX.index(0.0)
    assert int(np.argmax(measures)) == best
    assert measures[0] < measures[1] < measures[2] > measures[3] > measures[4]
    assert readings[-1]["peak"] == pytest.approx(measures[best])
    assert readings[-1]["fraction"] < 0.9
    # Past the peak the LED slows down, and stops blinking a while after the last request.
    assert daemon.wait_until(lambda s: (s["focus_blink_hz"] or 8.0) < 8.0, 5)
    assert daemon.controls.blink_hz < 8.0
    assert daemon.wait_until(lambda s: s["led"] == "ready", 10), daemon.status()
    assert daemon.controls.pattern == "ready" and daemon.controls.blink_hz is None

    # A region of one's own, and the text bar.
    assert main(["focus", "--count", "2", "--interval", "0", "--region", "0.1,0.1,0.3,0.3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("[") and "peak" in line for line in lines)
    assert main(["focus", "--count", "1", "--region", "0.9,0,0.5,0.5"]) == 1
    assert "region" in capsys.readouterr().err
