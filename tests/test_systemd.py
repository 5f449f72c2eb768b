"""sd_notify against real datagram sockets, and the unit file checked by systemd itself."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from firmware.systemd_notify import SystemdNotifier, watchdog_interval_s

UNIT = Path(__file__).resolve().parents[1] / "systemd" / "obscura.service"


def _receive(sock: socket.socket) -> dict[str, str]:
    sock.settimeout(5.0)
    lines = sock.recv(4096).decode("utf-8").splitlines()
    return dict(line.split("=", 1) for line in lines)


@pytest.fixture
def notify_socket(tmp_path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = tmp_path / "notify"
    sock.bind(str(path))
    yield sock, str(path)
    sock.close()


def test_messages_reach_a_socket_named_by_notify_socket(notify_socket, monkeypatch) -> None:
    sock, path = notify_socket
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    with SystemdNotifier() as notifier:
        assert notifier.is_enabled
        assert notifier.ready("idle, mode single")
        assert _receive(sock) == {"READY": "1", "STATUS": "idle, mode single"}
        assert notifier.status("shooting\nburst 3/6")
        assert _receive(sock) == {"STATUS": "shooting burst 3/6"}
        assert notifier.watchdog()
        assert _receive(sock) == {"WATCHDOG": "1"}
        assert notifier.reloading()
        message = _receive(sock)
        assert message["RELOADING"] == "1" and int(message["MONOTONIC_USEC"]) > 0
        assert notifier.stopping()
        assert _receive(sock) == {"STOPPING": "1"}
        notifier.close()
        notifier.close()


def test_abstract_namespace_address() -> None:
    name = f"obscura-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        with SystemdNotifier("@" + name) as notifier:
            assert notifier.ready()
            assert _receive(sock) == {"READY": "1"}


def test_outside_systemd_every_call_is_a_no_op(monkeypatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    with SystemdNotifier() as notifier:
        assert not notifier.is_enabled
        assert not notifier.ready() and not notifier.watchdog() and not notifier.stopping()


@pytest.mark.parametrize("address", ["", "relative/path", "@"])
def test_unusable_addresses_disable_the_notifier(address) -> None:
    assert not SystemdNotifier(address).is_enabled


def test_an_unreachable_socket_never_raises(tmp_path) -> None:
    with SystemdNotifier(str(tmp_path / "nobody-listens")) as notifier:
        assert notifier.is_enabled
        assert notifier.watchdog() is False


def test_watchdog_interval_is_half_the_timeout_for_this_process() -> None:
    pid = str(os.getpid())
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": pid}) == 15.0
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "zero"}) is None
    assert watchdog_interval_s({}) is None


def test_unit_declares_what_the_appliance_relies_on() -> None:
    text = UNIT.read_text(encoding="utf-8")
    settings = {line.split("=", 1)[0] for line in text.splitlines() if "=" in line}
    for setting in ("Type=notify", "WatchdogSec=", "Restart=on-failure", "User=obscura",
                    "SupplementaryGroups=video gpio", "RuntimeDirectory=obscura",
                    "CacheDirectory=obscura", "NUMBA_CACHE_DIR=/var/cache/obscura",
                    "ExecReload=/bin/kill -HUP $MAINPID", "ProtectSystem=strict",
                    "DevicePolicy=closed", "DeviceAllow=char-video4linux rw",
                    "DeviceAllow=char-media rw", "DeviceAllow=char-dma_heap rw",
                    "DeviceAllow=char-gpiochip rw", "DeviceAllow=char-drm rw",
                    "RestrictAddressFamilies=AF_UNIX AF_NETLINK",
                    "NoNewPrivileges=yes", "ProtectHome=yes", "PrivateTmp=yes"):
        assert setting in text, setting
    assert "MemoryDenyWriteExecute" not in settings  # numba's JIT needs executable mappings


@pytest.fixture
def verifiable_unit(tmp_path) -> Path:
    """The unit with ExecStart pointing at a program that exists on this machine."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed")
    lines = [
        f"ExecStart={sys.executable} -c pass" if line.startswith("ExecStart=") else line
        for line in UNIT.read_text(encoding="utf-8").splitlines()
    ]
    unit = tmp_path / UNIT.name
    unit.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return unit


def test_systemd_analyze_verify_passes(verifiable_unit) -> None:
    result = subprocess.run(
        ["systemd-analyze", "verify", str(verifiable_unit)],
        capture_output=True, text=True, timeout=60, cwd=verifiable_unit.parent,
    )
    assert result.returncode == 0, result.stderr
    assert "obscura.service" not in result.stderr, result.stderr


def test_systemd_analyze_security_rates_the_unit_3_or_lower(verifiable_unit) -> None:
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--threshold=30",
         str(verifiable_unit)],
        capture_output=True, text=True, timeout=60, cwd=verifiable_unit.parent,
    )
    if "--offline" in result.stderr or "Unknown option" in result.stderr:
        pytest.skip("this systemd-analyze cannot review unit files offline")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    assert "Overall exposure level for obscura.service" in result.stdout
