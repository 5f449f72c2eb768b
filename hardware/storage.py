"""Storage: files on the card are written whole or not at all, and no shot is lost.

:class:`PhotoStore` owns the card: DCF names (``DCIM/100OBSCU/OBS_0001.JPG``), the
journal of raw bursts waiting to be developed, and the free-space check before each shot.
It remembers which file system the card is, so a pulled card is never replaced by the
folder it was mounted on. Every failure is a :class:`StorageError` subclass that says what
went wrong: card missing, full, read-only, failing, or the system out of resources.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import numpy.typing as npt

from pipeline.errors import ObscuraError

logger = logging.getLogger(__name__)

#: What a file can be written from: bytes, or any C-contiguous buffer (a numpy array).
Buffer = Union[bytes, bytearray, memoryview, npt.NDArray[Any]]


class StorageError(ObscuraError, OSError):
    """A file could not be written (card missing, full, read-only...)."""


class CardMissingError(StorageError):
    """The card is not there: no storage folder, or not the file system it was at start."""


class CardFullError(StorageError):
    """Not enough free space on the card (ENOSPC, EDQUOT, or the check before a shot)."""


class CardReadOnlyError(StorageError):
    """The card is there but refuses writes: read-only (EROFS) or no permission."""


class CardFailedError(StorageError):
    """The card is there but a write failed (EIO...): a failing or corrupt card."""


class OutOfResourcesError(StorageError):
    """The system, not the card, ran out of something (file descriptors, memory)."""


#: The error each ``errno`` of a failed file operation means; anything else is
#: :class:`CardFailedError`.
_ERRNO_ERRORS: dict[int, tuple[type[StorageError], str]] = {
    errno.ENOENT: (CardMissingError, "card missing"),
    errno.ENOTDIR: (CardMissingError, "card missing"),
    errno.ENODEV: (CardMissingError, "card missing"),
    errno.ENXIO: (CardMissingError, "card missing"),
    errno.ESTALE: (CardMissingError, "card missing"),
    errno.ENOSPC: (CardFullError, "card full"),
    errno.EDQUOT: (CardFullError, "card full (quota)"),
    errno.EROFS: (CardReadOnlyError, "card read-only"),
    errno.EACCES: (CardReadOnlyError, "card not writable (permissions)"),
    errno.EPERM: (CardReadOnlyError, "card not writable (permissions)"),
    errno.EMFILE: (OutOfResourcesError, "too many open files in the daemon (not the card)"),
    errno.ENFILE: (OutOfResourcesError, "too many open files in the system (not the card)"),
    errno.ENOMEM: (OutOfResourcesError, "out of memory (not the card)"),
    errno.ENOBUFS: (OutOfResourcesError, "out of buffer space (not the card)"),
}


def storage_error(subject: object, exc: OSError, doing: str = "") -> StorageError:
    """The :class:`StorageError` subclass for ``exc``, raised while ``doing`` on ``subject``.

    >>> storage_error("/media/card/x.jpg", OSError(errno.ENOSPC, "No space left on device"))
    CardFullError('/media/card/x.jpg: card full (No space left on device)')
    """
    if isinstance(exc, StorageError):
        return exc
    kind, meaning = _ERRNO_ERRORS.get(exc.errno or 0, (CardFailedError, "card error"))
    detail = exc.strerror or str(exc)
    error = kind(f"{subject}: {doing + ': ' if doing else ''}{meaning} ({detail})")
    error.errno = exc.errno
    return error


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, view: memoryview) -> None:
    """Write every byte of ``view`` (1-D bytes) to ``fd``, straight from its memory."""
    while view:
        view = view[os.write(fd, view):]


def _write_via_temp(path: Path, data: Buffer, temp_dir: Path, prefix: str, mode: int,
                    device: int | None = None) -> Path:
    view = memoryview(data).cast("B")  # TypeError for a non-contiguous buffer, before any file
    try:
        fd, temp_name = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=temp_dir)
    except OSError as exc:
        raise storage_error(path, exc, f"cannot create a file in {temp_dir}") from None
    try:
        try:
            if device is not None and os.fstat(fd).st_dev != device:
                raise OSError(errno.ENODEV, f"{temp_dir} is no longer on the card")
            _write_all(fd, view)
            os.fchmod(fd, mode)  # mkstemp makes 0600: photos must be readable
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp_name, path)
        _fsync_directory(path.parent if str(path.parent) else Path("."))
    except OSError as exc:
        try:
            os.unlink(temp_name)
        except FileNotFoundError:
            pass
        raise storage_error(path, exc, "write failed") from None
    return path


def write_atomic(path: str | os.PathLike[str], data: Buffer, mode: int = 0o644) -> Path:
    """Write ``data`` (bytes, or any C-contiguous buffer such as a numpy array, written
    without a copy) to ``path`` so that a reader, or a power cut, sees all of it or nothing.

    temp file in the same directory -> fsync -> ``os.replace`` -> fsync(directory), as
    Radicale's storage and every careful database do. The file gets permissions ``mode``
    (not the umask's: 0644 lets the SSH user copy photos off).
    """
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    return _write_via_temp(path, data, directory, f".{path.name}.", mode)


#: Gives the bytes free for the file system holding a path (injectable for tests).
FreeSpaceProvider = Callable[[Path], int]

#: DCF (JEITA CP-3461) names: folder ``100OBSCU``..``999OBSCU``, files ``OBS_0001``..``9999``.
DCF_FOLDER_SUFFIX = "OBSCU"
DCF_FILE_PREFIX = "OBS_"
MERGED_FILE_PREFIX = "OBSM"
_DCF_FOLDER = re.compile(rf"([1-9]\d\d){DCF_FOLDER_SUFFIX}")
_DCF_FILE = re.compile(rf"(?:{DCF_FILE_PREFIX}|{MERGED_FILE_PREFIX})(\d{{4}})\.(?:JPG|DNG)")
#: Permissions of photos: readable by the SSH user who copies them off.
PHOTO_MODE = 0o644
#: Extension and prefix of each kind of output (``output.keep``).
OUTPUT_FILES = {"jpeg": (DCF_FILE_PREFIX, ".JPG"), "dng": (DCF_FILE_PREFIX, ".DNG"),
                "merged_dng": (MERGED_FILE_PREFIX, ".DNG")}  # fmt: skip


def free_bytes(path: Path) -> int:
    """Bytes an unprivileged process may still write on the file system holding ``path``."""
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


def write_atomic_in(
    path: str | os.PathLike[str], data: Buffer, temp_dir: Path, mode: int = 0o644,
    device: int | None = None,
) -> Path:
    """:func:`write_atomic`, with the temporary file in ``temp_dir`` (same file system):
    the destination folder never holds a partial file, even for an instant. With
    ``device``, a temporary file on another file system (``st_dev``) is
    :class:`CardMissingError`."""
    path = Path(path)
    return _write_via_temp(path, data, temp_dir, f"{path.name}.", mode, device)


@dataclass(frozen=True, order=True)
class ShotName:
    """A DCF file number: folder ``folder``OBSCU (100..999), file number 1..9999."""

    folder: int
    number: int

    @property
    def folder_name(self) -> str:
        """``100OBSCU``."""
        return f"{self.folder}{DCF_FOLDER_SUFFIX}"

    @property
    def stem(self) -> str:
        """``OBS_0001``."""
        return f"{DCF_FILE_PREFIX}{self.number:04d}"

    @property
    def key(self) -> str:
        """``100-0001``: a name unique on the card (journal folder names)."""
        return f"{self.folder}-{self.number:04d}"

    @classmethod
    def parse_key(cls, key: str) -> ShotName:
        """The inverse of :attr:`key`."""
        folder, number = key.split("-")
        return cls(int(folder), int(number))

    def next(self) -> ShotName:
        """The following number, rolling over into the next folder after 9999."""
        if self.number < 9999:
            return ShotName(self.folder, self.number + 1)
        if self.folder >= 999:
            raise CardFullError("DCF numbering exhausted (999OBSCU/OBS_9999): empty the card")
        return ShotName(self.folder + 1, 1)


@dataclass(frozen=True)
class CardIdentity:
    """Which file system the store is on: what a pulled card or another one changes.

    ``device`` is the storage folder's ``st_dev``, ``journal_device`` that of
    ``.obscura/journal``; ``is_mount_point`` whether the folder was a mount point.
    """

    device: int
    journal_device: int
    is_mount_point: bool


class PhotoStore:
    """The card: DCF folders of photos, numbering, free space, and the folders the journal
    (:mod:`firmware.journal`, which owns what is in them) keeps its shots in.

    Layout under ``root``::

        DCIM/100OBSCU/OBS_0001.JPG, OBS_0001.DNG, OBSM0001.DNG
        .obscura/counter.json        last DCF number used (survives emptied folders)
        .obscura/journal/100-0001/   a shot not yet developed, one folder per shot name
        .obscura/failed/             shots whose development failed, by shot name
        .obscura/tmp/                temporary files, renamed into place when complete

    Every file is written temp -> fsync -> rename -> fsync(dir); leftover temporary files
    are removed when a card is opened. Folder names under ``journal/`` and ``failed/``
    are shot names (:attr:`ShotName.key`): numbering never reuses them.

    :meth:`open` remembers the card (:class:`CardIdentity`); before each write, and for
    each temporary file, the folder must still be that file system. A card pulled from
    under its mount point (the empty folder left behind) or a folder that is no longer a
    mount point is :class:`CardMissingError`: nothing is written to the file system
    underneath, and numbering is not restarted there. :meth:`open` again (the daemon's
    recovery) accepts the card back, or another card mounted there, and numbers on from it.

    Parameters
    ----------
    root : path
        The card's mount point (``output.storage_path``).
    free_space : callable, optional
        ``free_space(path) -> bytes`` (default :func:`free_bytes`); tests inject one.
    reserve_bytes : int
        Space always left free.
    require_mount_point : bool
        Refuse a storage folder that is not a mount point (a card or USB stick that must
        be mounted there), even at the first start. By default a folder on the system's
        own disk (``/var/lib/obscura``) is used as it is, and once a card was mounted
        there, only a mounted card is.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        free_space: FreeSpaceProvider | None = None,
        reserve_bytes: int = 16 * 1024 * 1024,
        require_mount_point: bool = False,
    ) -> None:
        self.root = Path(root)
        self.dcim = self.root / "DCIM"
        self.state_dir = self.root / ".obscura"
        self.journal_dir = self.state_dir / "journal"
        self.failed_dir = self.state_dir / "failed"
        self.tmp_dir = self.state_dir / "tmp"
        self._counter_path = self.state_dir / "counter.json"
        self._free_space = free_space or free_bytes
        self.reserve_bytes = reserve_bytes
        self.require_mount_point = require_mount_point
        self._lock = threading.Lock()
        self._last: ShotName | None = None
        self._card: CardIdentity | None = None

    # ------------------------------------------------------------------ the card
    def open(self) -> PhotoStore:
        """Check the card, make the folders, clear temporary files and incomplete captures.

        Called again (after :class:`CardMissingError`), it takes the card back, or another
        card mounted at ``root``, and numbers on from what is on it; never the folder a
        card was mounted on.
        """
        self._check_folder()
        is_mount_point = os.path.ismount(self.root)
        device = self._stat(self.root).st_dev
        card = self._card
        if not is_mount_point and self.require_mount_point:
            raise CardMissingError(f"{self.root}: no card mounted there "
                                   "(the storage folder must be a mount point)")
        if not is_mount_point and card is not None and card.is_mount_point:
            raise CardMissingError(f"{self.root}: card missing: no longer mounted there "
                                   "(not writing to the disk underneath)")
        if card is not None and not card.is_mount_point and device != card.device:
            raise CardMissingError(f"{self.root}: card missing: another file system "
                                   f"(device {device:#x}, was {card.device:#x})")
        try:
            for directory in (self.dcim, self.journal_dir, self.failed_dir, self.tmp_dir):
                directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise storage_error(self.root, exc, "cannot create folders") from None
        identity = CardIdentity(device, self._stat(self.journal_dir).st_dev, is_mount_point)
        try:
            if card is None or identity != card:  # the card back: its leftovers can wait
                self._clear_leftovers()
            with self._lock:
                self._last = self._scan_last()
                self._card = identity
        except OSError as exc:
            raise storage_error(self.root, exc, "cannot read the card") from None
        return self

    def _clear_leftovers(self) -> None:
        for leftover in self.tmp_dir.iterdir():
            logger.warning("removing the partial file %s", leftover)
            _remove(leftover)

    @property
    def card(self) -> CardIdentity | None:
        """The card :meth:`open` found (None before)."""
        return self._card

    def _stat(self, path: Path) -> os.stat_result:
        try:
            return os.stat(path)
        except OSError as exc:
            raise storage_error(path, exc) from None

    def _check_folder(self) -> None:
        if not self.root.is_dir():
            raise CardMissingError(f"{self.root}: card missing (no such folder)")
        if not os.access(self.root, os.W_OK | os.X_OK):
            if os.statvfs(self.root).f_flag & os.ST_RDONLY:
                raise CardReadOnlyError(f"{self.root}: card read-only (mounted read-only, "
                                        "or its lock switch is on)")
            raise CardReadOnlyError(f"{self.root}: card not writable (permissions)")

    def check_present(self) -> None:
        """Raise a :class:`StorageError` unless ``root`` is a writable folder and, once
        :meth:`open` found the card, still that card: :class:`CardMissingError` if it was
        pulled (another file system, or no longer a mount point), :class:`CardReadOnlyError`
        if it cannot be written."""
        self._check_folder()
        card = self._card
        if card is None:
            return
        if (self._stat(self.root).st_dev != card.device
                or (card.is_mount_point and not os.path.ismount(self.root))):
            raise CardMissingError(f"{self.root}: card missing: the card it held was removed")
        if self._stat(self.journal_dir).st_dev != card.journal_device:
            raise CardMissingError(f"{self.journal_dir}: card missing: not on the card any more")

    def _check_card(self) -> CardIdentity:
        """The card to write to: :meth:`check_present` after :meth:`open`."""
        card = self._card
        if card is None:
            raise StorageError("PhotoStore.open() was not called")
        self.check_present()
        return card

    def free_bytes(self) -> int:
        """Free bytes on the card (:class:`CardMissingError` if it is gone)."""
        self.check_present()
        try:
            return int(self._free_space(self.root))
        except OSError as exc:
            raise storage_error(self.root, exc, "free space") from None

    def check_space(self, needed_bytes: int) -> int:
        """Free bytes, or :class:`CardFullError` if fewer than ``needed_bytes`` + reserve."""
        free = self.free_bytes()
        if free < needed_bytes + self.reserve_bytes:
            raise CardFullError(
                f"{self.root}: card full: {free / 1e6:.1f} MB free, a shot needs "
                f"{(needed_bytes + self.reserve_bytes) / 1e6:.1f} MB"
            )
        return free

    # ------------------------------------------------------------------ numbering
    def _scan_last(self) -> ShotName:
        last = ShotName(100, 0)
        try:
            counter = json.loads(self._counter_path.read_text(encoding="utf-8"))
            last = max(last, ShotName(int(counter["folder"]), int(counter["number"])))
        except FileNotFoundError:
            pass
        except (OSError, ValueError, KeyError, TypeError) as exc:
            logger.warning("%s unreadable (%s): numbering from the files", self._counter_path, exc)
        for folder in self.dcim.iterdir():
            match = _DCF_FOLDER.fullmatch(folder.name)
            if not match or not folder.is_dir():
                continue
            for file in folder.iterdir():
                file_match = _DCF_FILE.fullmatch(file.name)
                if file_match:
                    last = max(last, ShotName(int(match.group(1)), int(file_match.group(1))))
        for entry in list(self.journal_dir.iterdir()) + list(self.failed_dir.iterdir()):
            try:
                last = max(last, ShotName.parse_key(entry.name))
            except ValueError:
                continue
        return last

    def reserve_name(self) -> ShotName:
        """The next DCF number, recorded on the card before it is used."""
        with self._lock:
            card = self._check_card()
            assert self._last is not None
            name = self._last.next()
            data = json.dumps({"folder": name.folder, "number": name.number}).encode()
            write_atomic_in(self._counter_path, data, self.tmp_dir, device=card.journal_device)
            self._last = name
            return name

    def output_path(self, name: ShotName, kind: str) -> Path:
        """Where output ``kind`` ("jpeg", "dng", "merged_dng") of shot ``name`` goes."""
        prefix, suffix = OUTPUT_FILES[kind]
        return self.dcim / name.folder_name / f"{prefix}{name.number:04d}{suffix}"

    def write_output(self, name: ShotName, kind: str, data: bytes) -> Path:
        """Write one output file of a shot, atomically."""
        card = self._check_card()
        path = self.output_path(name, kind)
        if not path.parent.is_dir():
            try:  # DCIM itself must be there: never made anew off the card
                path.parent.mkdir(exist_ok=True)
                _fsync_directory(self.dcim)
            except OSError as exc:
                raise storage_error(path.parent, exc) from None
        return write_atomic_in(path, data, self.tmp_dir, mode=PHOTO_MODE,
                               device=card.journal_device)

    # -------------------------------------------- files under .obscura (the journal's)
    def new_folder(self, directory: Path) -> Path:
        """Make ``directory`` (under :attr:`state_dir`) empty, durably: an older one of the
        same name is removed first."""
        self._check_card()
        try:
            try:
                directory.mkdir()
            except FileExistsError:
                _remove(directory)
                directory.mkdir()
            _fsync_directory(directory.parent)
        except OSError as exc:
            raise storage_error(directory, exc) from None
        return directory

    def write_file(self, path: Path, data: Buffer) -> Path:
        """Write a file on the card atomically (temp in ``.obscura/tmp`` -> fsync ->
        rename -> fsync(folder)), from ``data``'s buffer as it is."""
        device = self._check_card().journal_device
        return write_atomic_in(path, data, self.tmp_dir, device=device)

    def remove_file(self, path: Path) -> None:
        """Remove a file durably (fsync of its folder); a missing one is no error."""
        self._check_card()
        try:
            path.unlink()
            _fsync_directory(path.parent)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise storage_error(path, exc) from None

    def remove_folder(self, directory: Path) -> None:
        """Remove a folder and what is in it, durably."""
        self._check_card()
        _remove(directory)
        try:
            _fsync_directory(directory.parent)
        except OSError as exc:
            raise storage_error(directory.parent, exc) from None

    def set_aside(self, directory: Path) -> Path:
        """Move a folder into ``.obscura/failed/`` (replacing one of the same name)."""
        self._check_card()
        target = self.failed_dir / directory.name
        if target.exists():
            _remove(target)
        try:
            os.replace(directory, target)
            _fsync_directory(directory.parent)
            _fsync_directory(self.failed_dir)
        except OSError as exc:
            raise storage_error(directory, exc, "cannot set it aside") from None
        return target


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
