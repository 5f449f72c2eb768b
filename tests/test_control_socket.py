"""The control socket end to end: a real UNIX socket, the real handler, a fake daemon."""

from __future__ import annotations

import grp
import json
import os
import socket
import stat
import threading
import time
from pathlib import Path

import pytest

from firmware.cli import main
from firmware.config import read_config_file
from firmware.config_store import ConfigStore
from firmware.control_client import ControlClient
from firmware.control_server import MAX_CONNECTIONS, ControlServer
from firmware.control_socket import ControlError, ControlHandler, RemoteError, socket_path


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


# ----------------------------------------------------------------------------- limits
@pytest.fixture
def limited_server(short_tmp):
    """``limited_server(**options)``: a server over a fake daemon with its limits set."""
    servers = []

    def make(daemon=None, **options) -> ControlServer:
        store = ConfigStore([short_tmp / "config.toml"])
        store.reload()
        handler = ControlHandler(daemon or FakeDaemon(), store, thermal_path=short_tmp / "t")
        server = ControlServer(short_tmp / f"limited{len(servers)}.sock", handler, **options)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


def connected(path: Path, timeout_s: float = 10.0) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(path))  # blocking: waits while the accept queue is full
    sock.settimeout(timeout_s)
    return sock


def read_line(sock: socket.socket) -> bytes:
    """One reply line (b"" if the server closed first)."""
    data = b""
    while not data.endswith(b"\n"):
        byte = sock.recv(1)  # one at a time: the next line stays in the socket
        if not byte:
            break
        data += byte
    return data


@pytest.mark.parametrize("request_line", [
    b'{"command": []}', b'{"command": {}}', b"[" * 30_000, b"{" * 30_000,
    b'{"command": "status", "n": ' + b"9" * 5000 + b"}", b"\xff\xfe", b"", b"null",
    b'{"command": "config.get", "key": ["a"]}',
], ids=["list", "object", "30000-brackets", "30000-braces", "5000-digits", "not-utf8",
        "empty", "null", "key-list"])
def test_a_malformed_request_gets_one_error_reply_and_the_server_serves_on(
        limited_server, caplog, request_line: bytes) -> None:
    server = limited_server()
    with connected(server.path) as sock:
        sock.sendall(request_line + b"\n" + b'{"command": "status"}\n')
        reply = json.loads(read_line(sock))
        assert reply["ok"] is False and reply["error"]
        assert json.loads(read_line(sock))["result"]["state"] == "idle"  # the next line's
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


def test_a_request_too_long_gets_one_error_and_is_closed(limited_server) -> None:
    server = limited_server()
    with connected(server.path) as sock:
        sock.sendall(b'{"command": "' + b"x" * (70 * 1024))
        reply = json.loads(read_line(sock))
        assert reply == {"ok": False, "error": "request longer than 65536 bytes"}
        assert read_line(sock) == b""
    with ControlClient(server.path) as client:
        assert client.request("status")["state"] == "idle"


def test_200_concurrent_clients_are_all_answered(limited_server) -> None:
    server = limited_server()
    start = threading.Barrier(200)
    replies: list[dict] = []
    lock = threading.Lock()

    def client() -> None:
        start.wait(30)
        with ControlClient(server.path, timeout_s=30) as connection:
            reply = connection.request("status")
        with lock:
            replies.append(reply)

    threads = [threading.Thread(target=client) for _ in range(200)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(replies) == 200 and all(r["state"] == "idle" for r in replies)


def test_1000_idle_clients_take_neither_threads_nor_the_camera(limited_server) -> None:
    # Idle connections beyond the cap close the longest idle; no thread per connection;
    # a status request is still answered at once.
    server = limited_server(idle_timeout_s=120)
    threads_before = threading.active_count()
    fds_before = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
    idle = []
    try:
        for _ in range(1000):
            idle.append(connected(server.path))
        with ControlClient(server.path, timeout_s=10) as client:
            assert client.request("status")["state"] == "idle"
        assert threading.active_count() <= threads_before + 8  # the pool, at most
        if fds_before is not None:  # the clients' 1000, and the server's cap at most
            assert len(os.listdir("/proc/self/fd")) <= fds_before + 1000 + MAX_CONNECTIONS + 8
    finally:
        for sock in idle:
            sock.close()


def test_a_client_dripping_its_request_is_closed_with_an_error(limited_server) -> None:
    server = limited_server(request_timeout_s=0.5)
    with connected(server.path) as sock:
        sock.settimeout(0.1)
        reply = b""
        for byte in b'{"command": "status"' * 10:  # one byte every 0.1 s, for up to 20 s
            try:
                sock.send(bytes([byte]))
                reply += sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:  # closed under us
                break
            if reply.endswith(b"\n"):
                break
        assert json.loads(reply)["error"] == "request not received within 0.5 s: closed"
        sock.settimeout(5)
        assert read_line(sock) == b""


def test_a_shoot_waiting_past_the_request_deadline_is_answered(limited_server) -> None:
    release = threading.Event()

    class SlowDaemon(FakeDaemon):
        def request_shot(self, mode):
            release.wait(10)  # the acknowledgement comes when the card has the shot
            return super().request_shot(mode)

    server = limited_server(SlowDaemon(), request_timeout_s=0.3)
    replies = []
    shooter = threading.Thread(
        target=lambda: replies.append(ControlClient(server.path).request("shoot")))
    shooter.start()
    with ControlClient(server.path) as client:  # others are served meanwhile
        assert client.request("status")["state"] == "idle"
        threading.Timer(1.0, release.set).start()
        shooter.join(20)
    assert replies and replies[0]["taken"]


def test_beyond_the_cap_of_busy_connections_a_client_is_told_busy(limited_server) -> None:
    release = threading.Event()
    shooting = threading.Semaphore(0)

    class SlowDaemon(FakeDaemon):
        def request_shot(self, mode):
            shooting.release()
            release.wait(10)
            return super().request_shot(mode)

    server = limited_server(SlowDaemon(), max_connections=2)
    replies = []
    shooters = [threading.Thread(
        target=lambda: replies.append(ControlClient(server.path).request("shoot")))
        for _ in range(2)]
    try:
        for shooter in shooters:
            shooter.start()
            assert shooting.acquire(timeout=10)  # its request is being handled
        with connected(server.path) as sock:
            reply = json.loads(read_line(sock))
            assert read_line(sock) == b""
        assert reply == {"ok": False,
                         "error": "busy: 2 connections are being served; try again"}
    finally:
        release.set()
        for shooter in shooters:
            shooter.join(20)
    assert len(replies) == 2 and all(r["taken"] for r in replies)


def test_server_limits_are_validated(short_tmp) -> None:
    handler = ControlHandler(FakeDaemon(), ConfigStore([short_tmp / "c.toml"]))
    with pytest.raises(ValueError, match="request_timeout_s=0"):
        ControlServer(short_tmp / "x.sock", handler, request_timeout_s=0)
