"""``obscura run``: the camera daemon (systemd starts it; SIGTERM stops it cleanly).

Wires the daemon to its surroundings: the configuration files (SIGHUP reloads them), the
control socket (``obscura status``/``shoot``/``config``), systemd's notifications
(READY=1 once the camera is ready, the watchdog from the main loop, STOPPING=1).
"""

from __future__ import annotations

import argparse
import logging
import signal
import subprocess
import threading
import time
from pathlib import Path

logger = logging.getLogger(__name__)

#: Seconds between watchdog pings (the unit's WatchdogSec is 30).
WATCHDOG_PING_S = 5.0


def run(args: argparse.Namespace) -> int:
    """Run the daemon until SIGTERM/SIGINT or the power button."""
    from firmware.config import DEFAULT_CONFIG_PATHS
    from firmware.config_store import ConfigStore
    from firmware.control_socket import ControlError, ControlHandler, ControlServer, socket_path
    from firmware.daemon import Daemon, camera_from_config
    from firmware.state_machine import ShutdownRequested
    from firmware.systemd_notify import SystemdNotifier
    from hardware.controls import hardware_pin_factory, mock_pin_factory
    from hardware.storage import PhotoStore

    daemons: list[Daemon] = []
    paths = [Path(p) for p in args.config] or list(DEFAULT_CONFIG_PATHS)
    config_store = ConfigStore(paths, apply=lambda config: [d.apply_config(config) for d in daemons])
    config_store.reload()
    config = config_store.config
    pin_factory = {"hardware": hardware_pin_factory, "mock": mock_pin_factory,
                   "none": lambda: None}[args.pins]()

    def poweroff() -> None:
        subprocess.run(["systemctl", "poweroff"], check=False)

    daemon = Daemon(
        config, camera=camera_from_config(config), store=PhotoStore(config["output.storage_path"]),
        pin_factory=pin_factory, poweroff=poweroff if args.poweroff else None,
    )
    daemons.append(daemon)

    # Signal handlers only enqueue (or hand the reload to a thread); the main loop decides.
    signal.signal(signal.SIGTERM, lambda signum, frame: daemon.post(ShutdownRequested()))
    signal.signal(signal.SIGINT, lambda signum, frame: daemon.post(ShutdownRequested()))
    signal.signal(signal.SIGHUP, lambda signum, frame: threading.Thread(
        target=config_store.reload, name="config-reload", daemon=True).start())

    server = None
    try:
        server = ControlServer(socket_path(args.socket), ControlHandler(daemon, config_store))
    except (ControlError, OSError) as exc:
        logger.warning("no control socket: %s", exc)
    last_ping = [0.0]
    with SystemdNotifier() as notifier:
        def on_tick() -> None:
            now = time.monotonic()
            if now - last_ping[0] >= WATCHDOG_PING_S:
                notifier.watchdog()
                last_ping[0] = now

        try:
            daemon.run(on_ready=lambda: notifier.ready("ready"), on_tick=on_tick)
        finally:
            notifier.stopping()
            if server is not None:
                server.close()
    return 0


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
