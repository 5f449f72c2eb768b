"""``obscura logs [-n 50] [-f]``: the service's journal (``journalctl -u obscura``)."""

from __future__ import annotations

import argparse
import shutil
import subprocess

from pipeline.errors import ObscuraError

UNIT = "obscura.service"


def run(args: argparse.Namespace) -> int:
    """Show the journal of the service; journalctl's exit status."""
    journalctl = shutil.which("journalctl")
    if journalctl is None:
        raise ObscuraError(
            "journalctl not found: the daemon logs to the systemd journal of the camera"
        )
    command = [journalctl, "--unit", UNIT, "--lines", str(args.lines), "--no-pager"]
    if args.follow:
        command.append("--follow")
    return subprocess.run(command, check=False).returncode


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``logs`` subcommand."""
    parser = subparsers.add_parser("logs", help="the camera service's log (journalctl)")
    parser.add_argument("-n", "--lines", type=int, default=50, help="how many lines")
    parser.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    parser.set_defaults(run=run)
