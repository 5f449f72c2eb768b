"""Storage: files on the card are written whole or not at all."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from pipeline.errors import ObscuraError

logger = logging.getLogger(__name__)


class StorageError(ObscuraError, OSError):
    """A file could not be written (card missing, full, read-only...)."""


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` so that a reader, or a power cut, sees all of it or nothing.

    temp file in the same directory -> fsync -> ``os.replace`` -> fsync(directory), as
    Radicale's storage and every careful database do.
    """
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    try:
        fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise StorageError(f"{path}: cannot create a file in {directory}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp_name, path)
        _fsync_directory(directory)
    except OSError as exc:
        try:
            os.unlink(temp_name)
        except FileNotFoundError:
            pass
        raise StorageError(f"{path}: write failed: {exc.strerror or exc}") from None
    return path
