"""Raw files other than DNG go through LibRaw and come out as our DNG reader's would."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from firmware.cli import main as obscura
from pipeline.dng_reader import read_dng
from pipeline.errors import RawFormatError
from pipeline.raw_files import read_raw, read_with_libraw
from tests.conftest import RAW_DATA

PI_DNGS = sorted(RAW_DATA.rglob("*.dng"))


@pytest.mark.skipif(not PI_DNGS, reason="needs ../shared/data/raw")
@pytest.mark.parametrize("path", PI_DNGS[:3] + PI_DNGS[-2:], ids=lambda p: p.name)
def test_libraw_reads_what_our_dng_reader_reads(path: Path) -> None:
    ours, libraw = read_dng(path), read_with_libraw(path)
    np.testing.assert_array_equal(libraw.cfa, ours.cfa)
    assert libraw.metadata.cfa_pattern == ours.metadata.cfa_pattern
    assert libraw.metadata.black_level == ours.metadata.black_level
    assert libraw.metadata.white_level == ours.metadata.white_level
    if ours.metadata.as_shot_neutral is None:
        assert libraw.metadata.as_shot_neutral is None
    else:
        np.testing.assert_allclose(libraw.metadata.as_shot_neutral,
                                   ours.metadata.as_shot_neutral, rtol=1e-6)


@pytest.mark.skipif(not PI_DNGS, reason="needs ../shared/data/raw")
def test_a_raw_that_is_not_a_dng_develops_through_libraw(tmp_path: Path) -> None:
    # LibRaw recognises files by content: a Pi raw under another camera's suffix.
    source = tmp_path / "IMG_0001.NEF"
    shutil.copy(RAW_DATA / "pi_arducam_pivariety_1920x1200" / "image1.dng", source)
    assert read_raw(source).shape == (1200, 1920)
    assert obscura(["develop", str(source), "-o", str(tmp_path / "out.jpg")]) == 0
    with Image.open(tmp_path / "out.jpg") as image:
        pixels = np.asarray(image.convert("RGB"), dtype=np.float64)
    assert pixels.shape == (1200, 1920, 3) and 40 < pixels.mean() < 200


def test_files_that_are_not_raw_are_named_in_the_error(tmp_path: Path, monkeypatch) -> None:
    text = tmp_path / "notes.cr2"
    text.write_text("not a raw file")
    with pytest.raises(RawFormatError, match=r"notes\.cr2: LibRaw cannot read it"):
        read_raw(text)
    monkeypatch.setitem(sys.modules, "rawpy", None)  # as on a Pi without rawpy
    with pytest.raises(RawFormatError, match=r"notes\.cr2: reading \.cr2 files needs rawpy"):
        read_raw(text)
