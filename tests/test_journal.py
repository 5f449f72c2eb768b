"""The card journal: frames written packed then the manifest, read back exactly (also as
a streamed burst and from earlier firmware's DNG journals), retired manifest first."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from firmware import journal as journal_module
from firmware.development import develop_shot
from firmware.journal import Journal, read_burst, read_frames
from firmware.shot import Shot
from hardware.imx477_simulator import Imx477Simulator, SensorSettings
from hardware.storage import PhotoStore
from pipeline.burst import StreamedBurst
from pipeline.formats.encoders.dng import encode_dng


def open_journal(root) -> Journal:
    journal = Journal(PhotoStore(root, reserve_bytes=0))
    journal.open()
    return journal


def journal_shot(journal: Journal, frames, **fields) -> Shot:
    shot = Shot(0, mode=fields.pop("mode", "single"), name=journal.store.reserve_name(), **fields)
    return journal.write(shot.with_frames(tuple(frames)))


def test_journaled_frames_come_back_exactly(tmp_path) -> None:
    """Packed frames: the same mosaic bit for bit, equal metadata, the shot's shading table."""
    camera = Imx477Simulator(np.full((8, 8, 3), 120, np.uint8), seed=2, output_size=(32, 48))
    frames = [camera.capture(SensorSettings(exposure_time_us=1000, analogue_gain=gain))
              for gain in (1.0, 2.5)]
    journal = open_journal(tmp_path)
    entry = journal_shot(journal, frames).journal
    assert [p.name for p in entry.frame_paths] == ["frame_00.raw", "frame_01.raw"]
    assert all(p.stat().st_size == 32 * 48 * 3 // 2 for p in entry.frame_paths)  # 12-bit
    (resumed,) = open_journal(tmp_path).pending()  # as after a restart: read back from the card
    read = read_frames(resumed)
    for back, frame in zip(read, frames, strict=True):
        np.testing.assert_array_equal(back.cfa, frame.cfa)
        assert back.metadata == frame.metadata
        # Exactly: a shot resumed from the journal develops as it would have from memory.
        np.testing.assert_array_equal(back.metadata.lens_shading.gains,
                                      frame.metadata.lens_shading.gains)
    assert resumed.to_manifest() == Shot(0, mode="single").to_manifest()
    assert resumed.frame_count == 2
    bare_metadata = dataclasses.replace(frames[0].metadata, lens_shading=None)
    bare = dataclasses.replace(frames[0], metadata=bare_metadata)
    assert journal_module.shading_manifest(bare) == {}


def test_a_journaled_burst_streams_from_the_card(tmp_path) -> None:
    """Long shots are developed from the journal a frame at a time, with the metadata the
    merge needs read from the manifest alone; the result is the in-memory one's."""
    camera = Imx477Simulator(np.full((8, 8, 3), 120, np.uint8), seed=3, output_size=(48, 64))
    frames = [camera.capture(SensorSettings(exposure_time_us=4000, analogue_gain=4.0))
              for _ in range(4)]
    journal = open_journal(tmp_path)
    journal_shot(journal, frames)
    (entry,) = journal.pending()
    burst = read_burst(entry)
    assert isinstance(burst, StreamedBurst) and len(burst) == 4 and burst.shape == (48, 64)
    assert list(burst.metadata) == [f.metadata for f in frames]
    np.testing.assert_array_equal(burst[2].cfa, frames[2].cfa)
    night = dataclasses.replace(entry, mode="night", keep=("merged_dng",))
    assert develop_shot(burst, night) == develop_shot(frames, night)
    legacy = _legacy_journal(tmp_path / "old", frames[0], Shot(0, mode="single").to_manifest())
    assert isinstance(read_burst(legacy), tuple)


def _legacy_journal(tmp_path, frame, manifest):
    """A shot journaled by earlier firmware: DNG frames (without GainMap opcodes)."""
    tmp_path.mkdir()
    journal = open_journal(tmp_path)
    bare = dataclasses.replace(frame, metadata=dataclasses.replace(frame.metadata,
                                                                   lens_shading=None))
    folder = journal.store.journal_dir / journal.store.reserve_name().key
    folder.mkdir()
    (folder / "frame_00.dng").write_bytes(encode_dng(bare))
    (folder / "manifest.json").write_text(json.dumps({**manifest, "frames": ["frame_00.dng"]}))
    (entry,) = journal.pending()
    return entry


def test_dng_journals_of_earlier_firmware_still_read(tmp_path) -> None:
    """A card may hold shots journaled as DNGs, with the shading table and the fields the
    DNG lacks in the manifest, or (older still) without them."""
    camera = Imx477Simulator(np.full((8, 8, 3), 120, np.uint8), seed=2, output_size=(32, 48))
    frame = camera.capture(SensorSettings(exposure_time_us=1000, analogue_gain=2.0))
    legacy = {journal_module.FRAMES_FIELD: [{"analogue_gain": 2.0, "sensor_timestamp_ns": 77}],
              **journal_module.shading_manifest(frame)}
    entry = _legacy_journal(tmp_path / "a", frame, {**Shot(0).to_manifest(), **legacy})
    assert entry.journal.frame_paths[0].name == "frame_00.dng"
    (read,) = read_frames(entry)
    np.testing.assert_array_equal(read.cfa, frame.cfa)
    assert read.metadata.analogue_gain == 2.0 and read.metadata.sensor_timestamp_ns == 77
    np.testing.assert_array_equal(read.metadata.lens_shading.gains,
                                  frame.metadata.lens_shading.gains)
    (older,) = read_frames(_legacy_journal(tmp_path / "b", frame, Shot(0).to_manifest()))
    np.testing.assert_array_equal(older.cfa, frame.cfa)
    assert older.metadata.lens_shading is None and older.metadata.analogue_gain is None


def _frames(count: int = 2):
    camera = Imx477Simulator(np.full((8, 8, 3), 120, np.uint8), seed=5, output_size=(16, 24))
    return [camera.capture(SensorSettings(exposure_time_us=1000)) for _ in range(count)]


def test_a_shot_is_written_resumed_with_its_settings_and_retired(tmp_path) -> None:
    journal = open_journal(tmp_path)
    written = journal_shot(journal, _frames(), mode="burst", look="neutral", keep=("jpeg",),
                           exposure_compensation_ev=-0.7, jpeg_quality=80, reference_index=1)
    (resumed,) = open_journal(tmp_path).pending()  # as after a restart
    assert resumed == dataclasses.replace(written, frames=())
    assert (resumed.mode, resumed.look, resumed.keep, resumed.frame_count) == (
        "burst", "neutral", ("jpeg",), 2)
    journal.retire(resumed)
    assert journal.pending() == [] and not written.journal.directory.exists()


def test_a_capture_cut_short_is_removed_when_the_card_is_opened(tmp_path) -> None:
    journal = open_journal(tmp_path)
    cut = journal.store.journal_dir / journal.store.reserve_name().key
    cut.mkdir()
    (cut / "frame_00.raw").write_bytes(b"half a fr")  # power cut before the manifest
    kept = journal_shot(journal, _frames(1))
    journal.open()  # the same card again (a recovery): a write may be in flight, keep it
    assert cut.exists()
    restarted = open_journal(tmp_path)
    assert not cut.exists() and [s.key for s in restarted.pending()] == [kept.key]
    assert restarted.store.reserve_name().number == 3  # the cut number is not reused


def test_an_unreadable_manifest_is_set_aside_not_lost(tmp_path) -> None:
    journal = open_journal(tmp_path)
    shot = journal_shot(journal, _frames(1))
    (shot.journal.directory / "manifest.json").write_text("{not json")
    assert journal.pending() == []
    assert (journal.store.failed_dir / shot.key / "frame_00.raw").stat().st_size > 0


@pytest.mark.parametrize("field", [{"keep": "jpeg"}, {"keep": [1]}, {"reference_index": "1"},
                                   {"exposure_compensation_ev": "x"}, {"jpeg_quality": True},
                                   {"merge": "median"}])
def test_a_manifest_with_a_field_of_the_wrong_type_is_set_aside(tmp_path, field) -> None:
    journal = open_journal(tmp_path)
    shot = journal_shot(journal, _frames(1))
    manifest_path = shot.journal.directory / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest_path.write_text(json.dumps({**manifest, **field}))
    assert journal.pending() == []
    assert (journal.store.failed_dir / shot.key / "manifest.json").exists()
