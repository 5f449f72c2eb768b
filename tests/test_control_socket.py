"""The control socket end to end: a real UNIX socket, the real handler, a fake daemon."""

from __future__ import annotations

import grp
import json
import os
import socket
import stat
import threading
from pathlib import Path

import pytest

from firmware.cli import main
from firmware.config import read_config_file
from firmware.config_store import ConfigStore
from firmware.control_socket import (
    ControlClient,
    ControlError,
    ControlHandler,
    ControlServer,
    RemoteError,
    socket_path,
)


class FakeDaemon:
    """The daemon's thread-safe API, recording what it was asked."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.shots: list[str | None] = []
        self.applied = []
        self.look = "standard"

    def status(self) -> dict:
        with self.lock:
            return {"state": "idle", "mode": "single", "look": self.look, "error": None,
                    "shots": len(self.shots), "free_bytes": 31_500_000_000, "queue_length": 0}

    def request_shot(self, mode: str | None) -> dict:
        with self.lock:
            if mode == "night":
                return {"taken": False, "reason": "card full"}
            self.shots.append(mode)
            shot = f"100-{len(self.shots):04d}"
            return {"taken": True, "shot": shot, "files": [f"DCIM/100OBSCU/{shot}.JPG"],
                    "mode": mode or "single"}

    def apply_config(self, config) -> None:
        with self.lock:
            self.applied.append(config)
            self.look = config["output.look"]


@pytest.fixture
def short_tmp():
    """A short directory: AF_UNIX paths are limited to 107 bytes."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="obs") as directory:
        yield Path(directory)


@pytest.fixture
def camera(short_tmp, monkeypatch):
    """A running control server over a fake daemon; OBSCURA_SOCKET points the CLI at it."""
    daemon = FakeDaemon()
    config_path = short_tmp / "config.toml"
    config_path.write_text("[output]\njpeg_quality = 85\n", encoding="utf-8")
    thermal = short_tmp / "temp"
    thermal.write_text("48312\n", encoding="ascii")
    store = ConfigStore([config_path], apply=daemon.apply_config)
    store.reload()
    path = short_tmp / "control.sock"
    monkeypatch.setenv("OBSCURA_SOCKET", str(path))
    with ControlServer(path, ControlHandler(daemon, store, thermal_path=thermal)) as server:
        yield server, daemon, store, config_path


def test_status_and_shoot_through_the_client(camera) -> None:
    server, daemon, store, _ = camera
    with ControlClient(server.path) as client:
        status = client.request("status")
        assert status["state"] == "idle" and status["shots"] == 0
        assert status["temperature_c"] == pytest.approx(48.312)
        assert status["config_error"] is None
        assert client.request("shoot", mode="hdr")["shot"] == "100-0001"
        assert client.request("shoot")["mode"] == "single"
        with pytest.raises(RemoteError, match="shoot: capture.mode = 'panorama': expected one of"):
            client.request("shoot", mode="panorama")
        assert client.request("status")["shots"] == 2
    assert daemon.shots == ["hdr", None]


def test_config_set_is_validated_saved_and_applied_live(camera) -> None:
    server, daemon, store, config_path = camera
    with ControlClient(server.path) as client:
        assert client.request("config.set", assignments={"look": "neutral"}) == {
            "output.look": "neutral"}
        assert client.request("config.get", key="look") == {"output.look": "neutral"}
        assert client.request("status")["look"] == "neutral"
        with pytest.raises(RemoteError, match="output.look = 'no-such-look': expected one of "):
            client.request("config.set", assignments={"look": "no-such-look"})
        with pytest.raises(RemoteError, match="unknown key 'flash'"):
            client.request("config.get", key="flash")
        with pytest.raises(RemoteError, match="command = 'reboot': expected one of"):
            client.request("reboot")
    assert read_config_file(config_path) == {"output.jpeg_quality": 85, "output.look": "neutral"}
    assert daemon.look == "neutral" and len(daemon.applied) == 2


def test_a_bad_file_on_reload_shows_in_status(camera) -> None:
    server, daemon, store, config_path = camera
    config_path.write_text("[output]\njpeg_quality = 0\n", encoding="utf-8")
    assert store.reload() is False
    with ControlClient(server.path) as client:
        status = client.request("status")
    assert status["config_error"] == f"{config_path}: output.jpeg_quality = 0: expected 1..100"
    assert store.config["output.jpeg_quality"] == 85


def test_malformed_lines_get_errors_and_the_connection_lives_on(camera) -> None:
    server = camera[0]
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(str(server.path))
        lines = sock.makefile("rwb")
        for request in (b"not json\n", b"[1, 2]\n", b'{"command": "status"}\n'):
            lines.write(request)
            lines.flush()
            replies = json.loads(lines.readline())
        assert replies["ok"] is True
        lines.close()


def test_a_daemon_bug_is_an_error_reply_not_a_dead_server(camera, caplog) -> None:
    server, daemon, _, _ = camera

    def broken(mode):
        raise ZeroDivisionError("oops")

    daemon.request_shot = broken
    with ControlClient(server.path) as client:
        with pytest.raises(RemoteError, match="internal error: ZeroDivisionError: oops"):
            client.request("shoot")
        assert client.request("status")["state"] == "idle"


def test_socket_is_0660_and_belongs_to_the_obscura_group_if_there_is_one(camera) -> None:
    path = camera[0].path
    info = path.stat()
    assert stat.S_ISSOCK(info.st_mode)
    assert stat.S_IMODE(info.st_mode) == 0o660
    try:
        assert info.st_gid == grp.getgrnam("obscura").gr_gid
    except KeyError:
        assert info.st_gid == os.getegid()


def test_close_is_idempotent_removes_the_socket_and_replaces_a_stale_one(short_tmp) -> None:
    path = short_tmp / "control.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # left behind by a crashed daemon
    handler = ControlHandler(FakeDaemon(), ConfigStore([short_tmp / "c.toml"]))
    server = ControlServer(path, handler)
    with pytest.raises(ControlError, match="another daemon is listening"):
        ControlServer(path, handler)
    server.close()
    server.close()
    assert not path.exists()
    path.write_text("not a socket")
    with pytest.raises(ControlError, match="exists and is not a socket"):
        ControlServer(path, handler)


def test_client_errors_say_what_to_do(short_tmp) -> None:
    with pytest.raises(ControlError, match="the camera daemon is not running"):
        ControlClient(short_tmp / "absent.sock").request("status")


def test_socket_path_from_option_then_environment(monkeypatch) -> None:
    monkeypatch.setenv("OBSCURA_SOCKET", "/tmp/env.sock")
    assert socket_path("/tmp/option.sock") == Path("/tmp/option.sock")
    assert socket_path(None) == Path("/tmp/env.sock")
    monkeypatch.delenv("OBSCURA_SOCKET")
    assert socket_path(None) == Path("/run/obscura/control.sock")


def test_cli_status_shoot_and_config(camera, capsys) -> None:
    _, daemon, _, config_path = camera
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "state        idle" in out and "free space   31.5 GB" in out
    assert "temperature  48.3 °C" in out and "config error" not in out
    assert main(["status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["queue_length"] == 0

    assert main(["shoot", "--mode", "hdr"]) == 0
    assert capsys.readouterr().out == "shot 100-0001 (hdr): DCIM/100OBSCU/100-0001.JPG\n"
    assert main(["shoot", "--mode", "night"]) == 1
    assert "shot not taken: card full" in capsys.readouterr().err
    assert daemon.shots == ["hdr"]

    assert main(["config", "set", "look=neutral", "output.jpeg_quality=90"]) == 0
    assert capsys.readouterr().out == 'output.look = "neutral"\noutput.jpeg_quality = 90\n'
    assert main(["config", "set", "jpeg_quality=abc"]) == 1
    assert "output.jpeg_quality = 'abc': expected an integer" in capsys.readouterr().err
    assert main(["config", "set", "look"]) == 1
    assert "expected KEY=VALUE" in capsys.readouterr().err
    assert main(["config", "get", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["output.jpeg_quality"] == 90
    assert main(["config", "get", "look"]) == 0
    assert capsys.readouterr().out == 'output.look = "neutral"\n'
    assert read_config_file(config_path)["output.look"] == "neutral"


def test_cli_without_a_daemon_fails_in_one_line(short_tmp, capsys) -> None:
    assert main(["status", "--socket", str(short_tmp / "none.sock")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("obscura: error: ") and "not running" in err and err.count("\n") == 1


def test_ls_lists_the_newest_photos_first(camera, short_tmp, capsys) -> None:
    server, _, store, _ = camera
    storage = short_tmp / "card"
    folder = storage / "DCIM" / "100OBSCU"
    folder.mkdir(parents=True)
    for age, name in enumerate(["IMG_0003.JPG", "IMG_0002.DNG", "IMG_0001.JPG"]):
        photo = folder / name
        photo.write_bytes(b"x" * 1500)
        os.utime(photo, (1_700_000_000 - age * 60, 1_700_000_000 - age * 60))
    (folder / ".IMG_0004.JPG.tmp").write_bytes(b"partial")
    store.set({"storage_path": str(storage)})
    assert main(["ls", "-n", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[-1] for line in lines] == [
        "DCIM/100OBSCU/IMG_0003.JPG", "DCIM/100OBSCU/IMG_0002.DNG"]
    assert "1.5 kB" in lines[0]
    assert main(["ls", "--json", "--storage", str(storage)]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 3


def test_logs_degrades_where_journalctl_is_missing(monkeypatch, capsys) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    assert main(["logs"]) == 1
    assert "journalctl not found" in capsys.readouterr().err
