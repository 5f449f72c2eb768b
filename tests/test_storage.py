"""The card: DCF numbering, atomic writes, free space, a pulled or failing card."""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from hardware.storage import (
    CardFailedError,
    CardFullError,
    CardMissingError,
    CardReadOnlyError,
    OutOfResourcesError,
    PhotoStore,
    ShotName,
    write_atomic,
    write_atomic_in,
)


def test_dcf_names_and_rollover() -> None:
    name = ShotName(100, 1)
    assert name.folder_name == "100OBSCU" and name.stem == "OBS_0001" and name.key == "100-0001"
    assert ShotName(100, 9999).next() == ShotName(101, 1)
    assert ShotName.parse_key("123-0042") == ShotName(123, 42)
    with pytest.raises(CardFullError):
        ShotName(999, 9999).next()


def test_numbering_survives_restarts_and_emptied_folders(tmp_path: Path) -> None:
    store = PhotoStore(tmp_path).open()
    first = store.reserve_name()
    store.write_output(first, "jpeg", b"jpeg")
    assert store.output_path(first, "jpeg") == tmp_path / "DCIM/100OBSCU/OBS_0001.JPG"
    assert store.reserve_name() == ShotName(100, 2)
    # a restart continues, even if the user deleted the photos meanwhile
    for path in (tmp_path / "DCIM/100OBSCU").iterdir():
        path.unlink()
    assert PhotoStore(tmp_path).open().reserve_name() == ShotName(100, 3)
    # and files copied onto the card with higher numbers are not overwritten
    (tmp_path / "DCIM/100OBSCU/OBS_0050.JPG").write_bytes(b"x")
    assert PhotoStore(tmp_path).open().reserve_name() == ShotName(100, 51)


def test_files_are_written_from_their_buffers(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    mosaic = rng.integers(0, 2**16, size=(7, 13), dtype=np.uint16)
    packed = rng.integers(0, 256, size=(3, 21), dtype=np.uint8)
    store = PhotoStore(tmp_path).open()
    folder = store.new_folder(store.journal_dir / "100-0001")
    for name, data in (("a", mosaic), ("b", packed), ("c", memoryview(b"abc"))):
        store.write_file(folder / name, data)
    assert [(folder / n).read_bytes() for n in "abc"] == [mosaic.tobytes(), packed.tobytes(), b"abc"]
    with pytest.raises(TypeError):  # not contiguous: refused before any file is made
        write_atomic_in(tmp_path / "strided", mosaic[:, ::2], store.tmp_dir)
    assert not (tmp_path / "strided").exists() and list(store.tmp_dir.iterdir()) == []


def test_partial_files_are_removed_at_start_and_shot_folders_keep_their_numbers(
        tmp_path: Path) -> None:
    store = PhotoStore(tmp_path).open()
    (store.journal_dir / store.reserve_name().key).mkdir()
    (store.failed_dir / "100-0007").mkdir()
    (store.tmp_dir / "OBS_0001.JPG.abc.tmp").write_bytes(b"partial")
    (store.tmp_dir / "counter.json.tmp").unlink(missing_ok=True)
    (tmp_path / ".obscura/counter.json").unlink()  # numbering from the folders alone
    store = PhotoStore(tmp_path).open()
    assert list(store.tmp_dir.iterdir()) == []
    assert store.reserve_name() == ShotName(100, 8)  # neither folder's number is reused


def test_free_space_is_checked_with_an_injected_provider(tmp_path: Path) -> None:
    free = {"bytes": 10**9}
    store = PhotoStore(tmp_path, free_space=lambda path: free["bytes"], reserve_bytes=1000)
    store.open()
    assert store.check_space(10**6) == 10**9
    free["bytes"] = 5000
    with pytest.raises(CardFullError, match="card full"):
        store.check_space(4500)
    assert isinstance(CardFullError("x"), OSError)


def test_card_missing(tmp_path: Path) -> None:
    store = PhotoStore(tmp_path / "card")
    with pytest.raises(CardMissingError):
        store.open()
    with pytest.raises(CardMissingError):
        store.free_bytes()


def test_atomic_write_never_leaves_partial_files(tmp_path: Path, monkeypatch) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    target = tmp_path / "OBS_0001.JPG"
    write_atomic_in(target, b"old", temp)

    def failing_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError):
        write_atomic_in(target, b"new but cut short", temp)
    monkeypatch.undo()
    assert target.read_bytes() == b"old"
    assert list(temp.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == [
        "OBS_0001.JPG", "tmp"
    ]


def test_counter_file_is_json_and_atomic(tmp_path: Path) -> None:
    store = PhotoStore(tmp_path).open()
    store.reserve_name()
    counter = json.loads((tmp_path / ".obscura/counter.json").read_text())
    assert counter == {"folder": 100, "number": 1}


def test_files_are_readable_by_others_whatever_the_umask(tmp_path: Path) -> None:
    old_umask = os.umask(0o077)
    try:
        store = PhotoStore(tmp_path, reserve_bytes=0)
        store.open()
        photo = store.write_output(store.reserve_name(), "jpeg", b"jpeg")
        private = write_atomic(tmp_path / "secret", b"x", mode=0o600)
    finally:
        os.umask(old_umask)
    assert photo.stat().st_mode & 0o777 == 0o644
    assert private.stat().st_mode & 0o777 == 0o600


# ---------------------------------------------------------------- a card on its own file system
class MountedCard:
    """A card with its own file system: a tmpfs (the card's contents, kept while it is out)
    bind-mounted at ``path``, its mount point. :meth:`pull` detaches it as unplugging a
    USB stick does (``umount -l``: the empty folder stays behind); :meth:`insert` mounts
    the same file system (the same ``st_dev``) there again."""

    def __init__(self, base: Path, size: str = "16m") -> None:
        self.contents = base / "contents"
        self.path = base / "card"
        self.contents.mkdir()
        self.path.mkdir()
        self._mounts: list[Path] = []
        self._mount(["-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(self.contents)],
                    self.contents)
        self.insert()

    def _mount(self, args: list[str], target: Path) -> None:
        result = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise PermissionError(result.stderr.strip() or f"mount {args}: {result.returncode}")
        self._mounts.append(target)

    def insert(self) -> None:
        self._mount(["--bind", str(self.contents), str(self.path)], self.path)

    def pull(self) -> None:
        subprocess.run(["umount", "-l", str(self.path)], check=True)
        self._mounts.remove(self.path)

    def make_read_only(self) -> None:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(self.path)], check=True)

    def close(self) -> None:
        for target in reversed(self._mounts):
            subprocess.run(["umount", "-l", str(target)], check=False)
        self._mounts.clear()


@pytest.fixture
def mounted_card(tmp_path: Path):
    """A :class:`MountedCard`; skipped where this process may not mount file systems."""
    if not sys.platform.startswith("linux") or shutil.which("mount") is None:
        pytest.skip("needs Linux's mount(8) to emulate a card")
    try:
        card = MountedCard(tmp_path)
    except PermissionError as exc:
        pytest.skip(f"mounting a tmpfs is not permitted here (needs root): {exc}")
    try:
        yield card
    finally:
        card.close()


def test_a_pulled_card_is_missing_and_nothing_goes_to_the_folder_left_behind(
        mounted_card: MountedCard) -> None:
    store = PhotoStore(mounted_card.path).open()
    assert store.card is not None and store.card.is_mount_point
    first = store.reserve_name()
    journaled = store.write_file(store.new_folder(store.journal_dir / first.key) / "f", b"frame")
    store.write_output(first, "jpeg", b"jpeg")
    mounted_card.pull()
    assert os.listdir(mounted_card.path) == []  # the mount point, on the system's disk
    with pytest.raises(CardMissingError, match="card missing"):
        store.check_present()
    for attempt in (store.reserve_name, store.free_bytes, store.open,
                    lambda: store.write_output(first, "dng", b"dng"),
                    lambda: store.new_folder(store.journal_dir / "100-0002"),
                    lambda: store.write_file(journaled, b"again")):
        with pytest.raises(CardMissingError):
            attempt()
    assert os.listdir(mounted_card.path) == []  # no DCIM/, no .obscura/ recreated there
    # The same card back: numbering goes on from it, its journaled shot is still there.
    mounted_card.insert()
    store.open()
    assert journaled.read_bytes() == b"frame"
    assert store.reserve_name() == ShotName(100, 2)
    assert store.output_path(first, "jpeg").read_bytes() == b"jpeg"


def test_a_write_whose_temporary_file_lands_off_the_card_is_refused(tmp_path: Path) -> None:
    # The card pulled between the check and the write: the temporary file's own device
    # says so, and nothing is left behind.
    store = PhotoStore(tmp_path).open()
    other_device = os.stat(tmp_path).st_dev + 1
    with pytest.raises(CardMissingError, match="no longer on the card"):
        write_atomic_in(tmp_path / "x.jpg", b"x", store.tmp_dir, device=other_device)
    assert not (tmp_path / "x.jpg").exists() and list(store.tmp_dir.iterdir()) == []


def test_first_start_makes_the_folders_and_a_mount_point_can_be_required(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    with pytest.raises(CardMissingError, match="mount point"):
        PhotoStore(folder, require_mount_point=True).open()
    assert list(folder.iterdir()) == []
    store = PhotoStore(folder).open()  # a folder on the system's disk, the first time
    assert store.dcim.is_dir() and store.journal_dir.is_dir()
    assert store.card is not None and not store.card.is_mount_point


def test_a_full_card_is_card_full_not_card_missing(tmp_path: Path) -> None:
    if not sys.platform.startswith("linux") or shutil.which("mount") is None:
        pytest.skip("needs Linux's mount(8) to emulate a card")
    try:
        card = MountedCard(tmp_path, size="1m")
    except PermissionError as exc:
        pytest.skip(f"mounting a tmpfs is not permitted here (needs root): {exc}")
    try:
        store = PhotoStore(card.path, reserve_bytes=0).open()
        with pytest.raises(CardFullError, match="card full"):
            store.write_file(store.journal_dir / "frame", bytes(2 * 1024 * 1024))
        assert list(store.tmp_dir.iterdir()) == []
    finally:
        card.close()


def test_a_read_only_card_is_card_read_only(mounted_card: MountedCard) -> None:
    store = PhotoStore(mounted_card.path).open()
    mounted_card.make_read_only()
    with pytest.raises(CardReadOnlyError, match="read-only"):
        store.reserve_name()


@pytest.mark.parametrize(("code", "kind", "words"), [
    (errno.ENOSPC, CardFullError, "card full"),
    (errno.EDQUOT, CardFullError, "card full"),
    (errno.EROFS, CardReadOnlyError, "read-only"),
    (errno.EMFILE, OutOfResourcesError, "too many open files"),
    (errno.ENFILE, OutOfResourcesError, "too many open files"),
    (errno.ENOENT, CardMissingError, "card missing"),
    (errno.EIO, CardFailedError, "card error"),
])
def test_each_write_error_says_what_it_is(tmp_path: Path, monkeypatch, code: int,
                                          kind: type, words: str) -> None:
    store = PhotoStore(tmp_path).open()

    def failing_write(fd: int, data) -> int:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "write", failing_write)
    with pytest.raises(kind, match=words) as raised:
        store.write_file(store.journal_dir / "frame", b"frame")
    assert raised.value.errno == code
    if kind is OutOfResourcesError:
        assert not isinstance(raised.value, (CardMissingError, CardFullError))


# ------------------------------------------------------------------------- the daemon's view
def test_the_daemon_waits_for_a_pulled_card_then_resumes_its_journal(
        mounted_card: MountedCard, monkeypatch, caplog) -> None:
    # A shot is acknowledged (journaled); the card is pulled while it is being developed.
    # The camera shows card_missing and writes nothing to the folder left behind; when the
    # card is back, the shot is developed from its journal without a restart and numbering
    # goes on from the card.
    from firmware import development
    from tests.test_daemon import assert_card_is_consistent, make_daemon

    developing, release = threading.Event(), threading.Event()
    develop_shot = development.develop_shot

    def develop_after_the_pull(frames, settings):
        developing.set()
        release.wait(30)
        return develop_shot(frames, settings)

    monkeypatch.setattr(development, "develop_shot", develop_after_the_pull)
    caplog.set_level(logging.INFO, logger="firmware")
    with make_daemon(mounted_card.path) as daemon:
        assert daemon.wait_ready(20)
        first = daemon.request_shot()
        assert first["taken"] and first["shot"] == "100-0001"
        assert developing.wait(30)
        mounted_card.pull()
        release.set()
        assert daemon.wait_until(lambda s: s["error"] == "card_missing", 20), daemon.status()
        assert daemon.controls.pattern == "error_card_missing"
        refused = daemon.request_shot()
        assert not refused["taken"] and "card_missing" in refused["reason"]
        assert daemon.wait_until(lambda s: "still failing" in caplog.text, 20)  # a retry ran
        assert os.listdir(mounted_card.path) == []
        monkeypatch.setattr(development, "develop_shot", develop_shot)
        mounted_card.insert()
        assert daemon.wait_until(lambda s: s["state"] == "ready" and s["pending"] == 0, 60), \
            daemon.status()
        second = daemon.request_shot()
        assert second["taken"] and second["shot"] == "100-0002"
        assert daemon.wait_until(lambda s: s["pending"] == 0, 60)
    assert_card_is_consistent(mounted_card.path, {"100-0001", "100-0002"})
    assert list((mounted_card.path / ".obscura/journal").iterdir()) == []


def test_a_burst_too_big_for_the_card_is_refused_alone(tmp_path: Path) -> None:
    # The space check is the shot's own: a burst that does not fit is refused, the camera
    # stays ready (no sticky card_full), and a single that fits is taken at once.
    from tests.test_daemon import make_daemon

    free = {"bytes": 10**12}
    with make_daemon(tmp_path, free_space=lambda path: free["bytes"]) as daemon:
        assert daemon.wait_ready(20)
        single, burst = daemon._capture.shot_bytes(1, 0), daemon._capture.shot_bytes(3, 0)
        free["bytes"] = (single + burst) // 2
        refused = daemon.request_shot("burst")
        assert not refused["taken"] and "card full" in refused["reason"], refused
        status = daemon.status()
        assert status["state"] == "ready" and status["error"] is None
        taken = daemon.request_shot("single")
        assert taken["taken"], taken
        assert daemon.wait_until(lambda s: s["pending"] == 0, 60)
        free["bytes"] = single // 2  # not even a single fits: the card is full (LED 3)
        refused = daemon.request_shot("single")
        assert not refused["taken"] and "card_full" in refused["reason"]
        assert daemon.status()["error"] == "card_full"
        assert daemon.controls.pattern == "error_card_full"


@pytest.mark.parametrize(("error", "code"), [
    (OutOfResourcesError("x: too many open files in the daemon (not the card)"),
     "out_of_resources"),
    (CardReadOnlyError("x: card read-only"), "card_read_only"),
    (CardFailedError("x: card error (Input/output error)"), "card_failed"),
    (CardFullError("x: card full"), "card_full"),
])
def test_the_daemon_shows_what_a_write_error_is(tmp_path: Path, monkeypatch, error, code) -> None:
    from firmware.journal import Journal
    from tests.test_daemon import make_daemon

    write = Journal.write
    failures = []

    def failing_once(journal, shot):
        if not failures:
            failures.append(shot.key)
            raise error
        return write(journal, shot)

    monkeypatch.setattr(Journal, "write", failing_once)
    with make_daemon(tmp_path) as daemon:
        assert daemon.wait_ready(20)
        shot = threading.Thread(target=daemon.request_shot)  # acknowledged after recovery
        shot.start()
        assert daemon.wait_until(lambda s: s["error"] == code, 20), daemon.status()
        assert daemon.controls.pattern == f"error_{code}"
        # the shot kept in memory is written once the retry finds the card fine
        assert daemon.wait_until(lambda s: s["state"] == "ready" and s["shots"] == 1, 30)
        shot.join(30)
