"""``obscura shoot [--mode hdr]``: the remote shutter; returns once the shot is on the card."""

from __future__ import annotations

import argparse
import json
import sys

from firmware.capture_mode import MODE_NAMES
from firmware.control_client import add_client_arguments, connect


def run(args: argparse.Namespace) -> int:
    """Ask the daemon for one shot; 1 if it was not taken."""
    with connect(args) as client:
        result = client.request("shoot", mode=args.mode)
    taken = result.get("taken", True)
    if args.json:
        print(json.dumps(result, indent=2))
    elif taken:
        files = ", ".join(map(str, result.get("files", [])))
        print(f"shot {result.get('shot', '')} ({result.get('mode', args.mode)})"
              + (f": {files}" if files else ""))
    else:
        print(f"obscura: shot not taken: {result.get('reason', 'refused')}", file=sys.stderr)
    return 0 if taken else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``shoot`` subcommand."""
    parser = subparsers.add_parser("shoot", help="take a photo (the remote shutter)")
    parser.add_argument(
        "--mode", choices=MODE_NAMES, help="this shot's mode (default: the camera's)"
    )
    add_client_arguments(parser)
    parser.set_defaults(run=run)
