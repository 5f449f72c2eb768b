"""sd_notify against real datagram sockets, and the unit file checked by systemd itself."""

from __future__ import annotations

import json
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


def test_systemd_analyze_security_rates_the_unit_1_5_or_lower(verifiable_unit) -> None:
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--threshold=15",
         str(verifiable_unit)],
        capture_output=True, text=True, timeout=60, cwd=verifiable_unit.parent,
    )
    if "--offline" in result.stderr or "Unknown option" in result.stderr:
        pytest.skip("this systemd-analyze cannot review unit files offline")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    assert "Overall exposure level for obscura.service" in result.stdout


def _unit_settings() -> dict[str, list[str]]:
    """Every ``Key=value`` of the unit, values in order (a key may repeat)."""
    settings: dict[str, list[str]] = {}
    for line in UNIT.read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            settings.setdefault(key, []).append(value)
    return settings


def test_unit_sees_cameras_that_appear_after_start_but_no_network() -> None:
    settings = _unit_settings()
    # PrivateNetwork would cut libcamera off from udev's netlink events.
    assert "PrivateNetwork" not in settings
    assert settings["IPAddressDeny"] == ["any"]
    families = settings["RestrictAddressFamilies"][0].split()
    assert "AF_INET" not in families and "AF_INET6" not in families


def test_unit_starts_after_udev_has_been_asked_for_the_boots_devices() -> None:
    after = " ".join(_unit_settings()["After"]).split()
    assert {"systemd-udev-trigger.service", "systemd-modules-load.service"} <= set(after)


def _starts_allowed(settings: dict[str, list[str]], period_s: float, count: int) -> int:
    """How many of ``count`` starts, ``period_s`` apart, systemd's start limit lets through
    (its rate limit: at most StartLimitBurst starts in a window of StartLimitIntervalSec
    that opens at the first start after the previous window ended)."""
    interval = float(settings["StartLimitIntervalSec"][0])
    burst = int(settings["StartLimitBurst"][0])
    begin, in_window = None, 0
    for i in range(count):
        now = i * period_s
        if begin is None or now - begin > interval:
            begin, in_window = now, 1
        elif in_window < burst:
            in_window += 1
        else:
            return i
    return count


def test_exit_75_restarts_the_daemon_once_a_minute_for_ever() -> None:
    """The daemon exits 75 when the camera stayed missing (its devices may have appeared
    after the device rules were made): systemd restarts it whatever Restart= says, and a
    day of one restart a minute never reaches the start limit; a crash loop still does."""
    settings = _unit_settings()
    assert "75" in settings["RestartForceExitStatus"][0].split()
    restart_s = float(settings["RestartSec"][0])
    one_a_day = 24 * 60
    assert _starts_allowed(settings, 60.0, one_a_day) == one_a_day
    assert _starts_allowed(settings, 30.0 + restart_s, one_a_day) == one_a_day
    assert _starts_allowed(settings, restart_s + 1.0, one_a_day) < 20  # gives up on a crash loop


# --------------------------------------------------------------------- the power button
POLKIT_RULE = UNIT.parent / "50-obscura-poweroff.rules"
LOGIN1_ACTIONS = [
    "org.freedesktop.login1.power-off", "org.freedesktop.login1.power-off-multiple-sessions",
    "org.freedesktop.login1.power-off-ignore-inhibit", "org.freedesktop.login1.reboot",
    "org.freedesktop.login1.reboot-multiple-sessions", "org.freedesktop.login1.suspend",
    "org.freedesktop.login1.halt", "org.freedesktop.systemd1.manage-units",
]


def test_polkit_rule_lets_only_obscura_power_off_only() -> None:
    """The rule run by node with polkit's rule API stubbed (polkit itself and pkcheck are not
    installed here): YES for the two power-off actions and user obscura, nothing else."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: cannot run the polkit rule")
    script = """
const fs = require("fs");
const polkit = {Result: {YES: "yes", NO: "no", NOT_HANDLED: null}, rules: [],
                addRule(rule) { this.rules.push(rule); }};
new Function("polkit", fs.readFileSync(process.argv[1], "utf8"))(polkit);
const answers = {};
for (const user of ["obscura", "pi", "root", "obscura2", "nobody"])
    for (const id of JSON.parse(process.argv[2]))
        answers[user + " " + id] = polkit.rules.map(rule => rule({id}, {user})).find(
            answer => answer !== null && answer !== undefined) || null;
console.log(JSON.stringify(answers));
"""
    result = subprocess.run([node, "-e", script, str(POLKIT_RULE), json.dumps(LOGIN1_ACTIONS)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    granted = {key for key, answer in json.loads(result.stdout).items() if answer is not None}
    assert granted == {"obscura org.freedesktop.login1.power-off",
                       "obscura org.freedesktop.login1.power-off-multiple-sessions"}


def test_polkit_rule_is_es5_for_polkits_duktape() -> None:
    """polkit 122 runs rules in duktape (ECMAScript 5.1): no arrow functions, let, const."""
    code = "\n".join(line for line in POLKIT_RULE.read_text(encoding="utf-8").splitlines()
                     if not line.lstrip().startswith("//"))
    for es6 in ("=>", "let ", "const ", "`"):
        assert es6 not in code, es6


def _fake_systemctl(directory: Path, exit_status: int, message: str = "") -> dict[str, str]:
    """An environment whose ``systemctl`` records its arguments in ``directory/calls``,
    prints ``message`` on stderr and exits with ``exit_status``."""
    directory.mkdir(exist_ok=True)
    script = directory / "systemctl"
    script.write_text(f'#!/bin/sh\necho "$@" >> "{directory}/calls"\n'
                      f'echo "{message}" >&2\nexit {exit_status}\n', encoding="utf-8")
    script.chmod(0o755)
    return {**os.environ, "PATH": f"{directory}:{os.environ['PATH']}"}


def test_power_off_asks_systemctl(tmp_path, monkeypatch) -> None:
    from firmware.commands.run import power_off

    monkeypatch.setattr(os, "environ", _fake_systemctl(tmp_path, 0))
    power_off()
    assert (tmp_path / "calls").read_text() == "poweroff\n"


def test_a_refused_power_off_is_an_error(tmp_path, monkeypatch) -> None:
    from firmware.commands.run import PowerOffError, power_off

    monkeypatch.setattr(os, "environ", _fake_systemctl(
        tmp_path, 1, "Call to PowerOff failed: Access denied"))
    with pytest.raises(PowerOffError, match="exit status 1 .Call to PowerOff failed: Access denied"):
        power_off()


def test_no_systemctl_is_an_error(tmp_path, monkeypatch) -> None:
    from firmware.commands.run import PowerOffError, power_off

    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no systemctl
    with pytest.raises(PowerOffError, match="could not run `systemctl poweroff`"):
        power_off()


POWER_BUTTON_HELD = """
import sys
from firmware import cli, daemon
from firmware.state_machine import PowerHeld

class PowerButtonHeld(daemon.Daemon):
    def run(self, *args, **kwargs):
        self.post(PowerHeld())
        return super().run(*args, **kwargs)

daemon.Daemon = PowerButtonHeld
sys.exit(cli.main(sys.argv[1:]))
"""


def test_obscura_run_exits_non_zero_when_power_off_is_refused(tmp_path) -> None:
    """The power button stops the daemon, then `systemctl poweroff` is denied: `obscura run`
    must end with a failure so that Restart=on-failure brings the camera back."""
    config = tmp_path / "config.toml"
    config.write_text(f'[camera]\nsource = "simulator"\n[output]\nstorage_path = '
                      f'"{tmp_path / "card"}"\n', encoding="utf-8")
    (tmp_path / "card").mkdir()
    env = _fake_systemctl(tmp_path / "bin", 1, "Access denied")
    result = subprocess.run(
        [sys.executable, "-c", POWER_BUTTON_HELD, "run", "--pins", "none", "--config",
         str(config), "--socket", str(tmp_path / "control.sock")],
        capture_output=True, text=True, timeout=120, env=env,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert (tmp_path / "bin" / "calls").read_text() == "poweroff\n", result.stderr
    assert result.returncode == 1, result.stderr
    assert "obscura: error: power button: `systemctl poweroff` failed" in result.stderr
