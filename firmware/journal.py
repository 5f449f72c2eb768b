"""The card's journal: shots whose raw frames are on the card, waiting to be developed.

This module alone knows the journal's format. A shot is a folder named by its shot name
in ``.obscura/journal/`` (:class:`hardware.storage.PhotoStore` owns the card and its
folders)::

    frame_00.raw, frame_01.raw ...   each frame packed to 12 bits
                                     (:mod:`pipeline.formats.journal_frames`)
    manifest.json                    written last: the shot's develop settings
                                     (:meth:`firmware.shot.Shot.to_manifest`), the frame
                                     files, each frame's fields, the lens shading table

A shot is journaled once its manifest is on the card; a folder without one is a capture
cut short (never acknowledged) and is removed when the card is opened. Developed, the
manifest goes first, so a power cut never leaves a shot half-retired. A shot that could
not be developed is set aside in ``.obscura/failed/``. Journals of earlier firmware, whose
frames are DNGs, are still read.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from firmware.shot import Shot
from hardware.storage import PhotoStore, ShotName, StorageError, storage_error
from pipeline.burst import StreamedBurst
from pipeline.errors import RawFormatError
from pipeline.formats.dng_reader import read_dng
from pipeline.formats.journal_frames import metadata_from_fields, pack_frame, read_packed_frame
from pipeline.raw_frame import LensShadingMap, RawFrame

logger = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
#: Suffix of the frame files (:mod:`pipeline.formats.journal_frames`).
FRAME_SUFFIX = ".raw"
#: Manifest field listing the frame files, in capture order.
FRAME_FILES_FIELD = "frames"
#: Manifest field holding the lens shading table every frame of the shot shares.
LENS_SHADING_FIELD = "lens_shading"
#: Manifest field holding, per frame, the fields that read it back
#: (:attr:`pipeline.formats.journal_frames.PackedFrame.fields`).
FRAMES_FIELD = "frame_metadata"
#: Metadata that frames journaled as DNGs (earlier firmware) keep in :data:`FRAMES_FIELD`,
#: as the DNG reader does not return it.
DNG_FRAME_FIELDS = ("analogue_gain", "sensor_timestamp_ns")


@dataclass(frozen=True)
class JournalEntry:
    """Where a journaled shot's frames are: its folder and its manifest as on the card."""

    directory: Path
    manifest: dict[str, Any]

    @property
    def frame_paths(self) -> list[Path]:
        """The frames' files, in capture order."""
        return [self.directory / f for f in self.manifest[FRAME_FILES_FIELD]]


class Journal:
    """The journal on ``store``'s card: write, list, read back, retire, set aside."""

    def __init__(self, store: PhotoStore) -> None:
        self.store = store

    def open(self) -> None:
        """Open the card (:meth:`PhotoStore.open`); on a card not open before, remove the
        captures cut short (folders without a manifest)."""
        before = self.store.card
        self.store.open()
        if self.store.card != before:
            self._remove_incomplete()

    def _remove_incomplete(self) -> None:
        journal_dir = self.store.journal_dir
        try:
            for directory in journal_dir.iterdir():
                if not (directory / MANIFEST_NAME).is_file():
                    logger.warning("removing the incomplete capture %s (never acknowledged)",
                                   directory)
                    self.store.remove_folder(directory)
        except OSError as exc:
            raise storage_error(journal_dir, exc, "cannot read the journal") from None

    def write(self, shot: Shot) -> Shot:
        """Put a captured shot on the card: each frame packed and written straight from its
        buffer, then the manifest. Durable when this returns; the shot comes back with its
        :attr:`~firmware.shot.Shot.journal` entry."""
        assert shot.name is not None
        packed = [pack_frame(frame) for frame in shot.frames]
        directory = self.store.new_folder(self.store.journal_dir / shot.name.key)
        names = []
        for i, frame in enumerate(packed):
            names.append(f"frame_{i:02d}{FRAME_SUFFIX}")
            self.store.write_file(directory / names[-1], frame.data)
        manifest = {**shot.to_manifest(), "name": shot.name.key, FRAME_FILES_FIELD: names}
        if shot.frames:
            manifest.update(shading_manifest(shot.frames[0]))
            manifest[FRAMES_FIELD] = [p.fields for p in packed]
        self.store.write_file(directory / MANIFEST_NAME, json.dumps(manifest, indent=1).encode())
        return dataclasses.replace(shot, journal=JournalEntry(directory, manifest))

    def pending(self) -> list[Shot]:
        """The journaled shots, oldest first (without frames: :meth:`burst` reads them).
        A folder whose manifest cannot be read is set aside."""
        self.store.check_present()
        journal_dir = self.store.journal_dir
        try:
            directories = list(journal_dir.iterdir())
        except OSError as exc:
            raise storage_error(journal_dir, exc) from None
        shots = []
        for directory in directories:
            try:
                manifest = json.loads((directory / MANIFEST_NAME).read_text(encoding="utf-8"))
                name = ShotName.parse_key(directory.name)
                entry = JournalEntry(directory, manifest)
                shot = Shot.from_manifest(manifest, name, entry)
            except FileNotFoundError:
                continue
            except (OSError, ValueError, TypeError, KeyError) as exc:
                logger.error("%s: unreadable manifest (%s): moved to failed", directory, exc)
                self.store.set_aside(directory)
                continue
            shots.append(shot)
        return sorted(shots, key=lambda s: s.name)

    def retire(self, shot: Shot) -> None:
        """Forget a developed shot: the manifest goes first, so a cut leaves no entry."""
        entry = _entry(shot)
        self.store.remove_file(entry.directory / MANIFEST_NAME)
        self.store.remove_folder(entry.directory)

    def set_aside(self, shot: Shot) -> Path:
        """Keep a shot that could not be developed in ``.obscura/failed/``."""
        return self.store.set_aside(_entry(shot).directory)


def _entry(shot: Shot) -> JournalEntry:
    if shot.journal is None:
        raise StorageError(f"{shot.name}: not journaled")
    return shot.journal


def shading_manifest(frame: RawFrame) -> dict[str, Any]:
    """The frame's lens shading table as manifest fields (none without one)."""
    shading = frame.metadata.lens_shading
    if shading is None:
        return {}
    # float32 -> float -> JSON -> float32 is exact: a resumed shot develops as it would have.
    return {LENS_SHADING_FIELD: shading.gains.astype(np.float64).tolist()}


def _shot_shading(entry: JournalEntry) -> LensShadingMap | None:
    """The lens shading table the journaled shot's frames share (:func:`shading_manifest`)."""
    gains = entry.manifest.get(LENS_SHADING_FIELD)
    return None if gains is None else LensShadingMap(np.asarray(gains, dtype=np.float32))


def read_frame(shot: Shot, index: int) -> RawFrame:
    """Frame ``index`` of a journaled shot, with the shot's lens shading table."""
    entry = _entry(shot)
    path = entry.frame_paths[index]
    per_frame = entry.manifest.get(FRAMES_FIELD) or []
    fields = per_frame[index] if index < len(per_frame) else {}
    shading = _shot_shading(entry)
    changes: dict[str, Any] = {} if shading is None else {"lens_shading": shading}
    if path.suffix.lower() == ".dng":
        frame = read_dng(path)
        changes.update((k, v) for k, v in fields.items() if k in DNG_FRAME_FIELDS and v is not None)
    else:
        frame = read_packed_frame(path, fields)
    if not changes:
        return frame
    return RawFrame(frame.cfa, dataclasses.replace(frame.metadata, **changes))


def read_frames(shot: Shot) -> tuple[RawFrame, ...]:
    """Every frame of a journaled shot, in capture order."""
    return tuple(read_frame(shot, i) for i in range(len(_entry(shot).frame_paths)))


def read_burst(shot: Shot) -> Sequence[RawFrame]:
    """A journaled shot's frames as a :class:`~pipeline.burst.StreamedBurst`: metadata
    from the manifest, each frame read from the card when the merge needs it. Journals of
    earlier firmware (DNG frames, whose metadata is in the files) are read whole."""
    entry = _entry(shot)
    per_frame = entry.manifest.get(FRAMES_FIELD) or []
    paths = entry.frame_paths
    if len(per_frame) != len(paths) or any(p.suffix.lower() == ".dng" for p in paths):
        return read_frames(shot)
    shading = _shot_shading(entry)
    try:
        metadata = [
            dataclasses.replace(metadata_from_fields(fields["metadata"]), lens_shading=shading)
            for fields in per_frame
        ]
        shape = tuple(int(v) for v in per_frame[0]["shape"])
    except (KeyError, TypeError, ValueError) as exc:
        raise RawFormatError(f"{entry.directory}: unreadable frame fields ({exc!r})") from None
    return StreamedBurst(metadata, shape, lambda index: read_frame(shot, index))
