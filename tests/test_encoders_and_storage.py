"""JPEG/TIFF encoders and atomic writes."""

from __future__ import annotations

import datetime as dt
import io
import os

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageCms

from hardware.storage import StorageError, write_atomic
from pipeline.cfa import CfaPattern
from pipeline.errors import InvalidParameterError
from pipeline.formats.encoders import exif as tags
from pipeline.formats.encoders.jpeg import encode_jpeg
from pipeline.formats.encoders.tiff import encode_tiff16
from pipeline.raw_frame import CameraMetadata

META = CameraMetadata(
    cfa_pattern=CfaPattern.BGGR,
    black_level=(256.0,) * 4,
    white_level=4095.0,
    make="Raspberry Pi",
    model="imx477",
    exposure_time_s=1 / 125,
    iso=400,
    datetime_original=dt.datetime(2026, 11, 25, 14, 3, 9),
    lens_model="Voigtlander Nokton 35mm f/1.4",
    focal_length_mm=35.0,
    f_number=2.8,
)


def test_jpeg_carries_exif_and_srgb_profile() -> None:
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, size=(40, 60, 3), dtype=np.uint8)
    data = encode_jpeg(image, META, quality=95)
    with Image.open(io.BytesIO(data)) as jpeg:
        assert jpeg.size == (60, 40)
        profile = ImageCms.ImageCmsProfile(io.BytesIO(jpeg.info["icc_profile"]))
        assert "sRGB" in ImageCms.getProfileDescription(profile)
        exif = jpeg.getexif()
        ifd = exif.get_ifd(tags.EXIF_IFD)
        assert exif[tags.MAKE] == "Raspberry Pi" and exif[tags.MODEL] == "imx477"
        assert float(ifd[tags.EXPOSURE_TIME]) == pytest.approx(1 / 125)
        assert ifd[tags.ISO_SPEED] == 400
        assert ifd[tags.DATETIME_ORIGINAL] == "2026:11:25 14:03:09"
        assert ifd[tags.LENS_MODEL] == "Voigtlander Nokton 35mm f/1.4"
        assert float(ifd[tags.FOCAL_LENGTH]) == 35.0 and float(ifd[tags.F_NUMBER]) == 2.8
        assert ifd[tags.COLOR_SPACE] == 1
        decoded = np.asarray(jpeg)
    assert np.abs(decoded.astype(int) - image).mean() < 25


def test_jpeg_quality_is_validated_and_changes_size() -> None:
    image = np.random.default_rng(4).integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    assert len(encode_jpeg(image, META, quality=50)) < len(encode_jpeg(image, META, quality=98))
    with pytest.raises(InvalidParameterError, match="quality=0"):
        encode_jpeg(image, META, quality=0)


def test_tiff16_round_trips_exactly() -> None:
    image = np.random.default_rng(5).integers(0, 65536, size=(30, 20, 3), dtype=np.uint16)
    data = encode_tiff16(image, META)
    np.testing.assert_array_equal(tifffile.imread(io.BytesIO(data)), image)
    with pytest.raises(InvalidParameterError):
        encode_tiff16(image.astype(np.uint8), META)


def test_write_atomic_replaces_whole_file_and_leaves_no_temp(tmp_path) -> None:
    target = tmp_path / "photo.jpg"
    target.write_bytes(b"old")
    write_atomic(target, b"new contents")
    assert target.read_bytes() == b"new contents"
    assert os.listdir(tmp_path) == ["photo.jpg"]


def test_write_atomic_failure_keeps_old_file_and_names_path(tmp_path) -> None:
    with pytest.raises(StorageError, match="missing-dir"):
        write_atomic(tmp_path / "missing-dir" / "photo.jpg", b"x")
    assert isinstance(StorageError("x"), OSError)
