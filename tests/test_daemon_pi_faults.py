"""What a real Pi does to the daemon at start: pins the kernel holds, no GPIO backend,
camera devices closed to the service, and systemd waiting for READY=1."""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from firmware.commands.run import status_line
from firmware.config import default_config
from firmware.daemon import Daemon
from hardware.device_access import EXIT_RESTART, blocked_camera_devices
from hardware.simulated_camera import SimulatedCamera, SimulatedFaults
from hardware.storage import PhotoStore
from tests.mock_gpio import busy_pin_factory

ROOT = Path(__file__).resolve().parents[1]


def make_daemon(root: Path, pin_factory, faults=None, blocked_devices=None,
                restart_after_s: float = 60.0) -> Daemon:
    config = (default_config().with_value("output.storage_path", str(root))
              .with_value("camera.source", "simulator"))
    camera = SimulatedCamera(output_size=(128, 192), frame_interval_s=0.02, faults=faults,
                             frame_timeout_s=0.5)
    root.mkdir(exist_ok=True)
    return Daemon(config, camera=camera, store=PhotoStore(root, reserve_bytes=0),
                  pin_factory=pin_factory, blocked_devices=blocked_devices,
                  restart_after_s=restart_after_s,
                  temperature_c=lambda: None, tick_interval_s=0.05, looks=("standard",))


def test_a_pin_the_kernel_holds_leaves_the_camera_running(tmp_path: Path) -> None:
    # I2C holds GPIO 3 (power) and 1-wire GPIO 4 (LED): lgpio raises "GPIO busy".
    with make_daemon(tmp_path / "card", busy_pin_factory(3, 4)) as daemon:
        assert daemon.wait_ready(20), daemon.status()
        status = daemon.status()
        assert status["controls_errors"] == ["power button on GPIO 3: GPIO busy",
                                             "status LED on GPIO 4: GPIO busy"]
        assert daemon.request_shot()["taken"]
        assert sorted(daemon.controls.buttons) == ["look", "mode", "shutter"]


def test_camera_devices_closed_to_the_service_end_it_for_a_restart(tmp_path: Path) -> None:
    daemon = make_daemon(tmp_path / "card", None, faults=SimulatedFaults(missing=True),
                         blocked_devices=lambda: ["/dev/media0"], restart_after_s=3.0)
    daemon.start()
    # Not at once: systemd's start limit allows one such restart a minute, not a loop.
    assert daemon.wait_until(lambda s: s["error"] == "no_camera", 10)
    assert daemon._thread.is_alive() and daemon.exit_status == 0
    daemon._thread.join(20)
    assert not daemon._thread.is_alive(), "the daemon should have stopped by itself"
    assert daemon.exit_status == EXIT_RESTART == 75


def test_a_missing_camera_with_open_devices_is_retried_in_process(tmp_path: Path) -> None:
    faults = SimulatedFaults(missing=True)
    with make_daemon(tmp_path / "card", None, faults=faults,
                     blocked_devices=lambda: []) as daemon:
        assert daemon.wait_until(lambda s: s["error"] == "no_camera", 10)
        faults.missing = False
        assert daemon.wait_ready(20), daemon.status()
    assert daemon.exit_status == 0


def test_blocked_devices_are_those_the_device_rules_refuse(tmp_path: Path) -> None:
    for name in ("media0", "media1", "video0"):
        (tmp_path / name).touch()

    def open_device(path: str) -> None:
        name = Path(path).name
        if name == "media1":
            raise PermissionError(1, "Operation not permitted", path)  # device cgroup
        if name == "video0":
            raise PermissionError(13, "Permission denied", path)  # file mode: not ours
    blocked = blocked_camera_devices((str(tmp_path / "media*"), str(tmp_path / "video*")),
                                     open_device)
    assert blocked == [str(tmp_path / "media1")]


def test_status_line_says_the_error() -> None:
    assert status_line({"state": "ready", "error": None}) == "ready"
    assert status_line({"state": "error", "error": "no_camera",
                        "error_message": "no camera 0"}) == "error: no_camera: no camera 0"


@pytest.mark.skipif(importlib.util.find_spec("lgpio") is not None
                    or importlib.util.find_spec("RPi") is not None,
                    reason="a GPIO backend is installed here")
def test_run_without_any_gpio_backend_still_serves_and_tells_systemd(tmp_path: Path) -> None:
    card = tmp_path / "card"
    card.mkdir()
    config = tmp_path / "sim.toml"
    config.write_text(f'[camera]\nsource = "simulator"\n[output]\nstorage_path = "{card}"\n')
    notify_path = str(tmp_path / "notify")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    notify.settimeout(60)
    control = tmp_path / "control.sock"
    env = {**os.environ, "NOTIFY_SOCKET": notify_path}
    process = subprocess.Popen(
        [sys.executable, "-m", "firmware.cli", "run", "--config", str(config),
         "--pins", "hardware", "--socket", str(control)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        message = notify.recv(4096).decode()
        while "READY=1" not in message:
            message = notify.recv(4096).decode()
        assert "STATUS=ready" in message
        status = subprocess.run(
            [sys.executable, "-m", "firmware.cli", "status", "--json", "--socket", str(control)],
            cwd=ROOT, capture_output=True, text=True, timeout=30)
        assert status.returncode == 0, status.stderr
        assert "no GPIO backend works here" in status.stdout
        assert "running without buttons and LED" in status.stdout
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
        notify.close()
    assert process.returncode == 0, stderr
    assert "obscura run --pins mock" in stderr
