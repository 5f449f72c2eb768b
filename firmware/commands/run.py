"""``obscura run``: the camera daemon (systemd starts it; SIGTERM stops it cleanly).

Wires the daemon to its surroundings: the configuration files (SIGHUP reloads them), the
control socket (``obscura status``/``shoot``/``config``), systemd's notifications
(READY=1 once the camera is ready, the watchdog from the main loop, STOPPING=1).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from pipeline.errors import ObscuraError

logger = logging.getLogger(__name__)

#: Seconds between watchdog pings (the unit's WatchdogSec is 30).
WATCHDOG_PING_S = 5.0
#: Seconds ``systemctl poweroff`` may take to hand the power-off to logind.
POWEROFF_TIMEOUT_S = 60.0


def run(args: argparse.Namespace) -> int:
    """Run the daemon until SIGTERM/SIGINT or the power button."""
    from firmware.config import DEFAULT_CONFIG_PATHS, board_memory_bytes
    from firmware.config_store import ConfigStore, reload_on_sighup
    from firmware.control_server import ControlServer
    from firmware.control_socket import ControlError, ControlHandler, socket_path
    from firmware.daemon import Daemon
    from firmware.devices import camera_from_config
    from firmware.events import ReloadRequested, ShutdownRequested
    from firmware.systemd_notify import SystemdNotifier
    from hardware.controls import ControlsError, hardware_pin_factory, mock_pin_factory
    from hardware.device_access import blocked_camera_devices
    from hardware.storage import PhotoStore

    daemons: list[Daemon] = []
    paths = [Path(p) for p in args.config] or list(DEFAULT_CONFIG_PATHS)
    # A bad file runs the camera on the defaults (for this board's memory), shown as
    # status's config_error and in the log; reload() never raises.
    config_store = ConfigStore(
        paths, apply=lambda config: [d.apply_config(config) for d in daemons],
        mem_total_bytes=board_memory_bytes(),
    )
    config_store.reload()
    config = config_store.config
    controls_error = None
    try:
        pin_factory = {"hardware": hardware_pin_factory, "mock": mock_pin_factory,
                       "none": lambda: None}[args.pins]()
    except ControlsError as exc:
        # The camera works without its buttons: the control socket still shoots.
        controls_error = f"{exc}; running without buttons and LED"
        logger.error("%s (on a computer without GPIO, try `obscura run --pins mock` with "
                     "camera.source = \"simulator\", or `obscura demo`)", controls_error)
        pin_factory = None

    daemon = Daemon(
        config, camera=camera_from_config(config), store=PhotoStore(config.output.storage_path),
        pin_factory=pin_factory, controls_error=controls_error,
        blocked_devices=blocked_camera_devices if config.camera.source == "picamera2" else None,
        poweroff=power_off if args.poweroff else None, reload_config=config_store.reload,
    )
    daemons.append(daemon)

    # Signal handlers only enqueue; the daemon's main loop decides (SIGHUP: it reads the
    # files again, through config_store.reload, and applies them).
    signal.signal(signal.SIGTERM, lambda signum, frame: daemon.post(ShutdownRequested()))
    signal.signal(signal.SIGINT, lambda signum, frame: daemon.post(ShutdownRequested()))
    on_sighup = contextlib.ExitStack()
    on_sighup.enter_context(reload_on_sighup(lambda: daemon.post(ReloadRequested())))

    server = None
    try:
        server = ControlServer(socket_path(args.socket), ControlHandler(daemon, config_store))
    except (ControlError, OSError) as exc:
        logger.warning("no control socket: %s", exc)
    last_ping = [0.0]
    shown = [""]
    with SystemdNotifier() as notifier:
        def on_tick() -> None:
            now = time.monotonic()
            if now - last_ping[0] >= WATCHDOG_PING_S:
                notifier.watchdog()
                last_ping[0] = now
                line = status_line(daemon.status())
                if line != shown[0]:
                    notifier.status(line)
                    shown[0] = line

        def on_ready() -> None:
            shown[0] = status_line(daemon.status())
            notifier.ready(shown[0])

        try:
            daemon.run(on_ready=on_ready, on_tick=on_tick)
        finally:
            notifier.stopping()
            on_sighup.close()
            if server is not None:
                server.close()
    return daemon.exit_status


def status_line(status: dict[str, Any]) -> str:
    """systemd's STATUS= for a daemon status: ``ready``, or the error and its message."""
    if status.get("error"):
        return f"{status['state']}: {status['error']}: {status.get('error_message', '')}".strip()
    return str(status["state"])


class PowerOffError(ObscuraError):
    """``systemctl poweroff`` failed once the daemon had stopped for the power button."""


def power_off() -> None:
    """Power the Pi off: ``systemctl poweroff``, which asks logind, which asks polkit (the
    rule setup.sh installs, systemd/50-obscura-poweroff.rules, lets the service's user).

    Called once the daemon has stopped. Should it fail, the error ends ``obscura run`` with
    exit status 1 (the CLI prints it), so that systemd (Restart=on-failure) starts the camera
    again rather than leave the Pi on with no camera running.

    Raises
    ------
    PowerOffError
        If systemctl is missing, gives no answer within ``POWEROFF_TIMEOUT_S`` or exits
        non-zero (polkit denied it, no logind); the message carries its error output.
    """
    try:
        result = subprocess.run(["systemctl", "poweroff"], capture_output=True, text=True,
                                timeout=POWEROFF_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PowerOffError(f"power button: could not run `systemctl poweroff`: {exc}; "
                            "the camera restarts instead") from exc
    if result.returncode != 0:
        output = " ".join((result.stderr or result.stdout).split()) or "no message"
        raise PowerOffError(
            f"power button: `systemctl poweroff` failed with exit status {result.returncode}"
            f" ({output}); the camera restarts instead (is "
            "/etc/polkit-1/rules.d/50-obscura-poweroff.rules installed? ./setup.sh does)")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``run`` subcommand."""
    parser = subparsers.add_parser("run", help="run the camera daemon")
    parser.add_argument("--config", action="append", default=[],
                        help="configuration file (repeatable; later files override)")
    parser.add_argument("--pins", choices=("hardware", "mock", "none"), default="hardware",
                        help="GPIO backend for buttons and LED (mock: simulated pins)")
    parser.add_argument("--socket", default=None, help="control socket path")
    parser.add_argument("--no-poweroff", dest="poweroff", action="store_false",
                        help="the power button stops the daemon without powering off")
    parser.set_defaults(run=run)
