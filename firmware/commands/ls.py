"""``obscura ls [-n 20]``: the latest photos on the card, newest first."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from firmware.commands.status import format_size
from firmware.config import DEFAULT_CONFIG_PATHS, load_config
from firmware.control_client import add_client_arguments, connect
from firmware.control_socket import ControlError
from pipeline.errors import ObscuraError

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".dng", ".tif", ".tiff")


def latest_photos(storage_path: Path, limit: int) -> list[Path]:
    """The ``limit`` newest photo files under ``storage_path/DCIM`` (or ``storage_path``)."""
    root = storage_path / "DCIM"
    root = root if root.is_dir() else storage_path
    photos = [  # not the daemon's hidden journal or temporary files
        path for path in root.rglob("*")
        if path.suffix.lower() in PHOTO_SUFFIXES
        and not any(part.startswith(".") for part in path.relative_to(root).parts)
    ]
    photos.sort(key=lambda path: path.stat().st_mtime, reverse=True)
    return photos[:limit]


def _storage_path(args: argparse.Namespace) -> Path:
    """The running daemon's storage path, else the configured one."""
    if args.storage is not None:
        return Path(args.storage)
    try:
        with connect(args) as client:
            reply = client.request("config.get", key="output.storage_path")
        return Path(reply["output.storage_path"])
    except ControlError:
        return Path(load_config(DEFAULT_CONFIG_PATHS).output.storage_path)


def run(args: argparse.Namespace) -> int:
    """List the latest photos."""
    storage = _storage_path(args)
    if not storage.is_dir():
        raise ObscuraError(f"{storage}: no such folder (the storage path"
                           + (", --storage)" if args.storage is not None else " in force)"))
    photos = latest_photos(storage, args.number)
    if args.json:
        rows = [
            {"path": str(p), "bytes": p.stat().st_size, "mtime": p.stat().st_mtime}
            for p in photos
        ]
        print(json.dumps(rows, indent=2))
        return 0
    for path in photos:
        info = path.stat()
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.st_mtime))
        print(f"{when}  {format_size(info.st_size):>9}  {path.relative_to(storage)}")
    if not photos:
        print(f"no photos in {storage}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``ls`` subcommand."""
    parser = subparsers.add_parser("ls", help="the latest photos, newest first")
    parser.add_argument("-n", "--number", type=int, default=20, help="how many")
    parser.add_argument("--storage", help="the storage path (default: the camera's)")
    add_client_arguments(parser)
    parser.set_defaults(run=run)
