"""Raw files other than DNG go through LibRaw and come out as our DNG reader's would."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from firmware.cli import main as obscura
from pipeline.errors import RawFormatError
from pipeline.formats.dng_reader import is_dng, read_dng
from pipeline.formats.encoders.dng import encode_dng
from pipeline.formats.raw_files import read_raw, read_with_libraw
from tests.conftest import RAW_DATA, mosaic_frame

PI_DNGS = sorted(RAW_DATA.rglob("*.dng"))


@pytest.mark.skipif(not PI_DNGS, reason="needs ../shared/data/raw")
@pytest.mark.parametrize("path", PI_DNGS[:3] + PI_DNGS[-2:], ids=lambda p: p.name)
def test_libraw_reads_what_our_dng_reader_reads(path: Path) -> None:
    ours, libraw = read_dng(path), read_with_libraw(path)
    np.testing.assert_array_equal(libraw.cfa, ours.cfa)
    assert libraw.metadata.cfa_pattern == ours.metadata.cfa_pattern
    if path.name == "test.dng":  # no BlackLevel: LibRaw takes 0, we the Pi's pedestal
        assert (libraw.metadata.black_level, ours.metadata.black_level) == ((0.0,) * 4, (64.0,) * 4)
    else:
        assert libraw.metadata.black_level == ours.metadata.black_level
    assert libraw.metadata.white_level == ours.metadata.white_level
    if ours.metadata.as_shot_neutral is None:
        assert libraw.metadata.as_shot_neutral is None
    else:
        np.testing.assert_allclose(libraw.metadata.as_shot_neutral,
                                   ours.metadata.as_shot_neutral, rtol=1e-6)


@pytest.mark.skipif(not PI_DNGS, reason="needs ../shared/data/raw")
def test_a_dng_under_another_suffix_is_read_as_a_dng(tmp_path: Path) -> None:
    # Dispatch is by content: a Pi DNG renamed .NEF keeps the tags only our reader maps
    # (LibRaw would drop its ColorMatrix and develop it with other colours).
    dng = RAW_DATA / "pi_arducam_pivariety_1920x1200" / "image1.dng"
    source = tmp_path / "IMG_0001.NEF"
    shutil.copy(dng, source)
    assert read_raw(source).metadata == read_dng(dng).metadata
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


def test_libraw_errors_are_text_not_a_bytes_repr(tmp_path: Path) -> None:
    text = tmp_path / "notes.cr2"
    text.write_text("not a raw file, but long enough for LibRaw to look at its header\n" * 20)
    with pytest.raises(RawFormatError) as info:
        read_raw(text)
    assert str(info.value) == (
        f"{text}: LibRaw cannot read it: Unsupported file format or not RAW file"
    )


def test_dispatch_is_by_content_on_a_dng_our_encoder_wrote(tmp_path: Path) -> None:
    # Runs without ../shared: a DNG we write, under a LibRaw suffix, keeps its colour tags.
    rng = np.random.default_rng(3)
    matrix = (0.9, -0.3, -0.1, -0.4, 1.2, 0.2, -0.1, 0.2, 0.6)
    frame = mosaic_frame(rng.uniform(0.1, 0.9, (32, 48, 3)), "GRBG", color_matrix_1=matrix,
                         calibration_illuminant_1=21, iso=400.0)
    source = tmp_path / "DSC_0001.nef"
    source.write_bytes(encode_dng(frame))
    assert is_dng(source)
    read = read_raw(source)
    np.testing.assert_array_equal(read.cfa, frame.cfa)
    np.testing.assert_allclose(read.metadata.color_matrix_1, matrix, atol=1e-6)
    assert read.metadata.iso == 400.0


def test_is_dng_is_false_for_other_tiffs_and_for_junk(tmp_path: Path) -> None:
    plain = tmp_path / "plain.tif"
    tifffile.imwrite(plain, np.zeros((8, 8), np.uint16))
    junk = tmp_path / "junk.nef"
    junk.write_bytes(b"II*\x00\xff\xff\xff\xff")  # IFD0 offset past the end
    assert not is_dng(plain) and not is_dng(junk) and not is_dng(tmp_path / "missing.dng")
