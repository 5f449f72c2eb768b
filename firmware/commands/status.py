"""``obscura status``: what the camera is doing, from the running daemon."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from typing import Any

from firmware.control_client import add_client_arguments, connect

#: The fields shown first, with their labels; any others follow under their own names.
STATUS_LABELS = {
    "state": "state",
    "mode": "mode",
    "look": "look",
    "shots": "shots",
    "free_bytes": "free space",
    "queue": "queue",
    "queue_length": "queue",
    "temperature_c": "temperature",
    "config_error": "config error",
}


def format_size(n_bytes: int | float) -> str:
    """``1234567`` -> ``'1.2 MB'`` (decimal units, as card sizes are sold)."""
    if abs(n_bytes) < 1000:
        return f"{n_bytes:.0f} B"
    size = n_bytes / 1000
    for unit in ("kB", "MB"):
        if abs(size) < 1000:
            return f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"


def _format_value(name: str, value: Any) -> str:
    if name == "free_bytes" and isinstance(value, int | float):
        return format_size(value)
    if name == "temperature_c" and isinstance(value, int | float):
        return f"{value:.1f} °C"
    if value is None:
        return "-"
    return value if isinstance(value, str) else json.dumps(value)


def format_status(status: Mapping[str, Any]) -> str:
    """The daemon's status as aligned ``label  value`` lines; no config error line when none."""
    shown = {k: v for k, v in status.items() if not (k == "config_error" and v is None)}
    names = [n for n in STATUS_LABELS if n in shown] + [n for n in shown if n not in STATUS_LABELS]
    labels = {name: STATUS_LABELS.get(name, name.replace("_", " ")) for name in names}
    width = max((len(label) for label in labels.values()), default=0)
    return "\n".join(f"{labels[n]:<{width}}  {_format_value(n, shown[n])}" for n in names)


def run(args: argparse.Namespace) -> int:
    """Print the daemon's status."""
    with connect(args) as client:
        status = client.request("status")
    print(json.dumps(status, indent=2) if args.json else format_status(status))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``status`` subcommand."""
    parser = subparsers.add_parser(
        "status", help="state, mode, look, shots, free space, queue and temperature"
    )
    add_client_arguments(parser)
    parser.set_defaults(run=run)
