"""The card: DCF numbering, the journal, atomic writes, free space."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from hardware.storage import (
    CardFullError,
    CardMissingError,
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


def test_journal_write_resume_retire(tmp_path: Path) -> None:
    store = PhotoStore(tmp_path).open()
    name = store.reserve_name()
    entry = store.journal_shot(name, [b"frame0", b"frame1"], {"mode": "burst"})
    pending = PhotoStore(tmp_path).open().pending()
    assert [e.name for e in pending] == [name]
    assert [p.read_bytes() for p in pending[0].frame_paths] == [b"frame0", b"frame1"]
    assert pending[0].manifest["mode"] == "burst"
    store.retire(entry)
    assert store.pending() == [] and not entry.directory.exists()


def test_frames_are_written_from_their_buffers(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    mosaic = rng.integers(0, 2**16, size=(7, 13), dtype=np.uint16)
    packed = rng.integers(0, 256, size=(3, 21), dtype=np.uint8)
    store = PhotoStore(tmp_path).open()
    entry = store.journal_shot(store.reserve_name(), [mosaic, packed, memoryview(b"abc")],
                               {}, suffix=".bin")
    assert entry.manifest["frames"] == ["frame_00.bin", "frame_01.bin", "frame_02.bin"]
    assert [p.read_bytes() for p in entry.frame_paths] == [
        mosaic.tobytes(), packed.tobytes(), b"abc"]
    with pytest.raises(TypeError):  # not contiguous: refused before any file is made
        write_atomic_in(tmp_path / "strided", mosaic[:, ::2], store.tmp_dir)
    assert not (tmp_path / "strided").exists() and list(store.tmp_dir.iterdir()) == []


def test_incomplete_capture_and_partial_files_are_removed_at_start(tmp_path: Path) -> None:
    store = PhotoStore(tmp_path).open()
    name = store.reserve_name()
    cut = store.journal_dir / name.key
    cut.mkdir()
    (cut / "frame_00.raw").write_bytes(b"half a fr")  # power cut before the manifest
    (store.tmp_dir / "OBS_0001.JPG.abc.tmp").write_bytes(b"partial")
    store = PhotoStore(tmp_path).open()
    assert store.pending() == [] and not cut.exists()
    assert list(store.tmp_dir.iterdir()) == []
    assert store.reserve_name() == ShotName(100, 2)  # the cut number is not reused


def test_unreadable_manifest_is_set_aside_not_lost(tmp_path: Path) -> None:
    store = PhotoStore(tmp_path).open()
    entry = store.journal_shot(store.reserve_name(), [b"f"], {})
    (entry.directory / "manifest.json").write_text("{not json")
    assert store.pending() == []
    assert (store.failed_dir / entry.name.key / "frame_00.raw").read_bytes() == b"f"


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
