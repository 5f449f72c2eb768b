"""Encoders check every metadata value they write: a bad value costs its tag, never the photo."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import logging

import numpy as np
import pytest
import tifffile
from PIL import Image

from pipeline.cfa import CfaPattern
from pipeline.formats.encoders import exif as tags
from pipeline.formats.encoders.dng import encode_dng
from pipeline.formats.encoders.jpeg import encode_jpeg
from pipeline.formats.encoders.tiff import encode_tiff16
from pipeline.raw_frame import CameraMetadata, RawFrame

GOOD = CameraMetadata(
    cfa_pattern=CfaPattern.RGGB,
    black_level=(64.0,) * 4,
    white_level=1023.0,
    make="Raspberry Pi",
    model="imx477",
    exposure_time_s=1 / 125,
    iso=400.0,
    f_number=2.8,
    focal_length_mm=16.0,
    focal_length_35mm=88.0,
    datetime_original=dt.datetime(2026, 1, 2, 3, 4, 5),
)
#: What corrupt files and type-changed tags have produced (a fuzz run found the ISO).
HOSTILE = dataclasses.replace(
    GOOD,
    make="Caf\xe9 \x00\x07cam" + "x" * 100_000,
    model="\u2603",
    lens_model="L" * 70_000,
    iso=4.7e18,
    exposure_time_s=float("nan"),
    f_number=float("inf"),
    focal_length_mm=-3.0,
    focal_length_35mm=1e12,
    orientation=99,
    datetime_original=dt.datetime(5, 1, 2, 3, 4, 5),
)


def jpeg_exif(metadata: CameraMetadata) -> tuple[Image.Exif, dict]:
    image = np.zeros((16, 16, 3), np.uint8)
    with Image.open(io.BytesIO(encode_jpeg(image, metadata))) as jpeg:
        exif = jpeg.getexif()
        return exif, dict(exif.get_ifd(tags.EXIF_IFD))


def test_hostile_metadata_costs_its_tags_not_the_jpeg(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="pipeline.formats.encoders"):
        exif, ifd = jpeg_exif(HOSTILE)
    assert exif[tags.MAKE] == "Caf? ??cam" + "x" * (tags.MAX_TEXT_CHARS - 10)
    assert exif[tags.MODEL] == "?"
    assert ifd[tags.LENS_MODEL] == "L" * tags.MAX_TEXT_CHARS
    for absent in (tags.ISO_SPEED, tags.EXPOSURE_TIME, tags.F_NUMBER, tags.FOCAL_LENGTH, tags.FOCAL_LENGTH_35MM):
        assert absent not in ifd
    assert tags.ORIENTATION not in exif
    assert ifd[tags.DATETIME_ORIGINAL] == "0005:01:02 03:04:05"
    for named in ("ISOSpeedRatings 4.7e+18", "ExposureTime nan", "FNumber inf", "FocalLength -3.0",
                  "FocalLengthIn35mmFilm", "Make"):
        assert named in caplog.text


def test_good_metadata_is_written_unchanged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        exif, ifd = jpeg_exif(GOOD)
    assert not caplog.records
    assert (exif[tags.MAKE], ifd[tags.ISO_SPEED], ifd[tags.FOCAL_LENGTH_35MM]) == (
        "Raspberry Pi", 400, 88)
    assert float(ifd[tags.EXPOSURE_TIME]) == pytest.approx(1 / 125)


def test_iso_above_a_short_is_written_as_65535(caplog: pytest.LogCaptureFixture) -> None:
    # EXIF 2.3: PhotographicSensitivity 65535 means "65535 or more".
    with caplog.at_level(logging.WARNING):
        _, ifd = jpeg_exif(dataclasses.replace(GOOD, iso=102_400.0))
    assert ifd[tags.ISO_SPEED] == tags.MAX_SHORT
    assert "ISOSpeedRatings 102400.0 written as 65535" in caplog.text


@pytest.mark.parametrize("exposure_time_s", [1e-7, 0.3, 1234.5678, 99_999.99])
def test_exposure_rational_fits_32_bits(exposure_time_s: float) -> None:
    _, ifd = jpeg_exif(dataclasses.replace(GOOD, exposure_time_s=exposure_time_s))
    written = ifd[tags.EXPOSURE_TIME]
    assert 0 <= written.numerator < 2**32 and 0 < written.denominator < 2**32
    if exposure_time_s >= 1e-5:
        assert float(written) == pytest.approx(exposure_time_s, rel=1e-4)


def test_hostile_metadata_in_tiff_and_dng() -> None:
    tiff = encode_tiff16(np.zeros((8, 8, 3), np.uint16), HOSTILE)
    with tifffile.TiffFile(io.BytesIO(tiff)) as tif:
        assert tif.pages.first.description.startswith("Caf? ??cam")
    cfa = np.random.default_rng(1).integers(0, 1024, (16, 16), dtype=np.uint16)
    dng = encode_dng(RawFrame(cfa, HOSTILE))
    with tifffile.TiffFile(io.BytesIO(dng)) as tif:
        page = tif.pages.first
        assert 34855 not in page.tags and 33434 not in page.tags and 274 not in page.tags
        np.testing.assert_array_equal(page.asarray(), cfa)


def test_jpeg_without_exif_rather_than_no_jpeg(monkeypatch, caplog) -> None:
    # Whatever slips past the checks (here an EXIF block over a JPEG segment's 64 KiB),
    # the pixels developed are written.
    def oversized(metadata: CameraMetadata) -> Image.Exif:
        exif = Image.Exif()
        exif[0x010E] = "x" * 70_000  # ImageDescription
        return exif

    monkeypatch.setattr("pipeline.formats.encoders.jpeg.build_exif", oversized)
    with caplog.at_level(logging.WARNING):
        data = encode_jpeg(np.full((16, 16, 3), 128, np.uint8), GOOD)
    with Image.open(io.BytesIO(data)) as jpeg:
        assert jpeg.size == (16, 16) and not jpeg.getexif()
    assert "JPEG written without EXIF" in caplog.text
